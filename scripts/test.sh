#!/usr/bin/env bash
# The one command that installs what the tests need and runs them all (README "Quick start").
#   - Debian: nginx-light + libnginx-mod-http-headers-more-filter (ground truth), when missing
#   - PyPI, in .venv: the Helm engine (helm-python-sdk), kubernetes-validate, checkov, pytest,
#     pre-commit
#   - npm, in .venv/sarif-multitool: the SARIF reference validator (tests/sarif.rs), when missing
#   - cargo fmt --check, cargo clippy -D warnings, the fuzz targets build, cargo test,
#     pytest tests/chart
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] \
   || [ ! -f /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so ]; then
  echo "== installing nginx-light and headers-more from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq \
    nginx-light libnginx-mod-http-headers-more-filter >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import helm_python, kubernetes_validate, pytest, cryptography, yaml, jsonschema, h2, pre_commit' 2>/dev/null; then
  echo "== creating .venv with the chart test tools"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/chart/requirements.txt
fi

# Microsoft's SARIF Multitool, the reference validator tests/sarif.rs runs on `--format sarif`
# (the 2.1.0 schema and the rules code scanning relies on); the test requires it when this is set.
SARIF_MULTITOOL="$PWD/.venv/sarif-multitool/node_modules/.bin/sarif-multitool"
if [ ! -x "$SARIF_MULTITOOL" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "== installing Node.js and npm from Debian"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
  fi
  echo "== installing the SARIF validator (@microsoft/sarif-multitool) into .venv/sarif-multitool"
  npm install --prefix .venv/sarif-multitool --no-audit --no-fund --loglevel=error \
    @microsoft/sarif-multitool@5.7.0
fi
export SARIF_MULTITOOL

# A full run needs about 2.5 GB of disk (target/, fuzz/target/, .venv); say what there is, so a
# "No space left on device" from the linker is not a mystery.
echo "== disk free here: $(df -h . | awk 'NR==2{print $4}')"
echo "== cargo fmt --check"
cargo fmt --check
echo "== the engine crate depends on no Kubernetes, async, HTTP or CLI crate"
if cargo tree -p snippet-guard-engine -e normal --prefix none --format '{p}' \
    | awk '{print $1}' | grep -E '^(kube|kube-[a-z-]+|k8s-openapi|tokio|axum|axum-server|clap|hyper)$'; then
  echo "error: snippet-guard-engine must build without the crates listed above" >&2
  exit 1
fi
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== fuzz targets build (scripts/fuzz.sh runs them)"
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo check --quiet --manifest-path fuzz/Cargo.toml --bins
echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc
echo "== chart tests"
.venv/bin/python -m pytest tests/chart -q

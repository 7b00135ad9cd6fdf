#!/usr/bin/env bash
# One command: build snippet-guard (release), generate ingress-nginx-shaped nginx.conf files with
# ../shared/bench/gen_conf.py, install the peers (Debian nginx; crossplane and gixy-ng from PyPI in
# bench/.venv), then time every tool on the same files, alternating runs, and print the table.
#   bench/compare.sh [--runs N] [--sizes 1,100,1000,2000]
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -x /usr/sbin/nginx ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nginx-light >/dev/null
fi
if [ ! -x bench/.venv/bin/gixy ] || [ ! -x bench/.venv/bin/crossplane ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q --disable-pip-version-check crossplane==0.5.8 gixy-ng==0.2.59
fi
cargo build --release -q
exec python3 bench/compare.py "$@"

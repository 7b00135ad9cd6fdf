#!/usr/bin/env bash
# HTTPS load test of `snippet-guard webhook` on this machine, over keep-alive connections.
#
# Builds release, starts `snippet-guard webhook --self-signed` on 127.0.0.1 (enforce mode, logs
# at info to a file, as in a cluster), and runs wrk (Debian package `wrk`, installed when
# missing) for a fixed duration with a Lua script that POSTs a captured AdmissionReview: by
# default the original report's Ingress as `kubectl apply` sends it (3.9 kB, denied). Prints
# requests/s, latency p50/p99/max, errors and the webhook's RSS before and after, for each run
# and the median over runs (the cores are shared by wrk and the webhook).
#
#   scripts/webhook-load.sh                      # 3 runs x 20 s, 2 wrk threads, 16 connections
#   RUNS=5 DURATION=30s CONNECTIONS=64 BODY=tests/fixtures/admission/create-fixed.json scripts/webhook-load.sh
#   SOAK=120 scripts/webhook-load.sh             # then one 120 s run, RSS sampled every 10 s
#
# RSS growth is measured from the end of the first (warm-up) run, when buffers, the allocator's
# pages and the connection pool have reached their working size, to the end of the soak run.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-20s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
BODY=${BODY:-tests/fixtures/admission/create-original-report.json}
MODE=${MODE:-enforce}
SOAK=${SOAK:-0}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk from Debian" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
fi

echo "== cargo build --release" >&2
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/snippet-guard

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

RUST_LOG=info "$bin" webhook --self-signed --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --mode "$MODE" --ca-bundle-out "$work/ca.crt" --log-format json 2>"$work/webhook.log" &
pid=$!
for _ in $(seq 100); do
  grep -q '"webhook listening"' "$work/webhook.log" 2>/dev/null && break
  sleep 0.1
done
addr=$(grep -o '"addr":"[^"]*"' "$work/webhook.log" | head -1 | cut -d'"' -f4)
[ -n "$addr" ] || { cat "$work/webhook.log" >&2; echo "webhook did not start" >&2; exit 1; }
url="https://$addr/validate"

# The body must be answered 200 before measuring.
curl -fsS --cacert "$work/ca.crt" --resolve "localhost:${addr##*:}:127.0.0.1" \
  -H 'content-type: application/json' --data-binary @"$BODY" \
  "https://localhost:${addr##*:}/validate" >/dev/null

echo "webhook $($bin --version) on $url, mode $MODE, pid $pid"
echo "body $BODY ($(wc -c <"$BODY") bytes); wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $RUNS runs; $(nproc) cores"
rss_start=$(rss_kb "$pid")
results=()
load() { # $1: duration
  BODY_FILE="$BODY" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1" --latency -s "$work/post.lua" "$url" | grep '^RESULT'
}
for run in $(seq "$RUNS"); do
  before=$(rss_kb "$pid")
  line=$(load "$DURATION")
  after=$(rss_kb "$pid")
  echo "run $run: ${line#RESULT } rss_before_kb=$before rss_after_kb=$after"
  results+=("${line#RESULT }")
  [ "$run" -eq 1 ] && rss_warm=$after
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { for r in "${results[@]}"; do tr ' ' '\n' <<<"$r" | awk -F= -v k="$1" '$1==k {print $2}'; done; }
echo "median over $RUNS runs: rps=$(field rps | median) p50_ms=$(field p50_ms | median)" \
  "p99_ms=$(field p99_ms | median) max_ms=$(field max_ms | median)" \
  "errors(non2xx+socket)=$(( $(field non2xx | paste -sd+ | bc) + $(field socket_errors | paste -sd+ | bc) ))" \
  "rss_kb start=$rss_start end=$(rss_kb "$pid")"
decisions=$(grep -c '"admission decision"' "$work/webhook.log" || true)
echo "webhook logged $decisions decisions"

if [ "$SOAK" -gt 0 ]; then
  echo "soak: one ${SOAK} s run; RSS every 10 s (kB):"
  soak_start=$(rss_kb "$pid")
  ( while sleep 10; do kill -0 "$pid" 2>/dev/null || exit 0; printf ' %s' "$(rss_kb "$pid")"; done ) &
  sampler=$!
  line=$(load "${SOAK}s")
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  echo
  soak_end=$(rss_kb "$pid")
  echo "soak: ${line#RESULT }"
  awk -v w="$rss_warm" -v s="$soak_start" -v e="$soak_end" -v i="$rss_start" 'BEGIN {
    printf "soak RSS: idle %d kB, after warm-up run %d kB, soak start %d kB, soak end %d kB; growth since warm-up %+.1f%%\n",
      i, w, s, e, (e - w) * 100 / w }'
fi

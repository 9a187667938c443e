#!/usr/bin/env bash
# HTTP `POST /v1/check` on loopback, next to a static-200 nginx on the same machine, same load.
#   bench/http-check.sh [DURATION] [CONNECTIONS]
# Needs wrk and nginx (apt-get install wrk nginx-light). Prints requests/s and latency
# percentiles for both, and the ratio.
# To measure an earlier version: WARD_BIN=path/to/its/ward WARD_REV=the-commit-it-was-built-from
# (the quickstart is then taken from that commit, as that binary knows it).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/check-world.sh
duration=${1:-15s}
connections=${2:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || { echo "nginx is missing: apt-get install nginx-light" >&2; exit 2; }

if [ -n "${WARD_BIN:-}" ]; then
  ward=$WARD_BIN
else
  cargo build --release --quiet -p ward
  ward=target/release/ward
fi
work=$(mktemp -d)
# Waits for the server to stop (it writes a last checkpoint) before removing its files.
trap 'kill $(jobs -p) 2>/dev/null || true; wait || true; "$nginx_bin" -p "$work/nginx" -c nginx.conf -s stop 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ward_port=$(free_port)
nginx_port=$(free_port)

if [ -n "${WARD_REV:-}" ]; then
  mkdir "$work/world"
  git archive "$WARD_REV" examples/quickstart | tar -x --strip-components=2 -C "$work/world"
else
  cp -r examples/quickstart "$work/world"
fi
rm -rf "$work/world/data"
export WARD_LISTEN=127.0.0.1:$ward_port WARD_URL=http://127.0.0.1:$ward_port WARD_DATA_DIR=$work/data WARD_LOG=warn
"$ward" serve --config "$work/world/ward.toml" 2>"$work/ward.log" &
until curl -sf "$WARD_URL/healthz" >/dev/null; do sleep 0.1; done
grant_alice "$ward" "$work/world/ward.toml"
check_script "$work/check.lua" "$alice"

mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$nginx_port;
        location / { default_type application/json; return 200 '{"allowed":true}'; }
    }
}
NGINX
"$nginx_bin" -p "$work/nginx" -c nginx.conf

run() { wrk -t1 -c"$connections" -d"$duration" --latency "$@"; }
echo "== ward POST /v1/check (allowed, token auth, audit tally) =="
run -s "$work/check.lua" "$WARD_URL/v1/check" | tee "$work/ward.txt"
echo "== nginx static 200 =="
run "http://127.0.0.1:$nginx_port/" | tee "$work/nginx.txt"

rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
python3 - "$(rps "$work/ward.txt")" "$(rps "$work/nginx.txt")" "$(pct "$work/ward.txt" 50%)" "$(pct "$work/nginx.txt" 50%)" \
  "$(pct "$work/ward.txt" 99%)" "$(pct "$work/nginx.txt" 99%)" <<'PY'
import sys
ward, nginx, ward_p50, nginx_p50, ward_p99, nginx_p99 = float(sys.argv[1]), float(sys.argv[2]), *sys.argv[3:]
print(f"\nward   {ward:10.0f} req/s  p50 {ward_p50}  p99 {ward_p99}")
print(f"nginx  {nginx:10.0f} req/s  p50 {nginx_p50}  p99 {nginx_p99}")
print(f"ratio  {ward / nginx:.2f}x nginx throughput")
PY
errors=$(grep -c "Non-2xx" "$work/ward.txt" || true)
[ "$errors" = 0 ] || { echo "ward answered non-2xx responses" >&2; exit 1; }

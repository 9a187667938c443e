#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API against its own OpenAPI document (schemathesis):
# no 5xx, every status code, content type and body as documented. Randomized, so it is a
# developer check, not part of CI.
#   scripts/api-fuzz.sh [USER] [MAX_EXAMPLES]      (needs: pip install schemathesis)
set -euo pipefail
cd "$(dirname "$0")/.."
user=${1:-admin}
examples=${2:-100}
command -v schemathesis >/dev/null || { echo "schemathesis is missing: pip install schemathesis" >&2; exit 2; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r examples/quickstart "$work/world"
rm -rf "$work/world/data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export WARD_LISTEN=127.0.0.1:$port WARD_DATA_DIR=$work/data WARD_LOG=warn
target/release/ward serve --config "$work/world/ward.toml" 2>"$work/ward.log" &
until curl -sf "http://$WARD_LISTEN/healthz" >/dev/null; do sleep 0.1; done
token=$(target/release/ward admin token create "$user" --config "$work/world/ward.toml")
schemathesis run "http://$WARD_LISTEN/openapi.json" -H "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
if grep -qE "ERROR|panicked" "$work/ward.log"; then
    echo "the server logged errors:" >&2
    cat "$work/ward.log" >&2
    exit 1
fi

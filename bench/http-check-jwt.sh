#!/usr/bin/env bash
# HTTP `POST /v1/check` on loopback with an identity provider's JWT vs with a ward API token,
# same server, same load, alternating: the JWT path must keep >= 0.8x the ward token's rate.
#   bench/http-check-jwt.sh [DURATION] [CONNECTIONS] [ROUNDS]
# Needs wrk (apt-get install wrk), Node.js and `npm ci --prefix tools/oidc-test-provider`
# (the test provider, panva's oidc-provider, issues the JWT: RS256, through the device flow).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/check-world.sh
duration=${1:-10s}
connections=${2:-32}
rounds=${3:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
[ -d tools/oidc-test-provider/node_modules ] || { echo "run: npm ci --prefix tools/oidc-test-provider" >&2; exit 2; }

cargo build --release --quiet -p ward
ward=target/release/ward
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait || true; rm -rf "$work"' EXIT

# The provider prints its issuer on its first line; it stops when this script's stdin goes.
mkfifo "$work/provider.out"
sleep infinity | node tools/oidc-test-provider/provider.mjs > "$work/provider.out" &
read -r ready < "$work/provider.out"
cat "$work/provider.out" > /dev/null &
issuer=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["issuer"])' "$ready")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
cp -r examples/quickstart "$work/world"
rm -rf "$work/world/data"
cat >> "$work/world/ward.toml" <<TOML

[identity.oidc]
issuer = "$issuer"
audience = "ward"
client_id = "ward-cli"
username_claim = "preferred_username"
TOML
export WARD_LISTEN=127.0.0.1:$port WARD_URL=http://127.0.0.1:$port WARD_DATA_DIR=$work/data WARD_LOG=warn
"$ward" serve --config "$work/world/ward.toml" 2>"$work/ward.log" &
until curl -sf "$WARD_URL/healthz" >/dev/null; do sleep 0.1; done

# A JWT for alice that outlives the run, through the real device flow.
jwt=$(python3 - "$issuer" <<'PY'
import json, sys, urllib.parse, urllib.request
issuer = sys.argv[1]
def post(url, form=None, body=None):
    data = urllib.parse.urlencode(form).encode() if form else json.dumps(body).encode()
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    request = urllib.request.Request(url, data=data, headers={"content-type": kind})
    try:
        return json.load(urllib.request.urlopen(request))
    except urllib.error.HTTPError as error:
        return json.load(error)
post(f"{issuer}/__test/ttl", body={"ttl": 86400})
discovery = json.load(urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration"))
start = post(discovery["device_authorization_endpoint"], form={"client_id": "ward-cli", "scope": "openid"})
post(f"{issuer}/__test/device", body={"user_code": start["user_code"], "login": "alice"})
grant = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": start["device_code"], "client_id": "ward-cli"}
print(post(discovery["token_endpoint"], form=grant)["access_token"])
PY
)
bob=$("$ward" admin token create bob --config "$work/world/ward.toml")
alice=$("$ward" admin token create alice --config "$work/world/ward.toml")
req=$(WARD_TOKEN=$jwt "$ward" request logs:payments-api --role read --for 4h --reason "bench" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
WARD_TOKEN=$bob "$ward" approve "$req" -o json >/dev/null
WARD_TOKEN=$jwt "$ward" check --principal alice --action read --resource logs:payments-api >/dev/null

check_script "$work/ward.lua" "$alice"
check_script "$work/jwt.lua" "$jwt"

rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
for round in $(seq 1 "$rounds"); do
  # Which goes first alternates, so neither always runs on a warmer server.
  order="ward jwt"; [ $((round % 2)) = 0 ] && order="jwt ward"
  for kind in $order; do
    wrk -t1 -c"$connections" -d"$duration" --latency -s "$work/$kind.lua" "$WARD_URL/v1/check" > "$work/$kind-$round.txt"
    if grep -q "Non-2xx" "$work/$kind-$round.txt"; then echo "$kind: non-2xx answers" >&2; cat "$work/$kind-$round.txt" >&2; exit 1; fi
  done
  echo "round $round: ward token $(rps "$work/ward-$round.txt")/s (p50 $(pct "$work/ward-$round.txt" 50%), p99 $(pct "$work/ward-$round.txt" 99%)), JWT $(rps "$work/jwt-$round.txt")/s (p50 $(pct "$work/jwt-$round.txt" 50%), p99 $(pct "$work/jwt-$round.txt" 99%))"
done
python3 - "$work" "$rounds" <<'PY'
import re, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def rate(kind, n):
    return float(re.search(r"Requests/sec:\s+([\d.]+)", open(f"{work}/{kind}-{n}.txt").read()).group(1))
ratios = [rate("jwt", n) / rate("ward", n) for n in range(1, rounds + 1)]
print("ratios JWT / ward token: " + ", ".join(f"{r:.2f}" for r in ratios))
print(f"median ratio {statistics.median(ratios):.2f}x  (median rates: ward token {statistics.median(rate('ward', n) for n in range(1, rounds + 1)):.0f}/s, JWT {statistics.median(rate('jwt', n) for n in range(1, rounds + 1)):.0f}/s)")
PY

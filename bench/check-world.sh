# Sourced by the check benches (bench/http-check.sh, bench/replicas-check.sh).

# grant_alice WARD CONFIG: alice and bob get tokens, alice asks for four hours of `read` on
# logs:payments-api, bob approves, and her first check is on record (later ones are the hot
# path). Needs WARD_URL; sets $alice to her token.
grant_alice() {
    local ward=$1 config=$2 bob req
    alice=$("$ward" admin token create alice --config "$config")
    bob=$("$ward" admin token create bob --config "$config")
    req=$(WARD_TOKEN=$alice "$ward" request logs:payments-api --role read --for 4h --reason "bench" -o json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    WARD_TOKEN=$bob "$ward" approve "$req" -o json >/dev/null
    WARD_TOKEN=$alice "$ward" check --principal alice --action read --resource logs:payments-api >/dev/null
}

# check_script FILE BEARER: wrk's script for alice's check, sent with BEARER.
check_script() {
    cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '{"principal":"alice","action":"read","resource":"logs:payments-api"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $2"
LUA
}

#!/usr/bin/env bash
# HTTP `POST /v1/check` through one ward replica and through three, on one PostgreSQL.
#   bench/replicas-check.sh [DURATION] [CONNECTIONS] [ROUNDS]
# Needs wrk and PostgreSQL's server binaries (apt-get install wrk postgresql). Alternates one
# replica and three, ROUNDS times each; the same CONNECTIONS in total, spread evenly over the
# replicas (one wrk per replica, as a load balancer would). For each round it prints the
# requests/s, the CPU seconds ward's processes and wrk used per 1,000 checks, and how many
# transactions the database committed meanwhile (read-only ones included: a check reads the
# replica's own index, and at most the token epoch, shared by the requests that arrive while it
# is read), and how much of the machine's CPU stayed idle. Then what the database alone serves of
# that epoch read.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/check-world.sh
duration=${1:-10s}
connections=${2:-30}
rounds=${3:-2}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL is missing: apt-get install postgresql" >&2; exit 2; }

cargo build --release --quiet -p ward
ward=$PWD/target/release/ward
work=$(mktemp -d)
chmod 755 "$work"
as_postgres=()
[ "$(id -u)" = 0 ] && as_postgres=(runuser -u postgres --)
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A throwaway cluster with PostgreSQL's durable defaults.
mkdir "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres: "$work/pg"
pg_port=$(free_port)
"${as_postgres[@]}" "$pg_bin/initdb" -U ward -A trust -E UTF8 -D "$work/pg/data" >/dev/null
"${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U ward ward
psql() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U ward -d ward -tAq "$@"; }

cp -r examples/quickstart "$work/world"
rm -rf "$work/world/data"
export WARD_DATABASE_URL=postgres://ward@127.0.0.1:$pg_port/ward WARD_DATA_DIR=$work/data WARD_LOG=warn
ports=("$(free_port)" "$(free_port)" "$(free_port)")
pids=("" "" "")
start_replica() {
    WARD_LISTEN=127.0.0.1:${ports[$1]} "$ward" serve --config "$work/world/ward.toml" 2>>"$work/ward-$1.log" &
    pids[$1]=$!
    until curl -sf "http://127.0.0.1:${ports[$1]}/readyz" >/dev/null; do sleep 0.1; done
}
stop_replica() {
    kill "${pids[$1]}"
    wait "${pids[$1]}" 2>/dev/null || true
}
start_replica 0
export WARD_URL=http://127.0.0.1:${ports[0]}
grant_alice "$ward" "$work/world/ward.toml"
check_script "$work/check.lua" "$alice"

# CPU seconds (user + system) the given processes and their threads used so far.
cpu_seconds() {
    local ticks=0 pid
    for pid in "$@"; do
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    python3 -c "print($ticks / $(getconf CLK_TCK))"
}
commits() { psql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'ward'"; }
# The machine's idle and busy CPU time so far, in ticks (every core).
machine_ticks() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# Runs wrk against the first $1 replicas at once; prints "req/s ward-cpu-per-1k wrk-cpu-per-1k commits".
measure() {
    local n=$1 i per=$((connections / $1)) wrk_pids=() total=0 requests=0
    local ward_pids=("${pids[@]:0:$n}")
    local ward_before before
    ward_before=$(cpu_seconds "${ward_pids[@]}")
    before=$(commits)
    local machine_before
    machine_before=$(machine_ticks)
    for ((i = 0; i < n; i++)); do
        wrk -t1 -c"$per" -d"$duration" -s "$work/check.lua" "http://127.0.0.1:${ports[$i]}/v1/check" >"$work/wrk-$i.txt" &
        wrk_pids+=($!)
    done
    local wrk_cpu=0
    for pid in "${wrk_pids[@]}"; do
        # Read before it exits: its CPU time goes with it.
        while kill -0 "$pid" 2>/dev/null; do
            wrk_cpu=$(cpu_seconds "$pid" 2>/dev/null || echo "$wrk_cpu")
            sleep 0.2
        done
        wait "$pid"
        total=$(python3 -c "print($total + $wrk_cpu)")
    done
    for ((i = 0; i < n; i++)); do
        grep -q "Non-2xx" "$work/wrk-$i.txt" && { echo "replica $i answered non-2xx" >&2; exit 1; }
        requests=$((requests + $(awk '/requests in/ {print $1}' "$work/wrk-$i.txt")))
    done
    local ward_after after seconds
    ward_after=$(cpu_seconds "${ward_pids[@]}")
    after=$(commits)
    local machine_after
    machine_after=$(machine_ticks)
    seconds=$(python3 -c "import sys; print(float(sys.argv[1].rstrip('s')))" "$duration")
    python3 - "$requests" "$seconds" "$ward_before" "$ward_after" "$total" "$before" "$after" \
        $machine_before $machine_after <<'PY'
import sys
requests, seconds, wb, wa, wrk, before, after, idle0, busy0, idle1, busy1 = sys.argv[1:]
requests, seconds = int(requests), float(seconds)
idle = (int(idle1) - int(idle0)) / ((int(idle1) - int(idle0)) + (int(busy1) - int(busy0)))
print(f"{requests / seconds:.0f} {1000 * (float(wa) - float(wb)) / requests:.3f} "
      f"{1000 * float(wrk) / requests:.3f} {int(after) - int(before)} {100 * idle:.0f}%")
PY
}

echo "replicas  checks/s  ward-cpu-s/1k  wrk-cpu-s/1k  db-commits  machine-idle"
for ((r = 1; r <= rounds; r++)); do
    echo "1  $(measure 1)"
    start_replica 1
    start_replica 2
    echo "3  $(measure 3)"
    stop_replica 1
    stop_replica 2
done
# The one query a check may send: the token epoch a request waits for (shared by the requests
# that arrive meanwhile), so that a revoked token is refused from its next request on. What the
# database can serve of it, with 16 clients, bounds what any number of replicas could ask.
echo "SELECT value FROM store_epochs WHERE name = 'tokens';" >"$work/epoch.sql"
epochs=$("$pg_bin/pgbench" -h 127.0.0.1 -p "$pg_port" -U ward -n -c 16 -j 2 -T 10 -f "$work/epoch.sql" ward |
    awk '/^tps/ {print int($3)}')
echo "the database alone: $epochs token-epoch reads/s (pgbench, 16 clients)"
echo "cores: $(nproc)"

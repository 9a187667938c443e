#!/bin/sh
# What bounds appends from several replicas on PostgreSQL, measured without ward's own code in
# the way: pgbench calls ward's append procedure (`ward_append_events_durably`, on ward's schema
# from crates/ward-store-sql/migrations/postgres) as the replicas' writers do, one client a
# writer, each call one turn of N events.
#
# `cargo bench -p ward-store-sql --bench append -- replicas` has 16 writers over 3 replicas:
# about 3 turns of 5 events in flight. Here, with about as many events in flight:
#   - 3 clients × 5 events, the bench's shape;
#   - 2 × 8 (fewer, larger turns), 4 × 4 and 8 × 2 (more, smaller ones);
#   - 3 × 5 with no chain: the same events inserted with `seq` from a sequence, committed the
#     same way (asynchronously, then a barrier), with no head to take: what the chain costs;
#   - 3 × 5 on a copy without audit_events' seven secondary indexes: what keeping them costs
#     while the head is held;
#   - appends acknowledged before they are chained, a contract ward does not have: 3 clients
#     staging turns of 5 events, 8 of 2 and 16 of one, each turn one durable commit of its own,
#     while one sequencer chains what was staged (events chained a second);
#   - the peer of the bench: pgbench's 16 clients inserting one row of an event's size a
#     transaction (rows/s; CPU a transaction).
# Each run is on a fresh copy of the database (and after a checkpoint). Printed: events a
# second, the whole machine's CPU time a turn and how busy its CPUs were (from /proc/stat, so
# pgbench's own share is in it).
#
# Usage: bench/append-turns.sh [ROUNDS] [SECONDS_PER_RUN]
set -eu

rounds=${1:-3}
seconds=${2:-6}
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "needs PostgreSQL's server binaries (apt-get install postgresql)" >&2; exit 1; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cleanup() {
    as_postgres "$bin/pg_ctl" -D "$dir/data" stop -m fast >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# A cluster with PostgreSQL's durable defaults, as the bench's.
as_postgres "$bin/initdb" -U ward -A trust -E UTF8 --no-sync -D "$dir/data" >/dev/null
as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
sql() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U ward "$@"; }

sql -d postgres -c "CREATE DATABASE template_ward"
for migration in "$repo"/crates/ward-store-sql/migrations/postgres/*.sql; do
    sql -d template_ward -f "$migration" >/dev/null
done
sql -d template_ward <<'SQL'
-- A batch of 1 to 8 events shaped like the bench's (crates/ward-store-sql/benches/append.rs),
-- its ids numbered afresh each turn ('#'); the canonical bytes are filler in the pieces' lengths.
CREATE SEQUENCE next_batch;
CREATE TABLE batches (events int PRIMARY KEY, batch text, hashed bytea, pieces int[]);
INSERT INTO batches
SELECT n,
    (SELECT jsonb_agg(jsonb_build_object('id', format('evt_#_%s', k), 'type', 'access.used',
        'occurred_at', 1800000000000 + k, 'recorded_at', 1800000000000 + k, 'actor', 'user' || k,
        'subject', 'user' || k, 'resource', 'logs:payments-api', 'request_id', format('req_#_%s', k),
        'grant_id', format('grt_#_%s', k), 'reason', 'INC-4312 checkout 500s for EU customers',
        'details', '{"role":"read","action":"search"}'))
     FROM generate_series(1, n) k)::text,
    decode(repeat(repeat('ab', 400), n), 'hex'),
    (SELECT array_agg(p) FROM generate_series(1, n), unnest('{200,100,100}'::int[]) p)
FROM unnest('{1,2,4,5,8}'::int[]) n;

-- The same events with no chain: no head taken, `seq` from a sequence, constant hashes.
CREATE SEQUENCE unchained_seq START 1000000000;
CREATE PROCEDURE append_unchained(batch jsonb, hashed bytea, pieces int[], channel text,
    OUT chained_after_seq bigint, OUT chained_after_hash text, OUT head_seq bigint,
    OUT head_hash text, OUT head_frontier text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, subject, resource,
        request_id, grant_id, reason, details, prev_hash, hash)
    SELECT nextval('unchained_seq'), e.id, e.type, e.occurred_at, e.recorded_at, e.actor, e.subject,
        e.resource, e.request_id, e.grant_id, e.reason, e.details, repeat('a', 64), repeat('b', 64)
    FROM jsonb_to_recordset(batch) AS e(id text, type text, occurred_at bigint, recorded_at bigint,
        actor text, subject text, resource text, request_id text, grant_id text, reason text,
        details text);
    COMMIT;
    PERFORM pg_logical_emit_message(true, 'ward-durable', '');
END;
$$;

-- Appends acknowledged before they are chained (a shape ward does not have): a writer commits
-- its turn's batch, durably, as one row here and answers its callers; one sequencer moves the
-- rows, oldest first, onto the chain with ward_append_events in transactions of its own.
CREATE TABLE audit_staged (id bigserial PRIMARY KEY, batch jsonb NOT NULL, hashed bytea NOT NULL,
    pieces int[] NOT NULL);
CREATE PROCEDURE sequence_staged()
LANGUAGE plpgsql AS $$
DECLARE
    merged_batch jsonb;
    merged_hashed bytea;
    merged_pieces int[];
BEGIN
    WITH taken AS (
        DELETE FROM audit_staged
        WHERE id IN (SELECT id FROM audit_staged ORDER BY id LIMIT 64)
        RETURNING id, batch, hashed, pieces
    )
    SELECT (SELECT jsonb_agg(x.e ORDER BY t.id, x.n)
                FROM taken t, jsonb_array_elements(t.batch) WITH ORDINALITY AS x(e, n)),
           (SELECT string_agg(t.hashed, ''::bytea ORDER BY t.id) FROM taken t),
           (SELECT array_agg(y.p ORDER BY t.id, y.n)
                FROM taken t, unnest(t.pieces) WITH ORDINALITY AS y(p, n))
    INTO merged_batch, merged_hashed, merged_pieces;
    IF merged_batch IS NULL THEN
        -- Nothing staged: a real sequencer would wait for a notification.
        PERFORM pg_sleep(0.0002);
        RETURN;
    END IF;
    PERFORM ward_append_events(merged_batch, merged_hashed, merged_pieces, 'ward_log');
END;
$$;
SQL

# script PROCEDURE EVENTS: a pgbench script for one turn (the batch is read first, as a writer
# has it before its call).
script() {
    printf '%s\n%s\n' \
        "SELECT replace(batch, '#', nextval('next_batch')::text) AS batch, hashed, pieces FROM batches WHERE events = $2 \\gset" \
        "CALL $1(:batch, :hashed, :pieces, 'ward_log', NULL, NULL, NULL, NULL, NULL);" >"$dir/$1-$2.pgb"
    echo "$dir/$1-$2.pgb"
}

busy_idle() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }

# fresh_copy [SQL]: database `ward` anew from the template, SQL run on it, then a checkpoint.
fresh_copy() {
    sql -d postgres -c "DROP DATABASE IF EXISTS ward" -c "CREATE DATABASE ward TEMPLATE template_ward"
    [ -z "${1:-}" ] || sql -d ward -c "$1"
    sql -d postgres -c CHECKPOINT
}

# measure LABEL N WHAT EACH PGBENCH_OPTIONS...: one pgbench run on `ward` (its last argument:
# pgbench's `-d` is `--debug`), printed as WHAT a second (N of them a transaction), with the
# machine's CPU time for EACH transaction and how busy its CPUs were.
measure() {
    label=$1 n=$2 what=$3 each=$4
    shift 4
    before=$(busy_idle)
    tps=$(pgbench -n -h 127.0.0.1 -p "$port" -U ward -T "$seconds" "$@" ward 2>&1 | awk '/^tps/{print $3}')
    after=$(busy_idle)
    echo "$before $after" | awk -v label="$label" -v tps="$tps" -v n="$n" -v what="$what" -v each="$each" \
        -v s="$seconds" -v hz="$(getconf CLK_TCK)" '{ busy = $3 - $1; idle = $4 - $2
            printf "%s: %.0f %s/s; CPU %.3f ms a %s, %.0f%% busy\n", label, tps * n, what,
                busy * 1000 / hz / (tps * s), each, 100 * busy / (busy + idle) }'
}

# run LABEL PROCEDURE CLIENTS EVENTS [SQL]: turns of EVENTS from CLIENTS; SQL runs on the fresh
# copy first.
run() {
    fresh_copy "${5:-}"
    measure "$1" "$4" events turn -M prepared -c "$3" -j "$3" -f "$(script "$2" "$4")"
}

# insert: the bench's peer, as it runs it (16 clients, 2 threads, one single-row INSERT).
insert() {
    fresh_copy "CREATE TABLE pgbench_audit (id BIGSERIAL PRIMARY KEY, event TEXT NOT NULL)"
    printf "INSERT INTO pgbench_audit (event) VALUES ('%s');\n" "$(printf '%0700d' 0)" >"$dir/insert.pgb"
    measure "pgbench insert, 16 clients" 1 rows row -c 16 -j 2 -f "$dir/insert.pgb"
}

# staged CLIENTS EVENTS: CLIENTS stage turns of EVENTS (each turn one durable commit) while one
# sequencer chains them, both for the run's length. Printed: events chained and staged (acknowledged) a
# second, what was left staged at the end, the machine's CPU an event and how busy it was.
staged() {
    clients=$1 events=$2
    fresh_copy
    printf '%s\n%s\n' \
        "SELECT replace(batch, '#', nextval('next_batch')::text) AS batch, hashed, pieces FROM batches WHERE events = $events \\gset" \
        "INSERT INTO audit_staged (batch, hashed, pieces) VALUES (:batch, :hashed, :pieces);" >"$dir/stage.pgb"
    echo "CALL sequence_staged();" >"$dir/sequence.pgb"
    chained_before=$(sql -d ward -Atc "SELECT count(*) FROM audit_events")
    before=$(busy_idle)
    pgbench -n -h 127.0.0.1 -p "$port" -U ward -T "$seconds" -M prepared -c 1 -f "$dir/sequence.pgb" ward \
        >"$dir/sequence.out" 2>&1 &
    tps=$(pgbench -n -h 127.0.0.1 -p "$port" -U ward -T "$seconds" -M prepared -c "$clients" -j "$clients" -f "$dir/stage.pgb" ward 2>&1 |
        awk '/^tps/{print $3}')
    wait
    after=$(busy_idle)
    chained=$(sql -d ward -Atc "SELECT count(*) - $chained_before FROM audit_events")
    left=$(sql -d ward -Atc "SELECT coalesce(sum(jsonb_array_length(batch)), 0) FROM audit_staged")
    echo "$before $after" | awk -v tps="$tps" -v chained="$chained" -v left="$left" -v s="$seconds" \
        -v label="$clients × $events staged, one sequencer" -v n="$events" -v hz="$(getconf CLK_TCK)" '{
            busy = $3 - $1; idle = $4 - $2
            printf "%s: %.0f events/s chained, %.0f staged, %d left staged; CPU %.3f ms an event, %.0f%% busy\n",
                label, chained / s, tps * n, left, busy * 1000 / hz / (chained + left), 100 * busy / (busy + idle) }'
}

no_secondary_indexes="DROP INDEX audit_events_by_actor, audit_events_by_subject, audit_events_by_resource,
    audit_events_by_type, audit_events_by_request, audit_events_by_grant, audit_events_by_occurred"
results=$dir/results
for round in $(seq 1 "$rounds"); do
    {
        run "3 × 5" ward_append_events_durably 3 5
        run "2 × 8" ward_append_events_durably 2 8
        run "4 × 4" ward_append_events_durably 4 4
        run "8 × 2" ward_append_events_durably 8 2
        run "3 × 5, no chain" append_unchained 3 5
        run "3 × 5, no secondary indexes" ward_append_events_durably 3 5 "$no_secondary_indexes"
        staged 3 5
        staged 8 2
        staged 16 1
        insert
    } | tee -a "$results"
done
echo "medians of $rounds round(s):"
awk -F': ' '!seen[$1]++ { print $1 }' "$results" | while IFS= read -r label; do
    awk -F': ' -v label="$label" '$1 == label { print $2 }' "$results" | sort -n |
        awk -v label="$label" '{ line[NR] = $0 } END { print "  " label ": " line[int((NR + 1) / 2)] }'
done

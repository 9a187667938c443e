-- Appends a batch of events on its own, as a writer that shares the chain with other processes
-- does when its changes write nothing else: in one call, and so in one statement the client
-- prepares once and binds each time. It chains and inserts the batch (ward_append_events), with
-- a commit that does not wait for the WAL flush, so the chain's head is free again at once; then
-- it makes the batch durable: a synchronous commit of one small WAL record of its own (a
-- barrier), which flushes the WAL up to it, and so the batch's commit before it, before the call
-- returns. A failure before the first COMMIT leaves nothing written.
--
-- Where one message of `BEGIN`, `set_config`, a `SELECT` of the function, `COMMIT` and the
-- barrier took five statements to parse and plan each time, this is one, planned once per
-- connection: with three replicas appending, the machine is busy for that much less. The
-- barrier is the one ward-store-sql runs itself (`BARRIER`).
CREATE PROCEDURE ward_append_events_durably(
    batch jsonb,
    hashed bytea,
    pieces integer[],
    channel text,
    OUT chained_after_seq bigint,
    OUT chained_after_hash text,
    OUT head_seq bigint,
    OUT head_hash text,
    OUT head_frontier text
)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT a.chained_after_seq, a.chained_after_hash, a.head_seq, a.head_hash, a.head_frontier
    INTO chained_after_seq, chained_after_hash, head_seq, head_hash, head_frontier
    FROM ward_append_events(batch, hashed, pieces, channel) AS a;
    COMMIT;
    PERFORM pg_logical_emit_message(true, 'ward-durable', '');
END;
$$;

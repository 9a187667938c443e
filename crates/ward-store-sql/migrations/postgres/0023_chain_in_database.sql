-- Appends a batch of events to the chain inside the database, in one call: the head is read
-- under its lock, each event hashed on the one before, the Merkle frontier and the kept nodes
-- moved on (as ward_core::merkle::Frontier::push_with does), the events and nodes inserted and
-- the head updated. Replicas appending take turns at the head only while this runs, not for
-- the round trips of reading the head back to the writer and sending what it planned. Two
-- statements run while the head is held; everything else is expressions.
--
-- `batch` is a JSON list of the events' columns. `hashed` holds each event's canonical bytes
-- in three pieces, around where `prev_hash`'s value and `seq`'s go
-- (ward_core::audit::CanonicalPieces); `pieces` their lengths, three per event. `channel` is
-- notified, as every commit of events is. Returns the head the batch was chained onto and the
-- one it leaves: the writer chains the same events itself and compares.
CREATE FUNCTION ward_append_events(
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
DECLARE
    leaf_prefix CONSTANT bytea := decode('00', 'hex');
    node_prefix CONSTANT bytea := decode('01', 'hex');
    -- The frontier's subtree hashes (hex), largest first.
    subtrees text[];
    hashes text[] := '{}';
    node_levels bigint[] := '{}';
    node_indexes bigint[] := '{}';
    node_hashes text[] := '{}';
    piece_at integer := 1;
    before_prev_hash integer;
    before_seq integer;
    after_seq integer;
    merged bytea;
    below bigint;
    node_level integer;
BEGIN
    IF cardinality(pieces) <> 3 * jsonb_array_length(batch) THEN
        RAISE EXCEPTION 'the batch has % events but % pieces', jsonb_array_length(batch), cardinality(pieces);
    END IF;
    SELECT h.seq, h.hash, ARRAY(
        SELECT f.node FROM jsonb_array_elements_text(h.frontier::jsonb) WITH ORDINALITY AS f(node, n)
        ORDER BY f.n
    )
    INTO head_seq, head_hash, subtrees
    FROM audit_head h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the log has no head';
    END IF;
    chained_after_seq := head_seq;
    chained_after_hash := head_hash;
    FOR event IN 1 .. cardinality(pieces) / 3 LOOP
        before_prev_hash := pieces[3 * event - 2];
        before_seq := pieces[3 * event - 1];
        after_seq := pieces[3 * event];
        head_seq := head_seq + 1;
        merged := sha256(leaf_prefix
            || substring(hashed FROM piece_at FOR before_prev_hash)
            || convert_to(head_hash, 'UTF8')
            || substring(hashed FROM piece_at + before_prev_hash FOR before_seq)
            || convert_to(head_seq::text, 'UTF8')
            || substring(hashed FROM piece_at + before_prev_hash + before_seq FOR after_seq));
        piece_at := piece_at + before_prev_hash + before_seq + after_seq;
        head_hash := encode(merged, 'hex');
        hashes := array_append(hashes, head_hash);
        -- The new leaf merges with the frontier's smallest subtrees while they are as large.
        below := head_seq - 1;
        node_level := 0;
        WHILE below % 2 = 1 LOOP
            merged := sha256(node_prefix || decode(subtrees[cardinality(subtrees)], 'hex') || merged);
            subtrees := subtrees[1:cardinality(subtrees) - 1];
            below := below / 2;
            node_level := node_level + 1;
            -- Kept from level 4 up (ward-store-sql's KEPT_FROM_LEVEL).
            IF node_level >= 4 THEN
                node_levels := array_append(node_levels, node_level::bigint);
                node_indexes := array_append(node_indexes, (head_seq >> node_level) - 1);
                node_hashes := array_append(node_hashes, encode(merged, 'hex'));
            END IF;
        END LOOP;
        subtrees := array_append(subtrees, encode(merged, 'hex'));
    END LOOP;
    IF piece_at <> length(hashed) + 1 THEN
        RAISE EXCEPTION 'the hashed pieces do not fit the batch';
    END IF;
    head_frontier := array_to_json(subtrees)::text;
    WITH appended AS (
        INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, subject,
            resource, request_id, grant_id, reason, details, prev_hash, hash)
        SELECT chained_after_seq + e.n, e.id, e.type, e.occurred_at, e.recorded_at, e.actor,
            e.subject, e.resource, e.request_id, e.grant_id, e.reason, e.details,
            CASE WHEN e.n = 1 THEN chained_after_hash ELSE hashes[e.n - 1] END, hashes[e.n]
        FROM ROWS FROM (jsonb_to_recordset(batch) AS (
            id text, type text, occurred_at bigint, recorded_at bigint, actor text,
            subject text, resource text, request_id text, grant_id text, reason text,
            details text
        )) WITH ORDINALITY AS e(id, type, occurred_at, recorded_at, actor, subject, resource,
            request_id, grant_id, reason, details, n)
        RETURNING 1
    ), kept AS (
        INSERT INTO audit_nodes (level, idx, hash)
        SELECT * FROM unnest(node_levels, node_indexes, node_hashes)
        ON CONFLICT DO NOTHING
        RETURNING 1
    ), announced AS (
        SELECT pg_notify(channel, '')
    )
    UPDATE audit_head SET seq = head_seq, hash = head_hash, frontier = head_frontier
    WHERE id = 1 AND EXISTS (SELECT 1 FROM announced);
END;
$$;

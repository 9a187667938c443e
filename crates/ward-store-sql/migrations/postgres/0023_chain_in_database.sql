-- Appends a batch of events to the chain inside the database, in one statement: the head is
-- read under its lock, each event hashed on the one before, the Merkle frontier and the kept
-- nodes moved on (as ward_core::merkle::Frontier::push_with does), the events and nodes
-- inserted and the head updated. Several replicas appending take turns at the head only for
-- as long as this runs, not for round trips to the client.
--
-- `batch` is a JSON list of the events' columns, each with `pieces`: the lengths of the three
-- pieces of its canonical bytes in `hashed`, around where `prev_hash`'s value and `seq`'s go
-- (ward_core::audit::CanonicalPieces). `channel` is notified, as every commit of events is.
-- Returns the head the batch was chained onto and the hash of its last event: the writer
-- chains the same events itself and compares.
CREATE FUNCTION ward_append_events(batch jsonb, hashed bytea, channel text)
RETURNS TABLE (chained_after_seq bigint, chained_after_hash text, last_hash text)
LANGUAGE plpgsql AS $$
DECLARE
    leaf_prefix CONSTANT bytea := decode('00', 'hex');
    node_prefix CONSTANT bytea := decode('01', 'hex');
    at_seq bigint;
    chain_hash text;
    stored_frontier text;
    subtrees bytea[];
    started_seq bigint;
    started_hash text;
    event record;
    piece_at integer := 1;
    canonical bytea;
    merged bytea;
    below bigint;
    node_level integer;
BEGIN
    SELECT h.seq, h.hash, h.frontier INTO at_seq, chain_hash, stored_frontier
    FROM audit_head h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the log has no head';
    END IF;
    subtrees := ARRAY(
        SELECT decode(f.node, 'hex')
        FROM jsonb_array_elements_text(stored_frontier::jsonb) WITH ORDINALITY AS f(node, n)
        ORDER BY f.n
    );
    started_seq := at_seq;
    started_hash := chain_hash;
    FOR event IN
        SELECT * FROM ROWS FROM (jsonb_to_recordset(batch) AS (
            id text, type text, occurred_at bigint, recorded_at bigint, actor text, subject text,
            resource text, request_id text, grant_id text, reason text, details text,
            pieces integer[]
        )) WITH ORDINALITY AS e(id, type, occurred_at, recorded_at, actor, subject, resource,
            request_id, grant_id, reason, details, pieces, n)
        ORDER BY e.n
    LOOP
        at_seq := at_seq + 1;
        canonical := substring(hashed FROM piece_at FOR event.pieces[1])
            || convert_to(chain_hash, 'UTF8')
            || substring(hashed FROM piece_at + event.pieces[1] FOR event.pieces[2])
            || convert_to(at_seq::text, 'UTF8')
            || substring(hashed FROM piece_at + event.pieces[1] + event.pieces[2] FOR event.pieces[3]);
        piece_at := piece_at + event.pieces[1] + event.pieces[2] + event.pieces[3];
        INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, subject,
            resource, request_id, grant_id, reason, details, prev_hash, hash)
        VALUES (at_seq, event.id, event.type, event.occurred_at, event.recorded_at, event.actor,
            event.subject, event.resource, event.request_id, event.grant_id, event.reason,
            event.details, chain_hash, encode(sha256(leaf_prefix || canonical), 'hex'))
        RETURNING hash INTO chain_hash;
        -- The new leaf merges with the frontier's smallest subtrees while they are as large.
        merged := decode(chain_hash, 'hex');
        below := at_seq - 1;
        node_level := 0;
        WHILE below % 2 = 1 LOOP
            merged := sha256(node_prefix || subtrees[cardinality(subtrees)] || merged);
            subtrees := subtrees[1:cardinality(subtrees) - 1];
            below := below / 2;
            node_level := node_level + 1;
            -- Kept from level 4 up (ward-store-sql's KEPT_FROM_LEVEL).
            IF node_level >= 4 THEN
                INSERT INTO audit_nodes (level, idx, hash)
                VALUES (node_level, (at_seq >> node_level) - 1, encode(merged, 'hex'))
                ON CONFLICT DO NOTHING;
            END IF;
        END LOOP;
        subtrees := array_append(subtrees, merged);
    END LOOP;
    IF piece_at <> length(hashed) + 1 THEN
        RAISE EXCEPTION 'the hashed pieces do not fit the batch';
    END IF;
    UPDATE audit_head SET seq = at_seq, hash = chain_hash,
        frontier = array_to_json(ARRAY(
            SELECT encode(f.node, 'hex') FROM unnest(subtrees) WITH ORDINALITY AS f(node, n) ORDER BY f.n
        ))::text
    WHERE id = 1;
    PERFORM pg_notify(channel, '');
    RETURN QUERY SELECT started_seq, started_hash, chain_hash;
END;
$$;

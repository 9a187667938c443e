-- The audit log's Merkle tree, kept: the hash of every complete subtree of 16 leaves or more
-- (`level` 4 and up; subtree `idx` covers leaves idx * 2^level .. (idx + 1) * 2^level - 1),
-- written in the transaction that completes it. Proofs read O(log n) rows instead of every
-- leaf; smaller subtrees are hashed from their (at most 8) events. Nodes of a log created before
-- this table are filled in once, when the store opens.
CREATE TABLE audit_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  TEXT NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;
CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;

-- Scratch space for the readiness probe: after the disk refused a write, the store counts as
-- writable again only once a write as large commits (inserted and deleted in one transaction).
CREATE TABLE store_probe (
    id     BIGINT PRIMARY KEY,
    filler TEXT NOT NULL
);

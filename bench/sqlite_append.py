#!/usr/bin/env python3
"""What SQLite itself allows for ward's durable append, without an async driver in between.

The transaction ward's writer runs for one event (take the write lock, read the chain's head,
insert the event into ward's own schema with all its indexes, keep the Merkle subtrees it
completes, move the head, commit with synchronous = FULL), driven in-thread by Python's sqlite3
module, next to raw write + fdatasync of 400 bytes, in alternating rounds. It separates
what SQLite and the schema cost from what the Rust path adds (see docs/PERFORMANCE.md).

    python3 bench/sqlite_append.py [EVENTS]
"""
import glob
import os
import sqlite3
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MIGRATIONS = sorted(glob.glob(os.path.join(HERE, "..", "crates", "ward-store-sql", "migrations", "sqlite", "*.sql")))
ROUNDS = 8


def main():
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    per_round = max(events // ROUNDS, 1)
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as directory:
        db = sqlite3.connect(os.path.join(directory, "ward.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        for migration in MIGRATIONS:
            db.executescript(open(migration).read())
        raw = open(os.path.join(directory, "raw.log"), "wb")
        raw_time = sqlite_time = 0.0
        seq = 0
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(per_round):
                raw.write(b"x" * 400)
                raw.flush()
                os.fdatasync(raw.fileno())
            raw_time += time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(per_round):
                seq += 1
                db.execute("BEGIN IMMEDIATE")
                db.execute("SELECT seq, hash, frontier FROM audit_head WHERE id = 1").fetchone()
                db.execute(
                    "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, f"evt_{seq:032}", "access.used", 1_800_000_000_000 + seq, 1_800_000_000_000 + seq,
                     f"user{seq % 500}", f"user{seq % 500}", "logs:payments-api", f"req_{seq:032}",
                     f"grt_{seq:032}", "INC-4312 checkout 500s for EU customers",
                     '{"action":"search","role":"read"}', "a" * 64, "b" * 64),
                )
                # The Merkle subtrees of 16 leaves and more this event completes, kept in the same
                # transaction (one row per 8 events on average).
                level = 4
                while seq % (1 << level) == 0:
                    db.execute("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)",
                               (level, seq // (1 << level) - 1, "d" * 64))
                    level += 1
                db.execute("UPDATE audit_head SET seq = ?, hash = ?, frontier = ? WHERE id = 1",
                           (seq, "b" * 64, '["' + "c" * 64 + '"]'))
                db.execute("COMMIT")
            sqlite_time += time.perf_counter() - started
        count = per_round * ROUNDS
        raw_rate, sqlite_rate = count / raw_time, count / sqlite_time
        print(f"SQLite in-thread (Python sqlite3), 1 writer: {sqlite_rate:.0f} events/s; "
              f"raw write+fdatasync: {raw_rate:.0f}/s; ratio {sqlite_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()

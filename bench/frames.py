#!/usr/bin/env python3
"""WAL frames per commit for a batch of creates, by schema variant.

Replays what the SQLite writer does for a batch of creates (one request row
and one `created` entry each, the audit head updated once) on a scratch
file with Python's own sqlite3, and counts the frames the WAL grew by. A
frame is one 4 KiB page written and synced, so frames per create is what a
schema change can save in the commit. Run from the repository root:

    python3 bench/frames.py                  # every variant, batches of 22
    BATCH=44 python3 bench/frames.py base     # one variant, another batch size

Variants: base (the schema of migration 8), audit1 (audit_by_request on
request_id alone), noexpiry / nostatus / noaudit (that index left out),
blob (ids stored as 16-byte BLOBs instead of 36-character text), norowid
(requests as a WITHOUT ROWID table, so that its primary key is the table),
seq (migration 9: each request records its `created` entry's seq, and
audit_by_request leaves `created` entries out).
"""

import hashlib
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid

COMMITS = 800
ACTION = (
    '{"changes":{"approval_chain":["manager","finance","cfo"],'
    '"max_amount_without_approval":5000},"type":"policy_update"}'
)
VARIANTS = ["base", "audit1", "noexpiry", "nostatus", "noaudit", "blob", "norowid", "seq"]


def schema(variant):
    idcol = "BLOB" if variant == "blob" else "TEXT"
    tables = f"""
    CREATE TABLE requests (id {idcol} PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL,
        proposed_action TEXT NOT NULL, requester TEXT NOT NULL, labels TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, status TEXT NOT NULL,
        reviewer TEXT, decided_at INTEGER, comment TEXT, rejection_reason TEXT,
        edited_action TEXT, action_hash TEXT, plan TEXT, approvals TEXT, stage TEXT,
        remind_at INTEGER{", created_seq INTEGER" if variant == "seq" else ""})\
        {" WITHOUT ROWID" if variant == "norowid" else ""};
    CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, event TEXT NOT NULL,
        request_id {idcol} NOT NULL, title TEXT NOT NULL, actor TEXT, reason TEXT, comment TEXT,
        action TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, original_action TEXT, stage TEXT);
    CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL,
        hash TEXT NOT NULL);
    INSERT INTO audit_head VALUES (1, 0, '');
    CREATE INDEX requests_remind_due ON requests (remind_at) WHERE remind_at IS NOT NULL;
    """
    indexes = {
        "nostatus": "CREATE INDEX requests_by_status ON requests (status, id)",
        "noexpiry": "CREATE INDEX requests_pending_expiry ON requests (expires_at)"
        " WHERE status = 'pending'",
        "noaudit": "CREATE INDEX audit_by_request ON audit_log (request_id, seq)",
    }
    if variant == "audit1":
        indexes["noaudit"] = "CREATE INDEX audit_by_request ON audit_log (request_id)"
    if variant == "seq":
        indexes["noaudit"] += " WHERE event <> 'created'"
    indexes.pop(variant, None)
    return tables + ";\n".join(indexes.values()) + ";"


def new_id(now_ms):
    """A UUIDv7: the millisecond, then random bits."""
    bits = (now_ms << 80) | (7 << 76) | random.getrandbits(76)
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=bits)


def frames_per_commit(variant, batch):
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "frames.db")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.executescript(schema(variant))
        start = os.path.getsize(path + "-wal")
        seq, prev = 0, "0" * 64
        for _ in range(COMMITS):
            conn.execute("BEGIN IMMEDIATE")
            now = int(time.time() * 1e6)
            rows, entries = [], []
            for _ in range(batch):
                id_ = new_id(now // 1000)
                key = id_.bytes if variant == "blob" else str(id_)
                rows.append((key, "Raise the expense approval limit",
                             "Finance asked for 5000 without approval", ACTION, "agent", "{}",
                             now, now + 86_400_000_000, "pending") + (None,) * 10
                            + ((seq + 1,) if variant == "seq" else ()))
                seq += 1
                digest = hashlib.sha256(f"{seq}{prev}".encode()).hexdigest()
                entries.append((seq, "2026-12-03T15:00:00.123456Z", "created", key,
                                "Raise the expense approval limit", "agent", None, None,
                                ACTION, prev, digest, None, None))
                prev = digest
            conn.executemany(f"INSERT INTO requests VALUES ({','.join('?' * len(rows[0]))})", rows)
            conn.executemany(f"INSERT INTO audit_log VALUES ({','.join('?' * 13)})", entries)
            conn.execute("UPDATE audit_head SET last_seq = ?, hash = ? WHERE id = 1", (seq, prev))
            conn.execute("COMMIT")
        grown = os.path.getsize(path + "-wal") - max(start, 32)
        conn.close()
        return grown / (4096 + 24) / COMMITS


def main():
    batch = int(os.environ.get("BATCH", "22"))
    for variant in sys.argv[1:] or VARIANTS:
        per_commit = frames_per_commit(variant, batch)
        print(f"{variant:9} batch {batch:3}: {per_commit:5.1f} frames per commit, "
              f"{per_commit / batch:.2f} per create")


if __name__ == "__main__":
    main()

//! Opening connections and bringing the schema up to date.
//!
//! Migrations are the SQL files in `migrations/`, embedded in the binary and
//! applied in order on start; `PRAGMA user_version` records how far a file
//! has come.

use rusqlite::{Connection, OpenFlags};
use signoff_store::StoreError;

use crate::{Durability, SqliteOptions, unavailable};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_approve_with_edits.sql"),
    include_str!("../migrations/0003_runs.sql"),
    include_str!("../migrations/0004_identity.sql"),
    include_str!("../migrations/0005_policies.sql"),
    include_str!("../migrations/0006_webhooks.sql"),
    include_str!("../migrations/0007_reminders.sql"),
    include_str!("../migrations/0008_requests_rebuilt.sql"),
    include_str!("../migrations/0009_created_seq.sql"),
];

/// Opens the one connection that writes, creating the file if needed, and
/// migrates it.
pub(crate) fn open_writer(options: &SqliteOptions) -> Result<Connection, StoreError> {
    if let Some(parent) = options.path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(StoreError::Unavailable(format!(
            "cannot create database {}: directory {} does not exist",
            options.path.display(),
            parent.display()
        )));
    }
    let cannot_open = |e: &dyn std::fmt::Display| {
        StoreError::Unavailable(format!("cannot open {}: {e}", options.path.display()))
    };
    let conn = match options.durability {
        // Every commit syncs the WAL, which is when the VFS writes what it
        // holds, before any other connection can see the commit.
        Durability::Full => {
            let vfs = signoff_sqlite_vfs::register().map_err(|code| {
                cannot_open(&format!("SQLite VFS not registered (error {code})"))
            })?;
            Connection::open_with_flags_and_vfs(&options.path, OpenFlags::default(), vfs)
        }
        Durability::Normal => Connection::open(&options.path),
    }
    .map_err(|e| cannot_open(&e))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {};
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;
         -- 32 MiB of page cache for the writer (the index tails stay hot).
         PRAGMA cache_size = -32768;",
        synchronous(options.durability)
    ))
    .map_err(unavailable)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens the connection that checkpoints the WAL beside the writer
/// ([`crate::checkpoint`]): it writes no rows, so it needs no migrations,
/// only the writer's durability for the pages it copies.
pub(crate) fn open_checkpointer(options: &SqliteOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        &options.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.execute_batch(&format!(
        "PRAGMA busy_timeout = 5000; PRAGMA synchronous = {};",
        synchronous(options.durability)
    ))
    .map_err(unavailable)?;
    Ok(conn)
}

fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    }
}

/// Opens a read-only connection for the reader pool.
pub(crate) fn open_reader(options: &SqliteOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        &options.path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
        .map_err(unavailable)?;
    // Room for every shape of the inbox query (status, cursor, requester:
    // 24) and of the deliveries query (subscription, status, request: 16)
    // beside the other reads, so none is compiled again for lack of room.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(unavailable)?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "database schema version {current} is newer than this signoff ({}); upgrade signoff",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        let batch = format!("BEGIN IMMEDIATE; {sql}\n PRAGMA user_version = {version}; COMMIT;");
        if let Err(e) = conn.execute_batch(&batch) {
            // Leave nothing half-applied.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Unavailable(format!(
                "migration {version} failed: {e}"
            )));
        }
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::rows::INSERT_REQUESTS;

    /// A file at `version` with one pending and one decided request.
    fn file_at(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(&format!("PRAGMA user_version = {version};"))
            .unwrap();
        conn.execute_batch(
            "INSERT INTO requests VALUES ('01a2124f-fb5a-75ba-99ce-95d0ef1d52eb', 'Pending', 'd',
                 '{\"a\":1}', 'agent', '{}', 1, 2, 'pending', NULL, NULL, NULL, NULL, NULL, NULL,
                 '{\"policy\":\"p\"}', NULL, NULL, 5);
             INSERT INTO requests VALUES ('01a2124f-fb5a-75ba-99ce-95d0ef1d52ec', 'Decided', 'd',
                 '{\"a\":2}', 'agent', '{\"k\":\"v\"}', 3, 4, 'approved', 'ann', 4, 'ok', NULL,
                 '{\"a\":3}', 'ab', NULL, '[]', 'review', NULL);",
        )
        .unwrap();
        conn
    }

    fn rows(conn: &Connection) -> Vec<Vec<rusqlite::types::Value>> {
        // The columns every version since 7 has: later migrations add more.
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {}, remind_at FROM requests ORDER BY id",
                crate::rows::REQUEST_COLUMNS
            ))
            .unwrap();
        let columns = stmt.column_count();
        stmt.query_map([], |row| {
            (0..columns)
                .map(|i| row.get(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Column `column` of every row `sql` returns, as text.
    fn texts(conn: &Connection, sql: &str, column: usize) -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |row| row.get(column))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn created_seq_is_filled_from_the_trail_and_the_index_leaves_created_entries_out() {
        let conn = file_at(8);
        conn.execute_batch(
            "INSERT INTO audit_log (seq, at, event, request_id, title, prev_hash, hash) VALUES
                 (1, 't', 'created', '01a2124f-fb5a-75ba-99ce-95d0ef1d52eb', 'Pending', 'a', 'b'),
                 (2, 't', 'created', '01a2124f-fb5a-75ba-99ce-95d0ef1d52ec', 'Decided', 'b', 'c'),
                 (3, 't', 'approved', '01a2124f-fb5a-75ba-99ce-95d0ef1d52ec', 'Decided', 'c', 'd');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(
            texts(
                &conn,
                "SELECT title || ' ' || created_seq FROM requests ORDER BY id",
                0
            ),
            ["Pending 1", "Decided 2"]
        );
        let index = texts(
            &conn,
            "SELECT sql FROM sqlite_schema WHERE name = 'audit_by_request'",
            0,
        );
        assert_eq!(index.len(), 1);
        assert!(index[0].ends_with("WHERE event <> 'created'"), "{index:?}");
    }

    #[test]
    fn rebuilding_requests_keeps_every_row_and_drops_the_temporary_table() {
        let conn = file_at(7);
        let before = rows(&conn);
        migrate(&conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(rows(&conn), before);
        // An IN list in the CHECK compiled to OpenEphemeral on every insert.
        for sql in INSERT_REQUESTS.iter() {
            let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
            let program: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |row| {
                    row.get::<_, String>(1)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(program.iter().any(|op| op == "Insert"));
            assert!(
                !program.iter().any(|op| op == "OpenEphemeral"),
                "{program:?}"
            );
        }
        // The CHECK still holds.
        let bad = conn.execute(
            "UPDATE requests SET status = 'lost' WHERE title = 'Pending'",
            [],
        );
        assert!(bad.is_err());
        // The indexes are back, the status index ascending.
        let indexes = texts(
            &conn,
            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'requests' AND sql IS NOT NULL ORDER BY name",
            0,
        );
        assert_eq!(indexes.len(), 3, "{indexes:?}");
        assert!(
            indexes
                .iter()
                .any(|sql| sql.ends_with("requests (status, id)"))
        );
        // Newest first still reads the index (backwards), without sorting.
        let newest_pending =
            "SELECT id FROM requests WHERE status = 'pending' ORDER BY id DESC LIMIT 50";
        let plan = texts(&conn, &format!("EXPLAIN QUERY PLAN {newest_pending}"), 3);
        crate::tests::assert_reads_without_sorting(newest_pending, &plan, "requests_by_status");
    }
}

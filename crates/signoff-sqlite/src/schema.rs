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
    let conn = Connection::open(&options.path).map_err(|e| {
        StoreError::Unavailable(format!("cannot open {}: {e}", options.path.display()))
    })?;
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;
         -- Checkpoint every ~16 MiB of WAL rather than 4 MiB: fewer, larger
         -- checkpoints on the writer's critical path.
         PRAGMA wal_autocheckpoint = 4000;
         -- 32 MiB of page cache for the writer (the index tails stay hot).
         PRAGMA cache_size = -32768;"
    ))
    .map_err(unavailable)?;
    migrate(&conn)?;
    Ok(conn)
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

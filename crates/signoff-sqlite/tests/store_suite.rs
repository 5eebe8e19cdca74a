//! The shared store suite, run against SQLite files.
#![allow(clippy::unwrap_used)] // test setup: failing loudly is the point

use std::sync::Arc;

use signoff_core::ManualClock;
use signoff_sqlite::{SqliteOptions, SqliteStore};
use signoff_store::Store;

async fn open() -> (Arc<dyn Store>, Arc<ManualClock>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("t.db")), clock.clone()).unwrap();
    (Arc::new(store), clock, dir)
}

signoff_store::suite_tests!(open);

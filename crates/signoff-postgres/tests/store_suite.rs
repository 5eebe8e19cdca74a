//! The shared store suite, run against scratch databases on a real
//! PostgreSQL server.
#![allow(clippy::unwrap_used)] // test setup: failing loudly is the point

use std::sync::Arc;

use signoff_core::ManualClock;
use signoff_postgres::{PgOptions, PgStore, testing};
use signoff_store::Store;

async fn open() -> (Arc<dyn Store>, Arc<ManualClock>, ()) {
    let url = testing::scratch_database().await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = PgStore::open(PgOptions::new(url), clock.clone())
        .await
        .unwrap();
    (Arc::new(store), clock, ())
}

signoff_store::suite_tests!(open);

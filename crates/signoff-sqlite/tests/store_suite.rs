//! The shared store suite, run against SQLite files.
#![allow(clippy::unwrap_used)] // test setup: failing loudly is the point

use std::sync::Arc;

use signoff_core::ManualClock;
use signoff_sqlite::{SqliteOptions, SqliteStore};
use signoff_store::{Store, suite};

fn open() -> (Arc<dyn Store>, Arc<ManualClock>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("t.db")), clock.clone()).unwrap();
    (Arc::new(store), clock, dir)
}

#[tokio::test]
async fn create_read_decide() {
    let (store, _clock, _dir) = open();
    suite::create_read_decide(store).await;
}

#[tokio::test]
async fn approve_with_edits() {
    let (store, _clock, _dir) = open();
    suite::approve_with_edits(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs() {
    let (store, _clock, _dir) = open();
    suite::runs(store).await;
}

#[tokio::test]
async fn list_by_requester() {
    let (store, _clock, _dir) = open();
    suite::list_by_requester(store).await;
}

#[tokio::test]
async fn tokens() {
    let (store, _clock, _dir) = open();
    suite::tokens(store).await;
}

#[tokio::test]
async fn list_pages() {
    let (store, _clock, _dir) = open();
    suite::list_pages(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_decisions() {
    let (store, _clock, _dir) = open();
    suite::racing_decisions(store).await;
}

#[tokio::test]
async fn idempotent_create() {
    let (store, _clock, _dir) = open();
    suite::idempotent_create(store).await;
}

#[tokio::test]
async fn expiry() {
    let (store, clock, _dir) = open();
    suite::expiry(store, clock).await;
}

#[tokio::test]
async fn approval_plans() {
    let (store, _clock, _dir) = open();
    suite::approval_plans(store).await;
}

//! Scratch databases on a real PostgreSQL server, for tests.

#![allow(clippy::expect_used)] // test support: failing loudly is the point

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The server tests use: `SIGNOFF_TEST_POSTGRES` (a URL of a database the
/// user may create databases from), or the local server's `postgres`
/// database as user `postgres`.
pub fn server_url() -> String {
    std::env::var("SIGNOFF_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database with a unique name and returns its URL.
/// Scratch databases are named `signoff_test_*`; the test command drops
/// old ones before a run.
pub async fn scratch_database() -> String {
    let admin = server_url();
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL for tests is not reachable (set SIGNOFF_TEST_POSTGRES)");
    let name = format!("signoff_test_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("cannot create a scratch database");
    let _ = conn.close().await;
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{admin}/{name}"),
    }
}

//! The store alone, without HTTP: how many durable creates per second the
//! SQLite backend's group-commit writer takes from many concurrent callers.
//! Separates the store's ceiling from the HTTP server's in the figures.
//!
//! Usage: `store DB_PATH|POSTGRES_URL [TOTAL] [CONCURRENCY]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use signoff_core::{Actor, ExpiresIn, RequestDraft, SystemClock, Title};
use signoff_sqlite::{SqliteOptions, SqliteStore};
use signoff_store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: store DB_PATH [TOTAL] [CONCURRENCY]")?;
    let total: u64 = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(200_000);
    let concurrency: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(64);
    let store: Arc<dyn Store> = if path.starts_with("postgres://") {
        Arc::new(
            signoff_postgres::PgStore::open(
                signoff_postgres::PgOptions::new(path),
                Arc::new(SystemClock),
            )
            .await?,
        )
    } else {
        Arc::new(SqliteStore::open(
            SqliteOptions::new(path),
            Arc::new(SystemClock),
        )?)
    };
    let serde_json::Value::Object(action) = serde_json::from_str(
        r#"{"type":"policy_update","changes":{"max_amount_without_approval":5000,"approval_chain":["manager","finance","cfo"]}}"#,
    )?
    else {
        anyhow::bail!("the action is not an object");
    };
    let draft = RequestDraft {
        title: Title::parse("Raise the expense approval limit")?,
        description: "Finance asked for 5000 without approval".into(),
        proposed_action: signoff_core::Action::of_map(&action),
        requester: Actor::parse("requester", "bench")?,
        labels: Default::default(),
        expires_in: ExpiresIn::parse("24h")?,
        plan: signoff_core::ApprovalPlan::single(),
    };
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (store, next, draft) = (store.clone(), next.clone(), draft.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                store
                    .create(uuid::Uuid::now_v7(), draft.clone(), None)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} creates, {concurrency} callers: {:.0}/s ({:.1} µs each)",
        total as f64 / secs,
        secs * 1e6 / total as f64
    );
    Ok(())
}

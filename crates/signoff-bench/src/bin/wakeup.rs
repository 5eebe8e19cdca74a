//! Wake-up latency: how long after an approval is answered does a client
//! long-polling `GET /v1/requests/{id}/wait` get its answer?
//!
//! For each of N requests: create it, park a waiter on its own connection,
//! approve it on another, and time (a) approve answered → waiter answered and
//! (b) approve sent → waiter answered. Prints percentiles in microseconds.
//!
//! Usage: `wakeup URL [N] [APPROVE_URL]`: with `APPROVE_URL` (another
//! replica on the same database) the waiter is on `URL` and the approval
//! is sent to the other replica, so the wake-up crosses processes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use signoff_bench::{BODY, micros, quantile};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args.next().context("usage: wakeup URL [N] [APPROVE_URL]")?;
    let n: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2000);
    let approve_url = args.next().unwrap_or_else(|| url.clone());
    // Two pools, so waiter and approver never queue behind each other.
    let waiters = reqwest::Client::new();
    let approver = reqwest::Client::new();
    let mut after_answer = Vec::with_capacity(n);
    let mut after_send = Vec::with_capacity(n);
    for _ in 0..n {
        let created: Value = approver
            .post(format!("{url}/v1/requests"))
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .await?
            .json()
            .await?;
        let id = created["id"].as_str().context("no id")?.to_owned();
        let wait_url = format!("{url}/v1/requests/{id}/wait?timeout=30");
        let waiter = waiters.clone();
        let parked = tokio::spawn(async move {
            let response = waiter.get(wait_url).send().await?;
            let at = Instant::now();
            let body: Value = response.json().await?;
            anyhow::Ok((at, body))
        });
        // Let the waiter reach the server and subscribe.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let sent = Instant::now();
        let approved = approver
            .post(format!("{approve_url}/v1/requests/{id}/approve"))
            .json(&serde_json::json!({"reviewer": "bench"}))
            .send()
            .await?;
        let answered = Instant::now();
        if !approved.status().is_success() {
            bail!("approve failed: {}", approved.status());
        }
        let (woken, body) = parked.await??;
        if body["status"] != "approved" {
            bail!("waiter saw {}", body["status"]);
        }
        after_answer.push(woken.saturating_duration_since(answered));
        after_send.push(woken.saturating_duration_since(sent));
    }
    after_answer.sort();
    after_send.sort();
    let line = |name: &str, s: &[Duration]| {
        println!(
            "{name}: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
            micros(quantile(s, 0.5)),
            micros(quantile(s, 0.9)),
            micros(quantile(s, 0.99)),
            micros(quantile(s, 1.0))
        );
    };
    println!("wake-up latency over {n} approvals");
    line("approve answered -> waiter answered", &after_answer);
    line("approve sent     -> waiter answered", &after_send);
    println!(
        "{}",
        serde_json::json!({
            "n": n,
            "wake_p50_us": micros(quantile(&after_answer, 0.5)),
            "wake_p99_us": micros(quantile(&after_answer, 0.99)),
            "sent_to_wake_p50_us": micros(quantile(&after_send, 0.5)),
            "sent_to_wake_p99_us": micros(quantile(&after_send, 0.99)),
        })
    );
    Ok(())
}

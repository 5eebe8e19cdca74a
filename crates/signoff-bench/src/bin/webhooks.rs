//! Webhook delivery: how soon after a create is acknowledged does a
//! subscribed receiver get the signed event, and how many deliveries a
//! second does the dispatcher sustain?
//!
//! Starts a receiver on a loopback port, subscribes it to
//! `request.created` on a running server (auth off), then creates N
//! requests from C concurrent clients and records, per request, the time
//! from the create's answer to the delivery's arrival. Prints percentiles
//! in microseconds and the delivery rate.
//!
//! Usage: `webhooks URL [N] [CONCURRENCY]`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::State;
use serde_json::Value;
use signoff_bench::{BODY, micros, quantile};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let at = Instant::now();
    if let Ok(event) = serde_json::from_slice::<Value>(&body)
        && let Some(id) = event["request"]["id"].as_str()
        && let Ok(mut arrivals) = arrivals.lock()
    {
        arrivals.insert(id.to_owned(), at);
    }
    "ok"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .context("usage: webhooks URL [N] [CONCURRENCY]")?;
    let n: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5000);
    let concurrency: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(16);

    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let subscribed = http
        .post(format!("{url}/v1/webhooks"))
        .json(&serde_json::json!({
            "url": format!("http://{receiver}/hook"),
            "events": ["request.created"],
        }))
        .send()
        .await?;
    if !subscribed.status().is_success() {
        bail!("subscribe failed: {}", subscribed.status());
    }
    let hook: Value = subscribed.json().await?;

    let started = Instant::now();
    let acknowledged: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..concurrency {
        let http = http.clone();
        let url = url.clone();
        let acknowledged = acknowledged.clone();
        let share = n / concurrency + usize::from(client < n % concurrency);
        clients.push(tokio::spawn(async move {
            for _ in 0..share {
                let created: Value = http
                    .post(format!("{url}/v1/requests"))
                    .header("content-type", "application/json")
                    .body(BODY)
                    .send()
                    .await?
                    .json()
                    .await?;
                let at = Instant::now();
                let id = created["id"].as_str().context("no id")?.to_owned();
                if let Ok(mut acknowledged) = acknowledged.lock() {
                    acknowledged.insert(id, at);
                }
            }
            anyhow::Ok(())
        }));
    }
    for client in clients {
        client.await??;
    }
    let created_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = arrivals.lock().map(|a| a.len()).unwrap_or(0);
        if got >= n {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {got} of {n} deliveries arrived");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_in = started.elapsed();
    let acknowledged = acknowledged
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let arrivals = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut latencies: Vec<Duration> = acknowledged
        .iter()
        .filter_map(|(id, ack)| {
            arrivals
                .get(id)
                .map(|at| at.saturating_duration_since(*ack))
        })
        .collect();
    latencies.sort();
    println!(
        "{n} creates from {concurrency} clients in {:.2} s ({:.0}/s); all delivered after {:.2} s ({:.0} deliveries/s)",
        created_in.as_secs_f64(),
        n as f64 / created_in.as_secs_f64(),
        delivered_in.as_secs_f64(),
        n as f64 / delivered_in.as_secs_f64(),
    );
    println!(
        "create acknowledged -> delivery received, µs: p50 {} p90 {} p99 {} max {}",
        micros(quantile(&latencies, 0.50)),
        micros(quantile(&latencies, 0.90)),
        micros(quantile(&latencies, 0.99)),
        micros(quantile(&latencies, 1.0)),
    );
    if let Some(id) = hook["id"].as_str() {
        let _ = http.delete(format!("{url}/v1/webhooks/{id}")).send().await;
    }
    Ok(())
}

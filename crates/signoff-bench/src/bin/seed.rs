//! Fills a Signoff server with requests through its HTTP API, as fast as it
//! takes them, and samples the server's resident memory as the database
//! grows, to show that memory stays flat.
//!
//! Usage: `seed URL SERVER_PID TOTAL [CONCURRENCY]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use signoff_bench::{BODY, rss_kib};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: seed URL SERVER_PID TOTAL [CONCURRENCY]";
    let url = args.next().context(usage)?;
    let pid: u32 = args.next().context(usage)?.parse()?;
    let total: u64 = args.next().context(usage)?.parse()?;
    let concurrency: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(128);
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let step = (total / 4).max(1);
    println!("stored      rss_mib   creates/s");
    println!("{:>9}  {:>8.1}", 0, rss_mib(pid));
    let started = Instant::now();
    let mut mark = Instant::now();
    let mut done = 0;
    while done < total {
        let target = (done + step).min(total);
        let mut tasks = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let client = client.clone();
            let next = next.clone();
            let endpoint = format!("{url}/v1/requests");
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < target {
                    let response = client
                        .post(&endpoint)
                        .header("content-type", "application/json")
                        .body(BODY)
                        .send()
                        .await?;
                    if response.status().as_u16() != 201 {
                        bail!("create answered {}", response.status());
                    }
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        next.store(target, Ordering::Relaxed);
        let rate = (target - done) as f64 / mark.elapsed().as_secs_f64();
        println!("{target:>9}  {:>8.1}  {rate:>10.0}", rss_mib(pid));
        mark = Instant::now();
        done = target;
    }
    println!(
        "seeded {total} in {:.1} s ({:.0}/s)",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn rss_mib(pid: u32) -> f64 {
    rss_kib(pid).map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

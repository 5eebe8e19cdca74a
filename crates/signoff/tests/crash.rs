//! Durability: `kill -9` in the middle of a stream of writes loses nothing
//! that was acknowledged, and the audit chain stays intact.
#![allow(clippy::unwrap_used)] // shared state in a test: a poisoned lock is a failure

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

#[derive(Default)]
struct Acknowledged {
    /// (id, title) of every create answered 201.
    created: Vec<(String, String)>,
    /// (id, status) of every decision answered 200.
    decided: Vec<(String, &'static str)>,
}

async fn write_until_refused(url: String, worker: usize, acked: Arc<Mutex<Acknowledged>>) {
    let http = reqwest::Client::new();
    for n in 0.. {
        let title = format!("w{worker}-{n}");
        let created = http
            .post(format!("{url}/v1/requests"))
            .json(&json!({"title": title, "proposed_action": {"n": n}}))
            .send()
            .await;
        let Ok(response) = created else { return };
        if response.status() != 201 {
            return;
        }
        let Ok(body) = response.json::<Value>().await else {
            return;
        };
        let Some(id) = body["id"].as_str().map(str::to_owned) else {
            return;
        };
        acked.lock().unwrap().created.push((id.clone(), title));
        let (route, status, body) = if n % 2 == 0 {
            ("approve", "approved", json!({"reviewer": "alice"}))
        } else {
            (
                "reject",
                "rejected",
                json!({"reviewer": "bob", "reason": "no"}),
            )
        };
        let decided = http
            .post(format!("{url}/v1/requests/{id}/{route}"))
            .json(&body)
            .send()
            .await;
        match decided {
            Ok(response) if response.status() == 200 => {
                // Acknowledged only once the whole answer arrived.
                if response.bytes().await.is_ok() {
                    acked.lock().unwrap().decided.push((id, status));
                }
            }
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_dash_nine_loses_no_acknowledged_write() {
    let mut server = TestServer::start().await;
    let dir = server.take_dir();
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let workers: Vec<_> = (0..16)
        .map(|w| tokio::spawn(write_until_refused(server.url.clone(), w, acked.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
    }

    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(
        acked.created.len() > 50,
        "too little load: {}",
        acked.created.len()
    );

    let server = TestServer::start_on(&server.database).await;
    for (id, title) in &acked.created {
        let (status, body) = server.get(&format!("/v1/requests/{id}")).await;
        assert_eq!(status, 200, "acknowledged create {id} lost");
        assert_eq!(body["title"], title.as_str());
    }
    for (id, expected) in &acked.decided {
        let (_, body) = server.get(&format!("/v1/requests/{id}")).await;
        assert_eq!(
            body["status"], *expected,
            "acknowledged decision on {id} lost"
        );
    }
    let (_, report) = server.get("/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    let recorded = report["checked"].as_u64().unwrap();
    assert!(recorded >= (acked.created.len() + acked.decided.len()) as u64);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_writes_finish() {
    let mut server = TestServer::start().await;
    let dir = server.take_dir();
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let workers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(write_until_refused(server.url.clone(), w, acked.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exit = server.terminate().expect("exit status");
    assert!(exit.success(), "graceful shutdown exited with {exit}");
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    let server = TestServer::start_on(&server.database).await;
    for (id, _) in &acked.created {
        let (status, _) = server.get(&format!("/v1/requests/{id}")).await;
        assert_eq!(status, 200);
    }
    let (_, report) = server.get("/v1/audit/verify").await;
    assert_eq!(report["ok"], true);
    drop(dir);
}

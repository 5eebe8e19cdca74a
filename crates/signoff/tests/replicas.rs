//! Two real `signoff serve` processes on one real PostgreSQL database:
//! they coordinate through the database only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::{Value, json};

async fn replicas(args: &[&str]) -> (TestServer, TestServer, PathBuf) {
    let database = PathBuf::from(signoff_postgres::testing::scratch_database().await);
    let a = TestServer::start_on_with(&database, args).await;
    let b = TestServer::start_on_with(&database, args).await;
    (a, b, database)
}

#[tokio::test]
async fn a_waiter_on_one_replica_wakes_when_the_other_decides() {
    let (a, b, _db) = replicas(&[]).await;
    for _ in 0..5 {
        let id = a.create("cross-replica").await;
        let waiter = {
            let http = a.http().clone();
            let url = format!("{}/v1/requests/{id}/wait?timeout=30", a.url);
            tokio::spawn(async move {
                let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
                (Instant::now(), body)
            })
        };
        // Let the waiter subscribe before the decision.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _) = b
            .post(
                &format!("/v1/requests/{id}/approve"),
                json!({"reviewer": "bob"}),
            )
            .await;
        let decided = Instant::now();
        assert_eq!(status, 200);
        let (woke, body) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter on A was not woken by B's decision")
            .unwrap();
        assert_eq!(body["status"], "approved");
        let lag = woke.saturating_duration_since(decided);
        assert!(
            lag < Duration::from_secs(1),
            "woken {lag:?} after the decision"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_200_decisions_over_both_replicas_exactly_one_wins() {
    let (a, b, _db) = replicas(&[]).await;
    let id = a.create("contested").await;
    let servers = [a.url.clone(), b.url.clone()];
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for n in 0..200 {
        let url = format!("{}/v1/requests/{id}/approve", servers[n % 2]);
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({"reviewer": format!("reviewer-{n}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == 200).count();
    let lost = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((won, lost), (1, 199), "{statuses:?}");
    let (_, trail) = b.get(&format!("/v1/audit?request_id={id}")).await;
    let approvals = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "approved")
        .count();
    assert_eq!(approvals, 1);
    let (_, verify) = a.get("/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn a_run_of_a_killed_replica_is_resumed_by_the_other_and_executed_once() {
    let dir = tempfile::tempdir().unwrap();
    let applied = dir.path().join("applied.txt");
    let config = dir.path().join("signoff.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
agents:
  drafter: {{ kind: command, command: [sh, -c, 'cat >/dev/null; echo "{{\"title\": \"t\", \"changes\": {{\"limit\": 1}}}}"'] }}
executors:
  apply: {{ kind: command, command: [sh, -c, 'cat >> {applied}; echo >> {applied}; echo "{{\"done\": true}}"'] }}
workflows:
  w: {{ draft_agent: drafter, executor: apply }}
"#,
            applied = applied.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let args = ["--config", config.as_str(), "--run-lease", "1s"];
    let (mut a, b, _db) = replicas(&args).await;
    let (status, run) = a.post("/v1/workflows/w/runs", json!({"input": {}})).await;
    assert_eq!(status, 201, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let request = loop {
        let (_, run) = a.get(&format!("/v1/runs/{run_id}")).await;
        if run["status"] == "awaiting_approval"
            && let Some(request) = run["request_id"].as_str()
        {
            break request.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    a.kill();
    let (status, _) = b
        .post(
            &format!("/v1/requests/{request}/approve"),
            json!({"reviewer": "bob"}),
        )
        .await;
    assert_eq!(status, 200);
    // B claims the run once A's lease (1 s) has run out, and executes it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        let (_, run) = b
            .get(&format!(
                "/v1/runs/{run_id}/wait?status=awaiting_approval&timeout=5"
            ))
            .await;
        if run["status"] == "succeeded" || Instant::now() > deadline {
            break run;
        }
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    // Another lease period: nobody executes it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let executions = std::fs::read_to_string(&applied).unwrap_or_default();
    assert_eq!(
        executions.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{executions}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_under_write_load_loses_no_acknowledged_write() {
    let (mut a, b, _db) = replicas(&[]).await;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut writers = Vec::new();
    for w in 0..16 {
        let (http, url) = (http.clone(), format!("{}/v1/requests", a.url));
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let sent = http
                    .post(&url)
                    .json(&json!({"title": format!("w{w}-{n}"), "proposed_action": {"n": n}}))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status() != 201 {
                    break;
                }
                let Ok(body) = response.json::<Value>().await else {
                    break;
                };
                acknowledged
                    .lock()
                    .unwrap()
                    .push(body["id"].as_str().unwrap().to_owned());
            }
        }));
    }
    // Kill A mid-stream once it is under load: at least 1.5 s and more than
    // 50 acknowledged creates, however slow the disk (the bound below holds
    // the test to having exercised something).
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let count = acknowledged.lock().unwrap().len();
        let now = tokio::time::Instant::now();
        if (count > 50 && now - started >= Duration::from_millis(1500)) || now >= deadline {
            break;
        }
    }
    a.kill();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let ids = acknowledged.lock().unwrap().clone();
    assert!(ids.len() > 50, "too little load: {}", ids.len());
    for id in &ids {
        let (status, body) = b.get(&format!("/v1/requests/{id}")).await;
        assert_eq!(status, 200, "acknowledged {id} is lost: {body}");
    }
    let (_, verify) = b.get("/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn an_event_stream_on_one_replica_carries_the_others_changes() {
    let (a, b, _db) = replicas(&[]).await;
    let mut stream = a
        .http()
        .get(format!("{}/v1/events", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let id = b.create("made on B").await;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains(&id) {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => panic!("A's stream did not carry B's create: {text}"),
        }
    }
    assert!(text.contains("event: request.created"), "{text}");
}

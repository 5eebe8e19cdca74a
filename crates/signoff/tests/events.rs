//! `GET /v1/events`: live Server-Sent Events from the audit trail, resumed
//! with Last-Event-ID, filtered by what the token may see.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestServer, post, token};
use serde_json::{Value, json};

/// One event as the stream carried it.
#[derive(Debug, Clone)]
struct Sse {
    id: i64,
    event: String,
    data: Value,
}

/// Reads a stream until `want` events came or `within` passed.
async fn read_events(response: reqwest::Response, want: usize, within: Duration) -> Vec<Sse> {
    let mut response = response;
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while events.len() < want {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => break,
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).ok();
                }
            }
            if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                events.push(Sse { id, event, data });
            }
        }
    }
    events
}

async fn open(server: &TestServer, token: Option<&str>, last: Option<i64>) -> reqwest::Response {
    let mut request = server
        .http()
        .get(format!("{}/v1/events", server.url))
        .header("accept", "text/event-stream");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(last) = last {
        request = request.header("last-event-id", last.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    response
}

#[tokio::test]
async fn events_arrive_live_and_resume_after_the_last_one() {
    let server = TestServer::start().await;
    let before = server.create("before the stream").await;
    let stream = open(&server, None, None).await;
    let id = server.create("watched").await;
    let (status, _) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    assert_eq!(status, 200);
    let events = read_events(stream, 2, Duration::from_secs(10)).await;
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.data["request_id"].as_str().unwrap()))
        .collect();
    // Only what happened after it opened, in order.
    assert_eq!(
        kinds,
        [
            ("request.created", id.as_str()),
            ("request.approved", id.as_str())
        ],
        "{before}"
    );
    assert_eq!(events[1].id, events[0].id + 1);
    assert_eq!(events[1].data["actor"], "alice");

    // Reconnecting after the first event replays the second, then goes live.
    let resumed = open(&server, None, Some(events[0].id)).await;
    let other = server.create("after the reconnect").await;
    let again = read_events(resumed, 2, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(again[0].id, events[1].id);
    assert_eq!(again[0].event, "request.approved");
    assert_eq!(again[1].data["request_id"], other.as_str());

    // A negative `after` is refused even beside a good Last-Event-ID.
    let response = server
        .http()
        .get(format!("{}/v1/events?after=-1", server.url))
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A bad Last-Event-ID is refused.
    let response = server
        .http()
        .get(format!("{}/v1/events", server.url))
        .header("last-event-id", "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_agent_hears_only_of_its_own_requests() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let bot = token(&db, "bot", "agent", &[]);
    let other = token(&db, "other-bot", "agent", &[]);
    let alice = token(&db, "alice", "reviewer", &[]);
    let server = TestServer::start_on_with(&db, &["--auth", "on"]).await;
    let unauthenticated = server
        .http()
        .get(format!("{}/v1/events", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let bot_stream = open(&server, Some(&bot), None).await;
    let reviewer_stream = open(&server, Some(&alice), None).await;
    let create = |title: &'static str| json!({"title": title, "proposed_action": {}});
    let (_, theirs) = post(&server, "/v1/requests", Some(&other), create("theirs")).await;
    let (_, mine) = post(&server, "/v1/requests", Some(&bot), create("mine")).await;

    let seen = read_events(bot_stream, 2, Duration::from_secs(3)).await;
    let bot_saw: Vec<&Value> = seen.iter().map(|e| &e.data["request_id"]).collect();
    assert_eq!(
        bot_saw,
        [&mine["id"]],
        "the agent saw another agent's request"
    );
    let everything = read_events(reviewer_stream, 2, Duration::from_secs(10)).await;
    let reviewer_saw: Vec<&Value> = everything.iter().map(|e| &e.data["request_id"]).collect();
    assert_eq!(reviewer_saw, [&theirs["id"], &mine["id"]]);
}

#[tokio::test]
async fn a_stream_ends_after_the_servers_longest_wait() {
    let server = TestServer::start_with(&["--max-wait", "1s"]).await;
    let stream = open(&server, None, None).await;
    let started = std::time::Instant::now();
    let events = read_events(stream, 1, Duration::from_secs(10)).await;
    assert!(events.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

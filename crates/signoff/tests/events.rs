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

/// One `text/event-stream` block as (id, event, data); `None` for a
/// keep-alive or anything incomplete.
fn parse_block(block: &str) -> Option<(String, String, Value)> {
    let (mut id, mut event, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data = serde_json::from_str(v.trim()).ok();
        }
    }
    Some((id?, event?, data?))
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
            if let Some((id, event, data)) = parse_block(&block)
                && let Ok(id) = id.parse()
            {
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

/// One event with its id as sent (`A-R` when run steps are streamed).
async fn read_raw(
    response: reqwest::Response,
    until: &str,
    within: Duration,
) -> Vec<(String, String, Value)> {
    let mut response = response;
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => return events,
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if let Some((id, event, data)) = parse_block(&block) {
                let last = event == until;
                events.push((id, event, data));
                if last {
                    return events;
                }
            }
        }
    }
}

#[tokio::test]
async fn run_steps_stream_beside_request_events_and_resume_with_both_positions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signoff.yaml");
    std::fs::write(
        &config,
        r#"
agents:
  drafter: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{\"title\": \"Limit\", \"changes\": {\"limit\": 1}}"'] }
  validator: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{\"is_valid\": true, \"score\": 90}"'] }
executors:
  apply: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{\"applied\": true}"'] }
workflows:
  limits: { draft_agent: drafter, validator_agent: validator, executor: apply }
"#,
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", config.to_str().unwrap()]).await;
    let url = format!("{}/v1/events?runs=true", server.url);
    let stream = server
        .http()
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let (status, run) = server
        .post("/v1/workflows/limits/runs", json!({"input": {"team": "x"}}))
        .await;
    assert_eq!(status, 201, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    // Wait for the request, then approve it; the run executes.
    let request = loop {
        let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
        if let Some(id) = run["request_id"].as_str() {
            break id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (status, _) = server
        .post(
            &format!("/v1/requests/{request}/approve"),
            json!({"reviewer": "rita"}),
        )
        .await;
    assert_eq!(status, 200);
    let events = read_raw(stream, "run.execute", Duration::from_secs(20)).await;
    let names: Vec<&str> = events.iter().map(|(_, e, _)| e.as_str()).collect();
    let position = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no {name} in {names:?}"))
    };
    assert!(position("run.draft") < position("run.validate"));
    assert!(position("run.validate") < position("run.approve"));
    assert!(position("request.created") < position("request.approved"));
    assert!(position("request.approved") < position("run.execute"));
    let (_, _, execute) = &events[position("run.execute")];
    assert_eq!(execute["run_id"], run_id.as_str());
    assert_eq!(execute["workflow"], "limits");
    assert_eq!(execute["ok"], true);
    assert_eq!(execute["detail"]["applied"], true);
    let (_, _, validate) = &events[position("run.validate")];
    assert_eq!(validate["detail"]["score"], 90);
    // Ids carry both positions, and never go back.
    let ids: Vec<(i64, i64)> = events
        .iter()
        .map(|(id, _, _)| {
            let (a, r) = id.split_once('-').expect("an A-R id");
            (a.parse().unwrap(), r.parse().unwrap())
        })
        .collect();
    assert!(
        ids.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0] != w[1])
    );

    // Resuming after request.created gives exactly what followed it.
    let (resume_id, _, _) = &events[position("request.created")];
    let resumed = server
        .http()
        .get(&url)
        .header("last-event-id", resume_id.as_str())
        .send()
        .await
        .unwrap();
    let again = read_raw(resumed, "run.execute", Duration::from_secs(10)).await;
    let expected: Vec<&String> = events[position("request.created") + 1..]
        .iter()
        .map(|(id, _, _)| id)
        .collect();
    let got: Vec<&String> = again.iter().map(|(id, _, _)| id).collect();
    assert_eq!(got, expected);

    // A malformed id is refused; the plain stream keeps numeric ids.
    let bad = server
        .http()
        .get(&url)
        .header("last-event-id", "3-")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn an_agent_sees_the_steps_of_its_own_runs_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signoff.yaml");
    std::fs::write(
        &config,
        r#"
agents:
  drafter: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{\"title\": \"t\", \"changes\": {}}"'] }
executors:
  apply: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{}"'] }
workflows:
  w: { draft_agent: drafter, executor: apply }
"#,
    )
    .unwrap();
    let mut server =
        TestServer::start_with(&["--auth", "on", "--config", config.to_str().unwrap()]).await;
    let keep = server.take_dir();
    let owner = token(&server.database, "owner-bot", "agent", &[]);
    let other = token(&server.database, "other-bot", "agent", &[]);
    let url = format!("{}/v1/events?runs=true", server.url);
    let open_as = |token: String| {
        let http = server.http().clone();
        let url = url.clone();
        async move {
            let response = http
                .get(url)
                .bearer_auth(token)
                .header("accept", "text/event-stream")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response
        }
    };
    let mine = open_as(owner.clone()).await;
    let theirs = open_as(other).await;
    let (status, run) = post(
        &server,
        "/v1/workflows/w/runs",
        Some(&owner),
        json!({"input": {}}),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let seen = read_raw(mine, "run.draft", Duration::from_secs(10)).await;
    assert!(
        seen.iter()
            .any(|(_, e, d)| e == "run.draft" && d["run_id"] == run["id"])
    );
    let unseen = read_raw(theirs, "run.draft", Duration::from_secs(2)).await;
    assert!(
        unseen
            .iter()
            .all(|(_, e, _)| !e.starts_with("run.") && e != "request.created"),
        "{unseen:?}"
    );
    drop(server);
    drop(keep);
}

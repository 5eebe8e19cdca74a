//! The HTTP API against the real server over a real SQLite file.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::{Value, json};

/// The four checks of the guide's `verify_approval_workflow`, over HTTP.
#[tokio::test]
async fn the_guides_verification_passes() {
    let server = TestServer::start().await;

    // Test 1: create approval request.
    let (status, request) = server
        .post(
            "/v1/requests",
            json!({"title": "Test Approval", "description": "Test request", "proposed_action": {"action": "test"}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(request["status"], "pending");
    let id = request["id"].as_str().unwrap();

    // Test 2: approve request.
    let (status, approved) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "test_reviewer"}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decision"]["reviewer"], "test_reviewer");

    // Test 3: reject request.
    let (_, request2) = server
        .post(
            "/v1/requests",
            json!({"title": "Test Rejection", "description": "Test", "proposed_action": {}}),
        )
        .await;
    let id2 = request2["id"].as_str().unwrap();
    let (status, rejected) = server
        .post(
            &format!("/v1/requests/{id2}/reject"),
            json!({"reviewer": "test_reviewer", "reason": "Not ready"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["decision"]["rejection_reason"], "Not ready");

    // Test 4: expiration (expires_in 0: expired at once).
    let (status, request3) = server
        .post(
            "/v1/requests",
            json!({"title": "Test Expiration", "description": "Test", "proposed_action": {}, "expires_in": 0}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(request3["status"], "expired");
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved_and_the_sweeper_expires_it() {
    let server = TestServer::start().await;
    let (_, created) = server
        .post(
            "/v1/requests",
            json!({"title": "short", "proposed_action": {}, "expires_in": "1s"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    // Nobody touches it: the sweeper moves it to expired and wakes the waiter.
    let started = Instant::now();
    let (status, waited) = server
        .get(&format!("/v1/requests/{id}/wait?timeout=10"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(waited["status"], "expired", "{waited}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let (status, body) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "conflict");

    // Overdue but not yet swept: approving answers "expired" and records it.
    let (_, created) = server
        .post(
            "/v1/requests",
            json!({"title": "race the sweeper", "proposed_action": {}, "expires_in": 1}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (_, read) = server.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(read["status"], "expired");
    let (_, trail) = server.get(&format!("/v1/audit?request_id={id}")).await;
    let events: Vec<&str> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["created", "expired"]);
}

#[tokio::test]
async fn of_fifty_racing_decisions_exactly_one_wins() {
    let server = TestServer::start().await;
    let id = server.create("contested").await;
    let mut tasks = Vec::new();
    for n in 0..50 {
        let http = server.http().clone();
        let reviewer = format!("reviewer-{n}");
        let (url, body) = if n % 2 == 0 {
            let url = format!("{}/v1/requests/{id}/approve", server.url);
            (url, json!({"reviewer": reviewer}))
        } else {
            let url = format!("{}/v1/requests/{id}/reject", server.url);
            (url, json!({"reviewer": reviewer, "reason": "no"}))
        };
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&body)
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
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
    let (_, trail) = server.get(&format!("/v1/audit?request_id={id}")).await;
    assert_eq!(trail["entries"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_retried_create_with_the_same_key_makes_one_request() {
    let server = TestServer::start().await;
    let body = json!({"title": "once", "proposed_action": {"a": 1}});
    let send = |body: Value| {
        server
            .http()
            .post(format!("{}/v1/requests", server.url))
            .header("Idempotency-Key", "retry-42")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/requests/{}", first["id"].as_str().unwrap())
    );
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let other = send(json!({"title": "other", "proposed_action": {}}))
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    let (_, page) = server.get("/v1/requests").await;
    assert_eq!(page["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_waiter_wakes_when_the_request_is_decided() {
    let server = TestServer::start().await;
    let id = server.create("wait for me").await;
    let url = format!("{}/v1/requests/{id}/wait?timeout=30", server.url);
    let http = server.http().clone();
    let waiter = tokio::spawn(async move {
        let response: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        (response, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    let approved_at = Instant::now();
    assert_eq!(status, 200);
    let (response, woke_at) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter answered")
        .unwrap();
    assert_eq!(response["status"], "approved");
    assert!(woke_at.saturating_duration_since(approved_at) < Duration::from_secs(1));

    // And a wait that times out answers the still-pending request.
    let id = server.create("nobody decides").await;
    let started = Instant::now();
    let (status, body) = server
        .get(&format!("/v1/requests/{id}/wait?timeout=1"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "pending");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn lists_page_newest_first_and_filter_by_status() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(server.create(&format!("r{n}")).await);
    }
    server
        .post(
            &format!("/v1/requests/{}/cancel", ids[4]),
            json!({"actor": "agent"}),
        )
        .await;
    let (_, page) = server.get("/v1/requests?status=pending&limit=2").await;
    let got: Vec<&str> = page["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[3].as_str(), ids[2].as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = server
        .get(&format!(
            "/v1/requests?status=pending&limit=2&cursor={cursor}"
        ))
        .await;
    let got: Vec<&str> = page["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[0].as_str()]);
    let (_, cancelled) = server.get("/v1/requests?status=cancelled").await;
    assert_eq!(cancelled["requests"][0]["id"], ids[4].as_str());
    assert_eq!(cancelled["requests"][0]["status"], "cancelled");
}

#[tokio::test]
async fn the_guides_routes_answer_with_the_guides_fields() {
    let server = TestServer::start().await;
    let (status, created) = server
        .post(
            "/approval",
            json!({"title": "Expense policy", "description": "raise limit", "proposed_action": {"changes": {"max_amount_without_approval": 5000}}}),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["request_id"].as_str().unwrap().to_owned();

    let (status, pending) = server.get("/approval/pending").await;
    assert_eq!(status, 200);
    assert_eq!(pending["pending_count"], 1);
    let first = &pending["requests"][0];
    for field in [
        "request_id",
        "title",
        "description",
        "created_at",
        "expires_at",
    ] {
        assert!(first.get(field).is_some(), "missing {field}: {first}");
    }

    let (status, one) = server.get(&format!("/approval/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["status"], "pending");
    assert_eq!(
        one["proposed_action"]["changes"]["max_amount_without_approval"],
        5000
    );

    let (status, approved) = server
        .post(
            &format!("/approval/{id}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["reviewer"], "alice");
    assert_eq!(approved["request_id"], id.as_str());
    assert!(approved["approved_at"].is_string());

    // Deciding again is the guide's ValueError: 400 with {"error": "..."}.
    let (status, err) = server
        .post(
            &format!("/approval/{id}/reject"),
            json!({"reviewer": "bob", "reason": "late"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(err["error"].is_string());

    let (_, created) = server.post("/approval", json!({"title": "Second"})).await;
    let id2 = created["request_id"].as_str().unwrap();
    let (status, rejected) = server
        .post(&format!("/approval/{id2}/reject"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(rejected["reviewer"], "unknown");
    assert_eq!(rejected["reason"], "No reason provided");
    assert!(rejected["rejected_at"].is_string());

    let (status, err) = server
        .get("/approval/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"], "Request not found");
    let (status, _) = server
        .post(
            "/approval/00000000-0000-0000-0000-000000000000/approve",
            json!({"reviewer": "x"}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_nul_is_refused_in_text_and_kept_in_actions() {
    let server = TestServer::start().await;
    // A NUL character in text is refused (no database keeps it as text),
    // and the request beside it is not harmed; inside an action it is fine.
    for body in [
        json!({"title": "a\u{0}b", "proposed_action": {}}),
        json!({"title": "ok", "requester": "\u{0}", "proposed_action": {}}),
        json!({"title": "ok", "description": "x\u{0}", "proposed_action": {}}),
    ] {
        let (status, answer) = server.post("/v1/requests", body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("NUL"));
    }
    let (status, body) = server
        .post(
            "/v1/requests",
            json!({"title": "nul in action", "proposed_action": {"k\u{0}": "v\u{0}"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["proposed_action"]["k\u{0}"], "v\u{0}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice", "comment": "fine\u{0}"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let server = TestServer::start().await;
    let http = server.http();
    let url = format!("{}/v1/requests", server.url);

    // Wrong type: the message names the field.
    let (status, body) = server
        .post("/v1/requests", json!({"title": 5, "proposed_action": {}}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("title"),
        "{body}"
    );
    // Missing field.
    let (status, body) = server.post("/v1/requests", json!({"title": "x"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("proposed_action"),
        "{body}"
    );
    // Empty and too-long titles.
    let (status, body) = server
        .post(
            "/v1/requests",
            json!({"title": "  ", "proposed_action": {}}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _) = server
        .post(
            "/v1/requests",
            json!({"title": "x".repeat(201), "proposed_action": {}}),
        )
        .await;
    assert_eq!(status, 400);
    // proposed_action must be an object.
    let (status, _) = server
        .post(
            "/v1/requests",
            json!({"title": "x", "proposed_action": [1]}),
        )
        .await;
    assert_eq!(status, 400);
    // Bad durations name expires_in.
    let (status, body) = server
        .post(
            "/v1/requests",
            json!({"title": "x", "proposed_action": {}, "expires_in": "soon"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expires_in"),
        "{body}"
    );
    // Malformed JSON.
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"title\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    // Wrong content type.
    let response = http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    // Huge body.
    let huge = json!({"title": "x", "proposed_action": {"blob": "a".repeat(2 * 1024 * 1024)}});
    let response = http.post(&url).json(&huge).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Unknown and malformed ids.
    let (status, body) = server
        .get("/v1/requests/0190b8a0-0000-7000-8000-000000000000")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = server.get("/v1/requests/not-a-uuid").await;
    assert_eq!(status, 400);
    // A rejection needs a reason.
    let id = server.create("needs reason").await;
    let (status, body) = server
        .post(
            &format!("/v1/requests/{id}/reject"),
            json!({"reviewer": "bob", "reason": ""}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reason"),
        "{body}"
    );
    // Bad query parameters.
    let (status, _) = server.get("/v1/requests?limit=0").await;
    assert_eq!(status, 400);
    let (status, _) = server.get("/v1/requests?status=bogus").await;
    assert_eq!(status, 400);
    let (status, _) = server
        .get(&format!("/v1/requests/{id}/wait?timeout=301"))
        .await;
    assert_eq!(status, 400);
    // Nothing above changed the one request.
    let (_, page) = server.get("/v1/requests").await;
    assert_eq!(page["requests"].as_array().unwrap().len(), 1);
    assert_eq!(page["requests"][0]["status"], "pending");
}

#[tokio::test]
async fn audit_verify_names_the_edited_entry() {
    let mut server = TestServer::start().await;
    for n in 0..3 {
        let id = server.create(&format!("r{n}")).await;
        server
            .post(
                &format!("/v1/requests/{id}/approve"),
                json!({"reviewer": "alice"}),
            )
            .await;
    }
    let (_, report) = server.get("/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checked"], 6);

    // Tamper with entry 4 directly in the database file.
    let database = server.database.clone();
    let dir = server.take_dir();
    server.kill();
    common::execute_sql(
        &database,
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4",
    )
    .await;
    let server = TestServer::start_on(&database).await;
    let (_, report) = server.get("/v1/audit/verify").await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["broken"]["seq"], 4);
    assert_eq!(report["broken"]["fault"], "edited");
    drop(server);

    // Removing an entry is named too.
    common::execute_sql(
        &database,
        "UPDATE audit_log SET actor = 'alice' WHERE seq = 4; DELETE FROM audit_log WHERE seq = 2",
    )
    .await;
    let server = TestServer::start_on(&database).await;
    let (_, report) = server.get("/v1/audit/verify").await;
    assert_eq!(report["broken"]["seq"], 3, "{report}");
    assert_eq!(report["broken"]["fault"], "removed");
    drop(dir);
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    server.create("counted").await;
    let metrics = server
        .http()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("signoff_requests_created_total 1"),
        "{metrics}"
    );
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/requests",
        "/v1/requests/{id}/wait",
        "/approval/pending",
        "/v1/audit/verify",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

#[tokio::test]
async fn approve_with_edits_binds_the_edited_action() {
    let server = TestServer::start().await;
    let (_, created) = server
        .post(
            "/v1/requests",
            json!({"title": "limit", "proposed_action": {"changes": {"max": 5000}}}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    // The edit must be an object.
    let (status, body) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice", "edited_action": [1]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, approved) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice", "edited_action": {"changes": {"max": 4000}}}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    let decision = &approved["decision"];
    assert_eq!(decision["edited_action"]["changes"]["max"], 4000);
    assert_eq!(approved["proposed_action"]["changes"]["max"], 5000);
    // sha256 of the canonical JSON {"changes":{"max":4000}}
    let expected =
        signoff_core::action_hash(json!({"changes": {"max": 4000}}).as_object().unwrap());
    assert_eq!(decision["action_hash"], expected.to_hex());

    let (_, trail) = server.get(&format!("/v1/audit?request_id={id}")).await;
    let approval = &trail["entries"][1];
    assert_eq!(approval["event"], "approved");
    assert_eq!(approval["action"]["changes"]["max"], 4000);
    assert_eq!(approval["original_action"]["changes"]["max"], 5000);
    let (_, report) = server.get("/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn shutdown_answers_long_polls_instead_of_waiting_for_them() {
    let mut server = TestServer::start().await;
    let id = server.create("waiting through a shutdown").await;
    let http = server.http().clone();
    let url = format!("{}/v1/requests/{id}/wait?timeout=300", server.url);
    let waiter = tokio::spawn(async move { http.get(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    let answer = waiter.await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "pending");
}

#[tokio::test]
async fn labels_descriptions_and_actions_have_limits() {
    let server = TestServer::start().await;
    let labels: serde_json::Map<String, Value> =
        (0..33).map(|n| (format!("k{n}"), json!("v"))).collect();
    let (status, body) = server
        .post(
            "/v1/requests",
            json!({"title": "t", "proposed_action": {}, "labels": labels}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("labels"),
        "{body}"
    );
    let (status, body) = server
        .post(
            "/v1/requests",
            json!({"title": "t", "proposed_action": {}, "description": "d".repeat(20_001)}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("description"),
        "{body}"
    );
    let big = json!({"blob": "a".repeat(300 * 1024)});
    let (status, body) = server
        .post(
            "/v1/requests",
            json!({"title": "t", "proposed_action": big}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("proposed_action"),
        "{body}"
    );
    // The same limit holds for an edit.
    let id = server.create("edit too big").await;
    let (status, body) = server
        .post(
            &format!("/v1/requests/{id}/approve"),
            json!({"reviewer": "alice", "edited_action": big}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("edited_action"),
        "{body}"
    );
    let (_, request) = server.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(request["status"], "pending");
}

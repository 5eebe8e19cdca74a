//! Identity with `--auth on`: tokens made with `signoff token create`, the
//! roles, the reviewer being the token's identity, and separation of
//! duties on every route (v1, the guide's, the CLI, a workflow run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{TestServer, binary, get, post, token};
use serde_json::{Value, json};

struct Tokens {
    admin: String,
    agent: String,
    other_agent: String,
    alice: String,
    expired: String,
    revoked: String,
}

fn tokens(db: &Path) -> Tokens {
    let revoked = token(db, "gone", "reviewer", &[]);
    let id = revoked.split('_').nth(1).unwrap().to_owned();
    let status = Command::new(binary())
        .args(["token", "revoke", &id, "--database"])
        .arg(db)
        .status()
        .unwrap();
    assert!(status.success());
    Tokens {
        admin: token(db, "root", "admin", &[]),
        agent: token(db, "bot", "agent", &[]),
        other_agent: token(db, "other-bot", "agent", &[]),
        alice: token(db, "alice", "reviewer", &["--group", "finance"]),
        expired: token(db, "late", "reviewer", &["--expires-in", "1s"]),
        revoked,
    }
}

async fn start() -> (TestServer, Tokens, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let tokens = tokens(&db);
    let server = TestServer::start_on_with(&db, &["--auth", "on"]).await;
    (server, tokens, dir)
}

#[tokio::test]
async fn without_a_valid_token_nothing_but_health_answers() {
    let (server, t, _dir) = start().await;
    let (status, body) = get(&server, "/v1/requests", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (status, body) = get(&server, "/approval/pending", None).await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string(), "the guide's shape: {body}");
    let (status, _) = get(&server, "/v1/requests", Some("so_nonsense")).await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = get(&server, "/v1/requests", Some(&t.expired)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "token expired");
    let (status, body) = get(&server, "/v1/requests", Some(&t.revoked)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "token revoked");
    // A right secret for another id is no token either.
    let forged = format!("so_000000000000_{}", t.alice.rsplit('_').next().unwrap());
    assert_eq!(get(&server, "/v1/requests", Some(&forged)).await.0, 401);
    assert_eq!(get(&server, "/healthz", None).await.0, 200);
    assert_eq!(get(&server, "/openapi.json", None).await.0, 200);
}

#[tokio::test]
async fn roles_decide_what_each_caller_may_do() {
    let (server, t, _dir) = start().await;
    let new = json!({"title": "refund", "proposed_action": {"amount": 10}});
    // Agents propose; the requester is the token's identity.
    let (status, created) = post(&server, "/v1/requests", Some(&t.agent), new.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["requester"], "bot");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut spoofed = new.clone();
    spoofed["requester"] = json!("someone-else");
    assert_eq!(
        post(&server, "/v1/requests", Some(&t.agent), spoofed)
            .await
            .0,
        403
    );
    // Reviewers do not propose.
    assert_eq!(
        post(&server, "/v1/requests", Some(&t.alice), new.clone())
            .await
            .0,
        403
    );

    // An agent sees its own requests only.
    let (_, page) = get(&server, "/v1/requests", Some(&t.other_agent)).await;
    assert_eq!(page["requests"].as_array().unwrap().len(), 0);
    assert_eq!(
        get(&server, &format!("/v1/requests/{id}"), Some(&t.other_agent))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&server, &format!("/v1/requests/{id}"), Some(&t.agent))
            .await
            .0,
        200
    );
    assert_eq!(get(&server, "/v1/audit", Some(&t.agent)).await.0, 403);
    assert_eq!(get(&server, "/v1/audit", Some(&t.alice)).await.0, 200);

    // Agents do not decide; a reviewer decides under their own name only.
    let approve = format!("/v1/requests/{id}/approve");
    assert_eq!(
        post(
            &server,
            &approve,
            Some(&t.agent),
            json!({"reviewer": "bot"})
        )
        .await
        .0,
        403
    );
    let (status, body) = post(
        &server,
        &approve,
        Some(&t.alice),
        json!({"reviewer": "mallory"}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{body}"
    );
    let (status, approved) = post(&server, &approve, Some(&t.alice), json!({})).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["decision"]["reviewer"], "alice");

    // The guide's routes follow the same rule.
    let (_, second) = post(&server, "/v1/requests", Some(&t.agent), new.clone()).await;
    let second = second["id"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &server,
        &format!("/approval/{second}/approve"),
        Some(&t.alice),
        json!({"reviewer": "mallory"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(
        &server,
        &format!("/approval/{second}/reject"),
        Some(&t.alice),
        json!({"reason": "no"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reviewer"], "alice");
}

#[tokio::test]
async fn nobody_approves_their_own_request() {
    let (server, t, _dir) = start().await;
    // An admin may propose and decide, but not decide what it proposed.
    let (_, created) = post(
        &server,
        "/v1/requests",
        Some(&t.admin),
        json!({"title": "own", "proposed_action": {}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &server,
        &format!("/v1/requests/{id}/approve"),
        Some(&t.admin),
        json!({"reviewer": "root"}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("separation of duties"),
        "{body}"
    );
    let (status, _) = post(
        &server,
        &format!("/approval/{id}/approve"),
        Some(&t.admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 403);

    // Through the CLI, with the token from the environment.
    let output = Command::new(binary())
        .args(["approve", &id])
        .env("SIGNOFF_URL", &server.url)
        .env("SIGNOFF_TOKEN", &t.admin)
        .env_remove("SIGNOFF_REVIEWER")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("separation of duties"), "{stderr}");
    let (_, request) = get(&server, &format!("/v1/requests/{id}"), Some(&t.alice)).await;
    assert_eq!(request["status"], "pending");

    // Someone else may.
    let output = Command::new(binary())
        .args(["--json", "approve", &id])
        .env("SIGNOFF_URL", &server.url)
        .env("SIGNOFF_TOKEN", &t.alice)
        .env_remove("SIGNOFF_REVIEWER")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let approved: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(approved["decision"]["reviewer"], "alice");
}

#[tokio::test]
async fn whoever_starts_a_run_cannot_approve_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let t = tokens(&db);
    let config = dir.path().join("signoff.yaml");
    std::fs::write(
        &config,
        r#"
agents:
  drafter: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{\"title\": \"t\", \"changes\": {}}"'] }
executors:
  apply: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{\"done\": true}"'] }
workflows:
  w: { draft_agent: drafter, executor: apply }
"#,
    )
    .unwrap();
    let server =
        TestServer::start_on_with(&db, &["--auth", "on", "--config", config.to_str().unwrap()])
            .await;
    assert_eq!(
        post(
            &server,
            "/v1/workflows/w/runs",
            Some(&t.alice),
            json!({"input": {}})
        )
        .await
        .0,
        403,
        "reviewers do not start runs"
    );
    let (status, run) = post(
        &server,
        "/v1/workflows/w/runs",
        Some(&t.admin),
        json!({"input": {}}),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap();
    let request = loop {
        let (_, run) = get(&server, &format!("/v1/runs/{id}"), Some(&t.admin)).await;
        if let Some(request) = run["request_id"].as_str() {
            break request.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, pending) = get(&server, &format!("/v1/requests/{request}"), Some(&t.alice)).await;
    assert_eq!(pending["requester"], "root");
    let approve = format!("/v1/requests/{request}/approve");
    assert_eq!(
        post(&server, &approve, Some(&t.admin), json!({})).await.0,
        403
    );
    assert_eq!(
        post(&server, &approve, Some(&t.alice), json!({})).await.0,
        200
    );
    // Another agent cannot see the run.
    assert_eq!(
        get(&server, &format!("/v1/runs/{id}"), Some(&t.other_agent))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn auth_off_is_refused_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--auth",
            "off",
            "--database",
        ])
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--auth off is refused"));
}

#[tokio::test]
async fn writes_beyond_a_tokens_rate_get_429() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let agent = token(&db, "busy-bot", "agent", &[]);
    let calm = token(&db, "calm-bot", "agent", &[]);
    let server = TestServer::start_on_with(&db, &["--auth", "on", "--write-rate", "1"]).await;
    let new = json!({"title": "t", "proposed_action": {}});
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            post(&server, "/v1/requests", Some(&agent), new.clone())
                .await
                .0,
        );
    }
    assert!(
        statuses.iter().filter(|s| **s == 201).count() >= 2,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    let response = server
        .http()
        .post(format!("{}/v1/requests", server.url))
        .bearer_auth(&agent)
        .json(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    // Reads are not limited, and another token has its own budget.
    assert_eq!(get(&server, "/v1/requests", Some(&agent)).await.0, 200);
    assert_eq!(post(&server, "/v1/requests", Some(&calm), new).await.0, 201);
}

#[tokio::test]
async fn refused_attempts_are_in_the_audit_trail() {
    let (server, t, _dir) = start().await;
    let (_, created) = post(
        &server,
        "/v1/requests",
        Some(&t.agent),
        json!({"title": "guarded", "proposed_action": {}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let approve = format!("/v1/requests/{id}/approve");
    assert_eq!(
        post(&server, &approve, None, json!({"reviewer": "x"}))
            .await
            .0,
        401
    );
    assert_eq!(
        post(
            &server,
            &approve,
            Some(&t.agent),
            json!({"reviewer": "bot"})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        post(
            &server,
            &format!("/approval/{id}/approve"),
            Some(&t.alice),
            json!({"reviewer": "eve"})
        )
        .await
        .0,
        403
    );
    let (_, trail) = get(
        &server,
        &format!("/v1/audit?request_id={id}"),
        Some(&t.alice),
    )
    .await;
    let denied: Vec<(&str, &str)> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "denied")
        .map(|e| (e["actor"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(denied.len(), 3, "{trail:#}");
    assert_eq!(denied[0].0, "unauthenticated");
    assert_eq!(denied[1].0, "bot");
    assert_eq!(denied[2].0, "alice");
    assert!(denied[2].1.contains("does not match"), "{denied:?}");
    let (_, request) = get(&server, &format!("/v1/requests/{id}"), Some(&t.alice)).await;
    assert_eq!(request["status"], "pending");
    let (_, report) = get(&server, "/v1/audit/verify", Some(&t.alice)).await;
    assert_eq!(report["ok"], true);
}

#[tokio::test]
async fn admins_manage_tokens_over_the_api() {
    let (server, t, _dir) = start().await;
    let new =
        json!({"name": "carol", "role": "reviewer", "groups": ["finance"], "expires_in": "30d"});
    assert_eq!(
        post(&server, "/v1/tokens", Some(&t.alice), new.clone())
            .await
            .0,
        403
    );
    let (status, created) = post(&server, "/v1/tokens", Some(&t.admin), new).await;
    assert_eq!(status, 201, "{created}");
    let carol = created["token"].as_str().unwrap().to_owned();
    assert!(created["expires_at"].is_string());
    assert_eq!(get(&server, "/v1/requests", Some(&carol)).await.0, 200);
    let (_, list) = get(&server, "/v1/tokens", Some(&t.admin)).await;
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"carol"), "{list}");
    assert!(
        !list.to_string().contains(&carol),
        "secrets are never listed"
    );
    let id = created["id"].as_str().unwrap();
    let (status, revoked) = post(
        &server,
        &format!("/v1/tokens/{id}/revoke"),
        Some(&t.admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(get(&server, "/v1/requests", Some(&carol)).await.0, 401);
    assert_eq!(
        post(
            &server,
            "/v1/tokens/000000000000/revoke",
            Some(&t.admin),
            json!({})
        )
        .await
        .0,
        404
    );
}

//! Approval policies with `--auth on`: quorums, chains decided in order,
//! CEL rules choosing the policy, auto-approval, and every sign-off in the
//! audit trail. Real server, real tokens, real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestServer, binary, get, post, token};
use serde_json::{Value, json};

const CONFIG: &str = r#"
policies:
  two-of-finance:
    stages:
      - { name: finance, groups: [finance], quorum: 2 }
  chain:
    stages:
      - { name: manager, groups: [managers] }
      - { name: finance, groups: [finance] }
rules:
  - name: low-risk
    when: 'has(action.changes.max_amount_without_approval) && action.changes.max_amount_without_approval <= 1000'
    auto_approve: true
  - name: large-limit
    when: action.changes.max_amount_without_approval > 10000
    policy: chain
    add_stages:
      - { name: cfo, users: [carol] }
  - name: refunds
    when: labels.kind == "refund"
    policy: two-of-finance
  - name: strict
    when: action.amount > 5
    policy: chain
"#;

struct People {
    agent: String,
    mia: String,
    fiona: String,
    fred: String,
    frank: String,
    carol: String,
    admin: String,
}

async fn start() -> (TestServer, People, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let config = dir.path().join("signoff.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let finance = ["--group", "finance"];
    let people = People {
        agent: token(&db, "bot", "agent", &[]),
        mia: token(&db, "mia", "reviewer", &["--group", "managers"]),
        fiona: token(&db, "fiona", "reviewer", &finance),
        fred: token(&db, "fred", "reviewer", &finance),
        frank: token(&db, "frank", "reviewer", &finance),
        carol: token(&db, "carol", "reviewer", &[]),
        admin: token(&db, "root", "admin", &[]),
    };
    let server =
        TestServer::start_on_with(&db, &["--auth", "on", "--config", config.to_str().unwrap()])
            .await;
    (server, people, dir)
}

async fn create(server: &TestServer, agent: &str, action: Value, labels: Value) -> Value {
    let (status, request) = post(
        server,
        "/v1/requests",
        Some(agent),
        json!({"title": "Change", "proposed_action": action, "labels": labels}),
    )
    .await;
    assert_eq!(status, 201, "{request}");
    request
}

fn stages(request: &Value) -> Vec<String> {
    request["approval"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn trail(server: &TestServer, admin: &str, id: &str) -> Vec<(String, Value, Value)> {
    let (_, audit) = get(server, &format!("/v1/audit?request_id={id}"), Some(admin)).await;
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["actor"].clone(),
                e["stage"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_of_three_finance_reviewers_approve_a_refund() {
    let (server, p, _dir) = start().await;
    let request = create(
        &server,
        &p.agent,
        json!({"amount": 1}),
        json!({"kind": "refund"}),
    )
    .await;
    let id = request["id"].as_str().unwrap();
    assert_eq!(request["approval"]["policy"], "two-of-finance");
    assert_eq!(request["approval"]["rule"], "refunds");
    assert_eq!(request["approval"]["current_stage"], "finance");
    assert_eq!(request["approval"]["remaining"], 2);
    let approve = format!("/v1/requests/{id}/approve");

    // Not in finance: refused, whatever the role.
    let (status, body) = post(&server, &approve, Some(&p.mia), json!({})).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(&server, &approve, Some(&p.admin), json!({})).await;
    assert_eq!(status, 403, "admins are not a policy's reviewers: {body}");

    // Through the CLI: the sign-off says what the request still needs.
    let cli = |token: &str, args: &[&str]| {
        Command::new(binary())
            .args(["--server", &server.url, "--token", token])
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let output = cli(&p.fiona, &["approve", id, "--comment", "ok"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("Waiting for 1 more at stage finance (groups finance)"),
        "{text}"
    );
    let output = cli(&p.admin, &["show", id]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("policy two-of-finance (chosen by rule refunds)") && text.contains("fiona"),
        "{text}"
    );
    let (_, first) = get(&server, &format!("/v1/requests/{id}"), Some(&p.admin)).await;
    assert_eq!(first["status"], "pending", "one of two is not a quorum");
    assert_eq!(first["approval"]["remaining"], 1);
    let may = &first["approval"]["may_approve"];
    assert_eq!(may["groups"], json!(["finance"]));

    // The same reviewer twice counts once.
    let (status, again) = post(&server, &approve, Some(&p.fiona), json!({})).await;
    assert_eq!(status, 409, "{again}");

    let (status, second) = post(&server, &approve, Some(&p.fred), json!({})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["status"], "approved");
    assert_eq!(second["decision"]["reviewer"], "fred");
    assert_eq!(second["decision"]["stage"], "finance");
    let signed: Vec<&str> = second["approval"]["stages"][0]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reviewer"].as_str().unwrap())
        .collect();
    assert_eq!(signed, ["fiona", "fred"]);

    // The third is too late.
    let (status, _) = post(&server, &approve, Some(&p.frank), json!({})).await;
    assert_eq!(status, 409);

    let events = trail(&server, &p.admin, id).await;
    let approvals: Vec<_> = events
        .iter()
        .filter(|(event, _, _)| event == "endorsed" || event == "approved")
        .map(|(event, actor, stage)| (event.as_str(), actor.clone(), stage.clone()))
        .collect();
    assert_eq!(
        approvals,
        [
            ("endorsed", json!("fiona"), json!("finance")),
            ("approved", json!("fred"), json!("finance")),
        ],
        "every approval is in the trail with its stage"
    );
    let (_, verify) = get(&server, "/v1/audit/verify", Some(&p.admin)).await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn a_chain_is_decided_in_order_and_a_rule_adds_the_cfo() {
    let (server, p, _dir) = start().await;
    let request = create(
        &server,
        &p.agent,
        json!({"changes": {"max_amount_without_approval": 20000}}),
        json!({}),
    )
    .await;
    let id = request["id"].as_str().unwrap();
    assert_eq!(stages(&request), ["manager", "finance", "cfo"]);
    assert_eq!(request["approval"]["rule"], "large-limit");
    let approve = format!("/v1/requests/{id}/approve");

    // Finance cannot decide before the manager, on any route.
    let (status, body) = post(&server, &approve, Some(&p.fiona), json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stage 'manager'"),
        "{body}"
    );
    let (status, _) = post(
        &server,
        &format!("/approval/{id}/approve"),
        Some(&p.fiona),
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "the guide's route follows the chain too");
    let (status, _) = post(
        &server,
        &format!("/v1/requests/{id}/reject"),
        Some(&p.carol),
        json!({"reason": "no"}),
    )
    .await;
    assert_eq!(status, 403, "nor may a later stage reject early");

    // The guide's route answers "pending" while the chain goes on.
    let (status, body) = post(
        &server,
        &format!("/approval/{id}/approve"),
        Some(&p.mia),
        json!({}),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")));

    let (_, now) = get(&server, &format!("/v1/requests/{id}"), Some(&p.admin)).await;
    assert_eq!(now["approval"]["current_stage"], "finance");
    let states: Vec<&str> = now["approval"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "current", "waiting"]);

    let (status, _) = post(&server, &approve, Some(&p.fiona), json!({})).await;
    assert_eq!(status, 200);
    let (status, done) = post(&server, &approve, Some(&p.carol), json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "approved");
    assert_eq!(done["decision"]["stage"], "cfo");

    let events = trail(&server, &p.admin, id).await;
    let kinds: Vec<(&str, Value)> = events
        .iter()
        .map(|(event, _, stage)| (event.as_str(), stage.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("created", Value::Null),
            ("denied", Value::Null),
            ("denied", Value::Null),
            ("denied", Value::Null),
            ("endorsed", json!("manager")),
            ("endorsed", json!("finance")),
            ("approved", json!("cfo")),
        ]
    );
}

#[tokio::test]
async fn one_rejection_at_any_stage_rejects() {
    let (server, p, _dir) = start().await;
    let request = create(&server, &p.agent, json!({"amount": 50}), json!({})).await;
    assert_eq!(request["approval"]["rule"], "strict");
    let id = request["id"].as_str().unwrap();
    let (status, _) = post(
        &server,
        &format!("/v1/requests/{id}/approve"),
        Some(&p.mia),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, rejected) = post(
        &server,
        &format!("/v1/requests/{id}/reject"),
        Some(&p.frank),
        json!({"reason": "over budget"}),
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["decision"]["stage"], "finance");
}

#[tokio::test]
async fn a_low_risk_rule_approves_on_creation_with_the_rule_as_actor() {
    let (server, p, _dir) = start().await;
    let request = create(
        &server,
        &p.agent,
        json!({"changes": {"max_amount_without_approval": 500}}),
        json!({}),
    )
    .await;
    let id = request["id"].as_str().unwrap();
    assert_eq!(request["status"], "approved");
    assert_eq!(request["decision"]["reviewer"], "rule:low-risk");
    assert!(request["decision"]["action_hash"].is_string());
    assert!(stages(&request).is_empty());
    let events = trail(&server, &p.admin, id).await;
    assert_eq!(
        events
            .iter()
            .map(|(e, a, _)| (e.as_str(), a.clone()))
            .collect::<Vec<_>>(),
        [
            ("created", json!("bot")),
            ("approved", json!("rule:low-risk"))
        ]
    );
    // A request no rule matches gets the default: one sign-off by anyone.
    let plain = create(&server, &p.agent, json!({"note": "hi"}), json!({})).await;
    assert_eq!(plain["approval"]["policy"], "default");
    assert_eq!(plain["approval"]["rule"], Value::Null);
    assert_eq!(stages(&plain), ["review"]);
}

#[tokio::test]
async fn a_rule_that_cannot_be_evaluated_refuses_the_request() {
    let (server, p, _dir) = start().await;
    let (status, body) = post(
        &server,
        "/v1/requests",
        Some(&p.agent),
        json!({"title": "t", "proposed_action": {"amount": "lots"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "policy_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'strict'"),
        "{body}"
    );
}

#[tokio::test]
async fn a_wait_is_not_ended_by_a_sign_off_that_leaves_the_request_pending() {
    let (server, p, _dir) = start().await;
    let request = create(
        &server,
        &p.agent,
        json!({"amount": 1}),
        json!({"kind": "refund"}),
    )
    .await;
    let id = request["id"].as_str().unwrap().to_owned();
    let waiter = {
        let http = server.http().clone();
        let url = format!("{}/v1/requests/{id}/wait?timeout=3", server.url);
        let agent = p.agent.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let response = http.get(url).bearer_auth(agent).send().await.unwrap();
            let body: Value = response.json().await.unwrap();
            (started.elapsed(), body)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let approve = format!("/v1/requests/{id}/approve");
    assert_eq!(
        post(&server, &approve, Some(&p.fiona), json!({})).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "a partial sign-off answered the wait"
    );
    assert_eq!(
        post(&server, &approve, Some(&p.fred), json!({})).await.0,
        200
    );
    let (elapsed, body) = waiter.await.unwrap();
    assert_eq!(body["status"], "approved");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn policy_explain_prints_the_rule_and_what_it_requires() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signoff.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let action = dir.path().join("action.json");
    std::fs::write(
        &action,
        r#"{"changes": {"max_amount_without_approval": 20000}}"#,
    )
    .unwrap();
    let explain = |extra: &[&str]| {
        Command::new(binary())
            .args(["policy", "explain", "--config"])
            .arg(&config)
            .arg("--action")
            .arg(format!("@{}", action.display()))
            .args(extra)
            .output()
            .unwrap()
    };
    let output = explain(&[]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Matched rule large-limit"), "{text}");
    assert!(text.contains("manager") && text.contains("cfo"), "{text}");
    assert!(text.contains("users carol"), "{text}");

    let output = Command::new(binary())
        .args(["--json", "policy", "explain", "--config"])
        .arg(&config)
        .args(["--action", r#"{"amount": 1}"#, "--label", "kind=refund"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["matched"], "refunds");
    assert_eq!(report["stages"][0]["quorum"], 2);
    assert_eq!(report["rules"][0]["verdict"], "missing_field");
}

#[test]
fn a_bad_rule_is_refused_at_start_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signoff.yaml");
    let text = CONFIG.replace("labels.kind == \"refund\"", "labels.kind === \"refund\"");
    std::fs::write(&config, &text).unwrap();
    let line = text.lines().position(|l| l.contains("===")).unwrap() + 1;
    let output = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--database")
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("signoff.yaml:{line}:")) && stderr.contains("rule 'refunds'"),
        "{stderr}"
    );
    assert!(stderr.contains("column"), "{stderr}");
}

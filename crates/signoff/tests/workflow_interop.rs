//! The four-stage workflow end to end: the real server, driving A2A agents
//! and an MCP tool written with the official Python SDKs (tests/python/peers),
//! over real HTTP and stdio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

/// The Python virtual environment with a2a-sdk and mcp, or `None` (then the
/// tests skip, unless SIGNOFF_REQUIRE_TOOLS says they must run).
fn venv() -> Option<PathBuf> {
    let venv = PathBuf::from(std::env::var_os("SIGNOFF_VENV")?);
    let python = venv.join("bin").join("python");
    python.exists().then_some(venv)
}

fn require_venv() -> Option<PathBuf> {
    let venv = venv();
    if venv.is_none() {
        assert!(
            std::env::var_os("SIGNOFF_REQUIRE_TOOLS").is_none(),
            "the Python SDK peers need $SIGNOFF_VENV; run scripts/test.sh"
        );
        eprintln!("skipped: no $SIGNOFF_VENV (scripts/test.sh sets it up)");
    }
    venv
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/peers")
}

/// A Python peer serving HTTP, killed when dropped.
struct Peer {
    child: Child,
    url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_peer(venv: &Path, script: &str, args: &[&str]) -> Peer {
    let mut child = Command::new(venv.join("bin").join("python"))
        .arg(peers_dir().join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start peer");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    break url.trim_end_matches('/').to_owned();
                }
            }
            _ => panic!("{script} exited before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Peer { child, url }
}

/// The peers and a configuration naming them.
struct World {
    _drafter: Peer,
    _validator: Peer,
    dir: tempfile::TempDir,
    config: PathBuf,
    applied: PathBuf,
    /// Made on first use, then the same across restarts.
    database: tokio::sync::OnceCell<PathBuf>,
}

fn world(venv: &Path) -> World {
    let drafter = start_peer(venv, "draft_agent.py", &[]);
    let validator = start_peer(venv, "validator_agent.py", &[]);
    let dir = tempfile::tempdir().unwrap();
    let applied = dir.path().join("applied.jsonl");
    let python = venv.join("bin").join("python");
    let config = dir.path().join("signoff.yaml");
    let yaml = format!(
        r#"
agents:
  drafter: {{ kind: a2a, url: "{drafter}", timeout: 30s }}
  validator: {{ kind: a2a, url: "{validator}", timeout: 30s }}
executors:
  apply:
    kind: mcp
    command: ["{python}", "{server}"]
    env: {{ APPLIED_LOG: "{applied}" }}
    tool: apply_changes
    pass_idempotency_key: true
    timeout: 60s
workflows:
  policy-update:
    draft_agent: drafter
    validator_agent: validator
    min_score: 50
    executor: apply
    max_retries: 1
    expires_in: 1h
    labels: {{ team: finance }}
  quick:
    draft_agent: drafter
    validator_agent: validator
    executor: apply
    expires_in: 2s
"#,
        drafter = drafter.url,
        validator = validator.url,
        python = python.display(),
        server = peers_dir().join("mcp_apply_changes.py").display(),
        applied = applied.display(),
    );
    std::fs::write(&config, yaml).unwrap();
    World {
        _drafter: drafter,
        _validator: validator,
        dir,
        config,
        applied,
        database: tokio::sync::OnceCell::new(),
    }
}

impl World {
    async fn server(&self) -> TestServer {
        let database = self
            .database
            .get_or_init(|| common::fresh_database(self.dir.path()))
            .await;
        TestServer::start_on_with(database, &["--config", self.config.to_str().unwrap()]).await
    }

    fn applied(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.applied)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

const TASK: &str =
    r#"{"policy_name": "Expense Approval Policy", "requirements": "Raise the limit"}"#;

async fn start_run(server: &TestServer, task: &str) -> String {
    let input: Value = serde_json::from_str(task).unwrap();
    let (status, run) = server
        .post("/v1/workflows/policy-update/runs", json!({"input": input}))
        .await;
    assert_eq!(status, 201, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

/// Long-polls the run until it satisfies `done`.
async fn until(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut status = String::new();
    loop {
        let path = if status.is_empty() {
            format!("/v1/runs/{id}")
        } else {
            format!("/v1/runs/{id}/wait?status={status}&timeout=5")
        };
        let (code, run) = server.get(&path).await;
        assert_eq!(code, 200, "{run}");
        if done(&run) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "stuck: {run:#}");
        status = run["status"].as_str().unwrap().to_owned();
    }
}

async fn awaiting(server: &TestServer, id: &str, attempt: u64) -> String {
    let run = until(server, id, |run| {
        run["attempt"] == attempt && run["request_id"].is_string()
            || run["status"] != "drafting"
                && run["status"] != "validating"
                && run["status"] != "awaiting_approval"
    })
    .await;
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    run["request_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_run_executes_exactly_once() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let server = world.server().await;
    let id = start_run(&server, TASK).await;
    let request = awaiting(&server, &id, 1).await;
    let (_, pending) = server.get(&format!("/v1/requests/{request}")).await;
    assert_eq!(
        pending["proposed_action"]["changes"]["max_amount_without_approval"],
        5000.0
    );
    assert!(
        pending["description"]
            .as_str()
            .unwrap()
            .contains("Validation score")
    );
    let (status, _) = server
        .post(
            &format!("/v1/requests/{request}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    assert_eq!(status, 200);
    let run = until(&server, &id, |run| run["status"] == "succeeded").await;
    let applied = world.applied();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["changes"]["max_amount_without_approval"], 5000.0);
    assert_eq!(applied[0]["idempotency_key"], format!("run-{id}-attempt-1"));
    let stages: Vec<&str> = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["draft", "validate", "approve", "execute"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_reaches_the_drafter_and_the_redraft_executes() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let server = world.server().await;
    let id = start_run(&server, TASK).await;
    let first = awaiting(&server, &id, 1).await;
    let (status, _) = server
        .post(
            &format!("/v1/requests/{first}/reject"),
            json!({"reviewer": "cfo", "reason": "keep the chain shorter"}),
        )
        .await;
    assert_eq!(status, 200);
    let second = awaiting(&server, &id, 2).await;
    assert_ne!(first, second);
    let (_, redraft) = server.get(&format!("/v1/requests/{second}")).await;
    assert_eq!(
        redraft["proposed_action"]["saw_rejection"],
        "keep the chain shorter"
    );
    server
        .post(
            &format!("/v1/requests/{second}/approve"),
            json!({"reviewer": "cfo"}),
        )
        .await;
    until(&server, &id, |run| run["status"] == "succeeded").await;
    let applied = world.applied();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["idempotency_key"], format!("run-{id}-attempt-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_validation_opens_no_request() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let server = world.server().await;
    let id = start_run(
        &server,
        r#"{"policy_name": "bad policy", "requirements": "x"}"#,
    )
    .await;
    let run = until(&server, &id, |run| run["status"] == "validation_failed").await;
    assert!(run["request_id"].is_null());
    let (_, pending) = server.get("/v1/requests?status=pending").await;
    assert_eq!(pending["requests"].as_array().unwrap().len(), 0);
    assert!(world.applied().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_tool_error_is_recorded() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let server = world.server().await;
    let id = start_run(&server, TASK).await;
    let request = awaiting(&server, &id, 1).await;
    // Approve with an edit the tool refuses.
    let (status, body) = server
        .post(
            &format!("/v1/requests/{request}/approve"),
            json!({"reviewer": "alice", "edited_action": {"changes": {"fail": true}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = until(&server, &id, |run| run["status"] == "failed").await;
    let last = run["stages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["stage"], "execute");
    assert_eq!(last["ok"], false);
    assert!(
        run["error"].as_str().unwrap().contains("executor"),
        "{run:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_when_the_server_is_killed_resumes_and_executes_once() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let mut server = world.server().await;
    let id = start_run(&server, TASK).await;
    let request = awaiting(&server, &id, 1).await;
    server.kill();
    let server = world.server().await;
    let (status, _) = server
        .post(
            &format!("/v1/requests/{request}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    assert_eq!(status, 200);
    until(&server, &id, |run| run["status"] == "succeeded").await;
    assert_eq!(world.applied().len(), 1);
    // No second request was opened for the attempt.
    let (_, all) = server.get("/v1/requests").await;
    assert_eq!(all["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signoff_run_follows_the_stages_live() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let server = world.server().await;
    let task = world.dir.path().join("task.json");
    std::fs::write(&task, TASK).unwrap();
    let mut run = tokio::process::Command::new(common::binary())
        .args(["run", "policy-update", "--input"])
        .arg(&task)
        .env("SIGNOFF_URL", &server.url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Approve the request the run opens, from "another terminal".
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let request = loop {
        let (_, page) = server.get("/v1/requests?status=pending").await;
        if let Some(id) = page["requests"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no request opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server
        .post(
            &format!("/v1/requests/{request}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(run.stdout.as_mut().unwrap(), &mut stdout)
        .await
        .unwrap();
    let status = run.wait().await.unwrap();
    assert!(status.success(), "{status:?}\n{stdout}");
    for expected in [
        "attempt 1 drafting",
        "drafted: Update Expense Approval Policy",
        "valid (score 92",
        &format!("waiting for approval of request {request}"),
        "approved by alice",
        "executed:",
        "Done: succeeded",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert_eq!(world.applied().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_approval_ends_the_run() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let server = world.server().await;
    let input: Value = serde_json::from_str(TASK).unwrap();
    let (status, run) = server
        .post("/v1/workflows/quick/runs", json!({"input": input}))
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap();
    // Nobody decides; the sweeper expires the request, and the run ends.
    let run = until(&server, id, |run| run["status"] == "expired").await;
    let request = run["request_id"].as_str().unwrap();
    let (_, request) = server.get(&format!("/v1/requests/{request}")).await;
    assert_eq!(request["status"], "expired");
    assert!(world.applied().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_run_waiting_stops_at_once_and_the_run_resumes() {
    let Some(venv) = require_venv() else { return };
    let world = world(&venv);
    let mut server = world.server().await;
    let id = start_run(&server, TASK).await;
    let request = awaiting(&server, &id, 1).await;
    // A follower long-polls the run while the server stops.
    let http = server.http().clone();
    let follow = format!(
        "{}/v1/runs/{id}/wait?status=awaiting_approval&timeout=300",
        server.url
    );
    let follower = tokio::spawn(async move { http.get(follow).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(follower.await.unwrap().unwrap().status(), 200);

    let server = world.server().await;
    server
        .post(
            &format!("/v1/requests/{request}/approve"),
            json!({"reviewer": "alice"}),
        )
        .await;
    until(&server, &id, |run| run["status"] == "succeeded").await;
    assert_eq!(world.applied().len(), 1);
}

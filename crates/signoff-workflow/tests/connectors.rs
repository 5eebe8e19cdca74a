//! Each connector against a real peer: programs run by the shell, a small
//! HTTP server, and the official Python SDKs' A2A agent and MCP server
//! (tests/python/peers), each way it can fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use signoff_workflow::agent::{A2aAgent, CommandAgent, HttpAgent};
use signoff_workflow::config::McpArguments;
use signoff_workflow::executor::{CommandExecutor, HttpExecutor, McpExecutor, McpServer};
use signoff_workflow::process::Program;
use signoff_workflow::{Agent, ConnectorError, Executor};

fn sh(script: &str, timeout: Duration) -> Program {
    Program {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: BTreeMap::new(),
        timeout,
    }
}

#[tokio::test]
async fn a_command_agent_answers_on_stdout() {
    // Echoes the task back inside an answer: proves stdin reached it.
    let agent = CommandAgent {
        program: sh(
            r#"read task; printf '{"echo": %s}' "$task""#,
            Duration::from_secs(5),
        ),
    };
    let answer = agent.ask(&json!({"policy": "x"})).await.unwrap();
    assert_eq!(answer, json!({"echo": {"policy": "x"}}));
}

#[tokio::test]
async fn command_failures_say_what_happened() {
    let task = json!({});
    let failing = CommandAgent {
        program: sh(
            "echo 'model overloaded' >&2; exit 3",
            Duration::from_secs(5),
        ),
    };
    let error = failing.ask(&task).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. } if message.contains("model overloaded")),
        "{error}"
    );
    let garbage = CommandAgent {
        program: sh("echo 'not json'", Duration::from_secs(5)),
    };
    assert!(matches!(
        garbage.ask(&task).await,
        Err(ConnectorError::BadAnswer { .. })
    ));
    let array = CommandAgent {
        program: sh("echo '[1]'", Duration::from_secs(5)),
    };
    assert!(matches!(
        array.ask(&task).await,
        Err(ConnectorError::BadAnswer { .. })
    ));
    let slow = CommandAgent {
        program: sh("sleep 10", Duration::from_millis(300)),
    };
    let started = std::time::Instant::now();
    assert!(matches!(
        slow.ask(&task).await,
        Err(ConnectorError::Timeout { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    let missing = CommandAgent {
        program: Program {
            argv: vec!["/nonexistent/agent".into()],
            env: BTreeMap::new(),
            timeout: Duration::from_secs(5),
        },
    };
    assert!(matches!(
        missing.ask(&task).await,
        Err(ConnectorError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn a_command_executor_gets_the_action_and_the_key() {
    let executor = CommandExecutor {
        program: sh(
            r#"read input; printf '{"input": %s, "key": "%s"}' "$input" "$SIGNOFF_IDEMPOTENCY_KEY""#,
            Duration::from_secs(5),
        ),
    };
    let result = executor
        .execute(&json!({"changes": {"a": 1}}), "run-1-attempt-1")
        .await
        .unwrap();
    assert_eq!(result["input"]["action"], json!({"changes": {"a": 1}}));
    assert_eq!(result["input"]["idempotency_key"], "run-1-attempt-1");
    assert_eq!(result["key"], "run-1-attempt-1");
    let plain = CommandExecutor {
        program: sh("cat >/dev/null; echo applied", Duration::from_secs(5)),
    };
    let result = plain.execute(&json!({}), "k").await.unwrap();
    assert_eq!(result, json!({"stdout": "applied\n"}));
}

/// A small HTTP peer: answers 201 with what it got, or 500 when the body
/// asks for it; remembers the Idempotency-Key headers it saw.
async fn http_peer() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keys = seen.clone();
    let app = axum::Router::new().route(
        "/",
        post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                let keys = keys.clone();
                async move {
                    if let Some(key) = headers.get("idempotency-key").and_then(|k| k.to_str().ok())
                    {
                        keys.lock().unwrap().push(key.to_owned());
                    }
                    if body.pointer("/action/fail").is_some() || body.get("fail").is_some() {
                        return (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"error": "boom"})),
                        );
                    }
                    (StatusCode::CREATED, axum::Json(json!({"got": body})))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn http_agents_and_executors() {
    let (url, keys) = http_peer().await;
    let client = reqwest::Client::new();
    let agent = HttpAgent {
        url: url.clone(),
        timeout: Duration::from_secs(5),
        client: client.clone(),
    };
    assert_eq!(
        agent.ask(&json!({"t": 1})).await.unwrap(),
        json!({"got": {"t": 1}})
    );
    let error = agent.ask(&json!({"fail": true})).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. } if message.contains("500")),
        "{error}"
    );

    let executor = HttpExecutor {
        url: url.clone(),
        timeout: Duration::from_secs(5),
        client: client.clone(),
    };
    let result = executor
        .execute(&json!({"changes": {}}), "run-9-attempt-2")
        .await
        .unwrap();
    assert_eq!(result["got"]["idempotency_key"], "run-9-attempt-2");
    assert_eq!(keys.lock().unwrap().clone(), ["run-9-attempt-2"]);
    assert!(matches!(
        executor.execute(&json!({"fail": 1}), "k").await,
        Err(ConnectorError::Failed { .. })
    ));

    let dead = HttpAgent {
        url: "http://127.0.0.1:1/".into(),
        timeout: Duration::from_secs(5),
        client,
    };
    assert!(matches!(
        dead.ask(&json!({})).await,
        Err(ConnectorError::Unreachable { .. })
    ));
}

fn venv() -> Option<PathBuf> {
    let venv = std::env::var_os("SIGNOFF_VENV").map(PathBuf::from);
    let venv = venv.filter(|v| v.join("bin").join("python").exists());
    if venv.is_none() {
        assert!(
            std::env::var_os("SIGNOFF_REQUIRE_TOOLS").is_none(),
            "the Python SDK peers need $SIGNOFF_VENV; run scripts/test.sh"
        );
        eprintln!("skipped: no $SIGNOFF_VENV");
    }
    venv
}

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/peers")
}

struct Peer(Child, String);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(venv: &Path, script: &str, args: &[&str], env: &[(&str, &Path)]) -> Peer {
    let mut command = Command::new(venv.join("bin").join("python"));
    command
        .arg(peers().join(script))
        .args(args)
        .stdout(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("peer exited").unwrap();
        if let Some(url) = line.trim().strip_prefix("listening on ") {
            break url.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Peer(child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_a2a_agent_of_the_official_sdk() {
    let Some(venv) = venv() else { return };
    let peer = start(&venv, "draft_agent.py", &[], &[]);
    let agent = A2aAgent::new(
        peer.1.clone(),
        Duration::from_secs(20),
        reqwest::Client::new(),
    );
    assert!(
        agent
            .discover()
            .await
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let draft = agent
        .ask(&json!({"policy_name": "Expense Approval Policy", "previous_rejection": "lower it"}))
        .await
        .unwrap();
    assert_eq!(draft["title"], "Update Expense Approval Policy");
    assert_eq!(draft["saw_rejection"], "lower it");
    // Numbers arrive as floats through protobuf's Value: 4000.0.
    assert_eq!(draft["changes"]["max_amount_without_approval"], 4000.0);

    let error = agent
        .ask(&json!({"policy_name": "failing"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. } if message.contains("task failed") && message.contains("unavailable")),
        "{error}"
    );
    let dead = A2aAgent::new(
        "http://127.0.0.1:1",
        Duration::from_secs(5),
        reqwest::Client::new(),
    );
    assert!(matches!(
        dead.ask(&json!({})).await,
        Err(ConnectorError::Unreachable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_tool_of_the_official_sdk_over_both_transports() {
    let Some(venv) = venv() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.jsonl");
    let python = venv.join("bin").join("python").display().to_string();
    let stdio = McpExecutor {
        server: McpServer::Stdio(Program {
            argv: vec![
                python.clone(),
                peers().join("mcp_apply_changes.py").display().to_string(),
            ],
            env: BTreeMap::from([("APPLIED_LOG".to_owned(), log.display().to_string())]),
            timeout: Duration::from_secs(30),
        }),
        tool: "apply_changes".into(),
        arguments: McpArguments::Changes,
        pass_idempotency_key: true,
        timeout: Duration::from_secs(30),
    };
    let action = json!({"title": "t", "changes": {"max_amount_without_approval": 5000}});
    let result = stdio.execute(&action, "run-1-attempt-1").await.unwrap();
    assert_eq!(result["applied"], true);
    let error = stdio
        .execute(&json!({"changes": {"fail": true}}), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. } if message.contains("refused these changes")),
        "{error}"
    );
    let unknown = McpExecutor {
        tool: "drop_tables".into(),
        ..stdio.clone()
    };
    let error = unknown.execute(&action, "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. } if message.contains("no tool named 'drop_tables'") && message.contains("apply_changes")),
        "{error}"
    );

    let peer = start(
        &venv,
        "mcp_apply_changes.py",
        &["--http"],
        &[("APPLIED_LOG", &log)],
    );
    let http = McpExecutor {
        server: McpServer::Http(peer.1.clone()),
        ..stdio.clone()
    };
    http.execute(&action, "run-1-attempt-2").await.unwrap();

    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["changes"]["max_amount_without_approval"], 5000);
    assert_eq!(lines[0]["idempotency_key"], "run-1-attempt-1");
    assert_eq!(lines[1]["idempotency_key"], "run-1-attempt-2");

    let missing = McpExecutor {
        server: McpServer::Stdio(Program {
            argv: vec!["/nonexistent/mcp-server".into()],
            env: BTreeMap::new(),
            timeout: Duration::from_secs(5),
        }),
        ..stdio
    };
    assert!(matches!(
        missing.execute(&action, "k").await,
        Err(ConnectorError::Unreachable { .. })
    ));
}

//! `McpExecutor` (rmcp) against a real MCP server of the official Python SDK
//! (tests/python/peers/mcp_apply_changes.py, mcp 2.3.0), over stdio and over
//! streamable HTTP, and each way an execution can fail.
//!
//! The server appends one line per applied call to a log, so every test
//! can say exactly how many times the tool ran. The Python venv comes from
//! `$SIGNOFF_VENV`; without it the tests skip, unless
//! `$SIGNOFF_REQUIRE_TOOLS` is set, when they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signoff_workflow::config::McpArguments;
use signoff_workflow::executor::{McpExecutor, McpServer};
use signoff_workflow::process::Program;
use signoff_workflow::{ConnectorError, Executor};

const TIMEOUT: Duration = Duration::from_secs(30);

fn venv() -> Option<PathBuf> {
    let venv = std::env::var_os("SIGNOFF_VENV").map(PathBuf::from);
    let venv = venv.filter(|v| v.join("bin").join("python").exists());
    if venv.is_none() {
        assert!(
            std::env::var_os("SIGNOFF_REQUIRE_TOOLS").is_none(),
            "the MCP interop tests need the Python SDK in $SIGNOFF_VENV; run scripts/test.sh"
        );
        eprintln!("skipped: no $SIGNOFF_VENV with the mcp SDK (scripts/test.sh makes it)");
    }
    venv
}

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/peers/mcp_apply_changes.py")
}

/// One test's Python server setup and its applied log.
struct Fixture {
    python: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(venv: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            python: venv.join("bin").join("python").display().to_string(),
            log: dir.path().join("applied.jsonl"),
            _dir: dir,
        }
    }

    /// An executor that starts the server as a child over stdio.
    fn stdio(&self) -> McpExecutor {
        McpExecutor {
            server: McpServer::Stdio(Program {
                argv: vec![self.python.clone(), server_script().display().to_string()],
                env: BTreeMap::from([("APPLIED_LOG".to_owned(), self.log.display().to_string())]),
                timeout: TIMEOUT,
            }),
            tool: "apply_changes".into(),
            arguments: McpArguments::Changes,
            pass_idempotency_key: true,
            timeout: TIMEOUT,
        }
    }

    /// The lines the tool appended, parsed.
    fn applied(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read the applied log: {e}"),
        }
    }
}

/// The server running over streamable HTTP; killed on drop.
struct HttpServer {
    child: Child,
    url: String,
}

impl HttpServer {
    fn start(fixture: &Fixture) -> Self {
        let mut child = Command::new(&fixture.python)
            .arg(server_script())
            .arg("--http")
            .arg("--log")
            .arg(&fixture.log)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("the MCP server exited").unwrap();
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                break url.to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn action() -> Value {
    json!({
        "title": "Raise the approval threshold",
        "changes": {"max_amount_without_approval": 5000, "approvers": ["cfo"]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_call_applies_the_changes_exactly_once() {
    let Some(venv) = venv() else { return };
    let fixture = Fixture::new(&venv);
    let result = fixture
        .stdio()
        .execute(&action(), "run-1-attempt-1")
        .await
        .unwrap();
    // The tool's typed return value arrives as structuredContent.
    assert_eq!(
        result,
        json!({"applied": true, "changes": action()["changes"]})
    );
    let applied = fixture.applied();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["changes"], action()["changes"]);
    assert_eq!(applied[0]["idempotency_key"], "run-1-attempt-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_action_can_be_the_arguments_and_the_key_is_optional() {
    let Some(venv) = venv() else { return };
    let fixture = Fixture::new(&venv);
    let executor = McpExecutor {
        arguments: McpArguments::Whole,
        pass_idempotency_key: false,
        ..fixture.stdio()
    };
    // The action's own fields are the tool's parameters.
    let action = json!({"changes": {"retention_days": 30}});
    executor.execute(&action, "run-2-attempt-1").await.unwrap();
    let applied = fixture.applied();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["changes"], json!({"retention_days": 30}));
    assert_eq!(applied[0]["idempotency_key"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamable_http_call_applies_the_changes() {
    let Some(venv) = venv() else { return };
    let fixture = Fixture::new(&venv);
    let server = HttpServer::start(&fixture);
    assert!(server.url.ends_with("/mcp"), "{}", server.url);
    let executor = McpExecutor {
        server: McpServer::Http(server.url.clone()),
        ..fixture.stdio()
    };
    let result = executor
        .execute(&action(), "run-3-attempt-1")
        .await
        .unwrap();
    assert_eq!(result["applied"], true);
    // A second execution is a second session on the same server.
    executor
        .execute(&action(), "run-3-attempt-2")
        .await
        .unwrap();
    let applied = fixture.applied();
    let keys: Vec<&Value> = applied.iter().map(|a| &a["idempotency_key"]).collect();
    assert_eq!(keys, [&json!("run-3-attempt-1"), &json!("run-3-attempt-2")]);
    assert_eq!(applied[0]["changes"], action()["changes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_error_is_a_failure_with_its_message() {
    let Some(venv) = venv() else { return };
    let fixture = Fixture::new(&venv);
    let refused = json!({"changes": {"fail": true}});
    let error = fixture
        .stdio()
        .execute(&refused, "run-4-attempt-1")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. }
            if message.contains("the policy store refused these changes")),
        "{error:?}"
    );
    // Over HTTP too.
    let server = HttpServer::start(&fixture);
    let http = McpExecutor {
        server: McpServer::Http(server.url.clone()),
        ..fixture.stdio()
    };
    let error = http.execute(&refused, "run-4-attempt-2").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. } if message.contains("refused")),
        "{error:?}"
    );
    assert!(fixture.applied().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tool_fails_before_anything_is_called() {
    let Some(venv) = venv() else { return };
    let fixture = Fixture::new(&venv);
    let executor = McpExecutor {
        tool: "drop_tables".into(),
        ..fixture.stdio()
    };
    let error = executor.execute(&action(), "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. }
            if message.contains("no tool named 'drop_tables'") && message.contains("apply_changes")),
        "{error:?}"
    );
    assert!(fixture.applied().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_reached_is_unreachable() {
    let missing = McpExecutor {
        server: McpServer::Stdio(Program {
            argv: vec!["/nonexistent/mcp-server".into()],
            env: BTreeMap::new(),
            timeout: TIMEOUT,
        }),
        tool: "apply_changes".into(),
        arguments: McpArguments::Changes,
        pass_idempotency_key: false,
        timeout: TIMEOUT,
    };
    let error = missing.execute(&action(), "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Unreachable { peer, message }
            if peer == "/nonexistent/mcp-server" && message.contains("cannot start")),
        "{error:?}"
    );

    // Started, but dead before it said a word of MCP: its stderr says why.
    let crashing = McpExecutor {
        server: McpServer::Stdio(Program {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo 'POLICY_FILE is not set' >&2; exit 2".into(),
            ],
            env: BTreeMap::new(),
            timeout: TIMEOUT,
        }),
        ..missing.clone()
    };
    let error = crashing.execute(&action(), "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Unreachable { message, .. }
            if message.contains("POLICY_FILE is not set")),
        "{error:?}"
    );

    let nobody = McpExecutor {
        server: McpServer::Http("http://127.0.0.1:1/mcp".into()),
        ..missing
    };
    let error = nobody.execute(&action(), "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Unreachable { .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_or_tool_times_out() {
    // A child that never answers `initialize`.
    let silent = McpExecutor {
        server: McpServer::Stdio(Program {
            argv: vec!["sleep".into(), "30".into()],
            env: BTreeMap::new(),
            timeout: TIMEOUT,
        }),
        tool: "apply_changes".into(),
        arguments: McpArguments::Changes,
        pass_idempotency_key: false,
        timeout: Duration::from_millis(500),
    };
    let started = Instant::now();
    let error = silent.execute(&action(), "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Timeout { after, .. } if *after == Duration::from_millis(500)),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A tool that takes longer than the executor allows.
    let Some(venv) = venv() else { return };
    let fixture = Fixture::new(&venv);
    let slow = McpExecutor {
        timeout: Duration::from_secs(5),
        ..fixture.stdio()
    };
    let started = Instant::now();
    let error = slow
        .execute(&json!({"changes": {"sleep": 30}}), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Timeout { .. }),
        "{error:?}"
    );
    // The deadline, plus at most the grace given to closing the session.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_gets_its_configured_environment_only() {
    let Some(venv) = venv() else { return };
    let fixture = Fixture::new(&venv);
    // A variable of this test process that the child must not see.
    let (secret, _) = std::env::vars()
        .find(|(name, _)| name.starts_with("CARGO") || name == "RUST_TEST_THREADS")
        .or_else(|| std::env::vars().find(|(name, _)| name != "PATH" && name != "HOME"))
        .expect("the test process has some environment");
    let dump = fixture.log.with_file_name("env.txt");
    let mut executor = fixture.stdio();
    let McpServer::Stdio(program) = &mut executor.server else {
        unreachable!()
    };
    // A wrapper that records its environment, then becomes the server.
    program.argv = vec![
        "sh".into(),
        "-c".into(),
        r#"env > "$ENV_DUMP"; exec "$0" "$@""#.into(),
        fixture.python.clone(),
        server_script().display().to_string(),
    ];
    program
        .env
        .insert("ENV_DUMP".into(), dump.display().to_string());
    executor.execute(&action(), "k").await.unwrap();
    let names: Vec<String> = std::fs::read_to_string(&dump)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.to_owned()))
        .collect();
    assert!(names.contains(&"APPLIED_LOG".to_owned()), "{names:?}");
    assert!(names.contains(&"PATH".to_owned()), "{names:?}");
    assert!(!names.contains(&secret), "{secret} leaked: {names:?}");
    assert_eq!(fixture.applied().len(), 1);
}

//! The CLI as scripts and people use it: the built binary against the real
//! server, asserting output, exit codes and the state it leaves behind.
#![allow(clippy::unwrap_used)] // test helpers: failing loudly is their job

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, binary};
use serde_json::Value;

/// Runs `signoff ARGS` against `server`, feeding `stdin`.
fn signoff(server: &TestServer, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("SIGNOFF_URL", &server.url)
        .env("SIGNOFF_REVIEWER", "carol")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

/// Creates a request through the CLI and returns its id.
fn create(server: &TestServer, title: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--json",
        "request",
        "create",
        "--title",
        title,
        "--action",
        r#"{"changes": {"max_amount_without_approval": 5000}}"#,
    ];
    args.extend_from_slice(extra);
    let output = signoff(server, &args, "");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    json(&output)["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_list_show_and_decide() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let action_file = dir.path().join("action.json");
    std::fs::write(
        &action_file,
        r#"{"type": "policy_update", "scope": "company_wide"}"#,
    )
    .unwrap();
    let at_file = format!("@{}", action_file.display());
    let output = signoff(
        &server,
        &[
            "--json",
            "request",
            "create",
            "--title",
            "Expense policy",
            "--description",
            "Raise the limit",
            "--action",
            &at_file,
            "--expires-in",
            "30m",
            "--label",
            "team=finance",
        ],
        "",
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let created = json(&output);
    assert_eq!(created["proposed_action"]["scope"], "company_wide");
    assert_eq!(created["labels"]["team"], "finance");
    let id = created["id"].as_str().unwrap().to_owned();

    // The action can also come from stdin.
    let output = signoff(
        &server,
        &[
            "--json",
            "request",
            "create",
            "--title",
            "From stdin",
            "--action",
            "-",
        ],
        r#"{"deploy": "v2"}"#,
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json(&output)["proposed_action"]["deploy"], "v2");

    let output = signoff(&server, &["--json", "pending"], "");
    let pending = json(&output);
    assert_eq!(pending["requests"].as_array().unwrap().len(), 2);

    let output = signoff(&server, &["pending"], "");
    let text = stdout(&output);
    assert!(
        text.contains("Expense policy") && text.contains("From stdin"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "piped output must be plain: {text:?}"
    );

    let output = signoff(&server, &["show", &id], "");
    let text = stdout(&output);
    assert!(
        text.contains("Raise the limit") && text.contains("company_wide"),
        "{text}"
    );

    let output = signoff(&server, &["--json", "approve", &id, "--comment", "ok"], "");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let approved = json(&output);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decision"]["reviewer"], "carol");
    assert_eq!(approved["decision"]["comment"], "ok");

    // A second decision is a conflict: exit 1 and the server's message.
    let output = signoff(&server, &["reject", &id, "--reason", "late"], "");
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("approved"), "{}", stderr(&output));

    // Approve with edits, the edit read from stdin.
    let edited = create(&server, "edit me", &[]);
    let output = signoff(
        &server,
        &["--json", "approve", &edited, "--edit", "-"],
        r#"{"changes": {"max_amount_without_approval": 4000}}"#,
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let approved_edit = json(&output);
    assert_eq!(
        approved_edit["decision"]["edited_action"]["changes"]["max_amount_without_approval"],
        4000
    );
    let output = signoff(&server, &["show", &edited], "");
    assert!(
        stdout(&output).contains("Approved with edits"),
        "{}",
        stdout(&output)
    );

    let output = signoff(&server, &["--json", "list", "--status", "approved"], "");
    let listed = json(&output);
    let ids: Vec<&str> = listed["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [edited.as_str(), id.as_str()]);
}

#[tokio::test]
async fn wait_exit_codes_tell_the_outcome_apart() {
    let server = TestServer::start().await;

    let approved = create(&server, "to approve", &[]);
    signoff(&server, &["approve", &approved], "");
    assert_eq!(code(&signoff(&server, &["wait", &approved], "")), 0);

    let rejected = create(&server, "to reject", &[]);
    signoff(&server, &["reject", &rejected, "--reason", "no"], "");
    let output = signoff(&server, &["wait", &rejected], "");
    assert_eq!(code(&output), 3);
    assert!(stdout(&output).contains("no"), "{}", stdout(&output));

    let expired = create(&server, "already expired", &["--expires-in", "0"]);
    assert_eq!(code(&signoff(&server, &["wait", &expired], "")), 4);

    let cancelled = create(&server, "to cancel", &[]);
    assert_eq!(code(&signoff(&server, &["cancel", &cancelled], "")), 0);
    assert_eq!(code(&signoff(&server, &["wait", &cancelled], "")), 5);

    let pending = create(&server, "nobody decides", &[]);
    let started = Instant::now();
    let output = signoff(
        &server,
        &["--json", "wait", &pending, "--timeout", "1s"],
        "",
    );
    assert_eq!(code(&output), 6);
    assert_eq!(json(&output)["status"], "pending");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn wait_returns_when_someone_decides() {
    let server = TestServer::start().await;
    let id = create(&server, "decided while waiting", &[]);
    let url = server.url.clone();
    let waiter = std::thread::spawn({
        let id = id.clone();
        move || {
            Command::new(binary())
                .args(["wait", &id, "--timeout", "60"])
                .env("SIGNOFF_URL", url)
                .output()
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = signoff(&server, &["reject", &id, "--reason", "too risky"], "");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let waited = waiter.join().unwrap();
    assert_eq!(code(&waited), 3, "{}", stdout(&waited));
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    let server = TestServer::start().await;
    let output = signoff(
        &server,
        &["request", "create", "--title", "x", "--action", "{oops"],
        "",
    );
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("not valid JSON"),
        "{}",
        stderr(&output)
    );

    let output = signoff(
        &server,
        &["request", "create", "--title", "x", "--action", "[1, 2]"],
        "",
    );
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("JSON object"),
        "{}",
        stderr(&output)
    );

    let output = signoff(
        &server,
        &[
            "request",
            "create",
            "--title",
            "x",
            "--action",
            "{}",
            "--expires-in",
            "soon",
        ],
        "",
    );
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("--expires-in"),
        "{}",
        stderr(&output)
    );

    // The server's own validation comes back as an error naming the field.
    let long_title = "t".repeat(201);
    let output = signoff(
        &server,
        &[
            "request",
            "create",
            "--title",
            &long_title,
            "--action",
            "{}",
        ],
        "",
    );
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("title"), "{}", stderr(&output));

    let output = signoff(&server, &["show", "not-a-uuid"], "");
    assert_eq!(code(&output), 2);

    let output = signoff(
        &server,
        &["show", "0193d7a4-0000-7000-8000-000000000000"],
        "",
    );
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("not found") || stderr(&output).contains("no request"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let output = Command::new(binary())
        .args(["--server", "http://127.0.0.1:1", "pending"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 1);
    let text = stderr(&output);
    assert!(text.contains("127.0.0.1:1"), "{text}");
}

#[tokio::test]
async fn review_approves_rejects_and_skips_from_piped_answers() {
    let server = TestServer::start().await;
    // Reviewed soonest expiry first: a, then b, then c.
    let a = create(&server, "first", &["--expires-in", "1h"]);
    let b = create(&server, "second", &["--expires-in", "2h"]);
    let c = create(&server, "third", &["--expires-in", "3h"]);
    let answers = "d\na\nr\n\ntoo risky\ns\n";
    let output = signoff(&server, &["review"], answers);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}\n{}", stderr(&output));
    assert!(
        text.contains("3 pending requests to review as carol"),
        "{text}"
    );
    assert!(text.contains("max_amount_without_approval"), "{text}");
    assert!(
        text.contains("Audit trail"),
        "details show the trail: {text}"
    );
    assert!(text.contains("A rejection needs a reason."), "{text}");
    assert!(text.contains("Approved 1, rejected 1, skipped 1"), "{text}");
    assert!(!text.contains('\u{1b}'), "piped output must be plain");

    let (_, a) = server.get(&format!("/v1/requests/{a}")).await;
    assert_eq!(a["status"], "approved");
    assert_eq!(a["decision"]["reviewer"], "carol");
    let (_, b) = server.get(&format!("/v1/requests/{b}")).await;
    assert_eq!(b["status"], "rejected");
    assert_eq!(b["decision"]["rejection_reason"], "too risky");
    let (_, c) = server.get(&format!("/v1/requests/{c}")).await;
    assert_eq!(c["status"], "pending");
}

#[tokio::test]
async fn review_timeout_decides_nothing() {
    let server = TestServer::start().await;
    let id = create(&server, "nobody answers", &[]);
    // stdin stays open and silent: the reviewer walked away.
    let mut child = Command::new(binary())
        .args(["review", "--timeout", "1s"])
        .env("SIGNOFF_URL", &server.url)
        .env("SIGNOFF_REVIEWER", "carol")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _silent = child.stdin.take();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 6, "{}", stdout(&output));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        stdout(&output).contains("stays pending"),
        "{}",
        stdout(&output)
    );
    let (_, request) = server.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(request["status"], "pending");
}

#[tokio::test]
async fn a_request_decided_elsewhere_during_review_is_reported() {
    let server = TestServer::start().await;
    let id = create(&server, "raced", &[]);
    let mut child = Command::new(binary())
        .args(["review"])
        .env("SIGNOFF_URL", &server.url)
        .env("SIGNOFF_REVIEWER", "carol")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Someone else approves while the box is on screen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = server
        .post(
            &format!("/v1/requests/{id}/reject"),
            serde_json::json!({"reviewer": "dave", "reason": "first"}),
        )
        .await;
    assert_eq!(status, 200);
    stdin.write_all(b"a\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}");
    assert!(text.contains("already decided elsewhere"), "{text}");
    let (_, request) = server.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(request["decision"]["reviewer"], "dave");
}

#[tokio::test]
async fn audit_show_export_and_verify() {
    let server = TestServer::start().await;
    let approved = create(&server, "approve me", &[]);
    let rejected = create(&server, "reject me", &[]);
    signoff(&server, &["approve", &approved], "");
    signoff(
        &server,
        &["reject", &rejected, "--reason", "over budget"],
        "",
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("approvals.log");
    let output = signoff(
        &server,
        &["audit", "export", "--output", file.to_str().unwrap()],
        "",
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let approval = lines.iter().find(|l| l["event"] == "APPROVAL").unwrap();
    assert_eq!(approval["request_id"], approved.as_str());
    assert_eq!(approval["reviewer"], "carol");
    assert_eq!(approval["title"], "approve me");
    assert_eq!(
        approval["proposed_action"]["changes"]["max_amount_without_approval"],
        5000
    );
    assert!(approval["timestamp"].as_str().unwrap().ends_with('Z'));
    let rejection = lines.iter().find(|l| l["event"] == "REJECTION").unwrap();
    assert_eq!(rejection["reason"], "over budget");

    let output = signoff(&server, &["audit", "show", &rejected], "");
    let text = stdout(&output);
    assert!(
        text.contains("REQUEST") && text.contains("REJECTION"),
        "{text}"
    );
    assert!(
        text.contains("over budget") && !text.contains("APPROVAL"),
        "{text}"
    );

    let output = signoff(&server, &["--json", "audit", "verify"], "");
    assert_eq!(code(&output), 0);
    let report = json(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["checked"], 4);
}

#[test]
fn config_check_names_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("signoff.yaml");
    std::fs::write(
        &good,
        "agents:\n  drafter: { kind: a2a, url: \"http://127.0.0.1:9001\" }\n\
         executors:\n  apply: { kind: mcp, command: [server], tool: apply_changes }\n\
         workflows:\n  policy-update: { draft_agent: drafter, executor: apply }\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["config", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("policy-update"),
        "{}",
        stdout(&output)
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "agents:\n  drafter: { kind: a2a, url: \"http://127.0.0.1:9001\" }\n\
         executors: {}\n\
         workflows:\n  policy-update:\n    draft_agent: drafterr\n    executor: apply\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["config", "check"])
        .env("SIGNOFF_CONFIG", &bad)
        .output()
        .unwrap();
    assert_eq!(code(&output), 1);
    let text = stderr(&output);
    assert!(text.contains("bad.yaml:6:"), "{text}");
    assert!(
        text.contains("draft_agent 'drafterr' is not declared"),
        "{text}"
    );
    assert!(
        text.contains("bad.yaml:7:") && text.contains("executor 'apply'"),
        "{text}"
    );
}

#[test]
fn serve_refuses_a_bad_configuration_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("signoff.yaml");
    std::fs::write(
        &bad,
        "workflows:\n  w:\n    draft_agent: ghost\n    executor: nothing\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(dir.path().join("db.sqlite"))
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(code(&output), 1);
    let text = stderr(&output);
    assert!(text.contains("signoff.yaml:3:"), "{text}");
    assert!(
        text.contains("draft_agent 'ghost' is not declared"),
        "{text}"
    );
    assert!(!stdout(&output).contains("listening"), "it must not start");
}

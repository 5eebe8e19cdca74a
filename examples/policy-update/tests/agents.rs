//! The example's binaries as Signoff runs them: the agents over stdin and
//! stdout, and the MCP server through the official Rust SDK's client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

fn run(binary: &str, input: &Value) -> Value {
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_agents_speak_json_on_stdio() {
    let task: Value = serde_json::from_str(include_str!("../task.json")).unwrap();
    let draft = run(env!("CARGO_BIN_EXE_policy-drafter"), &task);
    assert_eq!(draft["title"], "Update Expense Approval Policy");
    assert_eq!(
        draft["changes"]["approval_chain"],
        json!(["manager", "finance", "cfo"])
    );
    let verdict = run(
        env!("CARGO_BIN_EXE_policy-validator"),
        &json!({"draft": draft, "validation_type": "quality_check"}),
    );
    assert_eq!(verdict["is_valid"], true);
}

async fn call(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>, args: Value) -> Value {
    let params = CallToolRequestParams::new("apply_changes")
        .with_arguments(args.as_object().cloned().unwrap());
    serde_json::to_value(client.call_tool(params).await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_mcp_server_applies_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_policy-mcp-server"));
    command.env("POLICY_FILE", &policy);
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "apply_changes"));

    let changes = json!({"changes": {"max_amount_without_approval": 5000}, "idempotency_key": "run-1-attempt-1"});
    let first = call(&client, changes.clone()).await;
    assert_eq!(first["structuredContent"]["applied"], true);
    let again = call(&client, changes).await;
    assert_eq!(again["structuredContent"]["replayed"], true);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    assert_eq!(stored["max_amount_without_approval"], 5000);
    let log = std::fs::read_to_string(dir.path().join("policy.json.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "applied once: {log}");

    let refused = call(
        &client,
        json!({"changes": {"max_amount_without_approval": -1}}),
    )
    .await;
    assert_eq!(refused["isError"], true);
    let _ = client.cancel().await;
}

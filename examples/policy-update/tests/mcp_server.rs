//! The MCP server as Signoff's executor drives it: the built binary started
//! as a child over stdio and called through rmcp's client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ()>;

/// A server over a policy file in a fresh directory.
async fn start(policy: &Path) -> Client {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_policy-mcp-server"));
    command.env("POLICY_FILE", policy);
    ().serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap()
}

/// `apply_changes` with `arguments`; the result as the JSON on the wire.
async fn apply(client: &Client, arguments: Value) -> Value {
    let params = CallToolRequestParams::new("apply_changes")
        .with_arguments(arguments.as_object().cloned().unwrap());
    serde_json::to_value(client.call_tool(params).await.unwrap()).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn log_of(policy: &Path) -> PathBuf {
    let mut name = policy.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

fn guide_changes(amount: u64) -> Value {
    json!({
        "max_amount_without_approval": amount,
        "approval_chain": ["manager", "finance", "cfo"],
    })
}

#[tokio::test]
async fn the_tool_is_listed_with_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let client = start(&dir.path().join("policy.json")).await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = tools.iter().find(|t| t.name == "apply_changes").unwrap();
    let properties = &tool.input_schema["properties"];
    assert!(properties.get("changes").is_some(), "{properties}");
    assert!(properties.get("idempotency_key").is_some(), "{properties}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn changes_are_merged_into_a_new_file_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let client = start(&policy).await;

    let result = apply(&client, json!({"changes": guide_changes(5_000)})).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["applied"], true);
    assert_eq!(
        result["structuredContent"]["policy"]["max_amount_without_approval"],
        5_000
    );
    // The text content carries the same JSON for clients that ignore
    // structured content.
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);

    // A later change replaces its key and keeps the others.
    let result = apply(
        &client,
        json!({"changes": {"max_amount_without_approval": 4_000}}),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let stored = read_json(&policy);
    assert_eq!(stored["max_amount_without_approval"], 4_000);
    assert_eq!(
        stored["approval_chain"],
        json!(["manager", "finance", "cfo"])
    );
    let log = std::fs::read_to_string(log_of(&policy)).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let client = start(&policy).await;
    let call = json!({"changes": guide_changes(5_000), "idempotency_key": "run-1-attempt-1"});

    let first = apply(&client, call.clone()).await;
    assert_eq!(first["structuredContent"]["applied"], true, "{first}");
    // Someone edits the policy by hand between the two calls: a replay must
    // not overwrite that edit.
    let mut edited = read_json(&policy);
    edited["max_amount_without_approval"] = json!(7_500);
    std::fs::write(&policy, edited.to_string()).unwrap();

    let again = apply(&client, call.clone()).await;
    assert_eq!(again["isError"], false, "{again}");
    assert_eq!(again["structuredContent"]["applied"], false);
    assert_eq!(again["structuredContent"]["replayed"], true);
    assert_eq!(
        again["structuredContent"]["policy"],
        first["structuredContent"]["policy"]
    );
    assert_eq!(read_json(&policy)["max_amount_without_approval"], 7_500);
    let log = std::fs::read_to_string(log_of(&policy)).unwrap();
    assert_eq!(log.lines().count(), 1, "applied once: {log}");
    client.cancel().await.unwrap();

    // The key is remembered across restarts of the server.
    let client = start(&policy).await;
    let after_restart = apply(&client, call).await;
    assert_eq!(after_restart["structuredContent"]["replayed"], true);
    assert_eq!(
        std::fs::read_to_string(log_of(&policy))
            .unwrap()
            .lines()
            .count(),
        1
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_a_tool_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let client = start(&policy).await;

    for arguments in [
        json!({"changes": "raise the limit"}),
        json!({"changes": [1, 2]}),
        json!({"idempotency_key": "no-changes"}),
        json!({"changes": {"max_amount_without_approval": -1}}),
        json!({"changes": {"max_amount_without_approval": "5000"}}),
    ] {
        let result = apply(&client, arguments.clone()).await;
        assert_eq!(result["isError"], true, "{arguments}: {result}");
        assert!(
            result["content"][0]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{result}"
        );
    }
    assert!(!policy.exists(), "nothing was applied");

    // A policy file that is not a JSON object is reported, not overwritten.
    std::fs::write(&policy, "[]").unwrap();
    let result = apply(&client, json!({"changes": guide_changes(5_000)})).await;
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), "[]");

    // The server is still serving.
    std::fs::remove_file(&policy).unwrap();
    let result = apply(&client, json!({"changes": guide_changes(5_000)})).await;
    assert_eq!(result["isError"], false, "{result}");
    client.cancel().await.unwrap();
}

//! The two command agents as Signoff runs them: the built binaries, one JSON
//! object on stdin, one on stdout, exit 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn run_raw(binary: &str, input: &[u8]) -> Output {
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn run(binary: &str, input: &Value) -> Value {
    let output = run_raw(binary, input.to_string().as_bytes());
    assert!(
        output.status.success(),
        "{binary}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn draft(task: &Value) -> Value {
    run(env!("CARGO_BIN_EXE_policy-drafter"), task)
}

fn validate(draft: &Value) -> Value {
    run(
        env!("CARGO_BIN_EXE_policy-validator"),
        &json!({"draft": draft, "validation_type": "quality_check"}),
    )
}

fn task() -> Value {
    serde_json::from_str(include_str!("../task.json")).unwrap()
}

#[test]
fn the_first_draft_proposes_10000_and_the_chain() {
    let draft = draft(&task());
    assert_eq!(draft["title"], "Update Expense Approval Policy");
    assert_eq!(draft["type"], "policy_update");
    assert_eq!(draft["scope"], "company_wide");
    assert_eq!(draft["changes"]["max_amount_without_approval"], 10_000);
    assert_eq!(
        draft["changes"]["approval_chain"],
        json!(["manager", "finance", "cfo"])
    );
    assert!(draft["description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[test]
fn a_redraft_after_a_rejection_proposes_5000_and_cites_the_reason() {
    let mut task = task();
    task["previous_rejection"] = json!("10000 is too high; keep it at 5000");
    let draft = draft(&task);
    assert_eq!(draft["changes"]["max_amount_without_approval"], 5_000);
    let description = draft["description"].as_str().unwrap();
    assert!(
        description.contains("10000 is too high; keep it at 5000"),
        "{description}"
    );
}

#[test]
fn the_drafter_is_deterministic() {
    assert_eq!(draft(&task()), draft(&task()));
}

#[test]
fn the_validator_passes_both_drafts_and_prefers_the_lower_limit() {
    let first = validate(&draft(&task()));
    assert_eq!(first["is_valid"], true, "{first}");
    assert_eq!(first["issues"], json!([]));
    let mut task = task();
    task["previous_rejection"] = json!("too high");
    let second = validate(&draft(&task));
    assert_eq!(second["is_valid"], true, "{second}");
    let (first, second) = (
        first["score"].as_f64().unwrap(),
        second["score"].as_f64().unwrap(),
    );
    assert!(second > first && first >= 60.0, "{first} then {second}");
}

#[test]
fn the_validator_flags_bad_drafts() {
    let missing = validate(&json!({"title": "Update Expense Approval Policy"}));
    assert_eq!(missing["is_valid"], false);
    assert!(!missing["issues"].as_array().unwrap().is_empty());

    for amount in [json!(0), json!(-100), json!("5000"), Value::Null] {
        let verdict = validate(&json!({"changes": {
            "max_amount_without_approval": amount,
            "approval_chain": ["manager"],
        }}));
        assert_eq!(verdict["is_valid"], false, "{amount}: {verdict}");
    }

    let high = validate(&json!({"changes": {
        "max_amount_without_approval": 25_000,
        "approval_chain": ["manager", "finance", "cfo"],
    }}));
    assert_eq!(high["is_valid"], true);
    assert!(high["score"].as_f64().unwrap() < 60.0, "{high}");
}

#[test]
fn input_that_is_not_json_fails_with_a_message() {
    for binary in [
        env!("CARGO_BIN_EXE_policy-drafter"),
        env!("CARGO_BIN_EXE_policy-validator"),
    ] {
        let output = run_raw(binary, b"not json");
        assert!(!output.status.success());
        assert!(output.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("not JSON"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

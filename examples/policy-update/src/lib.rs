//! The guide's example workflow, runnable without Python: the "Expense
//! Approval Policy" update (`max_amount_without_approval`, an approval
//! chain of manager, finance and CFO) drafted, validated, approved in
//! Signoff and applied by an MCP tool.
//!
//! - `policy-drafter`: a `command` agent (JSON task on stdin, draft on
//!   stdout); after a rejection it proposes a lower amount and says why.
//! - `policy-validator`: a `command` agent scoring a draft.
//! - `policy-mcp-server`: an MCP server (rmcp, stdio) whose `apply_changes`
//!   tool merges the approved changes into a JSON policy file, once per
//!   idempotency key.
//!
//! See examples/policy-update/README.md for the walk-through.

use serde_json::{Map, Value, json};

/// The amount the first draft proposes.
pub const FIRST_PROPOSAL: u64 = 10_000;
/// The amount a redraft proposes after a rejection.
pub const AFTER_REJECTION: u64 = 5_000;

/// The drafter's answer to `task` (`{"policy_name", "requirements",
/// "previous_rejection"?}`). Deterministic, so a walk-through can show a
/// rejection and the redraft it causes: the first draft proposes
/// [`FIRST_PROPOSAL`]; once a reviewer has rejected, [`AFTER_REJECTION`],
/// with the reviewer's reason quoted in the description.
pub fn draft(task: &Value) -> Value {
    let policy = task
        .get("policy_name")
        .and_then(Value::as_str)
        .unwrap_or("Expense Approval Policy");
    let rejection = task.get("previous_rejection").and_then(Value::as_str);
    let (amount, description) = match rejection {
        None => (
            FIRST_PROPOSAL,
            format!(
                "Raise the amount that needs no approval to {FIRST_PROPOSAL} and route larger expenses through manager, finance and CFO."
            ),
        ),
        Some(reason) => (
            AFTER_REJECTION,
            format!(
                "Redraft after the reviewer said: \"{reason}\". Proposes {AFTER_REJECTION} instead of {FIRST_PROPOSAL}."
            ),
        ),
    };
    let description = match task.get("requirements").and_then(Value::as_str) {
        Some(requirements) if !requirements.trim().is_empty() => {
            format!("{description} Requirements: {}", requirements.trim())
        }
        _ => description,
    };
    json!({
        "title": format!("Update {policy}"),
        "description": description,
        "type": "policy_update",
        "scope": "company_wide",
        "changes": {
            "max_amount_without_approval": amount,
            "approval_chain": ["manager", "finance", "cfo"],
        },
    })
}

/// The validator's verdict on `task` (`{"draft", "validation_type"}`):
/// `{"is_valid", "score", "issues"}`.
///
/// A draft is invalid when its changes are missing, when
/// `max_amount_without_approval` is not a positive number, or when the
/// approval chain is missing or empty. The score falls as the limit rises
/// (95 up to 5000, 80 up to 10000, 55 above: under the example's
/// `min_score: 60`), and by 25 for each issue.
pub fn validate(task: &Value) -> Value {
    let mut issues = Vec::new();
    let changes = task.pointer("/draft/changes").and_then(Value::as_object);
    if changes.is_none() {
        issues.push("draft.changes is missing or not an object".to_owned());
    }
    let amount = changes.and_then(|c| c.get("max_amount_without_approval"));
    let positive = amount.and_then(Value::as_f64).filter(|a| *a > 0.0);
    match (amount, positive) {
        (_, Some(_)) => {}
        (None, None) => {
            issues.push("changes.max_amount_without_approval is missing".to_owned());
        }
        (Some(amount), None) => issues.push(format!(
            "max_amount_without_approval must be a positive number, not {amount}"
        )),
    }
    let chain = changes
        .and_then(|c| c.get("approval_chain"))
        .and_then(Value::as_array);
    if chain.is_none_or(|c| c.is_empty() || !c.iter().all(Value::is_string)) {
        issues.push("changes.approval_chain must be a non-empty list of roles".to_owned());
    }
    // Higher limits are riskier: the score falls as the amount rises.
    let base: f64 = match positive {
        Some(a) if a <= 5_000.0 => 95.0,
        Some(a) if a <= 10_000.0 => 80.0,
        Some(_) => 55.0,
        None => 0.0,
    };
    let penalty = 25.0 * issues.len() as f64;
    let score = (base - penalty).max(0.0);
    json!({"is_valid": issues.is_empty(), "score": score, "issues": issues})
}

/// Merges `changes` into `policy` (a JSON object); keys are replaced whole.
pub fn merge(policy: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (key, value) in changes {
        policy.insert(key.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redraft_lowers_the_amount_and_cites_the_rejection() {
        let first = draft(&json!({"policy_name": "Expense Approval Policy"}));
        assert_eq!(
            first["changes"]["max_amount_without_approval"],
            FIRST_PROPOSAL
        );
        let second = draft(&json!({"previous_rejection": "too high"}));
        assert_eq!(
            second["changes"]["max_amount_without_approval"],
            AFTER_REJECTION
        );
        assert!(
            second["description"]
                .as_str()
                .is_some_and(|d| d.contains("too high"))
        );
    }

    #[test]
    fn the_validator_scores_and_flags() {
        let verdict = validate(&json!({"draft": draft(&json!({}))}));
        assert_eq!(verdict["is_valid"], true);
        assert_eq!(verdict["score"], 80.0);
        let verdict = validate(&json!({"draft": {"changes": {}}}));
        assert_eq!(verdict["is_valid"], false);
        assert_eq!(verdict["issues"].as_array().map(Vec::len), Some(2));
        assert_eq!(verdict["score"], 0.0);
        let verdict = validate(&json!({"draft": {"title": "no changes"}}));
        assert_eq!(verdict["is_valid"], false);
        let too_high = json!({"draft": {"changes": {
            "max_amount_without_approval": 50_000,
            "approval_chain": ["manager"],
        }}});
        let verdict = validate(&too_high);
        assert_eq!(verdict["is_valid"], true);
        assert_eq!(verdict["score"], 55.0);
        let negative = json!({"draft": {"changes": {
            "max_amount_without_approval": -5,
            "approval_chain": ["manager"],
        }}});
        assert_eq!(validate(&negative)["is_valid"], false);
    }
}

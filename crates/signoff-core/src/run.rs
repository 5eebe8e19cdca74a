//! A workflow run: Draft, Validate, Approve, Execute, with redrafts after a
//! rejection. The run's status says where it is; each stage's result is a
//! [`StageRecord`] stored beside it.
//!
//! `executing` is entered by a compare-and-set from `awaiting_approval` (the
//! claim to execute), so an approved action is executed at most once; a run
//! found `executing` after a restart never executes again: it becomes
//! `execution_unknown` for a person to resolve.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Asking the draft agent.
    Drafting,
    /// Asking the validator.
    Validating,
    /// An approval request is open; waiting for a person.
    AwaitingApproval,
    /// Claimed for execution; the executor is being called.
    Executing,
    /// Executed; the result is recorded.
    Succeeded,
    /// The validator refused the draft (or scored it too low).
    ValidationFailed,
    /// Rejected, and no retries left.
    Rejected,
    /// The approval request expired.
    Expired,
    /// An agent or the executor failed (down, timed out, answered garbage,
    /// reported an error).
    Failed,
    /// The server stopped between the claim to execute and the recorded
    /// result: whether the action ran is unknown, and it is never retried
    /// on its own.
    ExecutionUnknown,
    /// The approval request was cancelled.
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 11] = [
        RunStatus::Drafting,
        RunStatus::Validating,
        RunStatus::AwaitingApproval,
        RunStatus::Executing,
        RunStatus::Succeeded,
        RunStatus::ValidationFailed,
        RunStatus::Rejected,
        RunStatus::Expired,
        RunStatus::Failed,
        RunStatus::ExecutionUnknown,
        RunStatus::Cancelled,
    ];

    /// The snake_case name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Drafting => "drafting",
            RunStatus::Validating => "validating",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Executing => "executing",
            RunStatus::Succeeded => "succeeded",
            RunStatus::ValidationFailed => "validation_failed",
            RunStatus::Rejected => "rejected",
            RunStatus::Expired => "expired",
            RunStatus::Failed => "failed",
            RunStatus::ExecutionUnknown => "execution_unknown",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RunStatus::Drafting
                | RunStatus::Validating
                | RunStatus::AwaitingApproval
                | RunStatus::Executing
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The draft agent's proposal.
    Draft,
    /// The validator's verdict.
    Validate,
    /// The approval request and its decision.
    Approve,
    /// The executor's result.
    Execute,
}

impl Stage {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Draft => "draft",
            Stage::Validate => "validate",
            Stage::Approve => "approve",
            Stage::Execute => "execute",
        }
    }

    /// Parses the name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Stage::Draft,
            Stage::Validate,
            Stage::Approve,
            Stage::Execute,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// UUIDv7.
    pub id: Uuid,
    /// The workflow's name in the configuration.
    pub workflow: String,
    /// The task the run was started with.
    pub input: Value,
    /// Who started it (a token's identity); the requester of its approval
    /// requests, who therefore cannot approve them.
    pub started_by: Option<String>,
    /// Where it is.
    pub status: RunStatus,
    /// The current attempt, from 1; a rejection with retries left starts the
    /// next.
    pub attempt: u32,
    /// The current attempt's draft, once drafted.
    pub draft: Option<Value>,
    /// The current attempt's approval request, once opened.
    pub request_id: Option<Uuid>,
    /// The executor's result, once succeeded.
    pub result: Option<Value>,
    /// Why it stopped, for the failure statuses.
    pub error: Option<String>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Run {
    /// A new run of `workflow` on `input`, about to draft.
    pub fn start(id: Uuid, workflow: String, input: Value, now: DateTime<Utc>) -> Self {
        Self {
            id,
            workflow,
            input,
            started_by: None,
            status: RunStatus::Drafting,
            attempt: 1,
            draft: None,
            request_id: None,
            result: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The idempotency key of the current attempt: the same for every try
    /// to open its approval request or execute its action.
    pub fn attempt_key(&self) -> String {
        format!("run-{}-attempt-{}", self.id, self.attempt)
    }
}

/// The result of one stage of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRecord {
    /// The run.
    pub run_id: Uuid,
    /// Which attempt.
    pub attempt: u32,
    /// Which stage.
    pub stage: Stage,
    /// Whether the stage succeeded.
    pub ok: bool,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// What it produced: the draft, the validation, the decision, the
    /// executor's result, or the error.
    pub detail: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert!(RunStatus::ExecutionUnknown.is_final());
        assert!(!RunStatus::Executing.is_final());
        assert_eq!(Stage::parse("execute"), Some(Stage::Execute));
    }

    #[test]
    fn the_attempt_key_is_stable_per_attempt() {
        let mut run = Run::start(Uuid::nil(), "w".into(), Value::Null, Utc::now());
        let first = run.attempt_key();
        assert_eq!(first, run.attempt_key());
        run.attempt += 1;
        assert_ne!(first, run.attempt_key());
    }
}

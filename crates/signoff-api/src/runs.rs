//! Bodies of the workflow routes: `POST /v1/workflows/{name}/runs`,
//! `GET /v1/runs/{id}` and its long poll.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use signoff_core::{Run, RunStatus, StageRecord};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Body of `POST /v1/workflows/{name}/runs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The task for the draft agent (a JSON object).
    #[schema(value_type = Object)]
    pub input: Map<String, Value>,
}

/// Where a run is, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatusView {
    /// Asking the draft agent.
    Drafting,
    /// Asking the validator.
    Validating,
    /// Waiting for a person to decide the approval request.
    AwaitingApproval,
    /// The executor is applying the approved action.
    Executing,
    /// Executed; `result` holds what the executor returned.
    Succeeded,
    /// The validator refused the draft.
    ValidationFailed,
    /// Rejected with no retries left.
    Rejected,
    /// The approval request expired.
    Expired,
    /// An agent or the executor failed; `error` says how.
    Failed,
    /// The server stopped during execution: whether the action ran is
    /// unknown, and it is not retried on its own.
    ExecutionUnknown,
    /// The approval request was cancelled.
    Cancelled,
}

impl From<RunStatus> for RunStatusView {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Drafting => Self::Drafting,
            RunStatus::Validating => Self::Validating,
            RunStatus::AwaitingApproval => Self::AwaitingApproval,
            RunStatus::Executing => Self::Executing,
            RunStatus::Succeeded => Self::Succeeded,
            RunStatus::ValidationFailed => Self::ValidationFailed,
            RunStatus::Rejected => Self::Rejected,
            RunStatus::Expired => Self::Expired,
            RunStatus::Failed => Self::Failed,
            RunStatus::ExecutionUnknown => Self::ExecutionUnknown,
            RunStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<RunStatusView> for RunStatus {
    fn from(status: RunStatusView) -> Self {
        match status {
            RunStatusView::Drafting => Self::Drafting,
            RunStatusView::Validating => Self::Validating,
            RunStatusView::AwaitingApproval => Self::AwaitingApproval,
            RunStatusView::Executing => Self::Executing,
            RunStatusView::Succeeded => Self::Succeeded,
            RunStatusView::ValidationFailed => Self::ValidationFailed,
            RunStatusView::Rejected => Self::Rejected,
            RunStatusView::Expired => Self::Expired,
            RunStatusView::Failed => Self::Failed,
            RunStatusView::ExecutionUnknown => Self::ExecutionUnknown,
            RunStatusView::Cancelled => Self::Cancelled,
        }
    }
}

/// The result of one stage of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StageView {
    /// Which attempt (from 1).
    pub attempt: u32,
    /// draft, validate, approve or execute.
    pub stage: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The draft, the validation, the decision, the result or the error.
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<StageRecord> for StageView {
    fn from(r: StageRecord) -> Self {
        Self {
            attempt: r.attempt,
            stage: r.stage.as_str().to_owned(),
            ok: r.ok,
            at: r.at,
            detail: r.detail,
        }
    }
}

/// A workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    /// UUIDv7.
    pub id: Uuid,
    /// The workflow's name.
    pub workflow: String,
    /// Where it is.
    pub status: RunStatusView,
    /// The current attempt, from 1.
    pub attempt: u32,
    /// The task it started with.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The current attempt's draft.
    #[schema(value_type = Option<Object>)]
    pub draft: Option<Value>,
    /// The current attempt's approval request.
    pub request_id: Option<Uuid>,
    /// What the executor returned.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it stopped, when it failed.
    pub error: Option<String>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Every stage's result, in order (empty in the answer to a start).
    pub stages: Vec<StageView>,
}

impl RunView {
    /// The view of `run` with its `stages`.
    pub fn new(run: Run, stages: Vec<StageRecord>) -> Self {
        Self {
            id: run.id,
            workflow: run.workflow,
            status: run.status.into(),
            attempt: run.attempt,
            input: run.input,
            draft: run.draft,
            request_id: run.request_id,
            result: run.result,
            error: run.error,
            created_at: run.created_at,
            updated_at: run.updated_at,
            stages: stages.into_iter().map(StageView::from).collect(),
        }
    }
}

/// Query of `GET /v1/runs/{id}/wait`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunWaitParams {
    /// Answer once the run is no longer in this status.
    pub status: Option<RunStatusView>,
    /// Answer once the run changed after this time (its `updated_at` as last
    /// seen). With neither `status` nor `since`, the answer is immediate.
    pub since: Option<DateTime<Utc>>,
    /// Seconds to wait, 0 to 300 (default 30).
    #[param(minimum = 0, maximum = 300)]
    pub timeout: Option<u64>,
}

//! How domain values are laid out in a row, for every SQL backend: plain
//! columns (text, integers, JSON text) in, domain values out, with one
//! error for anything that does not decode. Each backend only moves these
//! fields to and from its driver.
//!
//! Timestamps are microseconds since the Unix epoch; JSON is the text
//! serde_json writes; digests are lowercase hex.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use signoff_core::{
    Action, Approval, ApprovalPlan, AuditEntry, AuditEvent, AuditRecord, CanonicalJson, Decision,
    Digest, Request, Role, Run, RunStatus, Stage, StageRecord, Status, TokenRecord, format_time,
};
use signoff_core::{Delivery, DeliveryStatus, Webhook, WebhookFormat};
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// A stored value that does not decode: a bug or tampering.
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// A timestamp as stored.
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// A stored timestamp.
pub fn from_micros(what: &str, value: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value).ok_or_else(|| corrupt(what, value))
}

fn object(what: &str, text: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn json(what: &str, text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn canonical(what: &str, text: &str) -> StoreResult<CanonicalJson> {
    CanonicalJson::parse(text).map_err(|e| corrupt(what, e))
}

fn digest(what: &str, hex: &str) -> StoreResult<Digest> {
    Digest::from_hex(hex).ok_or_else(|| corrupt(what, hex))
}

/// The columns of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column, named as the column
pub struct RequestRow {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub proposed_action: String,
    pub requester: String,
    pub labels: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub status: String,
    pub reviewer: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
    pub rejection_reason: Option<String>,
    pub edited_action: Option<String>,
    pub action_hash: Option<String>,
    pub plan: Option<String>,
    pub approvals: Option<String>,
    pub stage: Option<String>,
    /// When the reminder is due (see [`Request::remind_at`]): written so
    /// the sweeper can find due reminders by index, never read back (the
    /// plan says it).
    pub remind_at: Option<i64>,
}

impl RequestRow {
    /// The row of `request`.
    pub fn encode(request: &Request) -> StoreResult<Self> {
        let decision = request.decision.as_ref();
        Ok(Self {
            id: request.id,
            title: request.title.clone(),
            description: request.description.clone(),
            proposed_action: request.proposed_action.as_str().to_owned(),
            requester: request.requester.clone(),
            labels: text("labels", &request.labels)?,
            created_at: micros(request.created_at),
            expires_at: micros(request.expires_at),
            status: request.status.as_str().to_owned(),
            reviewer: decision.and_then(|d| d.reviewer.clone()),
            decided_at: decision.map(|d| micros(d.decided_at)),
            comment: decision.and_then(|d| d.comment.clone()),
            rejection_reason: decision.and_then(|d| d.rejection_reason.clone()),
            edited_action: decision
                .and_then(|d| d.edited_action.as_ref())
                .map(|edit| text("edited_action", edit))
                .transpose()?,
            action_hash: decision.and_then(|d| d.action_hash).map(|h| h.to_hex()),
            plan: plan_column(request)?,
            approvals: approvals_column(request)?,
            stage: decision.and_then(|d| d.stage.clone()),
            remind_at: request.remind_at().map(micros),
        })
    }

    /// The request in this row.
    pub fn decode(self) -> StoreResult<Request> {
        let status = Status::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?;
        let decision = match self.decided_at {
            Some(at) => Some(Decision {
                reviewer: self.reviewer,
                decided_at: from_micros("decided_at", at)?,
                comment: self.comment,
                rejection_reason: self.rejection_reason,
                edited_action: self
                    .edited_action
                    .map(|t| object("edited_action", &t))
                    .transpose()?,
                action_hash: self
                    .action_hash
                    .map(|h| digest("action_hash", &h))
                    .transpose()?,
                stage: self.stage,
            }),
            None => None,
        };
        let plan = plan_from_column(self.plan.as_deref())?;
        let approvals = approvals_from_column(self.approvals.as_deref(), &plan, decision.as_ref())?;
        Ok(Request {
            id: self.id,
            title: self.title,
            description: self.description,
            // Kept as stored text: most reads only pass it on.
            proposed_action: Action::from_text(self.proposed_action)
                .map_err(|e| corrupt("proposed_action", e))?,
            requester: self.requester,
            labels: serde_json::from_str(&self.labels).map_err(|e| corrupt("labels", e))?,
            created_at: from_micros("created_at", self.created_at)?,
            expires_at: from_micros("expires_at", self.expires_at)?,
            status,
            decision,
            plan,
            approvals,
        })
    }
}

/// The stored form of a request's plan: nothing for the default one.
pub fn plan_column(request: &Request) -> StoreResult<Option<String>> {
    if request.plan.is_single() {
        return Ok(None);
    }
    text("plan", &request.plan).map(Some)
}

/// A stored plan.
pub fn plan_from_column(column: Option<&str>) -> StoreResult<ApprovalPlan> {
    match column {
        Some(text) => serde_json::from_str(text).map_err(|e| corrupt("plan", e)),
        None => Ok(ApprovalPlan::single()),
    }
}

/// The stored form of a request's sign-offs: nothing for none, and nothing
/// for the one sign-off of the default plan, which the decision already
/// holds field for field (the common case costs no JSON either way).
pub fn approvals_column(request: &Request) -> StoreResult<Option<String>> {
    if request.approvals.is_empty()
        || (request.plan.is_single()
            && request.approvals.len() == 1
            && single_sign_off(&request.plan, request.decision.as_ref()).as_ref()
                == request.approvals.first())
    {
        return Ok(None);
    }
    text("approvals", &request.approvals).map(Some)
}

/// Stored sign-offs.
pub fn approvals_from_column(
    column: Option<&str>,
    plan: &ApprovalPlan,
    decision: Option<&Decision>,
) -> StoreResult<Vec<Approval>> {
    match column {
        Some(text) => serde_json::from_str(text).map_err(|e| corrupt("approvals", e)),
        None => Ok(single_sign_off(plan, decision).into_iter().collect()),
    }
}

/// The one sign-off of a request approved under the default plan, as its
/// decision records it.
fn single_sign_off(plan: &ApprovalPlan, decision: Option<&Decision>) -> Option<Approval> {
    let decision = decision?;
    let stage = plan.stages.first()?;
    if !plan.is_single() || decision.stage.as_deref() != Some(stage.name.as_str()) {
        return None;
    }
    Some(Approval {
        stage: stage.name.clone(),
        reviewer: decision.reviewer.clone()?,
        at: decision.decided_at,
        comment: decision.comment.clone(),
        action_hash: decision.action_hash?,
        edited_action: decision.edited_action.clone(),
    })
}

/// `value` as JSON text.
fn text<T: serde::Serialize + ?Sized>(what: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}

/// The columns of an audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub event: String,
    pub request_id: Uuid,
    pub title: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub comment: Option<String>,
    pub action: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    pub original_action: Option<String>,
    pub stage: Option<String>,
}

impl AuditRow {
    /// The row of `entry`.
    pub fn encode(entry: &AuditEntry) -> Self {
        let r = &entry.record;
        Self {
            seq: entry.seq,
            at: format_time(r.at),
            event: r.event.as_str().to_owned(),
            request_id: r.request_id,
            title: r.title.clone(),
            actor: r.actor.clone(),
            reason: r.reason.clone(),
            comment: r.comment.clone(),
            action: r.action.as_ref().map(|a| a.as_str().to_owned()),
            prev_hash: entry.prev_hash.to_hex(),
            hash: entry.hash.to_hex(),
            original_action: r.original_action.as_ref().map(|a| a.as_str().to_owned()),
            stage: r.stage.clone(),
        }
    }

    /// The entry in this row.
    pub fn decode(self) -> StoreResult<AuditEntry> {
        Ok(AuditEntry {
            seq: self.seq,
            record: AuditRecord {
                event: AuditEvent::parse(&self.event)
                    .ok_or_else(|| corrupt("audit event", &self.event))?,
                at: DateTime::parse_from_rfc3339(&self.at)
                    .map_err(|e| corrupt("audit time", e))?
                    .with_timezone(&Utc),
                request_id: self.request_id,
                title: self.title,
                actor: self.actor,
                reason: self.reason,
                comment: self.comment,
                action: self
                    .action
                    .map(|a| canonical("audit action", &a))
                    .transpose()?,
                original_action: self
                    .original_action
                    .map(|a| canonical("audit original action", &a))
                    .transpose()?,
                stage: self.stage,
            },
            prev_hash: digest("prev_hash", &self.prev_hash)?,
            hash: digest("hash", &self.hash)?,
        })
    }
}

/// The columns of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column
pub struct RunRow {
    pub id: Uuid,
    pub workflow: String,
    pub input: String,
    pub status: String,
    pub attempt: i64,
    pub draft: Option<String>,
    pub request_id: Option<Uuid>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_by: Option<String>,
}

impl RunRow {
    /// The row of `run`.
    pub fn encode(run: &Run) -> Self {
        Self {
            id: run.id,
            workflow: run.workflow.clone(),
            input: run.input.to_string(),
            status: run.status.as_str().to_owned(),
            attempt: i64::from(run.attempt),
            draft: run.draft.as_ref().map(Value::to_string),
            request_id: run.request_id,
            result: run.result.as_ref().map(Value::to_string),
            // An error message comes from a peer (an agent's stderr) and
            // may hold a NUL, which PostgreSQL text cannot.
            error: run.error.as_ref().map(|e| e.replace('\0', "\u{fffd}")),
            created_at: micros(run.created_at),
            updated_at: micros(run.updated_at),
            started_by: run.started_by.clone(),
        }
    }

    /// The run in this row.
    pub fn decode(self) -> StoreResult<Run> {
        Ok(Run {
            id: self.id,
            workflow: self.workflow,
            input: json("run input", &self.input)?,
            status: RunStatus::parse(&self.status)
                .ok_or_else(|| corrupt("run status", &self.status))?,
            attempt: u32::try_from(self.attempt).map_err(|e| corrupt("run attempt", e))?,
            draft: self.draft.map(|d| json("run draft", &d)).transpose()?,
            request_id: self.request_id,
            result: self.result.map(|r| json("run result", &r)).transpose()?,
            error: self.error,
            created_at: from_micros("run created_at", self.created_at)?,
            updated_at: from_micros("run updated_at", self.updated_at)?,
            started_by: self.started_by,
        })
    }
}

/// The columns of a run's stage record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column
pub struct StageRow {
    pub run_id: Uuid,
    pub attempt: i64,
    pub stage: String,
    pub ok: bool,
    pub at: i64,
    pub detail: String,
}

impl StageRow {
    /// The row of `record`.
    pub fn encode(record: &StageRecord) -> Self {
        Self {
            run_id: record.run_id,
            attempt: i64::from(record.attempt),
            stage: record.stage.as_str().to_owned(),
            ok: record.ok,
            at: micros(record.at),
            detail: record.detail.to_string(),
        }
    }

    /// The record in this row.
    pub fn decode(self) -> StoreResult<StageRecord> {
        Ok(StageRecord {
            run_id: self.run_id,
            attempt: u32::try_from(self.attempt).map_err(|e| corrupt("stage attempt", e))?,
            stage: Stage::parse(&self.stage).ok_or_else(|| corrupt("stage", &self.stage))?,
            ok: self.ok,
            at: from_micros("stage time", self.at)?,
            detail: json("stage detail", &self.detail)?,
        })
    }
}

/// The columns of an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub groups: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenRow {
    /// The row of `token`.
    pub fn encode(token: &TokenRecord) -> StoreResult<Self> {
        Ok(Self {
            id: token.id.clone(),
            name: token.name.clone(),
            role: token.role.as_str().to_owned(),
            groups: serde_json::to_string(&token.groups).map_err(|e| corrupt("groups", e))?,
            secret_hash: token.secret_hash.to_hex(),
            created_at: micros(token.created_at),
            expires_at: token.expires_at.map(micros),
            revoked_at: token.revoked_at.map(micros),
        })
    }

    /// The token in this row.
    pub fn decode(self) -> StoreResult<TokenRecord> {
        Ok(TokenRecord {
            id: self.id,
            name: self.name,
            role: Role::parse(&self.role).ok_or_else(|| corrupt("token role", &self.role))?,
            groups: serde_json::from_str(&self.groups).map_err(|e| corrupt("token groups", e))?,
            secret_hash: digest("token hash", &self.secret_hash)?,
            created_at: from_micros("token created_at", self.created_at)?,
            expires_at: self
                .expires_at
                .map(|at| from_micros("token expires_at", at))
                .transpose()?,
            revoked_at: self
                .revoked_at
                .map(|at| from_micros("token revoked_at", at))
                .transpose()?,
        })
    }
}

/// The columns of a webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column, named as the column
pub struct WebhookRow {
    pub id: Uuid,
    pub url: String,
    pub events: String,
    pub secret: String,
    pub format: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub cursor: i64,
}

impl WebhookRow {
    /// The row of `hook`.
    pub fn encode(hook: &Webhook) -> StoreResult<Self> {
        Ok(Self {
            id: hook.id,
            url: hook.url.clone(),
            events: serde_json::to_string(&hook.events).map_err(|e| corrupt("events", e))?,
            secret: hook.secret.clone(),
            format: hook.format.as_str().to_owned(),
            created_by: hook.created_by.clone(),
            created_at: micros(hook.created_at),
            cursor: hook.cursor,
        })
    }

    /// The subscription in this row.
    pub fn decode(self) -> StoreResult<Webhook> {
        Ok(Webhook {
            id: self.id,
            url: self.url,
            events: serde_json::from_str(&self.events).map_err(|e| corrupt("webhook events", e))?,
            secret: self.secret,
            format: WebhookFormat::parse(&self.format)
                .ok_or_else(|| corrupt("webhook format", &self.format))?,
            created_by: self.created_by,
            created_at: from_micros("webhook created_at", self.created_at)?,
            cursor: self.cursor,
        })
    }
}

/// The columns of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column, named as the column
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub seq: i64,
    pub event: String,
    pub request_id: Uuid,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl DeliveryRow {
    /// The row of `delivery`.
    pub fn encode(delivery: &Delivery) -> Self {
        Self {
            id: delivery.id,
            webhook_id: delivery.webhook_id,
            seq: delivery.seq,
            event: delivery.event.clone(),
            request_id: delivery.request_id,
            body: delivery.body.clone(),
            status: delivery.status.as_str().to_owned(),
            attempts: i64::from(delivery.attempts),
            next_attempt_at: micros(delivery.next_attempt_at),
            last_status: delivery.last_status.map(i64::from),
            last_error: delivery.last_error.clone(),
            created_at: micros(delivery.created_at),
            delivered_at: delivery.delivered_at.map(micros),
        }
    }

    /// The delivery in this row.
    pub fn decode(self) -> StoreResult<Delivery> {
        Ok(Delivery {
            id: self.id,
            webhook_id: self.webhook_id,
            seq: self.seq,
            event: self.event,
            request_id: self.request_id,
            body: self.body,
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| corrupt("delivery status", &self.status))?,
            attempts: u32::try_from(self.attempts).map_err(|e| corrupt("delivery attempts", e))?,
            next_attempt_at: from_micros("delivery next_attempt_at", self.next_attempt_at)?,
            last_status: self
                .last_status
                .map(u16::try_from)
                .transpose()
                .map_err(|e| corrupt("delivery last_status", e))?,
            last_error: self.last_error,
            created_at: from_micros("delivery created_at", self.created_at)?,
            delivered_at: self
                .delivered_at
                .map(|at| from_micros("delivery delivered_at", at))
                .transpose()?,
        })
    }
}

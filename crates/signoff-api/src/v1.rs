//! Bodies of the `/v1` API.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use signoff_core::{Action, ApprovalPlan, AuditEntry, CanonicalJson, Request, Status};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A request's life, as seconds or as a duration string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ExpiresIn {
    /// Seconds; 0 means already expired.
    Seconds(u64),
    /// Digits with an optional unit: "90s", "30m", "24h", "7d".
    Text(String),
}

impl<'de> Deserialize<'de> for ExpiresIn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExpiresInVisitor)
    }
}

/// Reads seconds or a duration string. A whole number written as a float
/// (`3600.0`) is an integer to JSON Schema, so it is one here too.
struct ExpiresInVisitor;

impl serde::de::Visitor<'_> for ExpiresInVisitor {
    type Value = ExpiresIn;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("seconds (a non-negative integer) or a duration string such as \"30m\"")
    }

    fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<ExpiresIn, E> {
        Ok(ExpiresIn::Seconds(seconds))
    }

    fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<ExpiresIn, E> {
        u64::try_from(seconds)
            .map(ExpiresIn::Seconds)
            .map_err(|_| E::custom("expires_in must not be negative"))
    }

    fn visit_f64<E: serde::de::Error>(self, seconds: f64) -> Result<ExpiresIn, E> {
        whole(seconds)
            .map(ExpiresIn::Seconds)
            .ok_or_else(|| E::custom("expires_in must be a whole number of seconds"))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ExpiresIn, E> {
        Ok(ExpiresIn::Text(text.to_owned()))
    }
}

/// `value` as an integer when it is a non-negative whole number that fits.
pub fn whole(value: f64) -> Option<u64> {
    // 2^64 as f64; anything at or above it does not fit.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    (value.fract() == 0.0 && (0.0..LIMIT).contains(&value)).then_some(value as u64)
}

impl utoipa::PartialSchema for ExpiresIn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(999_999_999)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^([0-9]{1,9}s?|[0-9]{1,7}m|[0-9]{1,5}h|[0-9]{1,4}d)$")),
            )
            .description(Some(
                "Seconds, or digits with a unit (\"90s\", \"30m\", \"24h\", \"7d\"); 0 means already expired.",
            ))
            .into()
    }
}

impl ToSchema for ExpiresIn {}

/// Labels: string values, at most 32 of them.
fn labels_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(
            ObjectBuilder::new().schema_type(Type::String).into(),
        )))
        .max_properties(Some(32))
        .description(Some("Free-form tags (at most 32)."))
        .build()
}

/// Body of `POST /v1/requests`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// 1 to 200 characters, not all white space.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub title: String,
    /// Free text for the reviewer (at most 20000 characters).
    #[serde(default)]
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub description: String,
    /// The change to approve: any JSON object (at most 256 KiB as JSON).
    #[schema(value_type = Object)]
    pub proposed_action: Map<String, Value>,
    /// Who asks (defaults to "anonymous").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub requester: Option<String>,
    /// Free-form tags (at most 32).
    #[serde(default)]
    #[schema(schema_with = labels_schema)]
    pub labels: BTreeMap<String, String>,
    /// How long it stays open (default 24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<ExpiresIn>,
}

/// Body of `POST /v1/requests/{id}/approve`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// Who signs off. Required when the server runs without auth; with auth
    /// on, omit it (the token's identity is recorded) or give that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reviewer: Option<String>,
    /// Optional remark (at most 20,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub comment: Option<String>,
    /// Approve with edits: the action as the reviewer changed it. This is
    /// what runs, and what the approval's `action_hash` binds; the trail
    /// keeps the proposed action beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub edited_action: Option<Map<String, Value>>,
}

/// Body of `POST /v1/requests/{id}/reject`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Who refuses; as for approval, required only without auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reviewer: Option<String>,
    /// Why: required, and sent back to the drafter.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reason: String,
}

/// Body of `POST /v1/requests/{id}/cancel` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Who withdraws it (defaults to "anonymous").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub actor: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reason: Option<String>,
}

/// A request's status on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusView {
    /// Waiting for a reviewer.
    Pending,
    /// Signed off.
    Approved,
    /// Refused.
    Rejected,
    /// Ran out of time.
    Expired,
    /// Withdrawn.
    Cancelled,
}

impl From<Status> for StatusView {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Approved => Self::Approved,
            Status::Rejected => Self::Rejected,
            Status::Expired => Self::Expired,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

impl From<StatusView> for Status {
    fn from(status: StatusView) -> Self {
        match status {
            StatusView::Pending => Self::Pending,
            StatusView::Approved => Self::Approved,
            StatusView::Rejected => Self::Rejected,
            StatusView::Expired => Self::Expired,
            StatusView::Cancelled => Self::Cancelled,
        }
    }
}

/// How a request left `pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    /// Who decided or cancelled; null when it expired.
    pub reviewer: Option<String>,
    /// When.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub decided_at: DateTime<Utc>,
    /// The reviewer's comment, or the reason given on cancel.
    pub comment: Option<String>,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// On an approval with edits: the action as approved (it replaces
    /// `proposed_action` for execution).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub edited_action: Option<Map<String, Value>>,
    /// On approval: hex SHA-256 of the canonical JSON of the approved action.
    #[serde(default)]
    pub action_hash: Option<String>,
    /// The stage of the approval chain the final approval or the rejection
    /// was given at; null for expiry, cancellation and automatic approval.
    #[serde(default)]
    pub stage: Option<String>,
}

/// Who may sign off at a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EligibleView {
    /// Any reviewer may (the stage names nobody).
    pub any_reviewer: bool,
    /// These users may.
    pub users: Vec<String>,
    /// Members of these groups may.
    pub groups: Vec<String>,
}

/// One sign-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// Who.
    pub reviewer: String,
    /// When.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub at: DateTime<Utc>,
    /// Their remark.
    pub comment: Option<String>,
    /// Hex SHA-256 of the action they approved.
    pub action_hash: String,
    /// Whether they edited the action (only the first sign-off may).
    pub edited: bool,
}

/// Where one stage of a request's approval chain stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalStageView {
    /// Its name.
    pub name: String,
    /// Distinct sign-offs it needs.
    pub quorum: u32,
    /// Who may sign off.
    pub eligible: EligibleView,
    /// The sign-offs it has, in order.
    pub approvals: Vec<ApprovalView>,
    /// `done` (quorum reached), `current` (the one being decided now) or
    /// `waiting` (comes later in the chain).
    #[schema(value_type = String)]
    pub state: Cow<'static, str>,
}

/// What a request needs before it is approved, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    /// The policy it follows (`default`: one sign-off by any reviewer).
    pub policy: String,
    /// The rule that chose the policy, if one did.
    pub rule: Option<String>,
    /// The stage being decided; null once the request left `pending`.
    pub current_stage: Option<String>,
    /// Sign-offs the current stage still needs.
    pub remaining: u32,
    /// Who may still sign off now: the current stage's eligible reviewers,
    /// less those who already signed (each person counts once) and the
    /// requester. Null once the request left `pending`.
    pub may_approve: Option<EligibleView>,
    /// Every stage, in order.
    pub stages: Vec<ApprovalStageView>,
    /// When reviewers are reminded if it is still pending (its policy's
    /// `remind_at`); null when there is no reminder or it was given.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize_option")]
    pub remind_at: Option<DateTime<Utc>>,
    /// The group the reminder adds to the current stage's reviewers.
    pub escalate_to: Option<String>,
}

impl PlanView {
    /// The view of `r`'s plan. The plan is moved out of `r` (which is being
    /// turned into its view) so that its strings are not copied.
    fn of(r: &mut Request) -> Self {
        let remind_at = r.remind_at();
        let plan = std::mem::replace(
            &mut r.plan,
            ApprovalPlan {
                policy: String::new(),
                rule: None,
                stages: Vec::new(),
                reminder: None,
            },
        );
        let progress = signoff_core::progress(&plan, &r.approvals);
        let pending = r.status == signoff_core::Status::Pending;
        let current = progress.current.filter(|_| pending);
        let signed = |name: &String| r.approvals.iter().any(|a| &a.reviewer == name);
        let current_stage = current.and_then(|c| plan.stages.get(c));
        let may_approve = current_stage.map(|stage| EligibleView {
            any_reviewer: stage.is_open(),
            users: stage
                .users
                .iter()
                .filter(|u| !signed(u) && **u != r.requester)
                .cloned()
                .collect(),
            groups: stage.groups.clone(),
        });
        let current_stage = current_stage.map(|s| s.name.clone());
        let stages = plan
            .stages
            .into_iter()
            .enumerate()
            .map(|(index, stage)| ApprovalStageView {
                quorum: stage.quorum,
                eligible: EligibleView {
                    any_reviewer: stage.is_open(),
                    users: stage.users,
                    groups: stage.groups,
                },
                approvals: r
                    .approvals
                    .iter()
                    .filter(|a| a.stage == stage.name)
                    .map(|a| ApprovalView {
                        reviewer: a.reviewer.clone(),
                        at: a.at,
                        comment: a.comment.clone(),
                        action_hash: a.action_hash.to_hex(),
                        edited: a.edited_action.is_some(),
                    })
                    .collect(),
                state: Cow::Borrowed(match progress.current {
                    Some(c) if index == c => "current",
                    Some(c) if index > c => "waiting",
                    _ => "done",
                }),
                name: stage.name,
            })
            .collect();
        Self {
            policy: plan.policy,
            rule: plan.rule,
            current_stage,
            remaining: if pending { progress.remaining } else { 0 },
            may_approve,
            stages,
            remind_at,
            escalate_to: plan
                .reminder
                .filter(|_| pending)
                .and_then(|reminder| reminder.escalate_to),
        }
    }
}

/// An approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    /// UUIDv7.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// The change to approve.
    #[schema(value_type = Object)]
    pub proposed_action: Action,
    /// Who asked.
    pub requester: String,
    /// Tags.
    pub labels: BTreeMap<String, String>,
    /// When it was created.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// When it expires (or expired).
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub expires_at: DateTime<Utc>,
    /// Where it is in its life.
    pub status: StatusView,
    /// Set once it left `pending`.
    pub decision: Option<DecisionView>,
    /// What it needs before it is approved: its policy's stages, who signed
    /// off, and who still may.
    pub approval: PlanView,
}

impl From<Request> for RequestView {
    fn from(mut r: Request) -> Self {
        let approval = PlanView::of(&mut r);
        Self {
            id: r.id,
            title: r.title,
            description: r.description,
            proposed_action: r.proposed_action,
            requester: r.requester,
            labels: r.labels,
            created_at: r.created_at,
            expires_at: r.expires_at,
            status: r.status.into(),
            decision: r.decision.map(|d| DecisionView {
                reviewer: d.reviewer,
                decided_at: d.decided_at,
                comment: d.comment,
                rejection_reason: d.rejection_reason,
                edited_action: d.edited_action,
                action_hash: d.action_hash.map(|h| h.to_hex()),
                stage: d.stage,
            }),
            approval,
        }
    }
}

/// A page of requests, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestPage {
    /// The requests.
    pub requests: Vec<RequestView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /v1/requests`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only requests in this status.
    pub status: Option<StatusView>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<String>,
}

/// Query of `GET /v1/requests/{id}/wait`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Seconds to wait for a decision, 0 to 300 (default 30).
    #[param(minimum = 0, maximum = 300)]
    pub timeout: Option<u64>,
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only the trail of this request.
    pub request_id: Option<Uuid>,
    /// Only entries after this sequence number.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One audit trail entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the trail, from 1.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub timestamp: DateTime<Utc>,
    /// created, approved, endorsed (a sign-off that did not yet complete
    /// the approval chain), rejected, expired, cancelled, reminded (still
    /// pending at its policy's reminder point), or denied (a
    /// refused attempt to decide it).
    pub event: String,
    /// The request.
    pub request_id: Uuid,
    /// Its title.
    pub title: String,
    /// Who did it; null for expiry.
    pub actor: Option<String>,
    /// Rejection or cancellation reason.
    pub reason: Option<String>,
    /// Reviewer's comment.
    pub comment: Option<String>,
    /// The proposed action on creation; the approved action on approval.
    #[schema(value_type = Option<Object>)]
    pub action: Option<Value>,
    /// On an approval with edits: the action as proposed, before the edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub original_action: Option<Value>,
    /// On an approval, endorsement or rejection: the stage of the request's
    /// approval chain it was given at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            seq: e.seq,
            timestamp: e.record.at,
            event: e.record.event.as_str().to_owned(),
            request_id: e.record.request_id,
            title: e.record.title,
            actor: e.record.actor,
            reason: e.record.reason,
            comment: e.record.comment,
            action: e.record.action.as_ref().map(CanonicalJson::to_value),
            original_action: e
                .record
                .original_action
                .as_ref()
                .map(CanonicalJson::to_value),
            stage: e.record.stage,
            prev_hash: e.prev_hash.to_hex(),
            hash: e.hash.to_hex(),
        }
    }
}

/// A page of the audit trail, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainBreakView {
    /// The first entry that does not fit.
    pub seq: i64,
    /// edited, removed, reordered, truncated or head_mismatch.
    pub fault: String,
    /// What is wrong, in words.
    pub message: String,
}

/// Result of `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    /// True when the whole trail is intact.
    pub ok: bool,
    /// Entries checked before the walk ended.
    pub checked: u64,
    /// The last sequence number recorded in the head.
    pub last_seq: i64,
    /// The head hash recorded beside the trail.
    pub head_hash: String,
    /// The first break, when not ok.
    pub broken: Option<ChainBreakView>,
}

/// The body of every `/v1` error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human-readable message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: bad_request, not_found, conflict, expired, ...
    pub code: String,
    /// What went wrong and, for bad input, which field and why.
    pub message: String,
}

/// Body of `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// "ok".
    pub status: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use signoff_core::Title;
    use utoipa::PartialSchema;

    use super::*;

    /// The title's pattern in the OpenAPI document accepts exactly what
    /// `Title::parse` accepts, character by character. The pattern names
    /// the blank characters one by one: `\s` means different sets in
    /// different regex engines (Python's includes U+001C..U+001F,
    /// ECMAScript's U+FEFF), and schemathesis generates with one and
    /// validates with another.
    #[test]
    fn the_title_pattern_is_the_title_parser() {
        let schema = serde_json::to_value(NewRequest::schema()).unwrap();
        let pattern = schema["properties"]["title"]["pattern"].as_str().unwrap();
        let regex = regex::Regex::new(pattern).unwrap();
        for c in (1..=0xFFFF).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(
                regex.is_match(&text),
                Title::parse(&text).is_ok(),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(!regex.is_match("a\u{0}b"));
        assert!(regex.is_match("\u{1e}x"));
    }
}

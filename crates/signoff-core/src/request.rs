//! An approval request and the only place its status may change.
//!
//! `pending` is the one open state: from it a request is approved, rejected,
//! cancelled or expired, and a decided request never changes again. Each
//! transition returns the [`AuditRecord`] that the store must append in the
//! same transaction as the new state.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::action::Action;
use crate::audit::{AuditEvent, AuditRecord, CanonicalJson, Digest, action_hash};
use crate::input::{Actor, ExpiresIn, Reason, Title};
use crate::policy::{Approval, ApprovalPlan, progress};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a reviewer; the only state that can change.
    Pending,
    /// A reviewer signed off; the action may run.
    Approved,
    /// A reviewer refused, with a reason.
    Rejected,
    /// Nobody decided before `expires_at`.
    Expired,
    /// Withdrawn before anyone decided.
    Cancelled,
}

impl Status {
    /// Every status, in life-cycle order.
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Approved,
        Status::Rejected,
        Status::Expired,
        Status::Cancelled,
    ];

    /// The lowercase name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the request can no longer change.
    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request left `pending`: by whom, when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The reviewer who approved or rejected, or whoever cancelled; `None`
    /// when the request expired.
    pub reviewer: Option<String>,
    /// When the request left `pending`.
    pub decided_at: DateTime<Utc>,
    /// The reviewer's comment on approval, or the reason given on cancel.
    pub comment: Option<String>,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// The action as the reviewer edited it, when they approved with edits
    /// (`None`: the proposed action was approved as it was).
    pub edited_action: Option<Map<String, Value>>,
    /// On approval: the SHA-256 of the canonical JSON of the action that was
    /// approved (the edit, or else the proposed action). An executor runs
    /// only an action with this hash.
    pub action_hash: Option<Digest>,
    /// The stage of the approval plan the approval or rejection was given
    /// at (`None` for expiry, cancellation and automatic approval).
    pub stage: Option<String>,
}

/// A proposed action waiting for, or past, a person's sign-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// UUIDv7: time-ordered, so "newest first" is "largest id first".
    pub id: Uuid,
    /// What the reviewer sees first.
    pub title: String,
    /// Free text for the reviewer.
    pub description: String,
    /// The change that runs only once approved.
    pub proposed_action: Action,
    /// Who asked.
    pub requester: String,
    /// Free-form tags for filtering and routing.
    pub labels: BTreeMap<String, String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// After this instant it can no longer be approved.
    pub expires_at: DateTime<Utc>,
    /// Where it is in its life.
    pub status: Status,
    /// Set once it left `pending`.
    pub decision: Option<Decision>,
    /// What it needs before it is approved.
    pub plan: ApprovalPlan,
    /// The sign-offs given so far, in order.
    pub approvals: Vec<Approval>,
}

/// A valid request that does not exist yet: every field already parsed.
#[derive(Debug, Clone)]
pub struct RequestDraft {
    /// The title.
    pub title: Title,
    /// The description (may be empty).
    pub description: String,
    /// The change to approve, made from the caller's map off the store's
    /// single writer (the server does it while checking the action's size).
    pub proposed_action: Action,
    /// Who asks.
    pub requester: Actor,
    /// Tags.
    pub labels: BTreeMap<String, String>,
    /// How long it stays open.
    pub expires_in: ExpiresIn,
    /// What it will need ([`ApprovalPlan::single`] without policies).
    pub plan: ApprovalPlan,
}

impl RequestDraft {
    /// Makes the request with its id at `now`, with the audit records of its
    /// creation: `created`, followed by `approved` when its plan needs
    /// nobody (with the rule as actor), or else by `expired` when it was
    /// given no time at all (`expires_in` 0).
    pub fn open(self, id: Uuid, now: DateTime<Utc>) -> (Request, Vec<AuditRecord>) {
        let action = self.proposed_action.canonical();
        let mut request = Request {
            id,
            title: self.title.as_str().to_owned(),
            description: self.description,
            proposed_action: self.proposed_action,
            requester: self.requester.into_string(),
            labels: self.labels,
            created_at: now,
            expires_at: now + self.expires_in.duration(),
            status: Status::Pending,
            decision: None,
            plan: self.plan,
            approvals: Vec::new(),
        };
        let mut records = vec![AuditRecord {
            event: AuditEvent::Created,
            at: now,
            request_id: id,
            title: request.title.clone(),
            actor: Some(request.requester.clone()),
            reason: None,
            comment: None,
            action: Some(action),
            original_action: None,
            stage: None,
        }];
        if request.plan.approves_at_once() {
            records.push(request.approve_automatically(now));
        } else if let Ok(expired) = request.expire(now) {
            records.push(expired);
        }
        (request, records)
    }
}

/// What a reviewer (or the requester) says about a pending request.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Sign off, optionally with a comment, optionally on an edited action.
    Approve {
        /// Who signs off.
        reviewer: Actor,
        /// The reviewer's groups when their identity is verified (a token);
        /// `None` in single-user mode, where eligibility is not checked.
        groups: Option<Vec<String>>,
        /// Optional remark.
        comment: Option<String>,
        /// The action as the reviewer changed it; what runs instead of the
        /// proposed one.
        edited_action: Option<Map<String, Value>>,
    },
    /// Refuse, saying why.
    Reject {
        /// Who refuses.
        reviewer: Actor,
        /// As for [`Verdict::Approve`].
        groups: Option<Vec<String>>,
        /// Why: goes back to the drafter.
        reason: Reason,
    },
    /// Withdraw the request.
    Cancel {
        /// Who withdraws it.
        actor: Actor,
        /// Optional explanation.
        reason: Option<Reason>,
    },
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The request already left `pending`.
    #[error("request was already {status}")]
    AlreadyFinal {
        /// Its final status.
        status: Status,
    },
    /// The request's time ran out; it is (now) `expired`.
    #[error("request expired at {}", expires_at.to_rfc3339())]
    Expired {
        /// When it expired.
        expires_at: DateTime<Utc>,
    },
    /// The reviewer is not eligible at the request's current stage (either
    /// not named there, or the stage comes later in the chain).
    #[error("{reviewer} may not decide at stage '{stage}': it needs {eligible}")]
    NotEligible {
        /// Who tried.
        reviewer: String,
        /// The stage the request is in.
        stage: String,
        /// Who may, as people read it.
        eligible: String,
    },
    /// The reviewer already signed off this request (each person counts
    /// once, across every stage).
    #[error("{reviewer} already approved this request (at stage '{stage}')")]
    AlreadySigned {
        /// Who.
        reviewer: String,
        /// Where they signed.
        stage: String,
    },
    /// Only the first sign-off may edit the action: everyone after it
    /// approves the action as it stands.
    #[error(
        "the action can only be edited before anyone has approved it; reject with a reason to have it redrafted"
    )]
    EditAfterApproval,
    /// `expire` was asked of a request whose time has not run out.
    #[error("request does not expire until {}", expires_at.to_rfc3339())]
    NotOverdue {
        /// When it will expire.
        expires_at: DateTime<Utc>,
    },
}

/// Why an action may not be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionBindingError {
    /// Only an approved request's action runs.
    #[error("request is {status}, not approved")]
    NotApproved {
        /// Its status.
        status: Status,
    },
    /// The approval recorded no hash (a store that lost it).
    #[error("the approval recorded no action hash")]
    NoHash,
    /// The action is not the one that was approved.
    #[error("action hash {actual} does not match the approved {expected}")]
    Mismatch {
        /// Recorded with the approval.
        expected: Digest,
        /// Of the action at hand.
        actual: Digest,
    },
}

/// What a verdict did to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// The verdict took effect; append this record.
    Applied(AuditRecord),
    /// The request had run out of time: it is now `expired` instead and the
    /// verdict is refused with [`TransitionError::Expired`]. Append this
    /// record all the same, so the stored status says `expired`.
    ExpiredInstead(AuditRecord),
    /// Nothing changed.
    Refused(TransitionError),
    /// Nothing changed, and the attempt was by someone not allowed to make
    /// it: append this `denied` record.
    Denied(AuditRecord, TransitionError),
}

impl Request {
    /// Whether its time ran out at `now` (it may still say `pending` until the
    /// sweeper or a decision records that).
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// Applies a verdict at `now`. An overdue request can never be approved:
    /// it becomes `expired` instead.
    pub fn decide(&mut self, verdict: Verdict, now: DateTime<Utc>) -> Decided {
        if self.status.is_final() {
            return Decided::Refused(TransitionError::AlreadyFinal {
                status: self.status,
            });
        }
        if self.is_overdue(now) {
            return match self.expire(now) {
                Ok(record) => Decided::ExpiredInstead(record),
                Err(err) => Decided::Refused(err),
            };
        }
        match verdict {
            Verdict::Approve {
                reviewer,
                groups,
                comment,
                edited_action,
            } => self.approve(reviewer, groups.as_deref(), comment, edited_action, now),
            Verdict::Reject {
                reviewer,
                groups,
                reason,
            } => self.reject(reviewer, groups.as_deref(), reason, now),
            Verdict::Cancel { actor, reason } => {
                let reason = reason.map(Reason::into_string);
                self.status = Status::Cancelled;
                self.decision = Some(Decision {
                    reviewer: Some(actor.as_str().to_owned()),
                    decided_at: now,
                    comment: reason.clone(),
                    rejection_reason: None,
                    edited_action: None,
                    action_hash: None,
                    stage: None,
                });
                Decided::Applied(self.record(
                    AuditEvent::Cancelled,
                    now,
                    Some(actor.into_string()),
                    reason,
                    None,
                    None,
                ))
            }
        }
    }

    /// The stage the request waits at, when `reviewer` (in `groups`, if
    /// verified) may decide there; otherwise the refusal to return.
    fn stage_for(
        &self,
        reviewer: &Actor,
        groups: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<String, Box<Decided>> {
        let Some(index) = progress(&self.plan, &self.approvals).current else {
            // Every stage has its quorum yet the request is pending: only a
            // store that lost the status can get here.
            return Err(Box::new(Decided::Refused(TransitionError::AlreadyFinal {
                status: Status::Approved,
            })));
        };
        let stage = &self.plan.stages[index];
        if let Some(groups) = groups
            && !stage.admits(reviewer.as_str(), groups)
        {
            let error = TransitionError::NotEligible {
                reviewer: reviewer.as_str().to_owned(),
                stage: stage.name.clone(),
                eligible: stage.eligible_text(),
            };
            let record = self.denial(now, Some(reviewer.as_str().to_owned()), error.to_string());
            return Err(Box::new(Decided::Denied(record, error)));
        }
        Ok(stage.name.clone())
    }

    fn approve(
        &mut self,
        reviewer: Actor,
        groups: Option<&[String]>,
        comment: Option<String>,
        edited_action: Option<Map<String, Value>>,
        now: DateTime<Utc>,
    ) -> Decided {
        let stage = match self.stage_for(&reviewer, groups, now) {
            Ok(stage) => stage,
            Err(refusal) => return *refusal,
        };
        if let Some(earlier) = self
            .approvals
            .iter()
            .find(|a| a.reviewer == reviewer.as_str())
        {
            return Decided::Refused(TransitionError::AlreadySigned {
                reviewer: earlier.reviewer.clone(),
                stage: earlier.stage.clone(),
            });
        }
        if edited_action.is_some() && !self.approvals.is_empty() {
            return Decided::Refused(TransitionError::EditAfterApproval);
        }
        // The trail shows what this reviewer approved and, for an edit,
        // what was proposed; the approval is bound to the same bytes.
        let action = match &edited_action {
            Some(edit) => CanonicalJson::of_object(edit),
            None => self.current_action_canonical(),
        };
        let hash = action.digest();
        let original_action = edited_action
            .as_ref()
            .map(|_| self.proposed_action.canonical());
        self.approvals.push(Approval {
            stage: stage.clone(),
            reviewer: reviewer.as_str().to_owned(),
            at: now,
            comment: comment.clone(),
            action_hash: hash,
            edited_action,
        });
        let complete = progress(&self.plan, &self.approvals).current.is_none();
        let event = if complete {
            self.status = Status::Approved;
            self.decision = Some(Decision {
                reviewer: Some(reviewer.as_str().to_owned()),
                decided_at: now,
                comment: comment.clone(),
                rejection_reason: None,
                edited_action: self.approvals.first().and_then(|a| a.edited_action.clone()),
                action_hash: Some(hash),
                stage: Some(stage.clone()),
            });
            AuditEvent::Approved
        } else {
            AuditEvent::Endorsed
        };
        let mut record = self.record(
            event,
            now,
            Some(reviewer.into_string()),
            None,
            comment,
            Some(action),
        );
        record.original_action = original_action;
        record.stage = Some(stage);
        Decided::Applied(record)
    }

    fn reject(
        &mut self,
        reviewer: Actor,
        groups: Option<&[String]>,
        reason: Reason,
        now: DateTime<Utc>,
    ) -> Decided {
        let stage = match self.stage_for(&reviewer, groups, now) {
            Ok(stage) => stage,
            Err(refusal) => return *refusal,
        };
        self.status = Status::Rejected;
        self.decision = Some(Decision {
            reviewer: Some(reviewer.as_str().to_owned()),
            decided_at: now,
            comment: None,
            rejection_reason: Some(reason.as_str().to_owned()),
            edited_action: None,
            action_hash: None,
            stage: Some(stage.clone()),
        });
        let mut record = self.record(
            AuditEvent::Rejected,
            now,
            Some(reviewer.into_string()),
            Some(reason.into_string()),
            None,
            None,
        );
        record.stage = Some(stage);
        Decided::Applied(record)
    }

    /// Approves a request whose plan needs nobody, with the rule (or
    /// policy) as the actor.
    fn approve_automatically(&mut self, now: DateTime<Utc>) -> AuditRecord {
        let actor = self.plan.automatic_actor();
        let comment = match &self.plan.rule {
            Some(rule) => format!("approved automatically by rule '{rule}'"),
            None => format!("approved automatically by policy '{}'", self.plan.policy),
        };
        let action = self.proposed_action.canonical();
        self.status = Status::Approved;
        self.decision = Some(Decision {
            reviewer: Some(actor.clone()),
            decided_at: now,
            comment: Some(comment.clone()),
            rejection_reason: None,
            edited_action: None,
            action_hash: Some(action.digest()),
            stage: None,
        });
        self.record(
            AuditEvent::Approved,
            now,
            Some(actor),
            None,
            Some(comment),
            Some(action),
        )
    }

    /// The canonical text of the action as it stands: the first sign-off's
    /// edit, or else the proposed action.
    fn current_action_canonical(&self) -> CanonicalJson {
        match self
            .approvals
            .first()
            .and_then(|a| a.edited_action.as_ref())
        {
            Some(edit) => CanonicalJson::of_object(edit),
            None => self.proposed_action.canonical(),
        }
    }

    /// The action an executor may run: the approved action (the edit, or
    /// else the proposed one) when the request is approved and the action
    /// still has the hash recorded with the approval.
    pub fn action_to_execute(&self) -> Result<Cow<'_, Map<String, Value>>, ActionBindingError> {
        let Some(decision) = self
            .decision
            .as_ref()
            .filter(|_| self.status == Status::Approved)
        else {
            return Err(ActionBindingError::NotApproved {
                status: self.status,
            });
        };
        let Some(expected) = decision.action_hash else {
            return Err(ActionBindingError::NoHash);
        };
        let action = match &decision.edited_action {
            Some(edit) => Cow::Borrowed(edit),
            None => Cow::Owned(self.proposed_action.to_map()),
        };
        let actual = action_hash(&action);
        if actual != expected {
            return Err(ActionBindingError::Mismatch { expected, actual });
        }
        Ok(action)
    }

    /// The record of a refused attempt to decide this request: who (if
    /// known) and why. The request itself does not change.
    pub fn denial(&self, at: DateTime<Utc>, actor: Option<String>, reason: String) -> AuditRecord {
        self.record(AuditEvent::Denied, at, actor, Some(reason), None, None)
    }

    /// Moves an overdue pending request to `expired`.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<AuditRecord, TransitionError> {
        if self.status.is_final() {
            return Err(TransitionError::AlreadyFinal {
                status: self.status,
            });
        }
        if !self.is_overdue(now) {
            return Err(TransitionError::NotOverdue {
                expires_at: self.expires_at,
            });
        }
        self.status = Status::Expired;
        self.decision = Some(Decision {
            reviewer: None,
            decided_at: now,
            comment: None,
            rejection_reason: None,
            edited_action: None,
            action_hash: None,
            stage: None,
        });
        Ok(self.record(AuditEvent::Expired, now, None, None, None, None))
    }

    /// When this request's reminder is due: pending, with a reminder not
    /// yet given.
    pub fn remind_at(&self) -> Option<DateTime<Utc>> {
        if self.status != Status::Pending {
            return None;
        }
        let reminder = self.plan.reminder.as_ref()?;
        let life = (self.expires_at - self.created_at).num_microseconds()?;
        let offset = life / 1000 * i64::from(reminder.at_permille.clamp(1, 999));
        Some(self.created_at + chrono::Duration::microseconds(offset))
    }

    /// Gives the reminder: the request stays pending; with an escalation
    /// group, that group may from now on sign the current stage. Refused
    /// when the request is decided, overdue, or has no reminder due.
    pub fn remind(&mut self, now: DateTime<Utc>) -> Result<AuditRecord, TransitionError> {
        if self.status.is_final() {
            return Err(TransitionError::AlreadyFinal {
                status: self.status,
            });
        }
        if self.is_overdue(now) {
            return Err(TransitionError::Expired {
                expires_at: self.expires_at,
            });
        }
        let Some(reminder) = self.plan.reminder.take() else {
            return Err(TransitionError::NotOverdue {
                expires_at: self.expires_at,
            });
        };
        let current = crate::policy::progress(&self.plan, &self.approvals).current;
        let stage = current.and_then(|index| self.plan.stages.get_mut(index));
        let stage_name = stage.as_ref().map(|s| s.name.clone());
        let comment = match (reminder.escalate_to, stage) {
            (Some(group), Some(stage)) => {
                // An open stage already admits every reviewer.
                if !stage.is_open() && !stage.groups.contains(&group) {
                    stage.groups.push(group.clone());
                }
                Some(format!(
                    "escalated: group {group} may now sign {}",
                    stage.name
                ))
            }
            _ => None,
        };
        let mut record = self.record(AuditEvent::Reminded, now, None, None, comment, None);
        record.stage = stage_name;
        Ok(record)
    }

    fn record(
        &self,
        event: AuditEvent,
        at: DateTime<Utc>,
        actor: Option<String>,
        reason: Option<String>,
        comment: Option<String>,
        action: Option<CanonicalJson>,
    ) -> AuditRecord {
        AuditRecord {
            event,
            at,
            request_id: self.id,
            title: self.title.clone(),
            actor,
            reason,
            comment,
            action,
            original_action: None,
            stage: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn draft(expires_in: u64) -> RequestDraft {
        RequestDraft {
            title: Title::parse("Raise limit").unwrap(),
            description: String::new(),
            proposed_action: Action::default(),
            requester: Actor::parse("requester", "agent").unwrap(),
            labels: BTreeMap::new(),
            expires_in: ExpiresIn::from_seconds(expires_in).unwrap(),
            plan: ApprovalPlan::single(),
        }
    }

    fn map_of(entries: &[(&str, i64)]) -> Map<String, Value> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn approve() -> Verdict {
        Verdict::Approve {
            reviewer: Actor::parse("reviewer", "alice").unwrap(),
            groups: None,
            comment: None,
            edited_action: None,
        }
    }

    #[test]
    fn an_edited_approval_runs_the_edit_and_records_both() {
        let (mut request, _) = draft(3600).open(Uuid::now_v7(), t0());
        request.proposed_action = Action::of_map(&map_of(&[("limit", 5000)]));
        let mut edit = Map::new();
        edit.insert("limit".into(), Value::from(4000));
        let verdict = Verdict::Approve {
            reviewer: Actor::parse("reviewer", "alice").unwrap(),
            groups: None,
            comment: Some("lower".into()),
            edited_action: Some(edit.clone()),
        };
        let Decided::Applied(record) = request.decide(verdict, t0()) else {
            panic!("not applied");
        };
        assert_eq!(record.action, Some(CanonicalJson::of_object(&edit)));
        assert_eq!(
            record.original_action,
            Some(request.proposed_action.canonical())
        );
        assert_eq!(request.action_to_execute(), Ok(Cow::Borrowed(&edit)));
        // Tampering with the approved action breaks the binding.
        if let Some(decision) = request.decision.as_mut() {
            decision.edited_action = Some(Map::new());
        }
        assert!(matches!(
            request.action_to_execute(),
            Err(ActionBindingError::Mismatch { .. })
        ));
    }

    #[test]
    fn only_an_approved_action_runs() {
        let (mut request, _) = draft(3600).open(Uuid::now_v7(), t0());
        assert!(matches!(
            request.action_to_execute(),
            Err(ActionBindingError::NotApproved { .. })
        ));
        request.decide(approve(), t0());
        assert_eq!(
            request.action_to_execute(),
            Ok(Cow::Owned(request.proposed_action.to_map()))
        );
        let Some(decision) = &request.decision else {
            panic!("no decision")
        };
        assert_eq!(
            decision.action_hash,
            Some(crate::audit::action_hash(&request.proposed_action.to_map()))
        );
    }

    fn reject() -> Verdict {
        Verdict::Reject {
            reviewer: Actor::parse("reviewer", "bob").unwrap(),
            groups: None,
            reason: Reason::parse("reason", "not ready").unwrap(),
        }
    }

    fn cancel() -> Verdict {
        Verdict::Cancel {
            actor: Actor::parse("actor", "agent").unwrap(),
            reason: None,
        }
    }

    #[test]
    fn zero_life_is_born_expired() {
        let (request, records) = draft(0).open(Uuid::now_v7(), t0());
        assert_eq!(request.status, Status::Expired);
        let events: Vec<_> = records.iter().map(|r| r.event).collect();
        assert_eq!(events, [AuditEvent::Created, AuditEvent::Expired]);
    }

    #[test]
    fn an_overdue_request_expires_instead_of_being_approved() {
        let (mut request, _) = draft(60).open(Uuid::now_v7(), t0());
        let outcome = request.decide(approve(), t0() + Duration::seconds(60));
        assert!(
            matches!(outcome, Decided::ExpiredInstead(ref r) if r.event == AuditEvent::Expired)
        );
        assert_eq!(request.status, Status::Expired);
    }

    #[test]
    fn approval_records_the_action() {
        let (mut request, _) = draft(60).open(Uuid::now_v7(), t0());
        request.proposed_action = Action::of_map(&map_of(&[("x", 1)]));
        let Decided::Applied(record) = request.decide(approve(), t0()) else {
            panic!("not applied")
        };
        assert_eq!(record.actor.as_deref(), Some("alice"));
        assert_eq!(
            record.action,
            Some(CanonicalJson::new(&serde_json::json!({"x": 1})))
        );
    }

    fn member(name: &str, group: &str) -> Verdict {
        Verdict::Approve {
            reviewer: Actor::parse("reviewer", name).unwrap(),
            groups: Some(vec![group.to_owned()]),
            comment: None,
            edited_action: None,
        }
    }

    fn chain() -> ApprovalPlan {
        let stage = |name: &str, group: &str, quorum| crate::policy::ApprovalStage {
            name: name.into(),
            users: Vec::new(),
            groups: vec![group.into()],
            quorum,
        };
        ApprovalPlan {
            policy: "chain".into(),
            rule: Some("big".into()),
            stages: vec![
                stage("manager", "managers", 1),
                stage("finance", "finance", 2),
            ],
            reminder: None,
        }
    }

    fn chained() -> Request {
        let mut d = draft(3600);
        d.plan = chain();
        d.open(Uuid::now_v7(), t0()).0
    }

    #[test]
    fn a_chain_is_decided_in_order_with_its_quorum() {
        let mut request = chained();
        // Finance cannot sign before the manager stage is done.
        let outcome = request.decide(member("fiona", "finance"), t0());
        let Decided::Denied(record, TransitionError::NotEligible { stage, .. }) = outcome else {
            panic!("finance signed first: {outcome:?}");
        };
        assert_eq!(stage, "manager");
        assert_eq!(record.event, AuditEvent::Denied);
        assert!(request.approvals.is_empty());

        let Decided::Applied(record) = request.decide(member("mia", "managers"), t0()) else {
            panic!("manager refused");
        };
        assert_eq!(record.event, AuditEvent::Endorsed);
        assert_eq!(record.stage.as_deref(), Some("manager"));
        assert_eq!(request.status, Status::Pending);

        // One of two at finance: still pending; the same person twice counts once.
        let Decided::Applied(record) = request.decide(member("fiona", "finance"), t0()) else {
            panic!("finance refused");
        };
        assert_eq!(record.event, AuditEvent::Endorsed);
        assert!(matches!(
            request.decide(member("fiona", "finance"), t0()),
            Decided::Refused(TransitionError::AlreadySigned { .. })
        ));
        assert_eq!(request.status, Status::Pending);

        let Decided::Applied(record) = request.decide(member("fred", "finance"), t0()) else {
            panic!("second finance refused");
        };
        assert_eq!(record.event, AuditEvent::Approved);
        assert_eq!(request.status, Status::Approved);
        let decision = request.decision.as_ref().unwrap();
        assert_eq!(decision.stage.as_deref(), Some("finance"));
        assert_eq!(request.approvals.len(), 3);
        assert_eq!(
            request.action_to_execute(),
            Ok(Cow::Owned(request.proposed_action.to_map()))
        );
    }

    #[test]
    fn one_rejection_at_any_stage_rejects() {
        let mut request = chained();
        request.decide(member("mia", "managers"), t0());
        let verdict = Verdict::Reject {
            reviewer: Actor::parse("reviewer", "fiona").unwrap(),
            groups: Some(vec!["finance".into()]),
            reason: Reason::parse("reason", "too much").unwrap(),
        };
        let Decided::Applied(record) = request.decide(verdict, t0()) else {
            panic!("rejection refused");
        };
        assert_eq!(record.stage.as_deref(), Some("finance"));
        assert_eq!(request.status, Status::Rejected);
    }

    #[test]
    fn only_the_first_sign_off_may_edit_and_the_rest_approve_the_edit() {
        let mut request = chained();
        let mut edit = Map::new();
        edit.insert("limit".into(), Value::from(1));
        let edited = |name: &str, group: &str| Verdict::Approve {
            reviewer: Actor::parse("reviewer", name).unwrap(),
            groups: Some(vec![group.to_owned()]),
            comment: None,
            edited_action: Some(edit.clone()),
        };
        assert!(matches!(
            request.decide(edited("mia", "managers"), t0()),
            Decided::Applied(_)
        ));
        assert!(matches!(
            request.decide(edited("fiona", "finance"), t0()),
            Decided::Refused(TransitionError::EditAfterApproval)
        ));
        request.decide(member("fiona", "finance"), t0());
        let Decided::Applied(record) = request.decide(member("fred", "finance"), t0()) else {
            panic!("refused");
        };
        assert_eq!(record.action, Some(CanonicalJson::of_object(&edit)));
        assert_eq!(request.action_to_execute(), Ok(Cow::Borrowed(&edit)));
        assert!(
            request
                .approvals
                .iter()
                .all(|a| a.action_hash == crate::audit::action_hash(&edit))
        );
    }

    #[test]
    fn a_plan_without_stages_approves_at_once_with_the_rule_as_actor() {
        let mut d = draft(0);
        d.plan = ApprovalPlan {
            policy: "auto".into(),
            rule: Some("low-risk".into()),
            stages: Vec::new(),
            reminder: None,
        };
        let (request, records) = d.open(Uuid::now_v7(), t0());
        assert_eq!(request.status, Status::Approved);
        let events: Vec<_> = records.iter().map(|r| r.event).collect();
        assert_eq!(events, [AuditEvent::Created, AuditEvent::Approved]);
        assert_eq!(records[1].actor.as_deref(), Some("rule:low-risk"));
        assert_eq!(
            request.action_to_execute(),
            Ok(Cow::Owned(request.proposed_action.to_map()))
        );
    }

    proptest! {
        /// Whatever happens to a request, once it leaves `pending` it never
        /// changes again, and a request is never approved after it expired.
        #[test]
        fn decided_requests_never_change(steps in proptest::collection::vec((0u8..4, 0i64..120), 1..12)) {
            let (mut request, _) = draft(60).open(Uuid::now_v7(), t0());
            let mut final_status: Option<Status> = None;
            for (kind, offset) in steps {
                let now = t0() + Duration::seconds(offset);
                let before = request.clone();
                let outcome = match kind {
                    0 => request.decide(approve(), now),
                    1 => request.decide(reject(), now),
                    2 => request.decide(cancel(), now),
                    _ => match request.expire(now) {
                        Ok(r) => Decided::Applied(r),
                        Err(e) => Decided::Refused(e),
                    },
                };
                if let Some(status) = final_status {
                    prop_assert_eq!(&request, &before);
                    prop_assert_eq!(request.status, status);
                    prop_assert!(matches!(outcome, Decided::Refused(_)));
                }
                if let (Status::Approved, Some(decision)) = (request.status, &request.decision) {
                    prop_assert!(decision.decided_at < request.expires_at);
                }
                if request.status.is_final() {
                    final_status = Some(request.status);
                }
            }
        }
    }
}

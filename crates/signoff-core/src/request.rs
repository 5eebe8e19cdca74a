//! An approval request and the only place its status may change.
//!
//! `pending` is the one open state: from it a request is approved, rejected,
//! cancelled or expired, and a decided request never changes again. Each
//! transition returns the [`AuditRecord`] that the store must append in the
//! same transaction as the new state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditRecord, Digest, action_hash};
use crate::input::{Actor, ExpiresIn, Reason, Title};

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
    pub proposed_action: Map<String, Value>,
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
}

/// A valid request that does not exist yet: every field already parsed.
#[derive(Debug, Clone)]
pub struct RequestDraft {
    /// The title.
    pub title: Title,
    /// The description (may be empty).
    pub description: String,
    /// The change to approve.
    pub proposed_action: Map<String, Value>,
    /// Who asks.
    pub requester: Actor,
    /// Tags.
    pub labels: BTreeMap<String, String>,
    /// How long it stays open.
    pub expires_in: ExpiresIn,
}

impl RequestDraft {
    /// Makes the request with its id at `now`, with the audit records of its
    /// creation: `created`, followed by `expired` when it was given no time
    /// at all (`expires_in` 0).
    pub fn open(self, id: Uuid, now: DateTime<Utc>) -> (Request, Vec<AuditRecord>) {
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
        };
        let mut records = vec![AuditRecord {
            event: AuditEvent::Created,
            at: now,
            request_id: id,
            title: request.title.clone(),
            actor: Some(request.requester.clone()),
            reason: None,
            comment: None,
            action: Some(Value::Object(request.proposed_action.clone())),
            original_action: None,
        }];
        if let Ok(expired) = request.expire(now) {
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
        let (status, event, decision, reason, comment) = match verdict {
            Verdict::Approve {
                reviewer,
                comment,
                edited_action,
            } => {
                let approved = edited_action.as_ref().unwrap_or(&self.proposed_action);
                let hash = action_hash(approved);
                (
                    Status::Approved,
                    AuditEvent::Approved,
                    Decision {
                        reviewer: Some(reviewer.into_string()),
                        decided_at: now,
                        comment: comment.clone(),
                        rejection_reason: None,
                        edited_action,
                        action_hash: Some(hash),
                    },
                    None,
                    comment,
                )
            }
            Verdict::Reject { reviewer, reason } => (
                Status::Rejected,
                AuditEvent::Rejected,
                Decision {
                    reviewer: Some(reviewer.into_string()),
                    decided_at: now,
                    comment: None,
                    rejection_reason: Some(reason.as_str().to_owned()),
                    edited_action: None,
                    action_hash: None,
                },
                Some(reason.into_string()),
                None,
            ),
            Verdict::Cancel { actor, reason } => {
                let reason = reason.map(Reason::into_string);
                (
                    Status::Cancelled,
                    AuditEvent::Cancelled,
                    Decision {
                        reviewer: Some(actor.into_string()),
                        decided_at: now,
                        comment: reason.clone(),
                        rejection_reason: None,
                        edited_action: None,
                        action_hash: None,
                    },
                    reason,
                    None,
                )
            }
        };
        // An approval records what was approved and, for an edit, what was
        // proposed: the trail shows both.
        let (action, original_action) = match (&decision.edited_action, event) {
            (Some(edit), _) => (
                Some(Value::Object(edit.clone())),
                Some(Value::Object(self.proposed_action.clone())),
            ),
            (None, AuditEvent::Approved) => {
                (Some(Value::Object(self.proposed_action.clone())), None)
            }
            (None, _) => (None, None),
        };
        self.status = status;
        let actor = decision.reviewer.clone();
        self.decision = Some(decision);
        let mut record = self.record(event, now, actor, reason, comment, action);
        record.original_action = original_action;
        Decided::Applied(record)
    }

    /// The action an executor may run: the approved action (the edit, or
    /// else the proposed one) when the request is approved and the action
    /// still has the hash recorded with the approval.
    pub fn action_to_execute(&self) -> Result<&Map<String, Value>, ActionBindingError> {
        let Some(decision) = self
            .decision
            .as_ref()
            .filter(|_| self.status == Status::Approved)
        else {
            return Err(ActionBindingError::NotApproved {
                status: self.status,
            });
        };
        let action = decision
            .edited_action
            .as_ref()
            .unwrap_or(&self.proposed_action);
        let Some(expected) = decision.action_hash else {
            return Err(ActionBindingError::NoHash);
        };
        let actual = action_hash(action);
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
        });
        Ok(self.record(AuditEvent::Expired, now, None, None, None, None))
    }

    fn record(
        &self,
        event: AuditEvent,
        at: DateTime<Utc>,
        actor: Option<String>,
        reason: Option<String>,
        comment: Option<String>,
        action: Option<Value>,
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
            proposed_action: Map::new(),
            requester: Actor::parse("requester", "agent").unwrap(),
            labels: BTreeMap::new(),
            expires_in: ExpiresIn::from_seconds(expires_in).unwrap(),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn approve() -> Verdict {
        Verdict::Approve {
            reviewer: Actor::parse("reviewer", "alice").unwrap(),
            comment: None,
            edited_action: None,
        }
    }

    #[test]
    fn an_edited_approval_runs_the_edit_and_records_both() {
        let (mut request, _) = draft(3600).open(Uuid::now_v7(), t0());
        request
            .proposed_action
            .insert("limit".into(), Value::from(5000));
        let mut edit = Map::new();
        edit.insert("limit".into(), Value::from(4000));
        let verdict = Verdict::Approve {
            reviewer: Actor::parse("reviewer", "alice").unwrap(),
            comment: Some("lower".into()),
            edited_action: Some(edit.clone()),
        };
        let Decided::Applied(record) = request.decide(verdict, t0()) else {
            panic!("not applied");
        };
        assert_eq!(record.action, Some(Value::Object(edit.clone())));
        assert_eq!(
            record.original_action,
            Some(Value::Object(request.proposed_action.clone()))
        );
        assert_eq!(request.action_to_execute(), Ok(&edit));
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
        assert_eq!(request.action_to_execute(), Ok(&request.proposed_action));
        let Some(decision) = &request.decision else {
            panic!("no decision")
        };
        assert_eq!(
            decision.action_hash,
            Some(crate::audit::action_hash(&request.proposed_action))
        );
    }

    fn reject() -> Verdict {
        Verdict::Reject {
            reviewer: Actor::parse("reviewer", "bob").unwrap(),
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
        request.proposed_action.insert("x".into(), Value::from(1));
        let Decided::Applied(record) = request.decide(approve(), t0()) else {
            panic!("not applied")
        };
        assert_eq!(record.actor.as_deref(), Some("alice"));
        assert_eq!(record.action, Some(serde_json::json!({"x": 1})));
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

//! The domain of Signoff: what an approval request is, which status changes
//! are allowed, and how the audit trail is chained so that tampering shows.
//!
//! Architecture invariant: this crate does no IO, owns no async runtime and
//! knows no SQL or HTTP. Every other crate changes a request's status only
//! through the transition methods on [`Request`], and appends to the audit
//! trail only through [`Chain`].

pub mod action;
pub mod audit;
pub mod clock;
pub mod identity;
pub mod input;
pub mod policy;
pub mod request;
pub mod rfc3339;
pub mod run;
pub mod webhook;

pub use action::Action;
pub use audit::{
    AuditEntry, AuditEvent, AuditRecord, CanonicalJson, Chain, ChainBreak, ChainFault, Digest,
    Verifier, action_hash, canonical_json, format_time,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use identity::{Identity, Role, TokenRecord, TokenRefusal, parse_token};
pub use input::{Actor, ExpiresIn, Reason, Title, ValidationError};
pub use policy::{
    Approval, ApprovalPlan, ApprovalStage, DEFAULT_POLICY, Progress, Reminder, describe_eligible,
    progress,
};
pub use request::{
    ActionBindingError, Decided, Decision, Request, RequestDraft, Status, TransitionError, Verdict,
};
pub use run::{Run, RunStatus, Stage, StageRecord};
pub use webhook::{Attempt, Backoff, Delivery, DeliveryStatus, Webhook, WebhookFormat};

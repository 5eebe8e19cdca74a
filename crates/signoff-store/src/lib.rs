//! The storage interface of Signoff.
//!
//! A backend keeps requests, their audit trail and idempotency keys, and
//! applies every transition (through `signoff-core`) together with its audit
//! entry in one transaction. The server holds an `Arc<dyn Store>` and never
//! sees SQL.
//!
//! Architecture invariant: SQL lives only in the backend crates. This crate
//! defines what they must do; `suite` (feature `test-suite`) checks that
//! they do it.

use chrono::{DateTime, Utc};
use signoff_core::{Attempt, Delivery, DeliveryStatus, Webhook};
use signoff_core::{
    AuditEntry, Chain, ChainBreak, Digest, Request, RequestDraft, Run, RunStatus, StageRecord,
    Status, TokenRecord, TransitionError, Verdict,
};
use uuid::Uuid;

pub mod codec;
#[cfg(feature = "test-suite")]
pub mod suite;

/// What a backend can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No request has that id.
    #[error("request {0} not found")]
    NotFound(Uuid),
    /// The transition was refused; for [`TransitionError::Expired`] the
    /// request has been recorded as expired.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The idempotency key was used before with a different request body.
    #[error("idempotency key was already used for a different request")]
    IdempotencyMismatch,
    /// The database cannot be reached or refused the write; nothing was
    /// changed and the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row cannot be read back: a bug or tampering.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// No run has that id.
    #[error("run {0} not found")]
    RunNotFound(Uuid),
    /// The run is no longer where the caller thought (someone else moved
    /// it on, e.g. claimed its execution): nothing was written.
    #[error("run {id} is {status}, not {expected}")]
    RunMoved {
        /// The run.
        id: Uuid,
        /// Where it is.
        status: RunStatus,
        /// Where the caller expected it.
        expected: RunStatus,
    },
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// An `Idempotency-Key` with the fingerprint of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The client's key.
    pub key: String,
    /// SHA-256 of the canonical request body: the same key with another
    /// body is refused.
    pub fingerprint: Digest,
}

/// A created (or, for a repeated idempotency key, found) request.
#[derive(Debug, Clone)]
pub struct Created {
    /// The request.
    pub request: Request,
    /// True when an earlier create with the same key made it.
    pub replayed: bool,
}

/// Which requests to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this status; `pending` also leaves out requests already overdue.
    pub status: Option<Status>,
    /// At most this many.
    pub limit: u32,
    /// Only requests older than this one (the cursor of the previous page).
    pub before: Option<Uuid>,
    /// Only requests of this requester (what an agent may see).
    pub requester: Option<String>,
}

/// One page of requests.
#[derive(Debug, Clone)]
pub struct Page {
    /// The requests, newest first.
    pub requests: Vec<Request>,
    /// Where the next page starts, if there may be one.
    pub next: Option<Uuid>,
}

/// Which audit entries to read, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only the entries of this request.
    pub request_id: Option<Uuid>,
    /// Only entries after this position.
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// A workflow stage record, with its place in the order of all of them
/// (for event streams) and the run's workflow and starter.
#[derive(Debug, Clone, PartialEq)]
pub struct StageEvent {
    /// Position among all stage records; later records have larger ones,
    /// and a record is readable before any with a larger position.
    pub seq: i64,
    /// The record.
    pub record: StageRecord,
    /// The run's workflow.
    pub workflow: String,
    /// Who started the run (what an agent may see).
    pub started_by: Option<String>,
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only those of this subscription.
    pub webhook_id: Option<Uuid>,
    /// Only those in this state.
    pub status: Option<DeliveryStatus>,
    /// Only those about this request.
    pub request_id: Option<Uuid>,
    /// At most this many.
    pub limit: u32,
}

/// The result of walking the whole audit trail.
#[derive(Debug, Clone)]
pub struct AuditReport {
    /// How many entries were intact before the walk ended.
    pub checked: u64,
    /// The head recorded beside the trail.
    pub head: Chain,
    /// The first entry that does not fit, if any.
    pub broken: Option<ChainBreak>,
}

/// Told about changes other processes made to a shared database (another
/// replica decided a request, or created one), so this process can wake its
/// own waiters.
pub trait ChangeListener: Send + Sync + 'static {
    /// Request `id` changed (created, signed, decided or expired); it
    /// expires at `expires_at`.
    fn changed(&self, id: Uuid, expires_at: Option<DateTime<Utc>>);
    /// Changes may have been missed (the connection that carries them was
    /// lost and is back): every waiter should look again.
    fn missed(&self);
}

/// A Signoff database.
///
/// Every method that changes a request applies the transition from
/// `signoff-core` and appends its audit entries in one transaction, and
/// answers only after that transaction is durable.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new request with id `id`. With an idempotency key already
    /// seen, returns the request it made instead (or
    /// [`StoreError::IdempotencyMismatch`] if the body differs).
    async fn create(
        &self,
        id: Uuid,
        draft: RequestDraft,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<Created>;

    /// Applies a verdict to a pending request as a compare-and-set: of two
    /// verdicts racing on one request exactly one succeeds.
    async fn decide(&self, id: Uuid, verdict: Verdict) -> StoreResult<Request>;

    /// Reads one request.
    async fn get(&self, id: Uuid) -> StoreResult<Option<Request>>;

    /// Lists requests newest first.
    async fn list(&self, query: ListQuery) -> StoreResult<Page>;

    /// Counts the requests in `status` (for `pending`, not yet overdue).
    async fn count(&self, status: Status) -> StoreResult<u64>;

    /// Moves up to `limit` overdue pending requests to `expired` and returns them.
    async fn expire_overdue(&self, limit: u32) -> StoreResult<Vec<Request>>;

    /// When the next pending request expires.
    async fn next_expiry(&self) -> StoreResult<Option<DateTime<Utc>>>;

    /// Gives up to `limit` reminders that are due (see
    /// `Request::remind`): each request's escalation and `reminded` audit
    /// entry in one transaction; returns the reminded requests.
    async fn remind_due(&self, limit: u32) -> StoreResult<Vec<Request>>;

    /// When the next reminder is due.
    async fn next_reminder(&self) -> StoreResult<Option<DateTime<Utc>>>;

    /// Reads audit entries oldest first.
    async fn audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>>;

    /// Walks the whole trail and the recorded head.
    async fn verify_audit(&self) -> StoreResult<AuditReport>;

    /// The position of the trail's last entry (0 when empty).
    async fn last_audit_seq(&self) -> StoreResult<i64>;

    /// Stores a new workflow run.
    async fn create_run(&self, run: Run) -> StoreResult<Run>;

    /// Writes `run` (its new status and fields) and `record` in one
    /// transaction, as a compare-and-set: only if the stored run is still in
    /// `from`; otherwise [`StoreError::RunMoved`] and nothing is written.
    /// Moving `awaiting_approval` to `executing` this way is the claim to
    /// execute: of two claimants exactly one wins.
    async fn advance_run(
        &self,
        run: Run,
        from: RunStatus,
        record: Option<StageRecord>,
    ) -> StoreResult<Run>;

    /// Reads one run.
    async fn get_run(&self, id: Uuid) -> StoreResult<Option<Run>>;

    /// The stage records of a run, in the order they were written.
    async fn run_stages(&self, id: Uuid) -> StoreResult<Vec<StageRecord>>;

    /// Stage records after position `after`, oldest first.
    async fn stage_events(&self, after: i64, limit: u32) -> StoreResult<Vec<StageEvent>>;

    /// The position of the last stage record (0 when none).
    async fn last_stage_seq(&self) -> StoreResult<i64>;

    /// Runs that are not over, oldest first (to resume after a restart).
    async fn unfinished_runs(&self) -> StoreResult<Vec<Run>>;

    /// Appends a `denied` entry for request `id` (a refused attempt to
    /// decide it); nothing when there is no such request.
    async fn record_denial(
        &self,
        id: Uuid,
        actor: Option<String>,
        reason: String,
    ) -> StoreResult<()>;

    /// Stores a new API token (its secret only as a hash).
    async fn create_token(&self, token: TokenRecord) -> StoreResult<TokenRecord>;

    /// One token by its public id.
    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>>;

    /// Every token, oldest first.
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Revokes a token (a second revoke changes nothing); `None` when there
    /// is no such token.
    async fn revoke_token(&self, id: &str) -> StoreResult<Option<TokenRecord>>;

    /// Stores a new webhook subscription, its cursor set to the head of
    /// the audit trail (it hears of events from now on); returns it so.
    async fn create_webhook(&self, hook: Webhook) -> StoreResult<Webhook>;

    /// Every subscription, oldest first.
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;

    /// Deletes a subscription and its deliveries; false when there was none.
    async fn delete_webhook(&self, id: Uuid) -> StoreResult<bool>;

    /// Writes `deliveries` and moves subscription `webhook_id`'s cursor
    /// from `from` to `to`, in one transaction, as a compare-and-set: when
    /// the cursor is no longer at `from` (another replica got there first)
    /// nothing is written and the answer is false.
    async fn enqueue_deliveries(
        &self,
        webhook_id: Uuid,
        from: i64,
        to: i64,
        deliveries: Vec<Delivery>,
    ) -> StoreResult<bool>;

    /// Claims up to `limit` pending deliveries due at `now` for sending:
    /// their `next_attempt_at` moves to `until`, so no other sender (here or
    /// on another replica) takes them before then. Oldest first.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;

    /// Records how a try went: delivered, due again at `retry_at`, or
    /// dead. Nothing when the delivery is gone.
    async fn record_attempt(&self, id: Uuid, attempt: Attempt) -> StoreResult<()>;

    /// Makes a dead (or delivered) delivery pending again, due now; `None`
    /// when there is no such delivery.
    async fn redeliver(&self, id: Uuid) -> StoreResult<Option<Delivery>>;

    /// Deliveries, newest first.
    async fn deliveries(&self, query: DeliveryQuery) -> StoreResult<Vec<Delivery>>;

    /// When the next pending delivery is due.
    async fn next_delivery_due(&self) -> StoreResult<Option<DateTime<Utc>>>;

    /// Whether several server processes (replicas) may share this
    /// database. Then runs are driven under leases ([`Store::claim_runs`])
    /// and changes made elsewhere arrive through [`Store::watch`].
    fn is_shared(&self) -> bool {
        false
    }

    /// For a shared database: how long a claim on a run lasts unless
    /// renewed ([`Store::renew_runs`] must run well within it).
    fn run_lease(&self) -> Option<std::time::Duration> {
        None
    }

    /// Starts telling `listener` about changes other processes make; a
    /// database only one process opens has none to tell.
    fn watch(&self, listener: std::sync::Arc<dyn ChangeListener>) {
        let _ = listener;
    }

    /// For a shared database: claims up to `limit` unfinished runs that no
    /// live replica drives (their lease ran out), for this process, and
    /// returns them. Of two replicas claiming at once, each run goes to one.
    async fn claim_runs(&self, limit: u32) -> StoreResult<Vec<Run>> {
        let _ = limit;
        Ok(Vec::new())
    }

    /// For a shared database: extends the leases of the runs this process
    /// drives (and stops them being claimed by another).
    async fn renew_runs(&self) -> StoreResult<()> {
        Ok(())
    }
}

//! The approval service: the one API every route (`/v1`, the guide's
//! routes, later the web inbox and the workflow runner) calls. It turns
//! parsed input into store calls and wakes waiters after each change.
//!
//! Architecture invariant: handlers do no business logic; they parse, call
//! one method here, and shape the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use signoff_api::{ApproveBody, CancelBody, NewRequest, RejectBody};
use signoff_core::{
    Action, Actor, Clock, Digest, ExpiresIn, Reason, Request, RequestDraft, Status, Title,
    ValidationError, Verdict, canonical_json,
};
use signoff_policy::{Facts, Policies, RuleError};
use signoff_store::{ChangeListener, Created, IdempotencyKey, ListQuery, Page, Store, StoreError};
use tokio::sync::watch;
use uuid::Uuid;

use crate::hub::Hub;

/// The actor recorded when a client names none.
pub const ANONYMOUS: &str = "anonymous";

/// The longest long poll, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 300;

/// The approval service every route calls. One `Arc`, so the copy axum
/// hands each request costs one reference count, not one per part.
#[derive(Clone)]
pub struct Service(Arc<Parts>);

/// What a [`Service`] holds.
#[derive(Clone)]
pub struct Parts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Hub,
    sweeper: Arc<SweeperSignal>,
    /// Set when the server begins to shut down: long polls answer at once.
    closing: Arc<watch::Sender<bool>>,
    /// What each new request needs before it is approved.
    policies: Policies,
    /// Poked after every change (here, or on another replica): event
    /// streams read the trail again.
    changes: Arc<watch::Sender<()>>,
    /// Poked when a webhook subscription is added or removed here.
    webhooks: Arc<watch::Sender<()>>,
}

impl std::ops::Deref for Service {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// How the service and the sweeper talk: the sweeper publishes when it next
/// wakes, and a create that expires sooner nudges it.
pub(crate) struct SweeperSignal {
    /// Unix microseconds of the sweeper's next wake-up.
    pub(crate) next_wake: AtomicI64,
    pub(crate) nudge: watch::Sender<()>,
}

impl Service {
    /// A service over `store`. With a database shared by replicas, changes
    /// made by the others wake this one's waiters and sweeper too.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let service = Self(Arc::new(Parts {
            store,
            clock,
            hub: Hub::default(),
            sweeper: Arc::new(SweeperSignal {
                next_wake: AtomicI64::new(i64::MAX),
                nudge: watch::channel(()).0,
            }),
            closing: Arc::new(watch::channel(false).0),
            policies: Policies::default(),
            changes: Arc::new(watch::channel(()).0),
            webhooks: Arc::new(watch::channel(()).0),
        }));
        service.store.watch(Arc::new(RemoteChanges {
            hub: service.hub.clone(),
            sweeper: service.sweeper.clone(),
            changes: service.changes.clone(),
        }));
        service
    }

    /// The same service, choosing each new request's approval plan with
    /// `policies`.
    #[must_use]
    pub fn with_policies(mut self, policies: Policies) -> Self {
        Arc::make_mut(&mut self.0).policies = policies;
        self
    }

    /// Begins shutdown: every long poll answers now with what it has, so
    /// the server's connections can drain.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Says the trail may have grown (after any write, whatever its
    /// outcome: a refusal may have recorded a denial).
    pub(crate) fn changed(&self) {
        self.changes.send_replace(());
    }

    /// Told of every change, for event streams.
    pub(crate) fn subscribe_changes(&self) -> watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// Says the webhook subscriptions changed.
    pub(crate) fn webhooks_changed(&self) {
        self.webhooks.send_replace(());
    }

    /// Told when webhook subscriptions change, for the dispatcher.
    pub(crate) fn subscribe_webhooks(&self) -> watch::Receiver<()> {
        self.webhooks.subscribe()
    }

    /// Turns true when shutdown begins.
    pub(crate) fn closing_signal(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Whether shutdown has begun.
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    pub(crate) fn sweeper_signal(&self) -> &Arc<SweeperSignal> {
        &self.sweeper
    }

    /// Creates a request. With `idempotency_key`, a retry of the same body
    /// returns the first request instead of making another.
    pub async fn create(
        &self,
        body: NewRequest,
        idempotency_key: Option<String>,
    ) -> Result<Created, ServiceError> {
        let idempotency = idempotency_key.map(|key| {
            // The fingerprint covers the body as parsed, so white space and
            // key order in the JSON do not matter.
            let value = serde_json::to_value(&body).unwrap_or(Value::Null);
            IdempotencyKey {
                key,
                fingerprint: Digest::sha256(canonical_json(&value).as_bytes()),
            }
        });
        let (mut draft, action) = draft_of(body)?;
        if !self.policies.is_empty() {
            draft.plan = self.policies.plan(Facts {
                action: &action,
                labels: &draft.labels,
                requester: draft.requester.as_str(),
                title: draft.title.as_str(),
            })?;
        }
        // Freed here rather than by the store's single writer.
        drop(action);
        let created = self
            .store
            .create(Uuid::now_v7(), draft, idempotency)
            .await?;
        self.changed();
        if !created.replayed {
            metrics::counter!("signoff_requests_created_total").increment(1);
            self.after_create(&created.request);
        }
        Ok(created)
    }

    fn after_create(&self, request: &Request) {
        if request.status == Status::Expired {
            self.hub.publish(request);
        } else if request
            .remind_at()
            .map_or(request.expires_at, |at| at.min(request.expires_at))
            .timestamp_micros()
            < self.sweeper.next_wake.load(Ordering::Acquire)
        {
            self.sweeper.nudge.send_replace(());
        }
    }

    /// Approves a pending request, or signs off its current stage. `groups`
    /// are the reviewer's when a token vouches for them (`None` with auth
    /// off, where stages do not check who signs).
    pub async fn approve(
        &self,
        id: Uuid,
        body: ApproveBody,
        groups: Option<Vec<String>>,
    ) -> Result<Request, ServiceError> {
        let verdict = Verdict::Approve {
            reviewer: Actor::parse("reviewer", body.reviewer.as_deref().unwrap_or_default())?,
            groups,
            comment: match body.comment.filter(|c| !c.trim().is_empty()) {
                Some(comment) => {
                    signoff_core::input::check_comment(&comment)?;
                    Some(comment)
                }
                None => None,
            },
            edited_action: match body.edited_action {
                Some(edit) => {
                    signoff_core::input::check_action("edited_action", &edit)?;
                    Some(edit)
                }
                None => None,
            },
        };
        self.decide(id, verdict).await
    }

    /// Rejects a pending request; the reason is required. `groups` as for
    /// [`Service::approve`].
    pub async fn reject(
        &self,
        id: Uuid,
        body: RejectBody,
        groups: Option<Vec<String>>,
    ) -> Result<Request, ServiceError> {
        let verdict = Verdict::Reject {
            reviewer: Actor::parse("reviewer", body.reviewer.as_deref().unwrap_or_default())?,
            groups,
            reason: Reason::parse("reason", &body.reason)?,
        };
        self.decide(id, verdict).await
    }

    /// Withdraws a pending request.
    pub async fn cancel(&self, id: Uuid, body: CancelBody) -> Result<Request, ServiceError> {
        let verdict = Verdict::Cancel {
            actor: Actor::parse("actor", body.actor.as_deref().unwrap_or(ANONYMOUS))?,
            reason: body
                .reason
                .as_deref()
                .map(|r| Reason::parse("reason", r))
                .transpose()?,
        };
        self.decide(id, verdict).await
    }

    async fn decide(&self, id: Uuid, verdict: Verdict) -> Result<Request, ServiceError> {
        let result = self.store.decide(id, verdict).await;
        self.changed();
        match &result {
            Ok(request) => {
                let outcome = match request.status {
                    Status::Pending => "endorsed",
                    status => status.as_str(),
                };
                metrics::counter!("signoff_decisions_total", "outcome" => outcome).increment(1);
                self.hub.publish(request);
            }
            Err(StoreError::Transition(signoff_core::TransitionError::Expired { .. })) => {
                metrics::counter!("signoff_requests_expired_total").increment(1);
                self.hub.notify(id);
            }
            Err(_) => {}
        }
        Ok(result?)
    }

    /// Reads one request.
    pub async fn get(&self, id: Uuid) -> Result<Request, ServiceError> {
        self.store
            .get(id)
            .await?
            .ok_or(ServiceError::Store(StoreError::NotFound(id)))
    }

    /// Lists requests newest first.
    pub async fn list(&self, query: ListQuery) -> Result<Page, ServiceError> {
        Ok(self.store.list(query).await?)
    }

    /// Waits up to `timeout` for a pending request to be decided, and
    /// returns it as it is then. Woken by [`Hub`], never by polling.
    pub async fn wait(&self, id: Uuid, timeout: Duration) -> Result<Request, ServiceError> {
        let mut subscription = self.hub.subscribe(id);
        let request = self.get(id).await?;
        if request.status.is_final() || timeout.is_zero() {
            return Ok(request);
        }
        // A pending request's own expiry also ends the wait: the sweeper
        // expires it and notifies, so there is no need to watch the clock here.
        let mut closing = self.closing.subscribe();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut latest = request;
        loop {
            tokio::select! {
                news = subscription.changed() => {
                    // Decided here: the final request came with the wake-up.
                    if let Some(decided) = news {
                        return Ok(Arc::unwrap_or_clone(decided));
                    }
                    // Changed elsewhere, or a sign-off that leaves the
                    // request pending (one stage of a chain): read it, and
                    // keep waiting unless it is decided.
                    latest = self.get(id).await?;
                    if latest.status.is_final() {
                        return Ok(latest);
                    }
                }
                () = &mut deadline => return Ok(latest),
                () = closed(&mut closing) => return Ok(latest),
            }
        }
    }
}

/// Changes made by other replicas, as the store reports them.
struct RemoteChanges {
    hub: Hub,
    sweeper: Arc<SweeperSignal>,
    changes: Arc<watch::Sender<()>>,
}

impl ChangeListener for RemoteChanges {
    fn changed(&self, id: Uuid, expires_at: Option<chrono::DateTime<chrono::Utc>>) {
        self.hub.notify(id);
        self.changes.send_replace(());
        // A request made elsewhere that expires before our sweeper wakes:
        // if its replica dies, ours must expire it on time.
        if let Some(at) = expires_at
            && at.timestamp_micros() < self.sweeper.next_wake.load(Ordering::Acquire)
        {
            self.sweeper.nudge.send_replace(());
        }
    }

    fn missed(&self) {
        self.hub.notify_all();
        self.changes.send_replace(());
        self.sweeper.nudge.send_replace(());
    }
}

/// Turns the body of a create into a valid draft, naming the first bad
/// field; with the action as parsed, for the approval rules.
fn draft_of(body: NewRequest) -> Result<(RequestDraft, Map<String, Value>), ValidationError> {
    let expires_in = match body.expires_in {
        None => ExpiresIn::DEFAULT,
        Some(signoff_api::ExpiresIn::Seconds(seconds)) => ExpiresIn::from_seconds(seconds)?,
        Some(signoff_api::ExpiresIn::Text(text)) => ExpiresIn::parse(&text)?,
    };
    // Written here rather than by the store's single writer; its length is
    // the action's size.
    let action = Action::of_map(&body.proposed_action);
    signoff_core::input::check_limits(
        &body.description,
        body.labels.len(),
        "proposed_action",
        action.as_str(),
    )?;
    let draft = RequestDraft {
        title: Title::parse(&body.title)?,
        description: body.description,
        proposed_action: action,
        requester: Actor::parse("requester", body.requester.as_deref().unwrap_or(ANONYMOUS))?,
        labels: body.labels,
        expires_in,
        plan: signoff_core::ApprovalPlan::single(),
    };
    Ok((draft, body.proposed_action))
}

/// What a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input, naming the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An approval rule could not be evaluated for the request.
    #[error(transparent)]
    Policy(#[from] RuleError),
}

/// Resolves once `closing` says true (or its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here.
    let _ = closing.wait_for(|closing| *closing).await.map(|_| ());
}

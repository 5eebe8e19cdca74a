//! The engine that drives runs through Draft, Validate, Approve and Execute.
//!
//! Every step is: do the stage's work, then write the run's next status and
//! the stage's record in one transaction, as a compare-and-set from the
//! status the step started in ([`Store::advance_run`]). So the stored run is
//! always at a stage boundary, and a server restarted at any point resumes
//! from it ([`Engine::resume`]): a drafting run drafts again (nothing has
//! run yet), a run awaiting approval keeps waiting on the same request (its
//! creation is idempotent per attempt), and a run claimed for execution but
//! without a recorded result becomes `execution_unknown`: never executed a
//! second time behind anyone's back.
//!
//! Waiting for a decision is a wake-up from the gate, never a polling loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use signoff_core::{Clock, ExpiresIn, Request, Run, RunStatus, Stage, StageRecord, Status};
use signoff_store::{Store, StoreError};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{Agent, ConnectorError, Executor};

/// How long to wait before retrying a step the database refused.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The approval request a run opens for an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    /// From the draft's title.
    pub title: String,
    /// The draft's description and the validation score.
    pub description: String,
    /// The draft: what the reviewer approves.
    pub proposed_action: Map<String, Value>,
    /// `workflow:NAME`.
    pub requester: String,
    /// The workflow's labels plus run, workflow and attempt.
    pub labels: BTreeMap<String, String>,
    /// The workflow's `expires_in`.
    pub expires_in: ExpiresIn,
}

/// Why the gate could not do what the run asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GateError(pub String);

/// The approval gate as a run sees it: the server's service, so approval
/// requests of runs are the same requests, with the same audit trail and
/// wake-ups, as any other.
#[async_trait]
pub trait Gate: Send + Sync {
    /// Opens an approval request. `key` is the attempt's idempotency key: a
    /// second call with it returns the first request.
    async fn open(&self, approval: NewApproval, key: &str) -> Result<Request, GateError>;

    /// Returns the request once it has left `pending` (approved, rejected,
    /// expired or cancelled).
    async fn decided(&self, id: Uuid) -> Result<Request, GateError>;

    /// Told after a run's step was recorded, so event streams look again.
    fn run_changed(&self, id: Uuid) {
        let _ = id;
    }
}

/// A workflow with its connectors, ready to run.
#[derive(Clone)]
pub struct Workflow {
    /// Its name.
    pub name: String,
    /// Drafts, and redrafts after a rejection.
    pub drafter: Arc<dyn Agent>,
    /// Scores drafts, when there is one.
    pub validator: Option<Arc<dyn Agent>>,
    /// Drafts scoring below this stop the run.
    pub min_score: f64,
    /// Applies the approved action.
    pub executor: Arc<dyn Executor>,
    /// Redrafts allowed after rejections.
    pub max_retries: u32,
    /// Life of each approval request.
    pub expires_in: ExpiresIn,
    /// Labels on each approval request.
    pub labels: BTreeMap<String, String>,
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No workflow by that name is configured.
    #[error("no workflow named '{0}'")]
    UnknownWorkflow(String),
    /// The task is not a JSON object.
    #[error("input: the task must be a JSON object")]
    InputNotObject,
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs workflows. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    gate: Arc<dyn Gate>,
    clock: Arc<dyn Clock>,
    workflows: BTreeMap<String, Workflow>,
    /// One channel per watched run, bumped on every step it takes.
    watchers: Mutex<HashMap<Uuid, watch::Sender<()>>>,
    /// How many executions are in flight; shutdown waits for zero.
    executing: watch::Sender<usize>,
    /// Set on shutdown: no new claims to execute, long polls answer now.
    closing: watch::Sender<bool>,
}

/// What a step decided.
enum Next {
    /// Write this run (from the status it was read in) with this record,
    /// then go on.
    Advance(Run, Option<StageRecord>),
    /// The run was already written (the claim); go on with it.
    Continue(Run),
    /// Someone else has the run, or it is over: stop driving it.
    Stop,
}

impl Engine {
    /// An engine for `workflows`.
    pub fn new(
        store: Arc<dyn Store>,
        gate: Arc<dyn Gate>,
        clock: Arc<dyn Clock>,
        workflows: Vec<Workflow>,
    ) -> Self {
        let workflows = workflows.into_iter().map(|w| (w.name.clone(), w)).collect();
        Self {
            inner: Arc::new(Inner {
                store,
                gate,
                clock,
                workflows,
                watchers: Mutex::new(HashMap::new()),
                executing: watch::channel(0).0,
                closing: watch::channel(false).0,
            }),
        }
    }

    /// The configured workflows' names.
    pub fn workflows(&self) -> impl Iterator<Item = &str> {
        self.inner.workflows.keys().map(String::as_str)
    }

    /// Starts a run of `workflow` on `input` and drives it in the
    /// background; returns it as stored (drafting).
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        started_by: Option<String>,
    ) -> Result<Run, EngineError> {
        if !self.inner.workflows.contains_key(workflow) {
            return Err(EngineError::UnknownWorkflow(workflow.to_owned()));
        }
        if !input.is_object() {
            return Err(EngineError::InputNotObject);
        }
        let mut run = Run::start(
            Uuid::now_v7(),
            workflow.to_owned(),
            input,
            self.inner.clock.now(),
        );
        run.started_by = started_by;
        let run = self.inner.store.create_run(run).await?;
        tracing::info!(run = %run.id, workflow, "run started");
        self.spawn(run.clone());
        Ok(run)
    }

    /// Picks up every run that is not over, after a restart. Returns how
    /// many were resumed. With a database shared by replicas, it takes only
    /// the runs no live replica drives, and keeps doing so: a background
    /// task renews this replica's leases and claims the runs of replicas
    /// that stopped renewing theirs (they died).
    pub async fn resume(&self) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let runs = match store.run_lease() {
            Some(_) => store.claim_runs(CLAIM_BATCH).await?,
            None => store.unfinished_runs().await?,
        };
        let count = runs.len();
        for run in runs {
            self.take_over(run).await?;
        }
        if let Some(lease) = store.run_lease() {
            let engine = self.clone();
            tokio::spawn(async move { engine.keep_leases(lease).await });
        }
        Ok(count)
    }

    /// Drives a run found unfinished, unless it was executing: then whether
    /// the action ran is unknown, and it is never executed again on its own.
    async fn take_over(&self, run: Run) -> Result<(), StoreError> {
        if run.status != RunStatus::Executing {
            tracing::info!(run = %run.id, status = %run.status, "resuming run");
            self.spawn(run);
            return Ok(());
        }
        let mut unknown = run.clone();
        unknown.status = RunStatus::ExecutionUnknown;
        unknown.error =
            Some("the server stopped while executing: whether the action ran is unknown".into());
        unknown.updated_at = self.inner.clock.now();
        let record = self.record(&run, Stage::Execute, false, json!({"error": unknown.error}));
        match self
            .inner
            .store
            .advance_run(unknown, RunStatus::Executing, Some(record))
            .await
        {
            Ok(_) | Err(StoreError::RunMoved { .. }) => {}
            Err(error) => return Err(error),
        }
        self.notify(run.id);
        Ok(())
    }

    /// The lease heartbeat of a replica: every third of a lease, renew ours
    /// and claim the runs whose lease ran out. Ends at shutdown.
    async fn keep_leases(&self, lease: Duration) {
        let beat = (lease / 3).max(Duration::from_millis(100));
        let mut closing = self.inner.closing.subscribe();
        loop {
            tokio::select! {
                () = tokio::time::sleep(beat) => {}
                () = closed(&mut closing) => return,
            }
            if let Err(error) = self.inner.store.renew_runs().await {
                tracing::warn!(%error, "cannot renew run leases");
                continue;
            }
            match self.inner.store.claim_runs(CLAIM_BATCH).await {
                Ok(runs) => {
                    for run in runs {
                        tracing::info!(run = %run.id, "claimed a run whose replica stopped");
                        if let Err(error) = self.take_over(run).await {
                            tracing::warn!(%error, "cannot take over a run");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot claim orphaned runs"),
            }
        }
    }

    /// Stops claiming executions and ends run long polls; call
    /// [`Engine::shut_down`] after the server stopped to drain executions.
    pub fn begin_shutdown(&self) {
        self.inner.closing.send_replace(true);
    }

    fn is_closing(&self) -> bool {
        *self.inner.closing.borrow()
    }

    /// Stops claiming new executions and waits (up to `grace`) for the ones
    /// in flight to record their result, so a clean shutdown never leaves a
    /// run `execution_unknown`. Runs waiting elsewhere resume on the next
    /// start.
    pub async fn shut_down(&self, grace: Duration) {
        self.begin_shutdown();
        let mut executing = self.inner.executing.subscribe();
        let drained = tokio::time::timeout(grace, executing.wait_for(|n| *n == 0)).await;
        if drained.is_err() {
            tracing::warn!(
                "executions still running at shutdown; their runs will show execution_unknown"
            );
        }
    }

    /// A run and its stage records.
    pub async fn get(&self, id: Uuid) -> Result<Option<(Run, Vec<StageRecord>)>, StoreError> {
        let Some(run) = self.inner.store.get_run(id).await? else {
            return Ok(None);
        };
        let stages = self.inner.store.run_stages(id).await?;
        Ok(Some((run, stages)))
    }

    /// Waits until the run is no longer as the caller last saw it (in
    /// `status`, last changed at `since`), or `timeout` passes, then returns
    /// it: a long poll for progress displays. With neither, answers at once.
    pub async fn wait(
        &self,
        id: Uuid,
        status: Option<RunStatus>,
        since: Option<DateTime<Utc>>,
        timeout: Duration,
    ) -> Result<Option<Run>, StoreError> {
        let mut changes = self.subscribe(id);
        let Some(run) = self.inner.store.get_run(id).await? else {
            return Ok(None);
        };
        let moved_on =
            status.is_some_and(|s| s != run.status) || since.is_some_and(|at| run.updated_at > at);
        if run.status.is_final() || moved_on || (status.is_none() && since.is_none()) {
            drop(changes);
            self.forget(id);
            return Ok(Some(run));
        }
        let mut closing = self.inner.closing.subscribe();
        tokio::select! {
            _ = changes.changed() => {}
            () = tokio::time::sleep(timeout) => {}
            () = closed(&mut closing) => {}
        }
        drop(changes);
        self.forget(id);
        self.inner.store.get_run(id).await
    }

    fn subscribe(&self, id: Uuid) -> watch::Receiver<()> {
        match self.inner.watchers.lock() {
            Ok(mut watchers) => watchers
                .entry(id)
                .or_insert_with(|| watch::channel(()).0)
                .subscribe(),
            // A poisoned map only loses wake-ups: the wait ends on its timeout.
            Err(_) => watch::channel(()).1,
        }
    }

    /// Drops the run's channel once nobody waits on it.
    fn forget(&self, id: Uuid) {
        if let Ok(mut watchers) = self.inner.watchers.lock()
            && watchers
                .get(&id)
                .is_some_and(|sender| sender.receiver_count() == 0)
        {
            watchers.remove(&id);
        }
    }

    fn notify(&self, id: Uuid) {
        self.inner.gate.run_changed(id);
        if let Ok(mut watchers) = self.inner.watchers.lock()
            && let Some(sender) = watchers.get(&id)
        {
            sender.send_replace(());
            if sender.receiver_count() == 0 {
                watchers.remove(&id);
            }
        }
    }

    fn spawn(&self, run: Run) {
        let engine = self.clone();
        tokio::spawn(async move { engine.drive(run).await });
    }

    /// Takes `run` step by step until it is over or someone else has it.
    async fn drive(&self, mut run: Run) {
        let Some(workflow) = self.inner.workflows.get(&run.workflow).cloned() else {
            tracing::error!(run = %run.id, workflow = %run.workflow, "run of a workflow that is no longer configured");
            return;
        };
        while !run.status.is_final() {
            let from = run.status;
            // An execution counts as in flight until its result is written.
            let _in_flight =
                (from == RunStatus::Executing).then(|| InFlight::enter(&self.inner.executing));
            let next = match from {
                RunStatus::Drafting => self.draft(&workflow, &run).await,
                RunStatus::Validating => self.validate(&workflow, &run).await,
                RunStatus::AwaitingApproval => self.approve(&workflow, &run).await,
                RunStatus::Executing => self.execute(&workflow, &run).await,
                _ => Next::Stop,
            };
            run = match next {
                Next::Advance(next, record) => match self.advance(next, from, record).await {
                    Some(next) => next,
                    None => return,
                },
                Next::Continue(next) => next,
                Next::Stop => return,
            };
        }
        tracing::info!(run = %run.id, status = %run.status, "run over");
    }

    /// Writes a step, retrying while the database is unavailable. `None`:
    /// the run moved elsewhere, stop.
    async fn advance(&self, run: Run, from: RunStatus, record: Option<StageRecord>) -> Option<Run> {
        loop {
            match self
                .inner
                .store
                .advance_run(run.clone(), from, record.clone())
                .await
            {
                Ok(run) => {
                    self.notify(run.id);
                    return Some(run);
                }
                Err(StoreError::Unavailable(detail)) => {
                    tracing::warn!(run = %run.id, %detail, "cannot record the step; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                Err(error) => {
                    tracing::info!(run = %run.id, %error, "run moved on elsewhere; not driving it");
                    return None;
                }
            }
        }
    }

    fn record(&self, run: &Run, stage: Stage, ok: bool, detail: Value) -> StageRecord {
        StageRecord {
            run_id: run.id,
            attempt: run.attempt,
            stage,
            ok,
            at: self.inner.clock.now(),
            detail,
        }
    }

    /// `run` moved to `status`, stamped now.
    fn moved(&self, run: &Run, status: RunStatus) -> Run {
        let mut next = run.clone();
        next.status = status;
        next.updated_at = self.inner.clock.now();
        next
    }

    fn failed(&self, run: &Run, stage: Stage, error: String) -> Next {
        tracing::warn!(run = %run.id, stage = stage.as_str(), %error, "run failed");
        let mut next = self.moved(run, RunStatus::Failed);
        next.error = Some(error.clone());
        let record = self.record(run, stage, false, json!({"error": error}));
        Next::Advance(next, Some(record))
    }

    async fn draft(&self, workflow: &Workflow, run: &Run) -> Next {
        let mut task = run.input.as_object().cloned().unwrap_or_default();
        if run.attempt > 1 {
            match self.last_rejection(run).await {
                Ok(reason) => {
                    task.insert("previous_rejection".into(), Value::from(reason));
                }
                Err(error) => return self.failed(run, Stage::Draft, error.to_string()),
            }
        }
        match workflow.drafter.ask(&Value::Object(task)).await {
            Ok(draft) if draft.is_object() => {
                let status = if workflow.validator.is_some() {
                    RunStatus::Validating
                } else {
                    RunStatus::AwaitingApproval
                };
                let mut next = self.moved(run, status);
                next.draft = Some(draft.clone());
                Next::Advance(next, Some(self.record(run, Stage::Draft, true, draft)))
            }
            Ok(_) => self.failed(
                run,
                Stage::Draft,
                "draft agent: the draft is not a JSON object".into(),
            ),
            Err(error) => self.failed(run, Stage::Draft, format!("draft agent: {error}")),
        }
    }

    /// The reason of the latest rejection, for the redraft.
    async fn last_rejection(&self, run: &Run) -> Result<String, StoreError> {
        let stages = self.inner.store.run_stages(run.id).await?;
        Ok(stages
            .iter()
            .rev()
            .find(|r| r.stage == Stage::Approve && !r.ok)
            .and_then(|r| r.detail.get("rejection_reason"))
            .and_then(Value::as_str)
            .unwrap_or("rejected")
            .to_owned())
    }

    async fn validate(&self, workflow: &Workflow, run: &Run) -> Next {
        let Some(validator) = &workflow.validator else {
            return Next::Advance(self.moved(run, RunStatus::AwaitingApproval), None);
        };
        let task = json!({"draft": run.draft, "validation_type": "quality_check"});
        let verdict = match validator.ask(&task).await {
            Ok(verdict) => verdict,
            Err(error) => return self.failed(run, Stage::Validate, format!("validator: {error}")),
        };
        let is_valid = verdict
            .get("is_valid")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let score = verdict.get("score").and_then(Value::as_f64);
        let passed = is_valid && score.is_none_or(|s| s >= workflow.min_score);
        if passed {
            let next = self.moved(run, RunStatus::AwaitingApproval);
            return Next::Advance(next, Some(self.record(run, Stage::Validate, true, verdict)));
        }
        let issues = verdict.get("issues").cloned().unwrap_or(Value::Null);
        let mut next = self.moved(run, RunStatus::ValidationFailed);
        next.error = Some(match (is_valid, score) {
            (true, Some(score)) => format!(
                "validation score {score} is below the minimum {}",
                workflow.min_score
            ),
            _ => format!("the validator found issues: {issues}"),
        });
        Next::Advance(
            next,
            Some(self.record(run, Stage::Validate, false, verdict)),
        )
    }

    async fn approve(&self, workflow: &Workflow, run: &Run) -> Next {
        let request_id = match run.request_id {
            Some(id) => id,
            None => match self.open_request(workflow, run).await {
                Ok(request) => {
                    let mut next = run.clone();
                    next.request_id = Some(request.id);
                    next.updated_at = self.inner.clock.now();
                    match self.advance(next, RunStatus::AwaitingApproval, None).await {
                        Some(_) => request.id,
                        None => return Next::Stop,
                    }
                }
                Err(next) => return next,
            },
        };
        let decided = loop {
            match self.inner.gate.decided(request_id).await {
                Ok(request) if request.status.is_final() => break request,
                // Not what a gate answers; do not spin on it.
                Ok(_) => tokio::time::sleep(RETRY_DELAY).await,
                Err(_) if self.is_closing() => return Next::Stop,
                Err(error) => {
                    tracing::warn!(run = %run.id, %error, "cannot read the approval; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        };
        let mut run = run.clone();
        run.request_id = Some(request_id);
        self.after_decision(workflow, &run, &decided).await
    }

    /// Opens the attempt's approval request (idempotently).
    async fn open_request(&self, workflow: &Workflow, run: &Run) -> Result<Request, Next> {
        let Some(Value::Object(draft)) = run.draft.clone() else {
            return Err(self.failed(
                run,
                Stage::Approve,
                "the run has no draft to approve".into(),
            ));
        };
        let score = self
            .inner
            .store
            .run_stages(run.id)
            .await
            .ok()
            .and_then(|stages| {
                stages
                    .into_iter()
                    .rev()
                    .find(|r| r.stage == Stage::Validate && r.attempt == run.attempt)
            })
            .and_then(|r| r.detail.get("score").cloned());
        let title: String = draft
            .get("title")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .map_or_else(|| format!("{} proposal", workflow.name), str::to_owned)
            .chars()
            .take(200)
            .collect();
        let mut description = draft
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(score) = score {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&format!("Validation score: {score}"));
        }
        let mut labels = workflow.labels.clone();
        labels.insert("workflow".into(), workflow.name.clone());
        labels.insert("run".into(), run.id.to_string());
        labels.insert("attempt".into(), run.attempt.to_string());
        let approval = NewApproval {
            title,
            description,
            proposed_action: draft,
            // The person who started the run is its requests' requester,
            // so they cannot approve them.
            requester: run
                .started_by
                .clone()
                .unwrap_or_else(|| format!("workflow:{}", workflow.name)),
            labels,
            expires_in: workflow.expires_in,
        };
        match self.inner.gate.open(approval, &run.attempt_key()).await {
            Ok(request) => Ok(request),
            Err(error) => Err(self.failed(
                run,
                Stage::Approve,
                format!("cannot open the approval request: {error}"),
            )),
        }
    }

    async fn after_decision(&self, workflow: &Workflow, run: &Run, request: &Request) -> Next {
        let decision = request.decision.as_ref();
        let detail = json!({
            "request_id": request.id,
            "status": request.status.as_str(),
            "reviewer": decision.and_then(|d| d.reviewer.clone()),
            "comment": decision.and_then(|d| d.comment.clone()),
            "rejection_reason": decision.and_then(|d| d.rejection_reason.clone()),
            "edited": decision.is_some_and(|d| d.edited_action.is_some()),
            "action_hash": decision.and_then(|d| d.action_hash).map(|h| h.to_hex()),
        });
        match request.status {
            Status::Approved => {
                if self.is_closing() {
                    // Shutting down: leave it awaiting; the next start claims it.
                    return Next::Stop;
                }
                // The claim: exactly one process moves the run to executing.
                let claimed = self.moved(run, RunStatus::Executing);
                let record = self.record(run, Stage::Approve, true, detail);
                match self
                    .advance(claimed, RunStatus::AwaitingApproval, Some(record))
                    .await
                {
                    Some(claimed) => Next::Continue(claimed),
                    None => Next::Stop,
                }
            }
            Status::Rejected if run.attempt <= workflow.max_retries => {
                let mut next = self.moved(run, RunStatus::Drafting);
                next.attempt += 1;
                next.draft = None;
                next.request_id = None;
                Next::Advance(next, Some(self.record(run, Stage::Approve, false, detail)))
            }
            status => {
                let final_status = match status {
                    Status::Rejected => RunStatus::Rejected,
                    Status::Expired => RunStatus::Expired,
                    _ => RunStatus::Cancelled,
                };
                let mut next = self.moved(run, final_status);
                next.error = Some(match decision.and_then(|d| d.rejection_reason.clone()) {
                    Some(reason) => format!("rejected: {reason}"),
                    None => format!("the approval request was {status}"),
                });
                Next::Advance(next, Some(self.record(run, Stage::Approve, false, detail)))
            }
        }
    }

    async fn execute(&self, workflow: &Workflow, run: &Run) -> Next {
        let Some(request_id) = run.request_id else {
            return self.failed(
                run,
                Stage::Execute,
                "the run has no approval request".into(),
            );
        };
        // The request is decided (the claim came from its approval): read it
        // straight from the store, which also works while shutting down.
        let request = loop {
            match self.inner.store.get(request_id).await {
                Ok(Some(request)) => break request,
                Ok(None) => {
                    return self.failed(
                        run,
                        Stage::Execute,
                        format!("approval request {request_id} is gone"),
                    );
                }
                Err(error) => {
                    tracing::warn!(run = %run.id, %error, "cannot read the approval; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        };
        // Only the exact action that was approved runs.
        let action = match request.action_to_execute() {
            Ok(action) => Value::Object(action.into_owned()),
            Err(error) => {
                return self.failed(run, Stage::Execute, format!("refused to execute: {error}"));
            }
        };
        match workflow.executor.execute(&action, &run.attempt_key()).await {
            Ok(result) => {
                let mut next = self.moved(run, RunStatus::Succeeded);
                next.result = Some(result.clone());
                Next::Advance(next, Some(self.record(run, Stage::Execute, true, result)))
            }
            Err(error) => self.failed(
                run,
                Stage::Execute,
                format!("executor: {}", describe(&error)),
            ),
        }
    }
}

/// Counts an execution in flight for as long as it lives.
struct InFlight<'a>(&'a watch::Sender<usize>);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a watch::Sender<usize>) -> Self {
        counter.send_modify(|n| *n += 1);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn describe(error: &ConnectorError) -> String {
    error.to_string()
}

/// Runs claimed per store call when taking over from dead replicas.
const CLAIM_BATCH: u32 = 32;

/// Resolves once `closing` says true (or its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here.
    let _ = closing.wait_for(|closing| *closing).await.map(|_| ());
}

//! The engine over a real SQLite store, with scripted agents and a
//! recording executor: every path of a run, and resumption after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use signoff_core::{
    Actor, Clock, Digest, Reason, Request, RequestDraft, Run, RunStatus, Stage, Status,
    SystemClock, Title, Verdict,
};
use signoff_sqlite::{SqliteOptions, SqliteStore};
use signoff_store::{IdempotencyKey, Store};
use signoff_workflow::engine::{Engine, Gate, GateError, NewApproval, Workflow};
use signoff_workflow::{Agent, ConnectorError, Executor};
use tokio::sync::watch;
use uuid::Uuid;

/// A gate straight over the store: what the server's service does, minus HTTP.
struct StoreGate {
    store: Arc<dyn Store>,
    decided: watch::Sender<u64>,
}

#[async_trait]
impl Gate for StoreGate {
    async fn open(&self, approval: NewApproval, key: &str) -> Result<Request, GateError> {
        let draft = RequestDraft {
            title: Title::parse(&approval.title).unwrap(),
            description: approval.description,
            proposed_action: signoff_core::Action::of_map(&approval.proposed_action),
            requester: Actor::parse("requester", &approval.requester).unwrap(),
            labels: approval.labels,
            expires_in: approval.expires_in,
            plan: signoff_core::ApprovalPlan::single(),
        };
        let key = IdempotencyKey {
            key: key.to_owned(),
            fingerprint: Digest::sha256(key.as_bytes()),
        };
        self.store
            .create(Uuid::now_v7(), draft, Some(key))
            .await
            .map(|c| c.request)
            .map_err(|e| GateError(e.to_string()))
    }

    async fn decided(&self, id: Uuid) -> Result<Request, GateError> {
        let mut changes = self.decided.subscribe();
        loop {
            let request = self
                .store
                .get(id)
                .await
                .map_err(|e| GateError(e.to_string()))?
                .ok_or_else(|| GateError("gone".into()))?;
            if request.status.is_final() {
                return Ok(request);
            }
            changes
                .changed()
                .await
                .map_err(|e| GateError(e.to_string()))?;
        }
    }
}

/// Answers each task with the next scripted answer, remembering the tasks.
struct Scripted {
    answers: Mutex<Vec<Result<Value, ConnectorError>>>,
    tasks: Mutex<Vec<Value>>,
}

impl Scripted {
    fn new(answers: Vec<Result<Value, ConnectorError>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into_iter().rev().collect()),
            tasks: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Agent for Scripted {
    async fn ask(&self, task: &Value) -> Result<Value, ConnectorError> {
        self.tasks.lock().unwrap().push(task.clone());
        self.answers
            .lock()
            .unwrap()
            .pop()
            .unwrap_or_else(|| Err(failed("no more answers")))
    }
}

fn failed(message: &str) -> ConnectorError {
    ConnectorError::Failed {
        peer: "test".into(),
        message: message.into(),
    }
}

/// Records every execution.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(Value, String)>>,
    fail: bool,
}

#[async_trait]
impl Executor for Recorder {
    async fn execute(&self, action: &Value, key: &str) -> Result<Value, ConnectorError> {
        self.calls
            .lock()
            .unwrap()
            .push((action.clone(), key.to_owned()));
        if self.fail {
            return Err(failed("tool said no"));
        }
        Ok(json!({"applied": true}))
    }
}

struct Harness {
    store: Arc<dyn Store>,
    gate: Arc<StoreGate>,
    engine: Engine,
    drafter: Arc<Scripted>,
    validator: Arc<Scripted>,
    executor: Arc<Recorder>,
    _dir: tempfile::TempDir,
}

fn draft(title: &str, max: i64) -> Value {
    json!({"title": title, "description": "the policy", "changes": {"max_amount_without_approval": max}})
}

fn valid(score: f64) -> Result<Value, ConnectorError> {
    Ok(json!({"is_valid": true, "score": score, "issues": []}))
}

fn harness(
    drafts: Vec<Result<Value, ConnectorError>>,
    verdicts: Vec<Result<Value, ConnectorError>>,
    executor: Recorder,
    max_retries: u32,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            SqliteOptions::new(dir.path().join("t.db")),
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    reopen(store, dir, drafts, verdicts, executor, max_retries)
}

fn reopen(
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    drafts: Vec<Result<Value, ConnectorError>>,
    verdicts: Vec<Result<Value, ConnectorError>>,
    executor: Recorder,
    max_retries: u32,
) -> Harness {
    let gate = Arc::new(StoreGate {
        store: store.clone(),
        decided: watch::channel(0).0,
    });
    let drafter = Scripted::new(drafts);
    let validator = Scripted::new(verdicts);
    let executor = Arc::new(executor);
    let workflow = Workflow {
        name: "policy-update".into(),
        drafter: drafter.clone(),
        validator: Some(validator.clone()),
        min_score: 70.0,
        executor: executor.clone(),
        max_retries,
        expires_in: signoff_core::ExpiresIn::parse("1h").unwrap(),
        labels: [("team".to_owned(), "finance".to_owned())].into(),
    };
    let engine = Engine::new(
        store.clone(),
        gate.clone(),
        Arc::new(SystemClock),
        vec![workflow],
    );
    Harness {
        store,
        gate,
        engine,
        drafter,
        validator,
        executor,
        _dir: dir,
    }
}

impl Harness {
    /// Waits until the run reaches `status` (or fails the test).
    async fn until(&self, id: Uuid, status: RunStatus) -> Run {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let run = self.store.get_run(id).await.unwrap().unwrap();
            if run.status == status {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run stuck in {} waiting for {status}: {:?}",
                run.status,
                run.error
            );
            self.engine
                .wait(
                    id,
                    Some(run.status),
                    Some(run.updated_at),
                    Duration::from_millis(500),
                )
                .await
                .unwrap();
        }
    }

    /// Waits for the run's approval request (of its current attempt).
    async fn request_of(&self, id: Uuid, attempt: u32) -> Uuid {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let run = self.store.get_run(id).await.unwrap().unwrap();
            if run.attempt == attempt
                && let Some(request) = run.request_id
            {
                return request;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no request: {run:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn decide(&self, request: Uuid, verdict: Verdict) -> Request {
        let decided = self.store.decide(request, verdict).await.unwrap();
        self.gate.decided.send_modify(|n| *n += 1);
        decided
    }
}

fn approve(edit: Option<Map<String, Value>>) -> Verdict {
    Verdict::Approve {
        reviewer: Actor::parse("reviewer", "alice").unwrap(),
        groups: None,
        comment: None,
        edited_action: edit,
    }
}

fn reject(reason: &str) -> Verdict {
    Verdict::Reject {
        reviewer: Actor::parse("reviewer", "bob").unwrap(),
        groups: None,
        reason: Reason::parse("reason", reason).unwrap(),
    }
}

#[tokio::test]
async fn an_approved_draft_is_executed_once() {
    let h = harness(
        vec![Ok(draft("Raise limit", 5000))],
        vec![valid(92.0)],
        Recorder::default(),
        0,
    );
    let run = h
        .engine
        .start("policy-update", json!({"policy_name": "expenses"}), None)
        .await
        .unwrap();
    let request_id = h.request_of(run.id, 1).await;
    let request = h.store.get(request_id).await.unwrap().unwrap();
    assert_eq!(request.title, "Raise limit");
    assert!(
        request.description.contains("Validation score: 92"),
        "{}",
        request.description
    );
    assert_eq!(
        request.proposed_action.to_map()["changes"]["max_amount_without_approval"],
        5000
    );
    assert_eq!(request.labels["run"], run.id.to_string());
    assert_eq!(request.labels["team"], "finance");

    h.decide(request_id, approve(None)).await;
    let done = h.until(run.id, RunStatus::Succeeded).await;
    assert_eq!(done.result, Some(json!({"applied": true})));
    let calls = h.executor.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, draft("Raise limit", 5000));
    assert_eq!(calls[0].1, format!("run-{}-attempt-1", run.id));
    // The validator saw the draft and the guide's validation type.
    let tasks = h.validator.tasks.lock().unwrap().clone();
    assert_eq!(tasks[0]["validation_type"], "quality_check");
    assert_eq!(tasks[0]["draft"]["title"], "Raise limit");
    let stages: Vec<(Stage, bool)> = h
        .store
        .run_stages(run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.stage, r.ok))
        .collect();
    assert_eq!(
        stages,
        [
            (Stage::Draft, true),
            (Stage::Validate, true),
            (Stage::Approve, true),
            (Stage::Execute, true)
        ]
    );
}

#[tokio::test]
async fn a_rejection_goes_back_to_the_drafter() {
    let h = harness(
        vec![Ok(draft("First", 9000)), Ok(draft("Second", 5000))],
        vec![valid(80.0), valid(90.0)],
        Recorder::default(),
        1,
    );
    let run = h
        .engine
        .start("policy-update", json!({"policy_name": "expenses"}), None)
        .await
        .unwrap();
    let first = h.request_of(run.id, 1).await;
    h.decide(first, reject("9000 is too high")).await;
    let second = h.request_of(run.id, 2).await;
    assert_ne!(first, second);
    let tasks = h.drafter.tasks.lock().unwrap().clone();
    assert_eq!(tasks.len(), 2);
    assert!(tasks[0].get("previous_rejection").is_none());
    assert_eq!(tasks[1]["previous_rejection"], "9000 is too high");
    assert_eq!(tasks[1]["policy_name"], "expenses");
    h.decide(second, approve(None)).await;
    h.until(run.id, RunStatus::Succeeded).await;
    let calls = h.executor.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0["title"], "Second");
    assert_eq!(calls[0].1, format!("run-{}-attempt-2", run.id));
}

#[tokio::test]
async fn the_last_rejection_ends_the_run() {
    let h = harness(
        vec![Ok(draft("Only", 9000))],
        vec![valid(80.0)],
        Recorder::default(),
        0,
    );
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let request = h.request_of(run.id, 1).await;
    h.decide(request, reject("no")).await;
    let over = h.until(run.id, RunStatus::Rejected).await;
    assert_eq!(over.error.as_deref(), Some("rejected: no"));
    assert!(h.executor.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_validation_opens_no_request() {
    let h = harness(
        vec![Ok(draft("Bad", 1))],
        vec![Ok(
            json!({"is_valid": false, "score": 20, "issues": ["too low"]}),
        )],
        Recorder::default(),
        2,
    );
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let over = h.until(run.id, RunStatus::ValidationFailed).await;
    assert!(over.error.unwrap().contains("too low"));
    assert_eq!(h.store.count(Status::Pending).await.unwrap(), 0);
    assert!(over.request_id.is_none());

    // A valid draft scoring under the minimum fails too.
    let h = harness(
        vec![Ok(draft("Meh", 1))],
        vec![valid(50.0)],
        Recorder::default(),
        0,
    );
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let over = h.until(run.id, RunStatus::ValidationFailed).await;
    assert!(over.error.unwrap().contains("below the minimum 70"));
}

#[tokio::test]
async fn failures_are_states() {
    // The drafter is down.
    let h = harness(
        vec![Err(failed("connection refused"))],
        vec![],
        Recorder::default(),
        0,
    );
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let over = h.until(run.id, RunStatus::Failed).await;
    assert!(
        over.error.clone().unwrap().contains("draft agent"),
        "{over:?}"
    );

    // A draft that is not an object.
    let h = harness(vec![Ok(json!([1, 2]))], vec![], Recorder::default(), 0);
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let over = h.until(run.id, RunStatus::Failed).await;
    assert!(over.error.unwrap().contains("not a JSON object"));

    // The executor reports an error: recorded, once.
    let h = harness(
        vec![Ok(draft("x", 1))],
        vec![valid(99.0)],
        Recorder {
            fail: true,
            ..Default::default()
        },
        0,
    );
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let request = h.request_of(run.id, 1).await;
    h.decide(request, approve(None)).await;
    let over = h.until(run.id, RunStatus::Failed).await;
    assert!(over.error.unwrap().contains("tool said no"));
    assert_eq!(h.executor.calls.lock().unwrap().len(), 1);
    let last = h.store.run_stages(run.id).await.unwrap().pop().unwrap();
    assert_eq!((last.stage, last.ok), (Stage::Execute, false));
}

#[tokio::test]
async fn an_edited_approval_executes_the_edit() {
    let h = harness(
        vec![Ok(draft("Raise", 9000))],
        vec![valid(80.0)],
        Recorder::default(),
        0,
    );
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let request = h.request_of(run.id, 1).await;
    let edit = draft("Raise", 4000).as_object().unwrap().clone();
    h.decide(request, approve(Some(edit.clone()))).await;
    h.until(run.id, RunStatus::Succeeded).await;
    let calls = h.executor.calls.lock().unwrap().clone();
    assert_eq!(calls[0].0, Value::Object(edit));
}

#[tokio::test]
async fn a_cancelled_request_ends_the_run() {
    let h = harness(
        vec![Ok(draft("Slow", 1))],
        vec![valid(80.0)],
        Recorder::default(),
        3,
    );
    let run = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let request = h.request_of(run.id, 1).await;
    let cancelled = h
        .store
        .decide(
            request,
            Verdict::Cancel {
                actor: Actor::parse("actor", "ops").unwrap(),
                reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    h.gate.decided.send_modify(|n| *n += 1);
    h.until(run.id, RunStatus::Cancelled).await;
    assert!(h.executor.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn after_a_restart_a_waiting_run_resumes_and_a_claimed_one_is_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(SqliteOptions::new(&path), Arc::new(SystemClock)).unwrap());
    // Two runs as a crash left them: one waiting for approval, one claimed
    // for execution with no result.
    let h = reopen(
        store.clone(),
        dir,
        vec![Ok(draft("Wait", 1))],
        vec![valid(80.0)],
        Recorder::default(),
        0,
    );
    let waiting = h
        .engine
        .start("policy-update", json!({}), None)
        .await
        .unwrap();
    let request = h.request_of(waiting.id, 1).await;
    let now = SystemClock.now();
    let mut claimed = Run::start(Uuid::now_v7(), "policy-update".into(), json!({}), now);
    claimed.status = RunStatus::Executing;
    claimed.request_id = Some(request);
    store.create_run(claimed.clone()).await.unwrap();

    // "Restart": a new engine over the same store, with fresh connectors.
    let Harness { _dir: dir, .. } = h;
    let h = reopen(store, dir, vec![], vec![], Recorder::default(), 0);
    assert_eq!(h.engine.resume().await.unwrap(), 2);
    let unknown = h.until(claimed.id, RunStatus::ExecutionUnknown).await;
    assert!(unknown.error.unwrap().contains("unknown"));
    h.decide(request, approve(None)).await;
    h.until(waiting.id, RunStatus::Succeeded).await;
    let calls = h.executor.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "only the waiting run executes: {calls:?}");
    // Its request was not opened twice.
    let all = h
        .store
        .list(signoff_store::ListQuery {
            status: None,
            limit: 10,
            before: None,
            requester: None,
        })
        .await
        .unwrap();
    assert_eq!(all.requests.len(), 1);
}

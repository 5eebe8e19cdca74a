//! The behaviour every backend must show, as functions a backend's tests
//! call with a fresh store (one per function) and the [`ManualClock`] it was
//! opened with. Run for SQLite in `signoff-sqlite`, and for every later
//! backend the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use signoff_core::{
    Action, Actor, ApprovalPlan, ApprovalStage, AuditEvent, CanonicalJson, Digest, ExpiresIn,
    ManualClock, Reason, RequestDraft, Run, RunStatus, Stage, StageRecord, Status, Title,
    TransitionError, Verdict,
};
use uuid::Uuid;

use signoff_core::{Attempt, Clock, Delivery, DeliveryStatus, Webhook, WebhookFormat};

use crate::{AuditQuery, DeliveryQuery, IdempotencyKey, ListQuery, Store, StoreError};

/// A draft titled `title` that lives `seconds`.
pub fn draft(title: &str, seconds: u64) -> RequestDraft {
    RequestDraft {
        title: Title::parse(title).unwrap(),
        description: "from the suite".into(),
        proposed_action: Action::of_map(json!({"changes": {"limit": 5000}}).as_object().unwrap()),
        requester: Actor::parse("requester", "agent-1").unwrap(),
        labels: BTreeMap::from([("team".to_string(), "finance".to_string())]),
        expires_in: ExpiresIn::from_seconds(seconds).unwrap(),
        plan: ApprovalPlan::single(),
    }
}

fn approve(who: &str) -> Verdict {
    Verdict::Approve {
        reviewer: Actor::parse("reviewer", who).unwrap(),
        groups: None,
        comment: Some("ok".into()),
        edited_action: None,
    }
}

fn reject(who: &str) -> Verdict {
    Verdict::Reject {
        reviewer: Actor::parse("reviewer", who).unwrap(),
        groups: None,
        reason: Reason::parse("reason", "not now").unwrap(),
    }
}

/// Created requests read back exactly; decisions are final.
pub async fn create_read_decide(store: Arc<dyn Store>) {
    let id = Uuid::now_v7();
    let created = store.create(id, draft("first", 60), None).await.unwrap();
    assert!(!created.replayed);
    let read = store.get(id).await.unwrap().unwrap();
    assert_eq!(read, created.request);
    let approved = store.decide(id, approve("alice")).await.unwrap();
    assert_eq!(approved.status, Status::Approved);
    assert_eq!(store.get(id).await.unwrap().unwrap(), approved);
    let again = store.decide(id, reject("bob")).await.unwrap_err();
    assert!(matches!(
        again,
        StoreError::Transition(TransitionError::AlreadyFinal {
            status: Status::Approved
        })
    ));
    assert!(matches!(
        store.decide(Uuid::now_v7(), approve("alice")).await,
        Err(StoreError::NotFound(_))
    ));
}

/// An approval with edits keeps the edit and its hash, the executor's
/// check passes on what was stored, and the trail holds both actions and
/// still verifies.
pub async fn approve_with_edits(store: Arc<dyn Store>) {
    let id = Uuid::now_v7();
    let created = store.create(id, draft("edit me", 60), None).await.unwrap();
    let edit = json!({"changes": {"limit": 4000}})
        .as_object()
        .unwrap()
        .clone();
    let verdict = Verdict::Approve {
        reviewer: Actor::parse("reviewer", "alice").unwrap(),
        groups: None,
        comment: None,
        edited_action: Some(edit.clone()),
    };
    let approved = store.decide(id, verdict).await.unwrap();
    let read = store.get(id).await.unwrap().unwrap();
    assert_eq!(read, approved);
    assert_eq!(read.action_to_execute().unwrap().as_ref(), &edit);
    let decision = read.decision.unwrap();
    assert_eq!(decision.action_hash, Some(signoff_core::action_hash(&edit)));
    let trail = store
        .audit(AuditQuery {
            request_id: Some(id),
            after_seq: None,
            limit: 10,
        })
        .await
        .unwrap();
    let approval = &trail[1].record;
    assert_eq!(approval.event, AuditEvent::Approved);
    assert_eq!(approval.action, Some(CanonicalJson::of_object(&edit)));
    assert_eq!(
        approval.original_action,
        Some(created.request.proposed_action.canonical())
    );
    let report = store.verify_audit().await.unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
}

/// A request's plan and every sign-off on it are stored with it; a refused
/// sign-off by someone not eligible is on record; the trail holds each
/// approval with its stage and still verifies; a plan needing nobody is
/// approved as it is created, with the rule as actor.
pub async fn approval_plans(store: Arc<dyn Store>) {
    let member = |name: &str, group: &str| Verdict::Approve {
        reviewer: Actor::parse("reviewer", name).unwrap(),
        groups: Some(vec![group.to_owned()]),
        comment: None,
        edited_action: None,
    };
    let plan = ApprovalPlan {
        policy: "chain".into(),
        rule: Some("large".into()),
        stages: vec![
            ApprovalStage {
                name: "manager".into(),
                users: vec!["mia".into()],
                groups: Vec::new(),
                quorum: 1,
            },
            ApprovalStage {
                name: "finance".into(),
                users: Vec::new(),
                groups: vec!["finance".into()],
                quorum: 2,
            },
        ],
        reminder: None,
    };
    let mut chained = draft("chained", 60);
    chained.plan = plan.clone();
    let id = Uuid::now_v7();
    store.create(id, chained, None).await.unwrap();
    let early = store.decide(id, member("fiona", "finance")).await;
    assert!(
        matches!(
            early,
            Err(StoreError::Transition(TransitionError::NotEligible { .. }))
        ),
        "{early:?}"
    );
    let after_manager = store.decide(id, member("mia", "staff")).await.unwrap();
    assert_eq!(after_manager.status, Status::Pending);
    store.decide(id, member("fiona", "finance")).await.unwrap();
    let read = store.get(id).await.unwrap().unwrap();
    assert_eq!(read.plan, plan);
    assert_eq!(read.approvals.len(), 2);
    assert_eq!(read.status, Status::Pending);
    let approved = store.decide(id, member("fred", "finance")).await.unwrap();
    assert_eq!(approved.status, Status::Approved);
    assert_eq!(store.get(id).await.unwrap().unwrap(), approved);
    assert_eq!(
        approved.decision.as_ref().and_then(|d| d.stage.as_deref()),
        Some("finance")
    );
    let trail = store
        .audit(AuditQuery {
            request_id: Some(id),
            after_seq: None,
            limit: 10,
        })
        .await
        .unwrap();
    let events: Vec<_> = trail
        .iter()
        .map(|e| (e.record.event, e.record.stage.clone()))
        .collect();
    assert_eq!(
        events,
        [
            (AuditEvent::Created, None),
            (AuditEvent::Denied, None),
            (AuditEvent::Endorsed, Some("manager".into())),
            (AuditEvent::Endorsed, Some("finance".into())),
            (AuditEvent::Approved, Some("finance".into())),
        ]
    );

    let mut auto = draft("low risk", 60);
    auto.plan = ApprovalPlan {
        policy: "auto".into(),
        rule: Some("small".into()),
        stages: Vec::new(),
        reminder: None,
    };
    let auto_id = Uuid::now_v7();
    let created = store.create(auto_id, auto, None).await.unwrap();
    assert_eq!(created.request.status, Status::Approved);
    let read = store.get(auto_id).await.unwrap().unwrap();
    assert_eq!(read, created.request);
    assert_eq!(
        read.decision.and_then(|d| d.reviewer).as_deref(),
        Some("rule:small")
    );
    let report = store.verify_audit().await.unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
}

/// Runs are stored, moved on only from where the caller saw them, and of
/// many racing claims to execute exactly one wins.
pub async fn runs(store: Arc<dyn Store>) {
    // Stored times have microsecond precision.
    let now =
        chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
    let run = Run::start(
        Uuid::now_v7(),
        "policy-update".into(),
        json!({"policy": "x"}),
        now,
    );
    let id = run.id;
    store.create_run(run.clone()).await.unwrap();
    assert_eq!(store.get_run(id).await.unwrap(), Some(run.clone()));
    assert_eq!(store.unfinished_runs().await.unwrap().len(), 1);

    let mut drafted = run.clone();
    drafted.status = RunStatus::AwaitingApproval;
    drafted.draft = Some(json!({"title": "t"}));
    let record = StageRecord {
        run_id: id,
        attempt: 1,
        stage: Stage::Draft,
        ok: true,
        at: now,
        detail: json!({"title": "t"}),
    };
    store
        .advance_run(drafted.clone(), RunStatus::Drafting, Some(record.clone()))
        .await
        .unwrap();
    // From a stale status nothing is written.
    let stale = store
        .advance_run(drafted.clone(), RunStatus::Drafting, Some(record.clone()))
        .await
        .unwrap_err();
    assert!(matches!(
        stale,
        StoreError::RunMoved {
            status: RunStatus::AwaitingApproval,
            ..
        }
    ));
    assert_eq!(store.run_stages(id).await.unwrap(), vec![record]);

    let mut claims = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let mut executing = drafted.clone();
        executing.status = RunStatus::Executing;
        claims.push(tokio::spawn(async move {
            store
                .advance_run(executing, RunStatus::AwaitingApproval, None)
                .await
        }));
    }
    let mut won = 0;
    for claim in claims {
        match claim.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::RunMoved { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(won, 1);
    let mut done = store.get_run(id).await.unwrap().unwrap();
    done.status = RunStatus::Succeeded;
    done.result = Some(json!({"applied": true}));
    store
        .advance_run(done.clone(), RunStatus::Executing, None)
        .await
        .unwrap();
    assert!(store.unfinished_runs().await.unwrap().is_empty());
    assert_eq!(store.get_run(id).await.unwrap(), Some(done));
    assert!(matches!(store.get_run(Uuid::now_v7()).await, Ok(None)));
}

/// Listing by requester shows only that requester's requests.
pub async fn list_by_requester(store: Arc<dyn Store>) {
    let mut mine = draft("mine", 60);
    mine.requester = Actor::parse("requester", "agent-a").unwrap();
    let mut theirs = draft("theirs", 60);
    theirs.requester = Actor::parse("requester", "agent-b").unwrap();
    store.create(Uuid::now_v7(), mine, None).await.unwrap();
    store.create(Uuid::now_v7(), theirs, None).await.unwrap();
    let page = store
        .list(ListQuery {
            status: None,
            limit: 10,
            before: None,
            requester: Some("agent-a".into()),
        })
        .await
        .unwrap();
    let titles: Vec<&str> = page.requests.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(titles, ["mine"]);
}

/// Tokens are stored without their secret, found by id, listed, and revoked
/// once.
pub async fn tokens(store: Arc<dyn Store>) {
    let now =
        chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
    let (record, token) = signoff_core::TokenRecord::issue(
        "alice".into(),
        signoff_core::Role::Reviewer,
        vec!["finance".into()],
        &[9; 38],
        now,
        None,
    );
    store.create_token(record.clone()).await.unwrap();
    let stored = store.token(&record.id).await.unwrap().unwrap();
    assert_eq!(stored, record);
    let (_, secret) = signoff_core::parse_token(&token).unwrap();
    assert_eq!(stored.verify(secret, now).unwrap().name, "alice");
    assert_eq!(store.tokens().await.unwrap(), vec![record.clone()]);
    let revoked = store.revoke_token(&record.id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    let again = store.revoke_token(&record.id).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);
    assert!(store.revoke_token("000000000000").await.unwrap().is_none());
    assert!(store.token("000000000000").await.unwrap().is_none());
}

/// Lists are newest first, filtered by status, and page without overlap.
pub async fn list_pages(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for n in 0..7 {
        let id = Uuid::now_v7();
        store
            .create(id, draft(&format!("r{n}"), 60), None)
            .await
            .unwrap();
        ids.push(id);
    }
    store.decide(ids[0], reject("bob")).await.unwrap();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list(ListQuery {
                status: Some(Status::Pending),
                limit: 4,
                before,
                requester: None,
            })
            .await
            .unwrap();
        seen.extend(page.requests.iter().map(|r| r.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<Uuid> = ids[1..].iter().rev().copied().collect();
    assert_eq!(seen, expected);
    assert_eq!(store.count(Status::Pending).await.unwrap(), 6);
    assert_eq!(store.count(Status::Rejected).await.unwrap(), 1);
}

/// Of many verdicts racing on one request, exactly one wins.
pub async fn racing_decisions(store: Arc<dyn Store>) {
    let id = Uuid::now_v7();
    store.create(id, draft("race", 60), None).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let verdict = if n % 2 == 0 {
                    approve("alice")
                } else {
                    reject("bob")
                };
                store.decide(id, verdict).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Transition(TransitionError::AlreadyFinal { .. })) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(wins, 1);
    let trail = store
        .audit(AuditQuery {
            request_id: Some(id),
            after_seq: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(trail.len(), 2, "one creation and one decision");
}

/// A repeated idempotency key returns the first request; another body is refused.
pub async fn idempotent_create(store: Arc<dyn Store>) {
    let key = |fp: u8| IdempotencyKey {
        key: "key-1".into(),
        fingerprint: Digest([fp; 32]),
    };
    let first = store
        .create(Uuid::now_v7(), draft("once", 60), Some(key(1)))
        .await
        .unwrap();
    let again = store
        .create(Uuid::now_v7(), draft("once", 60), Some(key(1)))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.request.id, first.request.id);
    let other = store
        .create(Uuid::now_v7(), draft("twice", 60), Some(key(2)))
        .await;
    assert!(matches!(other, Err(StoreError::IdempotencyMismatch)));
    assert_eq!(store.count(Status::Pending).await.unwrap(), 1);
}

/// Overdue requests expire, by sweep or when someone tries to approve them.
pub async fn expiry(store: Arc<dyn Store>, clock: Arc<ManualClock>) {
    let born_expired = store
        .create(Uuid::now_v7(), draft("zero", 0), None)
        .await
        .unwrap();
    assert_eq!(born_expired.request.status, Status::Expired);
    let late = Uuid::now_v7();
    store.create(late, draft("late", 60), None).await.unwrap();
    let swept = Uuid::now_v7();
    store.create(swept, draft("swept", 30), None).await.unwrap();
    assert_eq!(
        store.next_expiry().await.unwrap(),
        Some(signoff_core::Clock::now(clock.as_ref()) + Duration::seconds(30))
    );
    clock.advance(Duration::seconds(45));
    let expired = store.expire_overdue(100).await.unwrap();
    assert_eq!(expired.iter().map(|r| r.id).collect::<Vec<_>>(), [swept]);
    clock.advance(Duration::seconds(60));
    let err = store.decide(late, approve("alice")).await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::Transition(TransitionError::Expired { .. })
    ));
    assert_eq!(
        store.get(late).await.unwrap().unwrap().status,
        Status::Expired
    );
    let events: Vec<AuditEvent> = store
        .audit(AuditQuery {
            request_id: Some(late),
            after_seq: None,
            limit: 10,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.event)
        .collect();
    assert_eq!(events, [AuditEvent::Created, AuditEvent::Expired]);
    assert!(store.verify_audit().await.unwrap().broken.is_none());
}

/// The outbox: a subscription starts at the head of the trail, its cursor
/// moves as a compare-and-set with its deliveries, a claimed delivery is
/// not claimed again until its claim ends, and tries are recorded.
pub async fn webhook_outbox(store: Arc<dyn Store>, clock: Arc<ManualClock>) {
    store
        .create(Uuid::now_v7(), draft("before", 60), None)
        .await
        .unwrap();
    let head = store.last_audit_seq().await.unwrap();
    let hook = store
        .create_webhook(Webhook {
            id: Uuid::now_v7(),
            url: "http://127.0.0.1:9/hook".into(),
            events: vec!["*".into()],
            secret: "s3cret".into(),
            format: WebhookFormat::Json,
            created_by: Some("admin".into()),
            created_at: clock.now(),
            cursor: -1,
        })
        .await
        .unwrap();
    assert_eq!(hook.cursor, head, "a new subscription starts at the head");
    assert_eq!(store.webhooks().await.unwrap(), vec![hook.clone()]);

    let request = Uuid::now_v7();
    store
        .create(request, draft("after", 60), None)
        .await
        .unwrap();
    let seq = store.last_audit_seq().await.unwrap();
    let delivery = Delivery {
        id: Uuid::now_v7(),
        webhook_id: hook.id,
        seq,
        event: "request.created".into(),
        request_id: request,
        body: "{\"type\":\"request.created\"}".into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: clock.now(),
        last_status: None,
        last_error: None,
        created_at: clock.now(),
        delivered_at: None,
    };
    assert!(
        store
            .enqueue_deliveries(hook.id, head, seq, vec![delivery.clone()])
            .await
            .unwrap()
    );
    assert!(
        !store
            .enqueue_deliveries(hook.id, head, seq, vec![delivery.clone()])
            .await
            .unwrap(),
        "a stale cursor writes nothing"
    );
    assert_eq!(store.webhooks().await.unwrap()[0].cursor, seq);

    let now = clock.now();
    let lease = now + Duration::seconds(60);
    let claimed = store.claim_deliveries(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].body, delivery.body);
    assert!(
        store
            .claim_deliveries(now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(lease));

    let retry_at = now + Duration::seconds(5);
    store
        .record_attempt(
            delivery.id,
            Attempt {
                at: now,
                status: Some(500),
                error: Some("HTTP 500".into()),
                retry_at: Some(retry_at),
            },
        )
        .await
        .unwrap();
    clock.advance(Duration::seconds(5));
    let again = store
        .claim_deliveries(clock.now(), clock.now() + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_status, Some(500));
    store
        .record_attempt(
            delivery.id,
            Attempt {
                at: clock.now(),
                status: Some(204),
                error: None,
                retry_at: None,
            },
        )
        .await
        .unwrap();
    let listed = store
        .deliveries(DeliveryQuery {
            webhook_id: Some(hook.id),
            status: None,
            request_id: Some(request),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, DeliveryStatus::Delivered);
    assert_eq!(listed[0].attempts, 2);
    assert_eq!(listed[0].delivered_at, Some(clock.now()));
    assert_eq!(store.next_delivery_due().await.unwrap(), None);

    // Three more, one per new request: lists come newest first, each filter
    // narrows them, and a claim takes no more than it is asked for.
    let cursor = store.last_audit_seq().await.unwrap();
    let mut more = Vec::new();
    for title in ["one", "two", "three"] {
        let id = Uuid::now_v7();
        store.create(id, draft(title, 60), None).await.unwrap();
        more.push(Delivery {
            id: Uuid::now_v7(),
            seq: store.last_audit_seq().await.unwrap(),
            request_id: id,
            ..delivery.clone()
        });
    }
    let last = more.last().map_or(cursor, |d| d.seq);
    assert!(
        store
            .enqueue_deliveries(hook.id, cursor, last, more.clone())
            .await
            .unwrap()
    );
    let list = |webhook_id, status, request_id, limit| {
        let store = Arc::clone(&store);
        async move {
            store
                .deliveries(DeliveryQuery {
                    webhook_id,
                    status,
                    request_id,
                    limit,
                })
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    let mut newest_first: Vec<Uuid> = more.iter().map(|d| d.id).collect();
    newest_first.push(delivery.id);
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(list(None, None, None, 10).await, newest_first);
    assert_eq!(list(Some(hook.id), None, None, 2).await, newest_first[..2]);
    assert_eq!(
        list(None, Some(DeliveryStatus::Delivered), None, 10).await,
        [delivery.id]
    );
    assert_eq!(
        list(None, Some(DeliveryStatus::Pending), None, 10)
            .await
            .len(),
        3
    );
    assert_eq!(
        list(
            Some(hook.id),
            Some(DeliveryStatus::Pending),
            Some(more[1].request_id),
            10
        )
        .await,
        [more[1].id]
    );
    assert!(list(Some(Uuid::now_v7()), None, None, 10).await.is_empty());
    assert_eq!(
        store.claim_deliveries(now, lease, 2).await.unwrap().len(),
        2,
        "a claim takes at most its limit"
    );
    assert_eq!(
        store.claim_deliveries(now, lease, 10).await.unwrap().len(),
        1
    );

    let redelivered = store.redeliver(delivery.id).await.unwrap().unwrap();
    assert_eq!(redelivered.status, DeliveryStatus::Pending);
    assert!(store.redeliver(Uuid::now_v7()).await.unwrap().is_none());

    assert!(store.delete_webhook(hook.id).await.unwrap());
    assert!(!store.delete_webhook(hook.id).await.unwrap());
    assert!(store.webhooks().await.unwrap().is_empty());
    let gone = store
        .deliveries(DeliveryQuery {
            webhook_id: None,
            status: None,
            request_id: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(gone.is_empty(), "deliveries go with their subscription");
}

/// A reminder is given once, when due, escalates the current stage, and
/// is recorded; decided requests get none.
pub async fn reminders(store: Arc<dyn Store>, clock: Arc<ManualClock>) {
    let mut reminded = draft("remind me", 100);
    reminded.plan = ApprovalPlan {
        policy: "finance".into(),
        rule: None,
        stages: vec![ApprovalStage {
            name: "finance".into(),
            users: Vec::new(),
            groups: vec!["finance".into()],
            quorum: 1,
        }],
        reminder: Some(signoff_core::Reminder {
            at_permille: 500,
            escalate_to: Some("oncall".into()),
        }),
    };
    let id = Uuid::now_v7();
    store.create(id, reminded.clone(), None).await.unwrap();
    let decided = Uuid::now_v7();
    store.create(decided, reminded, None).await.unwrap();
    let member = Verdict::Approve {
        reviewer: Actor::parse("reviewer", "fiona").unwrap(),
        groups: Some(vec!["finance".into()]),
        comment: None,
        edited_action: None,
    };
    store.decide(decided, member).await.unwrap();
    let due = clock.now() + Duration::seconds(50);
    assert_eq!(store.next_reminder().await.unwrap(), Some(due));
    assert!(store.remind_due(10).await.unwrap().is_empty(), "not yet");
    clock.advance(Duration::seconds(51));
    let given = store.remind_due(10).await.unwrap();
    assert_eq!(given.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    assert!(store.remind_due(10).await.unwrap().is_empty(), "only once");
    assert_eq!(store.next_reminder().await.unwrap(), None);
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Pending);
    assert_eq!(stored.plan.reminder, None);
    assert_eq!(stored.plan.stages[0].groups, ["finance", "oncall"]);
    let trail = store
        .audit(AuditQuery {
            request_id: Some(id),
            after_seq: None,
            limit: 10,
        })
        .await
        .unwrap();
    let last = &trail.last().unwrap().record;
    assert_eq!(last.event, AuditEvent::Reminded);
    assert_eq!(last.stage.as_deref(), Some("finance"));
    // The escalated group may now sign.
    let oncall = Verdict::Approve {
        reviewer: Actor::parse("reviewer", "otto").unwrap(),
        groups: Some(vec!["oncall".into()]),
        comment: None,
        edited_action: None,
    };
    assert_eq!(
        store.decide(id, oncall).await.unwrap().status,
        Status::Approved
    );
    assert!(store.verify_audit().await.unwrap().broken.is_none());
}

/// Declares one test per suite function for a backend. `$open` is an async
/// fn returning `(Arc<dyn Store>, Arc<ManualClock>, guard)`: a fresh, empty
/// store, the clock it was opened with, and whatever must live as long as
/// the store (a temporary directory, a scratch database).
#[macro_export]
macro_rules! suite_tests {
    ($open:path) => {
        #[tokio::test]
        async fn create_read_decide() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::create_read_decide(store).await;
        }

        #[tokio::test]
        async fn approve_with_edits() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::approve_with_edits(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn runs() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::runs(store).await;
        }

        #[tokio::test]
        async fn list_by_requester() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::list_by_requester(store).await;
        }

        #[tokio::test]
        async fn tokens() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::tokens(store).await;
        }

        #[tokio::test]
        async fn list_pages() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::list_pages(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn racing_decisions() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::racing_decisions(store).await;
        }

        #[tokio::test]
        async fn idempotent_create() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::idempotent_create(store).await;
        }

        #[tokio::test]
        async fn expiry() {
            let (store, clock, _guard) = $open().await;
            $crate::suite::expiry(store, clock).await;
        }

        #[tokio::test]
        async fn approval_plans() {
            let (store, _clock, _guard) = $open().await;
            $crate::suite::approval_plans(store).await;
        }

        #[tokio::test]
        async fn webhook_outbox() {
            let (store, clock, _guard) = $open().await;
            $crate::suite::webhook_outbox(store, clock).await;
        }

        #[tokio::test]
        async fn reminders() {
            let (store, clock, _guard) = $open().await;
            $crate::suite::reminders(store, clock).await;
        }
    };
}

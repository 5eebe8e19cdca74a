//! Group commit for PostgreSQL: one task per process takes every write
//! waiting in its channel and applies them in one transaction.
//!
//! Every write that appends to the audit trail must hold the trail's head
//! row, so writes are serial across all replicas, and the cost of a write is
//! the round trips made while holding that lock. Batching pays the lock, the
//! commit and each kind of statement once per batch: the rows of all creates
//! go in with one `INSERT ... SELECT FROM UNNEST(...)`, the entries of the
//! whole batch with another, and so on. Decisions read their request `FOR
//! UPDATE` one by one (each check needs the row), but see the batch's own
//! earlier changes first, so two verdicts on one request in one batch behave
//! exactly as in two transactions: the second finds it decided.
//!
//! Every command makes its checks before it adds anything to the batch, so
//! a refused command writes nothing. If a statement fails, the whole batch
//! rolls back (none of it was acknowledged) and each command is tried again
//! in a transaction of its own, so a command the database refuses fails
//! alone.

use std::collections::HashMap;

use signoff_core::{
    AuditEntry, AuditRecord, Chain, Clock, Decided, Digest, Request, RequestDraft, TransitionError,
    Verdict,
};
use signoff_store::codec::{AuditRow, RequestRow, corrupt, micros};
use signoff_store::{Created, IdempotencyKey, StoreError, StoreResult};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{CHANNEL, load_request, request_from_row, unavailable};

/// Commands per transaction at most.
const MAX_BATCH: usize = 256;

/// A write for the writer task.
pub(crate) enum Op {
    Create {
        id: Uuid,
        draft: RequestDraft,
        idempotency: Option<IdempotencyKey>,
    },
    Decide {
        id: Uuid,
        verdict: Verdict,
    },
    ExpireOverdue {
        limit: u32,
    },
    Remind {
        limit: u32,
    },
    Deny {
        id: Uuid,
        actor: Option<String>,
        reason: String,
    },
}

/// What a write produced.
pub(crate) enum Done {
    Created(Created),
    Decided(Request),
    /// The requests a sweep (expiry or reminders) moved.
    Swept(Vec<Request>),
    Denied,
}

pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<StoreResult<Done>>,
}

/// Runs until every sender is gone.
pub(crate) async fn run(
    pool: PgPool,
    clock: std::sync::Arc<dyn Clock>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = commands.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        metrics::histogram!("signoff_store_batch_size").record(batch.len() as f64);
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.drain(..).map(|c| (c.op, c.reply)).unzip();
        let now = clock.now();
        let results = match apply(&pool, now, &ops).await {
            Ok(results) => results,
            // One command's failure must not fail the others: each alone.
            Err(_) if ops.len() > 1 => {
                let mut results = Vec::with_capacity(ops.len());
                for op in &ops {
                    results.push(match apply(&pool, now, std::slice::from_ref(op)).await {
                        Ok(mut one) => one.pop().unwrap_or_else(|| Err(mismatch())),
                        Err(error) => Err(error),
                    });
                }
                results
            }
            Err(error) => vec![Err(error)],
        };
        for (reply, result) in replies.into_iter().zip(results) {
            // A caller that gave up no longer listens; the write stands.
            let _ = reply.send(result);
        }
    }
}

/// A request the batch has read or made, as it is now.
struct Touched {
    request: Request,
    /// Made in this batch (inserted at the end) rather than read.
    new: bool,
    /// Changed by this batch (to be written back).
    changed: bool,
}

#[derive(Default)]
struct Batch {
    touched: HashMap<Uuid, Touched>,
    /// Ids in the order they were first touched, for stable statements.
    order: Vec<Uuid>,
    entries: Vec<AuditEntry>,
    keys: Vec<(String, Digest, Uuid)>,
    /// Idempotency keys seen: stored before, or made in this batch.
    known_keys: HashMap<String, (Digest, Uuid)>,
}

impl Batch {
    fn touch(&mut self, request: Request, new: bool, changed: bool) {
        let id = request.id;
        match self.touched.get_mut(&id) {
            Some(t) => {
                t.request = request;
                t.changed |= changed;
            }
            None => {
                self.order.push(id);
                self.touched.insert(
                    id,
                    Touched {
                        request,
                        new,
                        changed,
                    },
                );
            }
        }
    }

    /// The request as this batch sees it, reading (and locking) it first
    /// if the batch has not yet.
    async fn request(&mut self, conn: &mut PgConnection, id: Uuid) -> StoreResult<Option<Request>> {
        if let Some(t) = self.touched.get(&id) {
            return Ok(Some(t.request.clone()));
        }
        let found = load_request(conn, id, true).await?;
        if let Some(request) = &found {
            self.touch(request.clone(), false, false);
        }
        Ok(found)
    }

    fn append(&mut self, chain: &mut Chain, records: Vec<AuditRecord>) {
        for record in records {
            self.entries.push(chain.append(record));
        }
    }
}

async fn apply(
    pool: &PgPool,
    now: chrono::DateTime<chrono::Utc>,
    ops: &[Op],
) -> StoreResult<Vec<StoreResult<Done>>> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let row = sqlx::query("SELECT last_seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
    let last_seq: i64 = row.try_get(0).map_err(unavailable)?;
    let hash: String = row.try_get(1).map_err(unavailable)?;
    let head = Digest::from_hex(&hash).ok_or_else(|| corrupt("audit head hash", &hash))?;
    let mut chain = Chain::resume(last_seq, head);
    let mut batch = Batch::default();

    // Every idempotency key of the batch in one query.
    let keys: Vec<String> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Create {
                idempotency: Some(key),
                ..
            } => Some(key.key.clone()),
            _ => None,
        })
        .collect();
    if !keys.is_empty() {
        let rows = sqlx::query(
            "SELECT key, fingerprint, request_id FROM idempotency_keys WHERE key = ANY($1)",
        )
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        for row in rows {
            let key: String = row.try_get(0).map_err(unavailable)?;
            let fingerprint: String = row.try_get(1).map_err(unavailable)?;
            let request_id: Uuid = row.try_get(2).map_err(unavailable)?;
            let fingerprint = Digest::from_hex(&fingerprint)
                .ok_or_else(|| corrupt("idempotency fingerprint", &fingerprint))?;
            batch.known_keys.insert(key, (fingerprint, request_id));
        }
    }

    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let result = match op {
            Op::Create {
                id,
                draft,
                idempotency,
            } => {
                create(
                    &mut tx,
                    &mut batch,
                    &mut chain,
                    now,
                    *id,
                    draft.clone(),
                    idempotency.clone(),
                )
                .await?
            }
            Op::Decide { id, verdict } => {
                decide(&mut tx, &mut batch, &mut chain, now, *id, verdict.clone()).await?
            }
            Op::ExpireOverdue { limit } => {
                let expire = Request::expire;
                sweep(
                    &mut tx, &mut batch, &mut chain, now, *limit, OVERDUE, expire,
                )
                .await?
            }
            Op::Remind { limit } => {
                let remind = Request::remind;
                sweep(
                    &mut tx,
                    &mut batch,
                    &mut chain,
                    now,
                    *limit,
                    REMINDER_DUE,
                    remind,
                )
                .await?
            }
            Op::Deny { id, actor, reason } => match batch.request(&mut tx, *id).await? {
                Some(request) => {
                    let record = request.denial(now, actor.clone(), reason.clone());
                    batch.append(&mut chain, vec![record]);
                    Ok(Done::Denied)
                }
                None => Ok(Done::Denied),
            },
        };
        results.push(result);
    }
    flush(&mut tx, &batch, &chain).await?;
    tx.commit().await.map_err(unavailable)?;
    Ok(results)
}

fn mismatch() -> StoreError {
    StoreError::Corrupt("a batch of one answered nothing".into())
}

/// Checks made and recorded in the batch; a `StoreError` that escapes is a
/// database failure (the batch is torn).
type Outcome = StoreResult<StoreResult<Done>>;

async fn create(
    conn: &mut PgConnection,
    batch: &mut Batch,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    id: Uuid,
    draft: RequestDraft,
    idempotency: Option<IdempotencyKey>,
) -> Outcome {
    if let Some(key) = &idempotency
        && let Some((fingerprint, request_id)) = batch.known_keys.get(&key.key).copied()
    {
        if fingerprint != key.fingerprint {
            return Ok(Err(StoreError::IdempotencyMismatch));
        }
        return match batch.request(conn, request_id).await? {
            Some(request) => Ok(Ok(Done::Created(Created {
                request,
                replayed: true,
            }))),
            None => Ok(Err(StoreError::Corrupt(format!(
                "idempotency key points at missing request {request_id}"
            )))),
        };
    }
    let (request, records) = draft.open(id, now);
    if let Some(key) = idempotency {
        batch
            .known_keys
            .insert(key.key.clone(), (key.fingerprint, id));
        batch.keys.push((key.key, key.fingerprint, id));
    }
    batch.append(chain, records);
    batch.touch(request.clone(), true, true);
    Ok(Ok(Done::Created(Created {
        request,
        replayed: false,
    })))
}

async fn decide(
    conn: &mut PgConnection,
    batch: &mut Batch,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    id: Uuid,
    verdict: Verdict,
) -> Outcome {
    let Some(mut request) = batch.request(conn, id).await? else {
        return Ok(Err(StoreError::NotFound(id)));
    };
    let (record, outcome) = match request.decide(verdict, now) {
        Decided::Applied(record) => (record, None),
        Decided::ExpiredInstead(record) => (
            record,
            Some(TransitionError::Expired {
                expires_at: request.expires_at,
            }),
        ),
        Decided::Refused(error) => return Ok(Err(error.into())),
        Decided::Denied(record, error) => {
            batch.append(chain, vec![record]);
            return Ok(Err(error.into()));
        }
    };
    batch.append(chain, vec![record]);
    batch.touch(request.clone(), false, true);
    Ok(match outcome {
        None => Ok(Done::Decided(request)),
        // The expiry is written and stands; the caller still hears "expired".
        Some(expired) => Err(expired.into()),
    })
}

/// What a sweep does to each due request.
type Transition = fn(
    &mut Request,
    chrono::DateTime<chrono::Utc>,
) -> Result<signoff_core::AuditRecord, signoff_core::TransitionError>;

/// The requests the expiry sweep takes.
const OVERDUE: &str = "status = 'pending' AND expires_at <= $1 ORDER BY expires_at";
/// The requests whose reminder is due.
const REMINDER_DUE: &str = "remind_at <= $1 AND status = 'pending' ORDER BY remind_at";

/// Applies `transition` to up to `limit` requests that `due` (a WHERE and
/// ORDER BY clause, `$1` now) selects, claimed `FOR UPDATE SKIP LOCKED` so
/// replicas sweeping at once take different ones. A request this batch
/// already changed is taken as changed; one whose transition is refused
/// (decided, overdue for a reminder) is left as it is.
async fn sweep(
    conn: &mut PgConnection,
    batch: &mut Batch,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
    due: &str,
    transition: Transition,
) -> Outcome {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM requests WHERE {due} LIMIT $2 FOR UPDATE SKIP LOCKED",
        request_columns!()
    )))
    .bind(micros(now))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    let mut moved = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored = request_from_row(row)?;
        let mut request = match batch.touched.get(&stored.id) {
            Some(t) => t.request.clone(),
            None => stored,
        };
        if let Ok(record) = transition(&mut request, now) {
            batch.append(chain, vec![record]);
            batch.touch(request.clone(), false, true);
            moved.push(request);
        }
    }
    Ok(Ok(Done::Swept(moved)))
}

/// Writes what the batch did: a statement per kind of change.
async fn flush(conn: &mut PgConnection, batch: &Batch, chain: &Chain) -> StoreResult<()> {
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    let mut notices = Vec::new();
    for id in &batch.order {
        let Some(t) = batch.touched.get(id) else {
            continue;
        };
        if !t.changed {
            continue;
        }
        notices.push(format!("{} {}", t.request.id, micros(t.request.expires_at)));
        let row = RequestRow::encode(&t.request)?;
        if t.new {
            inserts.push(row);
        } else {
            updates.push(row);
        }
    }
    if !inserts.is_empty() {
        insert_requests(conn, inserts).await?;
    }
    if !updates.is_empty() {
        update_requests(conn, updates).await?;
    }
    if !batch.entries.is_empty() {
        insert_entries(conn, &batch.entries).await?;
    }
    if !batch.keys.is_empty() {
        let (keys, rest): (Vec<String>, Vec<(Digest, Uuid)>) = batch
            .keys
            .iter()
            .map(|(k, f, id)| (k.clone(), (*f, *id)))
            .unzip();
        let (fingerprints, ids): (Vec<String>, Vec<Uuid>) =
            rest.into_iter().map(|(f, id)| (f.to_hex(), id)).unzip();
        sqlx::query(
            "INSERT INTO idempotency_keys (key, fingerprint, request_id)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[])",
        )
        .bind(keys)
        .bind(fingerprints)
        .bind(ids)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    }
    if !notices.is_empty() {
        // Delivered to every replica at commit.
        sqlx::query("SELECT pg_notify($1, n) FROM UNNEST($2::text[]) AS n")
            .bind(CHANNEL)
            .bind(notices)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    sqlx::query("UPDATE audit_head SET last_seq = $1, hash = $2 WHERE id = 1")
        .bind(chain.last_seq())
        .bind(chain.head().to_hex())
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// One column of rows, as an array parameter.
fn column<T, U>(rows: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

async fn insert_requests(conn: &mut PgConnection, rows: Vec<RequestRow>) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO requests (",
        request_columns!(),
        ", remind_at) SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[],
             $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[], $10::text[],
             $11::int8[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
             $17::text[], $18::text[], $19::int8[])"
    ))
    .bind(column(&rows, |r| r.id))
    .bind(column(&rows, |r| r.title.clone()))
    .bind(column(&rows, |r| r.description.clone()))
    .bind(column(&rows, |r| r.proposed_action.clone()))
    .bind(column(&rows, |r| r.requester.clone()))
    .bind(column(&rows, |r| r.labels.clone()))
    .bind(column(&rows, |r| r.created_at))
    .bind(column(&rows, |r| r.expires_at))
    .bind(column(&rows, |r| r.status.clone()))
    .bind(column(&rows, |r| r.reviewer.clone()))
    .bind(column(&rows, |r| r.decided_at))
    .bind(column(&rows, |r| r.comment.clone()))
    .bind(column(&rows, |r| r.rejection_reason.clone()))
    .bind(column(&rows, |r| r.edited_action.clone()))
    .bind(column(&rows, |r| r.action_hash.clone()))
    .bind(column(&rows, |r| r.plan.clone()))
    .bind(column(&rows, |r| r.approvals.clone()))
    .bind(column(&rows, |r| r.stage.clone()))
    .bind(column(&rows, |r| r.remind_at))
    .execute(conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Writes back changed requests, each only where it is still `pending`
/// (the compare-and-set; the row lock already makes it hold).
async fn update_requests(conn: &mut PgConnection, rows: Vec<RequestRow>) -> StoreResult<()> {
    let expected = rows.len() as u64;
    let changed = sqlx::query(
        "UPDATE requests AS r SET status = u.status, reviewer = u.reviewer,
             decided_at = u.decided_at, comment = u.comment,
             rejection_reason = u.rejection_reason, edited_action = u.edited_action,
             action_hash = u.action_hash, approvals = u.approvals, stage = u.stage,
             plan = u.plan, remind_at = u.remind_at
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[])
              AS u(id, status, reviewer, decided_at, comment, rejection_reason,
                   edited_action, action_hash, approvals, stage, plan, remind_at)
         WHERE r.id = u.id AND r.status = 'pending'",
    )
    .bind(column(&rows, |r| r.id))
    .bind(column(&rows, |r| r.status.clone()))
    .bind(column(&rows, |r| r.reviewer.clone()))
    .bind(column(&rows, |r| r.decided_at))
    .bind(column(&rows, |r| r.comment.clone()))
    .bind(column(&rows, |r| r.rejection_reason.clone()))
    .bind(column(&rows, |r| r.edited_action.clone()))
    .bind(column(&rows, |r| r.action_hash.clone()))
    .bind(column(&rows, |r| r.approvals.clone()))
    .bind(column(&rows, |r| r.stage.clone()))
    .bind(column(&rows, |r| r.plan.clone()))
    .bind(column(&rows, |r| r.remind_at))
    .execute(conn)
    .await
    .map_err(unavailable)?
    .rows_affected();
    if changed != expected {
        return Err(StoreError::Corrupt(format!(
            "{} of {expected} decided requests were no longer pending when written",
            expected.saturating_sub(changed)
        )));
    }
    Ok(())
}

async fn insert_entries(conn: &mut PgConnection, entries: &[AuditEntry]) -> StoreResult<()> {
    let rows: Vec<AuditRow> = entries.iter().map(AuditRow::encode).collect();
    sqlx::query(concat!(
        "INSERT INTO audit_log (",
        audit_columns!(),
        ") SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::uuid[], $5::text[],
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
             $12::text[], $13::text[])"
    ))
    .bind(column(&rows, |r| r.seq))
    .bind(column(&rows, |r| r.at.clone()))
    .bind(column(&rows, |r| r.event.clone()))
    .bind(column(&rows, |r| r.request_id))
    .bind(column(&rows, |r| r.title.clone()))
    .bind(column(&rows, |r| r.actor.clone()))
    .bind(column(&rows, |r| r.reason.clone()))
    .bind(column(&rows, |r| r.comment.clone()))
    .bind(column(&rows, |r| r.action.clone()))
    .bind(column(&rows, |r| r.prev_hash.clone()))
    .bind(column(&rows, |r| r.hash.clone()))
    .bind(column(&rows, |r| r.original_action.clone()))
    .bind(column(&rows, |r| r.stage.clone()))
    .execute(conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

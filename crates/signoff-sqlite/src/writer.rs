//! The single writer, with group commit.
//!
//! SQLite takes one writer at a time and a durable commit costs an fsync
//! (a few thousand a second on ordinary disks). So one thread owns the write
//! connection; every change is sent to it as a [`Command`], and it applies
//! all the commands waiting at that moment in one transaction, then those
//! that arrived while it applied them, commits once, and only then answers
//! each caller. Under load a commit carries tens to hundreds of writes;
//! idle, a lone write commits at once.
//!
//! Each command does all its checks (unknown id, already decided, reused
//! idempotency key) before its first write, so a refused command leaves
//! nothing behind and needs no savepoint of its own (savepoints cost a
//! statement journal per command). A write that fails halfway (disk full, I/O
//! error) tears the transaction: the whole batch is rolled back and every
//! caller in it is told the store is unavailable; nobody was acknowledged.
//!
//! Because the thread is the only writer, reading a request and writing its
//! new status inside the transaction is an atomic compare-and-set.

use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};
use signoff_core::{Attempt, AuditEntry, AuditRecord, Delivery, Webhook};
use signoff_core::{
    Chain, Clock, Decided, Request, RequestDraft, Run, RunStatus, StageRecord, TokenRecord, Verdict,
};
use signoff_store::{Created, IdempotencyKey, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::checkpoint::Checkpointer;
use crate::rows::{
    NewRow, REQUEST_COLUMNS, insert_entries, insert_requests, load_request, micros,
    request_from_row, update_decided, write_head,
};
use crate::{runs, tokens, unavailable, webhooks};

/// Most commands in one transaction: bounds the latency of the first caller
/// in a batch.
const MAX_BATCH: usize = 1024;

/// A change asked of the writer.
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
    CreateRun {
        run: Run,
    },
    AdvanceRun {
        run: Run,
        from: RunStatus,
        record: Option<StageRecord>,
    },
    CreateToken {
        token: TokenRecord,
    },
    RevokeToken {
        id: String,
    },
    Deny {
        id: Uuid,
        actor: Option<String>,
        reason: String,
    },
    CreateWebhook {
        hook: Webhook,
    },
    DeleteWebhook {
        id: Uuid,
    },
    Enqueue {
        webhook_id: Uuid,
        from: i64,
        to: i64,
        deliveries: Vec<Delivery>,
    },
    ClaimDeliveries {
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
        limit: u32,
    },
    RecordAttempt {
        id: Uuid,
        attempt: Attempt,
    },
    Redeliver {
        id: Uuid,
    },
}

/// What a command did, by kind of [`Op`].
pub(crate) enum Done {
    Created(Created),
    Decided(Request),
    /// The requests a sweep (expiry or reminders) moved.
    Swept(Vec<Request>),
    Run(Run),
    Token(Option<TokenRecord>),
    Denied,
    Webhook(Webhook),
    Flag(bool),
    Deliveries(Vec<Delivery>),
    Delivery(Option<Delivery>),
}

/// An [`Op`] and where to send its result once it is durable.
pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<StoreResult<Done>>,
}

/// Runs the writer until every sender is dropped, then returns after the
/// last batch is committed. `checkpointer` keeps the WAL short.
pub(crate) fn run(
    mut conn: Connection,
    mut chain: Chain,
    clock: Arc<dyn Clock>,
    mut commands: mpsc::Receiver<Command>,
    checkpointer: Checkpointer,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut scratch = Scratch::default();
    while let Some(first) = commands.blocking_recv() {
        batch.push(first);
        let size = commit_batch(
            &mut conn,
            &mut chain,
            clock.as_ref(),
            &mut batch,
            &mut scratch,
            &mut || commands.try_recv().ok(),
        );
        metrics::histogram!("signoff_store_batch_size").record(size as f64);
        checkpointer.after_commit(&conn);
    }
    // The helper's connection closes first, so that closing the writer's
    // (the last one) checkpoints the WAL and removes it.
    drop(checkpointer);
    drop(conn);
    tracing::debug!("store writer stopped");
}

/// What one command produced inside the transaction.
struct Applied {
    result: StoreResult<Done>,
    /// A write failed after others of this command succeeded: the
    /// transaction holds part of it and must not be committed.
    torn: bool,
}

impl Applied {
    /// Refused before writing anything (or done): the batch goes on.
    fn clean(result: StoreResult<Done>) -> Self {
        Self {
            result,
            torn: false,
        }
    }

    /// A write failed midway.
    fn torn(error: StoreError) -> Self {
        Self {
            result: Err(error),
            torn: true,
        }
    }
}

/// A caller and its answer; `None` while its create is staged.
type Answer = (
    oneshot::Sender<StoreResult<Done>>,
    Option<StoreResult<Done>>,
);

/// The writer's per-batch lists, kept from one batch to the next: a batch's
/// answers and staged rows hold whole requests, so allocating them afresh
/// each time asked glibc for blocks large enough to make it consolidate its
/// free lists, a few percent of the writer's time under load.
#[derive(Default)]
struct Scratch {
    answers: Vec<Answer>,
    staged: Staged,
}

/// Applies `batch` in one transaction, and with it whatever `more` yields
/// (what waits in the channel, then what arrives while that is applied),
/// then commits and answers every caller. Returns how many commands the
/// transaction held.
///
/// Taking in what arrived while the batch was being applied, instead of
/// leaving it for the next transaction, saves those callers a whole commit
/// of waiting and makes commits larger: a commit writes about eleven pages
/// whatever it carries (`bench/frames.py`), so larger ones write fewer per
/// create. Nothing waits for arrivals: once `more` has nothing, it commits.
fn commit_batch(
    conn: &mut Connection,
    chain: &mut Chain,
    clock: &dyn Clock,
    batch: &mut Vec<Command>,
    scratch: &mut Scratch,
    more: &mut dyn FnMut() -> Option<Command>,
) -> usize {
    let chain_before = *chain;
    let Scratch { answers, staged } = scratch;
    // A failed batch may have left rows staged; nothing of it was written.
    answers.clear();
    staged.clear();
    let committed = (|| -> StoreResult<()> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        loop {
            let room = MAX_BATCH.saturating_sub(answers.len() + batch.len());
            batch.extend(std::iter::from_fn(&mut *more).take(room));
            if batch.is_empty() {
                break;
            }
            // Commands are applied in arrival order: pop from the reversed batch.
            batch.reverse();
            let now = clock.now();
            while let Some(Command { op, reply }) = batch.pop() {
                let op = match op {
                    Op::Create {
                        id,
                        draft,
                        idempotency: None,
                    } => {
                        let staging = staged.create(chain, now, id, draft, answers.len());
                        answers.push((reply, staging.err().map(Err)));
                        continue;
                    }
                    op => op,
                };
                // Any other command may read what the staged creates write.
                if let Err(error) = staged.write(&tx, answers) {
                    batch.push(Command { op, reply });
                    return Err(error);
                }
                let applied = apply(&tx, chain, now, op);
                if applied.torn {
                    let error = match applied.result {
                        Err(error) => error,
                        Ok(_) => StoreError::Unavailable("write failed".into()),
                    };
                    answers.push((reply, None));
                    // Dropping `tx` rolls everything back; the callers are told below.
                    return Err(error);
                }
                answers.push((reply, Some(applied.result)));
            }
            staged.write(&tx, answers)?;
        }
        if *chain != chain_before {
            write_head(&tx, chain)?;
        }
        tx.commit().map_err(unavailable)
    })();
    let size = answers.len() + batch.len();
    if let Err(error) = committed {
        tracing::error!(%error, "store commit failed; batch rolled back");
        *chain = chain_before;
        let message = error.to_string();
        for (reply, _) in answers.drain(..) {
            let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
        }
        for Command { reply, .. } in batch.drain(..) {
            let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
        }
        return size;
    }
    for (reply, result) in answers.drain(..) {
        // A caller that went away (client disconnected) still had its write
        // committed; there is no one left to tell.
        let _ =
            reply.send(result.unwrap_or_else(|| {
                Err(StoreError::Unavailable("the write was not applied".into()))
            }));
    }
    size
}

/// The rows of creates applied in this transaction but not written yet.
/// A create without an idempotency key reads nothing, so a batch's creates
/// are written together, a few multi-row INSERTs for all of them
/// ([`insert_requests`], [`insert_entries`]), just before the first other
/// command (which might read them) or before the commit.
#[derive(Default)]
struct Staged {
    rows: Vec<NewRow>,
    /// For each of `rows`, the index of its caller's answer.
    answers: Vec<usize>,
    /// Their entries, already linked into the chain, in order.
    entries: Vec<AuditEntry>,
}

impl Staged {
    /// Forgets whatever a failed batch left staged, keeping the room.
    fn clear(&mut self) {
        self.rows.clear();
        self.answers.clear();
        self.entries.clear();
    }

    /// Opens a request and links its entries; nothing is written yet.
    fn create(
        &mut self,
        chain: &mut Chain,
        now: chrono::DateTime<chrono::Utc>,
        id: Uuid,
        draft: RequestDraft,
        answer: usize,
    ) -> StoreResult<()> {
        let (row, records) = open(id, draft, now, chain)?;
        self.entries
            .extend(records.into_iter().map(|record| chain.append(record)));
        self.rows.push(row);
        self.answers.push(answer);
        Ok(())
    }

    /// Writes the staged rows and fills in their callers' answers.
    fn write(&mut self, conn: &Connection, answers: &mut [Answer]) -> StoreResult<()> {
        // Every staged row brought its entries: no rows, nothing staged.
        if self.rows.is_empty() {
            return Ok(());
        }
        insert_requests(conn, &self.rows)?;
        insert_entries(conn, &self.entries)?;
        self.entries.clear();
        for (at, row) in self.answers.drain(..).zip(self.rows.drain(..)) {
            if let Some((_, answer)) = answers.get_mut(at) {
                *answer = Some(Ok(Done::Created(Created {
                    request: row.request,
                    replayed: false,
                })));
            }
        }
        Ok(())
    }
}

/// A new request's row and its audit records (`created`, and `expired`
/// when it was given no time), to be linked next into `chain`.
fn open(
    id: Uuid,
    draft: RequestDraft,
    now: chrono::DateTime<chrono::Utc>,
    chain: &Chain,
) -> StoreResult<(NewRow, Vec<AuditRecord>)> {
    let (request, records) = draft.open(id, now);
    // The `created` entry holds the action's canonical text: the request's
    // column stores the same.
    let Some(action) = records.first().and_then(|r| r.action.clone()) else {
        return Err(StoreError::Corrupt(
            "a new request's first entry has no action".into(),
        ));
    };
    Ok((
        NewRow {
            request,
            action,
            created_seq: chain.last_seq() + 1,
        },
        records,
    ))
}

fn apply(
    conn: &Connection,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    op: Op,
) -> Applied {
    match op {
        Op::Create {
            id,
            draft,
            idempotency,
        } => create(conn, chain, now, id, draft, idempotency),
        Op::Decide { id, verdict } => decide(conn, chain, now, id, verdict),
        Op::ExpireOverdue { limit } => sweep(conn, chain, now, limit, OVERDUE, Request::expire),
        Op::Remind { limit } => sweep(conn, chain, now, limit, REMINDER_DUE, Request::remind),
        // A single INSERT either happened or not: nothing to tear.
        Op::CreateRun { run } => {
            Applied::clean(runs::insert_run(conn, &run).map(|()| Done::Run(run)))
        }
        Op::AdvanceRun { run, from, record } => advance_run(conn, run, from, record),
        Op::CreateToken { token } => {
            Applied::clean(tokens::insert(conn, &token).map(|()| Done::Token(Some(token))))
        }
        Op::RevokeToken { id } => Applied::clean(tokens::revoke(conn, &id, now).map(Done::Token)),
        Op::Deny { id, actor, reason } => match load_request(conn, id) {
            Ok(Some(request)) => {
                match append(conn, chain, vec![request.denial(now, actor, reason)]) {
                    Ok(()) => Applied::clean(Ok(Done::Denied)),
                    Err(error) => Applied::torn(error),
                }
            }
            Ok(None) => Applied::clean(Ok(Done::Denied)),
            Err(error) => Applied::clean(Err(error)),
        },
        Op::CreateWebhook { mut hook } => {
            // The head as this transaction sees it: later events are the
            // subscription's, earlier ones are not.
            hook.cursor = chain.last_seq();
            Applied::clean(webhooks::insert(conn, &hook).map(|()| Done::Webhook(hook)))
        }
        Op::DeleteWebhook { id } => match webhooks::delete(conn, id) {
            Ok(deleted) => Applied::clean(Ok(Done::Flag(deleted))),
            Err(error) => Applied::torn(error),
        },
        Op::Enqueue {
            webhook_id,
            from,
            to,
            deliveries,
        } => match webhooks::enqueue(conn, webhook_id, from, to, &deliveries) {
            Ok(moved) => Applied::clean(Ok(Done::Flag(moved))),
            Err((error, false)) => Applied::clean(Err(error)),
            Err((error, true)) => Applied::torn(error),
        },
        Op::ClaimDeliveries { now, until, limit } => {
            Applied::clean(webhooks::claim(conn, now, until, limit).map(Done::Deliveries))
        }
        Op::RecordAttempt { id, attempt } => {
            Applied::clean(webhooks::record(conn, id, &attempt).map(|()| Done::Flag(true)))
        }
        Op::Redeliver { id } => {
            Applied::clean(webhooks::redeliver(conn, id, now).map(Done::Delivery))
        }
    }
}

fn append(conn: &Connection, chain: &mut Chain, records: Vec<AuditRecord>) -> StoreResult<()> {
    let entries: Vec<AuditEntry> = records
        .into_iter()
        .map(|record| chain.append(record))
        .collect();
    insert_entries(conn, &entries)
}

/// A create with an idempotency key: it reads the keys first, so it is
/// written at once rather than staged.
fn create(
    conn: &Connection,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    id: Uuid,
    draft: RequestDraft,
    idempotency: Option<IdempotencyKey>,
) -> Applied {
    if let Some(key) = &idempotency {
        match replay(conn, key) {
            Ok(Some(request)) => {
                return Applied::clean(Ok(Done::Created(Created {
                    request,
                    replayed: true,
                })));
            }
            Ok(None) => {}
            Err(error) => return Applied::clean(Err(error)),
        }
    }
    let (row, records) = match open(id, draft, now, chain) {
        Ok(opened) => opened,
        Err(error) => return Applied::clean(Err(error)),
    };
    let written = insert_requests(conn, std::slice::from_ref(&row))
        .and_then(|()| append(conn, chain, records))
        .and_then(|()| match idempotency {
            Some(key) => conn
                .prepare_cached(
                    "INSERT INTO idempotency_keys (key, fingerprint, request_id) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut stmt| {
                    stmt.execute((key.key, key.fingerprint.to_hex(), id.to_string()))
                })
                .map(drop)
                .map_err(unavailable),
            None => Ok(()),
        });
    match written {
        Ok(()) => Applied::clean(Ok(Done::Created(Created {
            request: row.request,
            replayed: false,
        }))),
        Err(error) => Applied::torn(error),
    }
}

/// The request an earlier create with this key made, when the body matches;
/// [`StoreError::IdempotencyMismatch`] when it does not.
fn replay(conn: &Connection, key: &IdempotencyKey) -> StoreResult<Option<Request>> {
    let mut stmt = conn
        .prepare_cached("SELECT fingerprint, request_id FROM idempotency_keys WHERE key = ?1")
        .map_err(unavailable)?;
    let mut rows = stmt.query([&key.key]).map_err(unavailable)?;
    if let Some(row) = rows.next().map_err(unavailable)? {
        let fingerprint: String = row.get(0).map_err(unavailable)?;
        let request_id: String = row.get(1).map_err(unavailable)?;
        if fingerprint != key.fingerprint.to_hex() {
            return Err(StoreError::IdempotencyMismatch);
        }
        let request_id = Uuid::parse_str(&request_id)
            .map_err(|e| StoreError::Corrupt(format!("idempotency request id: {e}")))?;
        let request = load_request(conn, request_id)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "idempotency key points at missing request {request_id}"
            ))
        })?;
        return Ok(Some(request));
    }
    Ok(None)
}

fn decide(
    conn: &Connection,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    id: Uuid,
    verdict: Verdict,
) -> Applied {
    let mut request = match load_request(conn, id) {
        Ok(Some(request)) => request,
        Ok(None) => return refused(StoreError::NotFound(id)),
        Err(e) => return refused(e),
    };
    let (record, outcome) = match request.decide(verdict, now) {
        Decided::Applied(record) => (record, None),
        Decided::ExpiredInstead(record) => (
            record,
            Some(signoff_core::TransitionError::Expired {
                expires_at: request.expires_at,
            }),
        ),
        Decided::Refused(error) => return refused(error.into()),
        // The refusal stands whether or not its record is written.
        Decided::Denied(record, error) => {
            return match append(conn, chain, vec![record]) {
                Ok(()) => Applied::clean(Err(error.into())),
                Err(failure) => Applied::torn(failure),
            };
        }
    };
    if let Err(error) =
        update_decided(conn, &request).and_then(|()| append(conn, chain, vec![record]))
    {
        return Applied::torn(error);
    }
    Applied::clean(match outcome {
        None => Ok(Done::Decided(request)),
        // The expiry is written and stands; the caller still hears "expired".
        Some(expired) => Err(expired.into()),
    })
}

/// The compare-and-set first (a refusal writes nothing), then the record.
fn advance_run(
    conn: &Connection,
    run: Run,
    from: RunStatus,
    record: Option<StageRecord>,
) -> Applied {
    if let Err(error) = runs::advance_run(conn, &run, from) {
        return Applied::clean(Err(error));
    }
    if let Some(record) = record
        && let Err(error) = runs::insert_stage(conn, &record)
    {
        return Applied::torn(error);
    }
    Applied::clean(Ok(Done::Run(run)))
}

fn refused(error: StoreError) -> Applied {
    Applied::clean(Err(error))
}

/// What a sweep does to each due request.
type Transition = fn(
    &mut Request,
    chrono::DateTime<chrono::Utc>,
) -> Result<signoff_core::AuditRecord, signoff_core::TransitionError>;

/// The requests the expiry sweep takes.
const OVERDUE: &str = "status = 'pending' AND expires_at <= ?1 ORDER BY expires_at";
/// The requests whose reminder is due.
const REMINDER_DUE: &str = "remind_at <= ?1 AND status = 'pending' ORDER BY remind_at";

/// Applies `transition` to up to `limit` requests that `due` (a WHERE and
/// ORDER BY clause, `?1` now) selects, each with its audit entry. A request
/// whose transition is refused is left as it is (an overdue request is the
/// expiry's, not the reminder's).
fn sweep(
    conn: &Connection,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
    due: &str,
    transition: Transition,
) -> Applied {
    let found = (|| {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE {due} LIMIT ?2"
            ))
            .map_err(unavailable)?;
        let mut rows = stmt.query((micros(now), limit)).map_err(unavailable)?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().map_err(unavailable)? {
            found.push(request_from_row(row)?);
        }
        StoreResult::Ok(found)
    })();
    let found = match found {
        Ok(found) => found,
        Err(error) => return Applied::clean(Err(error)),
    };
    let mut moved = Vec::with_capacity(found.len());
    for mut request in found {
        let Ok(record) = transition(&mut request, now) else {
            continue;
        };
        let written =
            update_decided(conn, &request).and_then(|()| append(conn, chain, vec![record]));
        if let Err(error) = written {
            return Applied::torn(error);
        }
        moved.push(request);
    }
    Applied::clean(Ok(Done::Swept(moved)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use signoff_core::{Actor, Digest, Status, SystemClock};
    use signoff_store::suite::draft;

    use super::*;
    use crate::SqliteOptions;

    /// The writer's connection to a new file in `dir`.
    fn writer_conn(dir: &tempfile::TempDir) -> Connection {
        crate::schema::open_writer(&SqliteOptions::new(dir.path().join("w.db"))).unwrap()
    }

    /// Commits `batch` with nothing arriving meanwhile.
    fn commit_alone(conn: &mut Connection, chain: &mut Chain, batch: &mut Vec<Command>) {
        commit_batch(
            conn,
            chain,
            &SystemClock,
            batch,
            &mut Scratch::default(),
            &mut || None,
        );
    }

    fn command(op: Op) -> (Command, oneshot::Receiver<StoreResult<Done>>) {
        let (reply, answer) = oneshot::channel();
        (Command { op, reply }, answer)
    }

    fn create(id: Uuid, idempotency: Option<&str>) -> Op {
        Op::Create {
            id,
            draft: draft("Staged", 3600),
            idempotency: idempotency.map(|key| IdempotencyKey {
                key: key.into(),
                fingerprint: Digest::sha256(key.as_bytes()),
            }),
        }
    }

    fn approve(id: Uuid) -> Op {
        Op::Decide {
            id,
            verdict: Verdict::Approve {
                reviewer: Actor::parse("reviewer", "ann").unwrap(),
                groups: None,
                comment: None,
                edited_action: None,
            },
        }
    }

    /// One batch: more creates than the largest chunk, a decision on a
    /// create still staged, more creates, a keyed create (written at once),
    /// a decision on the last staged one. Every caller hears its own
    /// outcome, the rows are there, and the trail holds the entries in
    /// command order with an intact chain.
    #[test]
    fn staged_creates_are_written_before_any_other_command_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer_conn(&dir);
        let ids: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        let mut ops: Vec<Op> = ids[..41].iter().map(|&id| create(id, None)).collect();
        ops.push(approve(ids[3]));
        ops.extend(ids[41..48].iter().map(|&id| create(id, None)));
        ops.push(create(ids[48], Some("key-1")));
        ops.push(create(ids[49], None));
        ops.push(approve(ids[47]));
        // The entry each command should append, in order.
        let mut expected: Vec<(Uuid, &str)> = ids[..41].iter().map(|&id| (id, "created")).collect();
        expected.push((ids[3], "approved"));
        expected.extend(ids[41..].iter().map(|&id| (id, "created")));
        expected.push((ids[47], "approved"));

        let (mut batch, answers): (Vec<_>, Vec<_>) = ops.into_iter().map(command).unzip();
        let mut chain = Chain::genesis();
        commit_alone(&mut conn, &mut chain, &mut batch);

        let mut decided = Vec::new();
        for mut answer in answers {
            match answer.try_recv().unwrap().unwrap() {
                Done::Created(created) => assert!(!created.replayed),
                Done::Decided(request) => decided.push((request.id, request.status)),
                _ => panic!("unexpected answer"),
            }
        }
        assert_eq!(
            decided,
            [(ids[3], Status::Approved), (ids[47], Status::Approved)]
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM requests", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 50);
        let trail: Vec<(i64, String, String)> = conn
            .prepare("SELECT seq, request_id, event FROM audit_log ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<(i64, String, String)> = expected
            .iter()
            .zip(1..)
            .map(|((id, event), seq)| (seq, id.to_string(), (*event).to_string()))
            .collect();
        assert_eq!(trail, expected);
        // Staged and keyed alike, each row points at its own `created` entry.
        let pointing: i64 = conn
            .query_row(
                "SELECT count(*) FROM requests r JOIN audit_log a ON a.seq = r.created_seq
                 WHERE a.request_id = r.id AND a.event = 'created'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(pointing, 50);
        let report = crate::verify(&conn).unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.checked, expected.len() as u64);
        assert_eq!(report.head, chain);
    }

    /// Creates that are pending on the default plan are inserted naming
    /// only their non-NULL columns; others (born expired, with a plan of
    /// their own) with every column. Mixed in one batch, each reads back as
    /// it was answered, and the trail verifies.
    #[test]
    fn plain_and_other_creates_in_one_batch_read_back_as_answered() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer_conn(&dir);
        let two_stages = signoff_core::ApprovalPlan {
            policy: "two".into(),
            rule: Some("big".into()),
            stages: vec![
                signoff_core::ApprovalStage::any_reviewer("manager"),
                signoff_core::ApprovalStage::any_reviewer("finance"),
            ],
            reminder: None,
        };
        let drafts = [
            draft("plain", 3600),
            draft("plain", 3600),
            draft("born expired", 0),
            draft("plain", 3600),
            signoff_core::RequestDraft {
                plan: two_stages,
                ..draft("two stages", 3600)
            },
            draft("plain", 3600),
            draft("born expired", 0),
        ];
        let ops = drafts.into_iter().map(|draft| Op::Create {
            id: Uuid::now_v7(),
            draft,
            idempotency: None,
        });
        let (mut batch, answers): (Vec<_>, Vec<_>) = ops.map(command).unzip();
        let mut chain = Chain::genesis();
        commit_alone(&mut conn, &mut chain, &mut batch);
        let mut statuses = Vec::new();
        for mut answer in answers {
            let Done::Created(created) = answer.try_recv().unwrap().unwrap() else {
                panic!("unexpected answer");
            };
            let stored = load_request(&conn, created.request.id).unwrap().unwrap();
            assert_eq!(stored, created.request);
            statuses.push(stored.status);
        }
        use Status::{Expired, Pending};
        assert_eq!(
            statuses,
            [
                Pending, Pending, Expired, Pending, Pending, Pending, Expired
            ]
        );
        let report = crate::verify(&conn).unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.checked, 9);
    }

    /// What arrives while a batch is applied rides the same commit, in
    /// arrival order, until the transaction holds [`MAX_BATCH`] commands;
    /// the rest waits for the next one.
    #[test]
    fn arrivals_during_a_batch_ride_its_commit_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer_conn(&dir);
        let first = [Uuid::now_v7(), Uuid::now_v7()];
        let (mut batch, mut answers): (Vec<_>, Vec<_>) =
            first.iter().map(|&id| command(create(id, None))).unzip();
        // The approval of the first request arrives first, then more creates
        // than one transaction may hold.
        let mut late = vec![approve(first[0])];
        late.extend((0..MAX_BATCH + 50).map(|_| create(Uuid::now_v7(), None)));
        let (late, late_answers): (Vec<_>, Vec<_>) = late.into_iter().map(command).unzip();
        let mut arrivals = late.into_iter();
        let mut chain = Chain::genesis();
        let size = commit_batch(
            &mut conn,
            &mut chain,
            &SystemClock,
            &mut batch,
            &mut Scratch::default(),
            &mut || arrivals.next(),
        );

        assert_eq!(size, MAX_BATCH);
        let taken = MAX_BATCH - first.len();
        assert_eq!(arrivals.len(), MAX_BATCH + 51 - taken);
        answers.extend(late_answers);
        let (answered, waiting) = answers.split_at_mut(MAX_BATCH);
        for answer in answered {
            assert!(answer.try_recv().unwrap().is_ok());
        }
        for answer in waiting {
            assert!(answer.try_recv().is_err(), "answered without being applied");
        }
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM requests", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, MAX_BATCH as i64 - 1);
        let trail: Vec<(String, String)> = conn
            .prepare("SELECT request_id, event FROM audit_log ORDER BY seq LIMIT 3")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let [a, b] = first.map(|id| id.to_string());
        assert_eq!(
            trail,
            [
                (a.clone(), "created".to_string()),
                (b, "created".to_string()),
                (a, "approved".to_string()),
            ]
        );
        let report = crate::verify(&conn).unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.checked, MAX_BATCH as u64);
    }

    /// A batch that fails while writing its staged creates is rolled back
    /// whole, and every caller hears that the store is unavailable.
    #[test]
    fn a_failed_write_of_staged_creates_answers_every_caller() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer_conn(&dir);
        // One scratch for every batch, as the writer keeps it.
        let mut scratch = Scratch::default();
        let taken = Uuid::now_v7();
        let (first, answer) = command(create(taken, None));
        commit_batch(
            &mut conn,
            &mut Chain::genesis(),
            &SystemClock,
            &mut vec![first],
            &mut scratch,
            &mut || None,
        );
        assert!(answer.blocking_recv().unwrap().is_ok());
        let mut chain = crate::rows::read_head(&conn).unwrap();
        let before = chain;
        // The same id again breaks the primary key when the rows are written.
        let ops = vec![
            create(Uuid::now_v7(), None),
            create(taken, None),
            approve(taken),
        ];
        let (mut batch, answers): (Vec<_>, Vec<_>) = ops.into_iter().map(command).unzip();
        commit_batch(
            &mut conn,
            &mut chain,
            &SystemClock,
            &mut batch,
            &mut scratch,
            &mut || None,
        );
        for mut answer in answers {
            assert!(matches!(
                answer.try_recv().unwrap(),
                Err(StoreError::Unavailable(_))
            ));
        }
        assert_eq!(chain, before);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM requests", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);

        // The next batch starts clean: nothing the failed one staged is
        // written or answered with it.
        let fresh = Uuid::now_v7();
        let (next, answer) = command(create(fresh, None));
        commit_batch(
            &mut conn,
            &mut chain,
            &SystemClock,
            &mut vec![next],
            &mut scratch,
            &mut || None,
        );
        match answer.blocking_recv().unwrap().unwrap() {
            Done::Created(created) => assert_eq!(created.request.id, fresh),
            _ => panic!("unexpected answer"),
        }
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM requests ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, [taken.to_string(), fresh.to_string()]);
        assert_eq!(crate::verify(&conn).unwrap().broken, None);
    }
}

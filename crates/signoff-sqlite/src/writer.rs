//! The single writer, with group commit.
//!
//! SQLite takes one writer at a time and a durable commit costs an fsync
//! (a few thousand a second on ordinary disks). So one thread owns the write
//! connection; every change is sent to it as a [`Command`], and it applies
//! all the commands waiting at that moment in one transaction, each inside
//! its own savepoint (a failing command rolls back alone), then commits once
//! and only then answers each caller. Under load a commit carries hundreds of
//! writes; idle, a lone write commits at once.
//!
//! Because the thread is the only writer, reading a request and writing its
//! new status inside the transaction is an atomic compare-and-set.

use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};
use signoff_core::{Chain, Clock, Decided, Request, RequestDraft, Verdict};
use signoff_store::{Created, IdempotencyKey, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::rows::{
    REQUEST_COLUMNS, insert_entry, insert_request, load_request, micros, request_from_row,
    update_decided, write_head,
};
use crate::unavailable;

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
}

/// What a command did, by kind of [`Op`].
pub(crate) enum Done {
    Created(Created),
    Decided(Request),
    Expired(Vec<Request>),
}

/// An [`Op`] and where to send its result once it is durable.
pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<StoreResult<Done>>,
}

/// Runs the writer until every sender is dropped, then returns after the
/// last batch is committed.
pub(crate) fn run(
    mut conn: Connection,
    mut chain: Chain,
    clock: Arc<dyn Clock>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = commands.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        metrics::histogram!("signoff_store_batch_size").record(batch.len() as f64);
        commit_batch(&mut conn, &mut chain, clock.as_ref(), &mut batch);
    }
    tracing::debug!("store writer stopped");
}

/// What one command produced inside the transaction: its answer, and
/// whether its writes stand (an expiry found on approval writes and still
/// answers an error).
struct Applied {
    result: StoreResult<Done>,
    keep: bool,
}

fn commit_batch(
    conn: &mut Connection,
    chain: &mut Chain,
    clock: &dyn Clock,
    batch: &mut Vec<Command>,
) {
    let chain_before = *chain;
    let mut answers: Vec<(oneshot::Sender<StoreResult<Done>>, StoreResult<Done>)> =
        Vec::with_capacity(batch.len());
    let committed = (|| -> StoreResult<()> {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let now = clock.now();
        for Command { op, reply } in batch.drain(..) {
            let link = *chain;
            let savepoint = tx.savepoint().map_err(unavailable)?;
            let applied = apply(&savepoint, chain, now, op);
            if applied.keep {
                savepoint.commit().map_err(unavailable)?;
            } else {
                // Dropping the savepoint rolls back this command alone.
                drop(savepoint);
                *chain = link;
            }
            answers.push((reply, applied.result));
        }
        if *chain != chain_before {
            write_head(&tx, chain)?;
        }
        tx.commit().map_err(unavailable)
    })();
    if let Err(error) = committed {
        tracing::error!(%error, "store commit failed; batch rolled back");
        *chain = chain_before;
        let message = error.to_string();
        for (reply, _) in answers {
            let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
        }
        for Command { reply, .. } in batch.drain(..) {
            let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
        }
        return;
    }
    for (reply, result) in answers {
        // A caller that went away (client disconnected) still had its write
        // committed; there is no one left to tell.
        let _ = reply.send(result);
    }
}

fn apply(
    conn: &Connection,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    op: Op,
) -> Applied {
    let result = match op {
        Op::Create {
            id,
            draft,
            idempotency,
        } => create(conn, chain, now, id, draft, idempotency).map(Done::Created),
        Op::Decide { id, verdict } => return decide(conn, chain, now, id, verdict),
        Op::ExpireOverdue { limit } => expire_overdue(conn, chain, now, limit).map(Done::Expired),
    };
    Applied {
        keep: result.is_ok(),
        result,
    }
}

fn append(
    conn: &Connection,
    chain: &mut Chain,
    records: Vec<signoff_core::AuditRecord>,
) -> StoreResult<()> {
    for record in records {
        insert_entry(conn, &chain.append(record))?;
    }
    Ok(())
}

fn create(
    conn: &Connection,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    id: Uuid,
    draft: RequestDraft,
    idempotency: Option<IdempotencyKey>,
) -> StoreResult<Created> {
    if let Some(key) = &idempotency {
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
            return Ok(Created {
                request,
                replayed: true,
            });
        }
    }
    let (request, records) = draft.open(id, now);
    insert_request(conn, &request)?;
    append(conn, chain, records)?;
    if let Some(key) = idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (key, fingerprint, request_id) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut stmt| stmt.execute((key.key, key.fingerprint.to_hex(), id.to_string())))
        .map_err(unavailable)?;
    }
    Ok(Created {
        request,
        replayed: false,
    })
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
    };
    if let Err(e) = update_decided(conn, &request).and_then(|()| append(conn, chain, vec![record]))
    {
        return refused(e);
    }
    match outcome {
        None => Applied {
            result: Ok(Done::Decided(request)),
            keep: true,
        },
        Some(expired) => Applied {
            result: Err(expired.into()),
            keep: true,
        },
    }
}

fn refused(error: StoreError) -> Applied {
    Applied {
        result: Err(error),
        keep: false,
    }
}

fn expire_overdue(
    conn: &Connection,
    chain: &mut Chain,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
) -> StoreResult<Vec<Request>> {
    let overdue = {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests
                 WHERE status = 'pending' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2"
            ))
            .map_err(unavailable)?;
        let mut rows = stmt.query((micros(now), limit)).map_err(unavailable)?;
        let mut overdue = Vec::new();
        while let Some(row) = rows.next().map_err(unavailable)? {
            overdue.push(request_from_row(row)?);
        }
        overdue
    };
    let mut expired = Vec::with_capacity(overdue.len());
    for mut request in overdue {
        let record = request.expire(now)?;
        update_decided(conn, &request)?;
        append(conn, chain, vec![record])?;
        expired.push(request);
    }
    Ok(expired)
}

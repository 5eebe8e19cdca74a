//! The PostgreSQL backend: one database shared by several `signoff serve`
//! replicas.
//!
//! Every change is one transaction that first locks the audit trail's head
//! row: replicas append to the one hash chain one after the other, and a
//! decision's read-check-write on its request row cannot interleave with
//! another's (the row is also locked `FOR UPDATE`). The expiry sweep claims
//! overdue requests `FOR UPDATE SKIP LOCKED`. Each change to a request is
//! announced with `NOTIFY signoff`, delivered at commit to every replica's
//! listener ([`Store::watch`]), which wakes that replica's waiters: a
//! waiter on replica A hears a decision taken on replica B at once, without
//! polling. Workflow runs are driven under leases: a replica renews the
//! leases of the runs it drives, and one that dies stops renewing, so
//! another claims its runs ([`Store::claim_runs`]).
//!
//! Architecture invariant: the only crate that knows PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use signoff_core::{Attempt, Delivery, Webhook};
use signoff_core::{
    AuditEntry, Chain, ChainBreak, ChainFault, Clock, Digest, Request, RequestDraft, Run,
    RunStatus, StageRecord, Status, TokenRecord, Verdict, Verifier,
};
use signoff_store::codec::{
    AuditRow, RequestRow, RunRow, StageRow, TokenRow, corrupt, from_micros, micros,
};
use signoff_store::{
    AuditQuery, AuditReport, ChangeListener, Created, DeliveryQuery, IdempotencyKey, ListQuery,
    Page, Store, StoreError, StoreResult,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use uuid::Uuid;

#[cfg(feature = "testing")]
pub mod testing;

/// The advisory lock that orders stage records (an arbitrary constant:
/// "signoff stages").
const STAGE_ORDER_LOCK: i64 = 0x5349_474e_5354_4753;

/// The channel every change is announced on.
pub(crate) const CHANNEL: &str = "signoff";

macro_rules! request_columns {
    () => {
        "id, title, description, proposed_action, requester, labels, created_at, expires_at, \
         status, reviewer, decided_at, comment, rejection_reason, edited_action, action_hash, \
         plan, approvals, stage"
    };
}

macro_rules! audit_columns {
    () => {
        "seq, at, event, request_id, title, actor, reason, comment, action, prev_hash, hash, \
         original_action, stage"
    };
}

macro_rules! run_columns {
    () => {
        "id, workflow, input, status, attempt, draft, request_id, result, error, created_at, \
         updated_at, started_by"
    };
}

macro_rules! token_columns {
    () => {
        "id, name, role, groups, secret_hash, created_at, expires_at, revoked_at"
    };
}

mod webhooks;
mod writer;

const UNFINISHED: &str = "('drafting', 'validating', 'awaiting_approval', 'executing')";

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_webhooks.sql"),
    include_str!("../migrations/0003_reminders.sql"),
];

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A `postgres://` URL.
    pub url: String,
    /// Connections this process keeps at most.
    pub max_connections: u32,
    /// How long a replica's claim on a run lasts without renewal.
    pub lease: Duration,
}

impl PgOptions {
    /// Defaults for `url`: 16 connections, 15 s leases.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            lease: Duration::from_secs(15),
        }
    }
}

/// A Signoff database on PostgreSQL.
pub struct PgStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    /// This process, as the owner of the runs it drives.
    owner: String,
    lease: Duration,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The group-commit writer task's queue.
    writes: tokio::sync::mpsc::Sender<writer::Command>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(error.to_string())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl PgStore {
    /// Connects and brings the schema up to date (one replica at a time,
    /// under an advisory lock).
    pub async fn open(options: PgOptions, clock: Arc<dyn Clock>) -> StoreResult<Self> {
        let connect: PgConnectOptions = options
            .url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&pool).await?;
        let (writes, queue) = tokio::sync::mpsc::channel(4096);
        tokio::spawn(writer::run(pool.clone(), clock.clone(), queue));
        Ok(Self {
            pool,
            clock,
            owner: Uuid::now_v7().to_string(),
            lease: options.lease,
            listener: Mutex::new(None),
            writes,
        })
    }

    /// The pool, for tests and tools that need SQL of their own.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn lease_end(&self) -> i64 {
        let lease = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::zero());
        micros(self.clock.now() + lease)
    }

    /// Hands `op` to the writer and waits for its commit.
    async fn write(&self, op: writer::Op) -> StoreResult<writer::Done> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writes
            .send(writer::Command { op, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store writer has stopped".into()))?
    }
}

async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    // Replicas starting together migrate one at a time.
    sqlx::query("SELECT pg_advisory_xact_lock(7170656)")
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS signoff_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    let applied: i64 =
        sqlx::query("SELECT COALESCE(MAX(version), 0)::BIGINT FROM signoff_migrations")
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(unavailable)?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if version <= applied {
            continue;
        }
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration {version} failed: {e}")))?;
        sqlx::query("INSERT INTO signoff_migrations (version) VALUES ($1)")
            .bind(i32::try_from(version).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    if applied > i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX) {
        return Err(StoreError::Unavailable(format!(
            "the database is at schema version {applied}, newer than this binary knows ({}); upgrade signoff",
            MIGRATIONS.len()
        )));
    }
    tx.commit().await.map_err(unavailable)
}

pub(crate) fn request_from_row(row: &PgRow) -> StoreResult<Request> {
    let get = |e: sqlx::Error| corrupt("request row", e);
    RequestRow {
        id: row.try_get("id").map_err(get)?,
        title: row.try_get("title").map_err(get)?,
        description: row.try_get("description").map_err(get)?,
        proposed_action: row.try_get("proposed_action").map_err(get)?,
        requester: row.try_get("requester").map_err(get)?,
        labels: row.try_get("labels").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        status: row.try_get("status").map_err(get)?,
        reviewer: row.try_get("reviewer").map_err(get)?,
        decided_at: row.try_get("decided_at").map_err(get)?,
        comment: row.try_get("comment").map_err(get)?,
        rejection_reason: row.try_get("rejection_reason").map_err(get)?,
        edited_action: row.try_get("edited_action").map_err(get)?,
        action_hash: row.try_get("action_hash").map_err(get)?,
        plan: row.try_get("plan").map_err(get)?,
        approvals: row.try_get("approvals").map_err(get)?,
        stage: row.try_get("stage").map_err(get)?,
        remind_at: None,
    }
    .decode()
}

fn entry_from_row(row: &PgRow) -> StoreResult<AuditEntry> {
    let get = |e: sqlx::Error| corrupt("audit row", e);
    AuditRow {
        seq: row.try_get("seq").map_err(get)?,
        at: row.try_get("at").map_err(get)?,
        event: row.try_get("event").map_err(get)?,
        request_id: row.try_get("request_id").map_err(get)?,
        title: row.try_get("title").map_err(get)?,
        actor: row.try_get("actor").map_err(get)?,
        reason: row.try_get("reason").map_err(get)?,
        comment: row.try_get("comment").map_err(get)?,
        action: row.try_get("action").map_err(get)?,
        prev_hash: row.try_get("prev_hash").map_err(get)?,
        hash: row.try_get("hash").map_err(get)?,
        original_action: row.try_get("original_action").map_err(get)?,
        stage: row.try_get("stage").map_err(get)?,
    }
    .decode()
}

fn run_from_row(row: &PgRow) -> StoreResult<Run> {
    let get = |e: sqlx::Error| corrupt("run row", e);
    RunRow {
        id: row.try_get("id").map_err(get)?,
        workflow: row.try_get("workflow").map_err(get)?,
        input: row.try_get("input").map_err(get)?,
        status: row.try_get("status").map_err(get)?,
        attempt: row.try_get("attempt").map_err(get)?,
        draft: row.try_get("draft").map_err(get)?,
        request_id: row.try_get("request_id").map_err(get)?,
        result: row.try_get("result").map_err(get)?,
        error: row.try_get("error").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        updated_at: row.try_get("updated_at").map_err(get)?,
        started_by: row.try_get("started_by").map_err(get)?,
    }
    .decode()
}

fn token_from_row(row: &PgRow) -> StoreResult<TokenRecord> {
    let get = |e: sqlx::Error| corrupt("token row", e);
    TokenRow {
        id: row.try_get("id").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        role: row.try_get("role").map_err(get)?,
        groups: row.try_get("groups").map_err(get)?,
        secret_hash: row.try_get("secret_hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
    }
    .decode()
}

pub(crate) async fn load_request(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> StoreResult<Option<Request>> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE id = $1 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE id = $1"
        )
    };
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(unavailable)?;
    row.as_ref().map(request_from_row).transpose()
}

fn mismatch() -> StoreError {
    StoreError::Corrupt("store writer answered the wrong kind of result".into())
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn create(
        &self,
        id: Uuid,
        draft: RequestDraft,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<Created> {
        match self
            .write(writer::Op::Create {
                id,
                draft,
                idempotency,
            })
            .await?
        {
            writer::Done::Created(created) => Ok(created),
            _ => Err(mismatch()),
        }
    }

    async fn decide(&self, id: Uuid, verdict: Verdict) -> StoreResult<Request> {
        match self.write(writer::Op::Decide { id, verdict }).await? {
            writer::Done::Decided(request) => Ok(request),
            _ => Err(mismatch()),
        }
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<Request>> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        load_request(&mut conn, id, false).await
    }

    async fn list(&self, query: ListQuery) -> StoreResult<Page> {
        // Only the conditions asked for, so the planner sees plain
        // predicates and picks the index (no `$1 IS NULL OR ...`).
        let mut sql = String::from(concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE TRUE"
        ));
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if query.status.is_some() {
            sql.push_str(&format!(" AND status = ${}", next()));
        }
        if query.status == Some(Status::Pending) {
            sql.push_str(&format!(" AND expires_at > ${}", next()));
        }
        if query.before.is_some() {
            sql.push_str(&format!(" AND id < ${}", next()));
        }
        if query.requester.is_some() {
            sql.push_str(&format!(" AND requester = ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", next()));
        // Built only from the fixed fragments above; every value is bound.
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(status) = query.status {
            q = q.bind(status.as_str());
        }
        if query.status == Some(Status::Pending) {
            q = q.bind(micros(self.clock.now()));
        }
        if let Some(before) = query.before {
            q = q.bind(before);
        }
        if let Some(requester) = &query.requester {
            q = q.bind(requester.clone());
        }
        q = q.bind(i64::from(query.limit));
        let rows = q.fetch_all(&self.pool).await.map_err(unavailable)?;
        let requests = rows
            .iter()
            .map(request_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = (requests.len() == query.limit as usize)
            .then(|| requests.last().map(|r| r.id))
            .flatten();
        Ok(Page { requests, next })
    }

    async fn count(&self, status: Status) -> StoreResult<u64> {
        let row = if status == Status::Pending {
            sqlx::query(
                "SELECT COUNT(*) FROM requests WHERE status = 'pending' AND expires_at > $1",
            )
            .bind(micros(self.clock.now()))
            .fetch_one(&self.pool)
            .await
        } else {
            sqlx::query("SELECT COUNT(*) FROM requests WHERE status = $1")
                .bind(status.as_str())
                .fetch_one(&self.pool)
                .await
        }
        .map_err(unavailable)?;
        let n: i64 = row.try_get(0).map_err(unavailable)?;
        Ok(n.max(0).unsigned_abs())
    }

    async fn expire_overdue(&self, limit: u32) -> StoreResult<Vec<Request>> {
        match self.write(writer::Op::ExpireOverdue { limit }).await? {
            writer::Done::Swept(requests) => Ok(requests),
            _ => Err(mismatch()),
        }
    }

    async fn remind_due(&self, limit: u32) -> StoreResult<Vec<Request>> {
        match self.write(writer::Op::Remind { limit }).await? {
            writer::Done::Swept(reminded) => Ok(reminded),
            _ => Err(mismatch()),
        }
    }

    async fn next_reminder(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT MIN(remind_at) FROM requests WHERE remind_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        let at: Option<i64> = row.try_get(0).map_err(unavailable)?;
        at.map(|at| from_micros("remind_at", at)).transpose()
    }

    async fn next_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT MIN(expires_at) FROM requests WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        let next: Option<i64> = row.try_get(0).map_err(unavailable)?;
        Ok(next.and_then(DateTime::from_timestamp_micros))
    }

    async fn audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let rows = match query.request_id {
            Some(id) => {
                sqlx::query(concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_log WHERE seq > $1 AND request_id = $2 ORDER BY seq LIMIT $3"
                ))
                .bind(query.after_seq.unwrap_or(0))
                .bind(id)
                .bind(i64::from(query.limit))
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                ))
                .bind(query.after_seq.unwrap_or(0))
                .bind(i64::from(query.limit))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(unavailable)?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn verify_audit(&self) -> StoreResult<AuditReport> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // One snapshot for the head and the entries.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let row = sqlx::query("SELECT last_seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        let last_seq: i64 = row.try_get(0).map_err(unavailable)?;
        let hash: String = row.try_get(1).map_err(unavailable)?;
        let head = Chain::resume(
            last_seq,
            Digest::from_hex(&hash).ok_or_else(|| corrupt("audit head hash", &hash))?,
        );
        let mut verifier = Verifier::new();
        let mut broken = None;
        // Pages of entries in one snapshot: constant memory for any length.
        let mut after = 0_i64;
        'pages: loop {
            let rows = sqlx::query(concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 5000"
            ))
            .bind(after)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.try_get("seq").map_err(unavailable)?;
            for row in &rows {
                let seq: i64 = row.try_get("seq").map_err(unavailable)?;
                // A row that no longer decodes was edited.
                let checked = match entry_from_row(row) {
                    Ok(entry) => verifier.check(&entry),
                    Err(_) => Err(ChainBreak {
                        seq,
                        fault: ChainFault::Edited,
                    }),
                };
                if let Err(at) = checked {
                    broken = Some(at);
                    break 'pages;
                }
            }
        }
        let checked = verifier.checked();
        let broken = match broken {
            Some(at) => Some(at),
            None => verifier.finish(head).err(),
        };
        Ok(AuditReport {
            checked,
            head,
            broken,
        })
    }

    async fn last_audit_seq(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT last_seq FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        row.try_get(0).map_err(unavailable)
    }

    async fn create_run(&self, run: Run) -> StoreResult<Run> {
        let r = RunRow::encode(&run);
        sqlx::query(concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ", owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(r.id)
        .bind(r.workflow)
        .bind(r.input)
        .bind(r.status)
        .bind(r.attempt)
        .bind(r.draft)
        .bind(r.request_id)
        .bind(r.result)
        .bind(r.error)
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.started_by)
        .bind(&self.owner)
        .bind(self.lease_end())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(run)
    }

    async fn advance_run(
        &self,
        run: Run,
        from: RunStatus,
        record: Option<StageRecord>,
    ) -> StoreResult<Run> {
        let r = RunRow::encode(&run);
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let changed = sqlx::query(
            "UPDATE runs SET status = $2, attempt = $3, draft = $4, request_id = $5, result = $6,
                 error = $7, updated_at = $8
             WHERE id = $1 AND status = $9",
        )
        .bind(r.id)
        .bind(r.status)
        .bind(r.attempt)
        .bind(r.draft)
        .bind(r.request_id)
        .bind(r.result)
        .bind(r.error)
        .bind(r.updated_at)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if changed != 1 {
            drop(tx);
            return match self.get_run(run.id).await? {
                Some(stored) => Err(StoreError::RunMoved {
                    id: run.id,
                    status: stored.status,
                    expected: from,
                }),
                None => Err(StoreError::RunNotFound(run.id)),
            };
        }
        if let Some(record) = record {
            // Stage records are numbered in commit order, so an event
            // stream reading "after N" never skips one committed late: the
            // writers take turns (they are a few per run, not a hot path).
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(STAGE_ORDER_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            let s = StageRow::encode(&record);
            sqlx::query(
                "INSERT INTO run_stages (run_id, attempt, stage, ok, at, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(s.run_id)
            .bind(s.attempt)
            .bind(s.stage)
            .bind(s.ok)
            .bind(s.at)
            .bind(s.detail)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        // Other replicas' event streams wake on it.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(run.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(run)
    }

    async fn get_run(&self, id: Uuid) -> StoreResult<Option<Run>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn run_stages(&self, id: Uuid) -> StoreResult<Vec<StageRecord>> {
        let rows = sqlx::query(
            "SELECT run_id, attempt, stage, ok, at, detail FROM run_stages WHERE run_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let get = |e: sqlx::Error| corrupt("stage row", e);
                StageRow {
                    run_id: row.try_get("run_id").map_err(get)?,
                    attempt: row.try_get("attempt").map_err(get)?,
                    stage: row.try_get("stage").map_err(get)?,
                    ok: row.try_get("ok").map_err(get)?,
                    at: row.try_get("at").map_err(get)?,
                    detail: row.try_get("detail").map_err(get)?,
                }
                .decode()
            })
            .collect()
    }

    async fn stage_events(
        &self,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<signoff_store::StageEvent>> {
        let rows = sqlx::query(
            "SELECT s.seq, s.run_id, s.attempt, s.stage, s.ok, s.at, s.detail, r.workflow, r.started_by
             FROM run_stages s JOIN runs r ON r.id = s.run_id
             WHERE s.seq > $1 ORDER BY s.seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let get = |e: sqlx::Error| corrupt("stage row", e);
                let record = StageRow {
                    run_id: row.try_get("run_id").map_err(get)?,
                    attempt: row.try_get("attempt").map_err(get)?,
                    stage: row.try_get("stage").map_err(get)?,
                    ok: row.try_get("ok").map_err(get)?,
                    at: row.try_get("at").map_err(get)?,
                    detail: row.try_get("detail").map_err(get)?,
                }
                .decode()?;
                Ok(signoff_store::StageEvent {
                    seq: row.try_get("seq").map_err(get)?,
                    record,
                    workflow: row.try_get("workflow").map_err(get)?,
                    started_by: row.try_get("started_by").map_err(get)?,
                })
            })
            .collect()
    }

    async fn last_stage_seq(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM run_stages")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        row.try_get(0).map_err(unavailable)
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<Run>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE status IN ('drafting', 'validating', 'awaiting_approval', 'executing') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(run_from_row).collect()
    }

    async fn record_denial(
        &self,
        id: Uuid,
        actor: Option<String>,
        reason: String,
    ) -> StoreResult<()> {
        match self.write(writer::Op::Deny { id, actor, reason }).await? {
            writer::Done::Denied => Ok(()),
            _ => Err(mismatch()),
        }
    }

    async fn create_token(&self, token: TokenRecord) -> StoreResult<TokenRecord> {
        let t = TokenRow::encode(&token)?;
        sqlx::query(concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(t.id)
        .bind(t.name)
        .bind(t.role)
        .bind(t.groups)
        .bind(t.secret_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(token)
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(micros(self.clock.now()))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        self.token(id).await
    }

    async fn create_webhook(&self, hook: Webhook) -> StoreResult<Webhook> {
        webhooks::insert(&self.pool, hook).await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        webhooks::load_all(&self.pool).await
    }

    async fn delete_webhook(&self, id: Uuid) -> StoreResult<bool> {
        webhooks::delete(&self.pool, id).await
    }

    async fn enqueue_deliveries(
        &self,
        webhook_id: Uuid,
        from: i64,
        to: i64,
        deliveries: Vec<Delivery>,
    ) -> StoreResult<bool> {
        webhooks::enqueue(&self.pool, webhook_id, from, to, &deliveries).await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        webhooks::claim(&self.pool, now, until, limit).await
    }

    async fn record_attempt(&self, id: Uuid, attempt: Attempt) -> StoreResult<()> {
        webhooks::record(&self.pool, id, &attempt).await
    }

    async fn redeliver(&self, id: Uuid) -> StoreResult<Option<Delivery>> {
        webhooks::redeliver(&self.pool, id, self.clock.now()).await
    }

    async fn deliveries(&self, query: DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        webhooks::list(&self.pool, query).await
    }

    async fn next_delivery_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        webhooks::next_due(&self.pool).await
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn run_lease(&self) -> Option<Duration> {
        Some(self.lease)
    }

    fn watch(&self, listener: Arc<dyn ChangeListener>) {
        let pool = self.pool.clone();
        let task = tokio::spawn(listen(pool, listener));
        if let Ok(mut slot) = self.listener.lock()
            && let Some(old) = slot.replace(task)
        {
            old.abort();
        }
    }

    async fn claim_runs(&self, limit: u32) -> StoreResult<Vec<Run>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "UPDATE runs SET owner = $1, lease_until = $2
             WHERE id IN (
                 SELECT id FROM runs
                 WHERE status IN {UNFINISHED} AND (lease_until IS NULL OR lease_until < $3)
                 ORDER BY id LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             RETURNING {}",
            run_columns!()
        )))
        .bind(&self.owner)
        .bind(self.lease_end())
        .bind(micros(self.clock.now()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut runs = rows
            .iter()
            .map(run_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        runs.sort_by_key(|r| r.id);
        Ok(runs)
    }

    async fn renew_runs(&self) -> StoreResult<()> {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE runs SET lease_until = $2 WHERE owner = $1 AND status IN {UNFINISHED}"
        )))
        .bind(&self.owner)
        .bind(self.lease_end())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.listener.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}

/// Carries `NOTIFY signoff` to `listener` for as long as the store lives,
/// reconnecting when the connection drops (and saying changes may have
/// been missed meanwhile).
async fn listen(pool: PgPool, listener: Arc<dyn ChangeListener>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut pg = PgListener::connect_with(&pool).await?;
            pg.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(pg)
        }
        .await;
        let mut pg = match connected {
            Ok(pg) => pg,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for changes from other replicas; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Anything that changed while we were not listening.
        listener.missed();
        loop {
            match pg.try_recv().await {
                Ok(Some(notification)) => {
                    let mut parts = notification.payload().split(' ');
                    let id = parts.next().and_then(|id| Uuid::parse_str(id).ok());
                    let expires = parts
                        .next()
                        .and_then(|m| m.parse::<i64>().ok())
                        .and_then(|m| from_micros("expires_at", m).ok());
                    if let Some(id) = id {
                        listener.changed(id, expires);
                    }
                }
                // The connection dropped; the next call reconnects.
                Ok(None) => listener.missed(),
                Err(error) => {
                    tracing::warn!(%error, "lost the change listener's connection; reconnecting");
                    break;
                }
            }
        }
    }
}

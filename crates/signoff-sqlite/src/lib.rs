//! The embedded SQLite store: one database file, in WAL mode.
//!
//! Writes go to one writer thread that commits them in groups
//! ([`writer`]); reads run on a small pool of read-only connections, which
//! WAL lets proceed while the writer commits. With the default
//! [`Durability::Full`] every acknowledged write has been fsynced.
//!
//! Architecture invariant: this is the only crate that knows SQLite.

mod checkpoint;
mod readers;
mod rows;
mod runs;
mod schema;
mod tokens;
mod webhooks;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use signoff_core::{Attempt, Delivery, Webhook};
use signoff_core::{
    Clock, Request, RequestDraft, Run, RunStatus, StageRecord, Status, TokenRecord, Verdict,
    Verifier,
};
use signoff_store::{
    AuditQuery, AuditReport, Created, DeliveryQuery, IdempotencyKey, ListQuery, Page, Store,
    StoreError, StoreResult,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use readers::Readers;
use rows::{
    AUDIT_COLUMNS, REQUEST_COLUMNS, and_status, bind_named, entry_from_row, micros, read_head,
    request_from_row,
};
use writer::{Command, Done, Op};

/// How hard a commit holds on to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a write is acknowledged once it is on disk and
    /// survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, but the last
    /// commits may be lost on power loss.
    Normal,
}

/// Where and how to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file (created if missing; its directory must exist).
    pub path: PathBuf,
    /// Commit durability.
    pub durability: Durability,
    /// Read-only connections kept open for reads.
    pub readers: usize,
    /// WAL frames (pages) after which the WAL is checkpointed into the
    /// database file, beside the writer ([`checkpoint`]).
    pub checkpoint_frames: u32,
}

impl SqliteOptions {
    /// Defaults for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Full,
            readers: 4,
            // About 4 MiB of WAL. The checkpoint that empties the WAL ends
            // with a sync of the database file on the writer's thread, which
            // writes every page the checkpoint copied; at 16 MiB that stalled
            // every caller for 12-19 ms (docs/BENCHMARKS.md, seventh session).
            checkpoint_frames: 1000,
        }
    }
}

pub(crate) fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// The SQLite [`Store`].
pub struct SqliteStore {
    commands: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    readers: Arc<Readers>,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database and starts its
    /// writer thread. Must be called inside a Tokio runtime.
    pub fn open(options: SqliteOptions, clock: Arc<dyn Clock>) -> StoreResult<Self> {
        let conn = schema::open_writer(&options)?;
        let chain = read_head(&conn)?;
        let checkpointer = checkpoint::Checkpointer::start(&options, &conn)?;
        let readers = Arc::new(Readers::new(options)?);
        let (tx, rx) = mpsc::channel(4096);
        let writer_clock = clock.clone();
        let writer = std::thread::Builder::new()
            .name("signoff-sqlite-writer".into())
            .spawn(move || writer::run(conn, chain, writer_clock, rx, checkpointer))
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
        Ok(Self {
            commands: Some(tx),
            writer: Some(writer),
            readers,
            clock,
        })
    }

    async fn write(&self, op: Op) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        let commands = self
            .commands
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        commands
            .send(Command { op, reply })
            .await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish its last batch; wait for
        // it so the file is closed cleanly.
        self.commands.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn mismatch() -> StoreError {
    StoreError::Corrupt("store writer answered the wrong kind of result".into())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create(
        &self,
        id: Uuid,
        draft: RequestDraft,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<Created> {
        match self
            .write(Op::Create {
                id,
                draft,
                idempotency,
            })
            .await?
        {
            Done::Created(created) => Ok(created),
            _ => Err(mismatch()),
        }
    }

    async fn decide(&self, id: Uuid, verdict: Verdict) -> StoreResult<Request> {
        match self.write(Op::Decide { id, verdict }).await? {
            Done::Decided(request) => Ok(request),
            _ => Err(mismatch()),
        }
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<Request>> {
        self.readers
            .run(move |conn| rows::load_request(conn, id))
            .await
    }

    async fn list(&self, query: ListQuery) -> StoreResult<Page> {
        let now = micros(self.clock.now());
        self.readers
            .run(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&list_sql(&query))
                    .map_err(unavailable)?;
                bind_list(&mut stmt, &query, now).map_err(unavailable)?;
                let mut rows = stmt.raw_query();
                let mut requests = Vec::with_capacity(query.limit as usize);
                while requests.len() < query.limit as usize
                    && let Some(row) = rows.next().map_err(unavailable)?
                {
                    requests.push(request_from_row(row)?);
                }
                let next = (requests.len() == query.limit as usize)
                    .then(|| requests.last().map(|r| r.id))
                    .flatten();
                Ok(Page { requests, next })
            })
            .await
    }

    async fn count(&self, status: Status) -> StoreResult<u64> {
        let now = micros(self.clock.now());
        self.readers
            .run(move |conn| {
                // Pending ones already overdue are left out, as in `list`.
                let count = if status == Status::Pending {
                    conn.query_row(
                        "SELECT COUNT(*) FROM requests WHERE status = 'pending' AND expires_at > ?1",
                        [now],
                        |row| row.get::<_, i64>(0),
                    )
                } else {
                    conn.query_row(
                        "SELECT COUNT(*) FROM requests WHERE status = ?1",
                        [status.as_str()],
                        |row| row.get::<_, i64>(0),
                    )
                };
                count.map(|n| n.max(0).unsigned_abs()).map_err(unavailable)
            })
            .await
    }

    async fn expire_overdue(&self, limit: u32) -> StoreResult<Vec<Request>> {
        match self.write(Op::ExpireOverdue { limit }).await? {
            Done::Swept(requests) => Ok(requests),
            _ => Err(mismatch()),
        }
    }

    async fn remind_due(&self, limit: u32) -> StoreResult<Vec<Request>> {
        match self.write(Op::Remind { limit }).await? {
            Done::Swept(reminded) => Ok(reminded),
            _ => Err(mismatch()),
        }
    }

    async fn next_reminder(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.readers
            .run(|conn| {
                let at: Option<i64> = conn
                    .prepare_cached(
                        "SELECT MIN(remind_at) FROM requests WHERE remind_at IS NOT NULL",
                    )
                    .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
                    .map_err(unavailable)?;
                at.map(|at| signoff_store::codec::from_micros("remind_at", at))
                    .transpose()
            })
            .await
    }

    async fn next_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.readers
            .run(|conn| {
                let next: Option<i64> = conn
                    .query_row(
                        "SELECT MIN(expires_at) FROM requests WHERE status = 'pending'",
                        [],
                        |row| row.get(0),
                    )
                    .map_err(unavailable)?;
                Ok(next.and_then(DateTime::from_timestamp_micros))
            })
            .await
    }

    async fn audit(&self, query: AuditQuery) -> StoreResult<Vec<signoff_core::AuditEntry>> {
        self.readers
            .run(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&audit_sql(&query))
                    .map_err(unavailable)?;
                bind_audit(&mut stmt, &query).map_err(unavailable)?;
                let mut rows = stmt.raw_query();
                let mut entries = Vec::new();
                while entries.len() < query.limit as usize
                    && let Some(row) = rows.next().map_err(unavailable)?
                {
                    entries.push(entry_from_row(row)?);
                }
                Ok(entries)
            })
            .await
    }

    async fn verify_audit(&self) -> StoreResult<AuditReport> {
        self.readers
            .run(|conn| {
                // One read transaction, so the head and the entries are one
                // consistent snapshot.
                conn.execute_batch("BEGIN").map_err(unavailable)?;
                let report = verify(conn);
                let _ = conn.execute_batch("COMMIT");
                report
            })
            .await
    }

    async fn last_audit_seq(&self) -> StoreResult<i64> {
        self.readers
            .run(|conn| read_head(conn).map(|chain| chain.last_seq()))
            .await
    }

    async fn create_run(&self, run: Run) -> StoreResult<Run> {
        match self.write(Op::CreateRun { run }).await? {
            Done::Run(run) => Ok(run),
            _ => Err(mismatch()),
        }
    }

    async fn advance_run(
        &self,
        run: Run,
        from: RunStatus,
        record: Option<StageRecord>,
    ) -> StoreResult<Run> {
        match self.write(Op::AdvanceRun { run, from, record }).await? {
            Done::Run(run) => Ok(run),
            _ => Err(mismatch()),
        }
    }

    async fn get_run(&self, id: Uuid) -> StoreResult<Option<Run>> {
        self.readers.run(move |conn| runs::load_run(conn, id)).await
    }

    async fn run_stages(&self, id: Uuid) -> StoreResult<Vec<StageRecord>> {
        self.readers
            .run(move |conn| runs::load_stages(conn, id))
            .await
    }

    async fn stage_events(
        &self,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<signoff_store::StageEvent>> {
        self.readers
            .run(move |conn| runs::stage_events(conn, after, limit))
            .await
    }

    async fn last_stage_seq(&self) -> StoreResult<i64> {
        self.readers.run(runs::last_stage_seq).await
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<Run>> {
        self.readers.run(runs::load_unfinished).await
    }

    async fn record_denial(
        &self,
        id: Uuid,
        actor: Option<String>,
        reason: String,
    ) -> StoreResult<()> {
        match self.write(Op::Deny { id, actor, reason }).await? {
            Done::Denied => Ok(()),
            _ => Err(mismatch()),
        }
    }

    async fn create_webhook(&self, hook: Webhook) -> StoreResult<Webhook> {
        match self.write(Op::CreateWebhook { hook }).await? {
            Done::Webhook(hook) => Ok(hook),
            _ => Err(mismatch()),
        }
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.readers.run(webhooks::load_all).await
    }

    async fn delete_webhook(&self, id: Uuid) -> StoreResult<bool> {
        match self.write(Op::DeleteWebhook { id }).await? {
            Done::Flag(deleted) => Ok(deleted),
            _ => Err(mismatch()),
        }
    }

    async fn enqueue_deliveries(
        &self,
        webhook_id: Uuid,
        from: i64,
        to: i64,
        deliveries: Vec<Delivery>,
    ) -> StoreResult<bool> {
        let op = Op::Enqueue {
            webhook_id,
            from,
            to,
            deliveries,
        };
        match self.write(op).await? {
            Done::Flag(moved) => Ok(moved),
            _ => Err(mismatch()),
        }
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        match self
            .write(Op::ClaimDeliveries { now, until, limit })
            .await?
        {
            Done::Deliveries(claimed) => Ok(claimed),
            _ => Err(mismatch()),
        }
    }

    async fn record_attempt(&self, id: Uuid, attempt: Attempt) -> StoreResult<()> {
        match self.write(Op::RecordAttempt { id, attempt }).await? {
            Done::Flag(_) => Ok(()),
            _ => Err(mismatch()),
        }
    }

    async fn redeliver(&self, id: Uuid) -> StoreResult<Option<Delivery>> {
        match self.write(Op::Redeliver { id }).await? {
            Done::Delivery(delivery) => Ok(delivery),
            _ => Err(mismatch()),
        }
    }

    async fn deliveries(&self, query: DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        self.readers
            .run(move |conn| webhooks::list(conn, query))
            .await
    }

    async fn next_delivery_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.readers.run(webhooks::next_due).await
    }

    async fn create_token(&self, token: TokenRecord) -> StoreResult<TokenRecord> {
        match self.write(Op::CreateToken { token }).await? {
            Done::Token(Some(token)) => Ok(token),
            _ => Err(mismatch()),
        }
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let id = id.to_owned();
        self.readers.run(move |conn| tokens::load(conn, &id)).await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.readers.run(tokens::load_all).await
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        match self.write(Op::RevokeToken { id: id.to_owned() }).await? {
            Done::Token(token) => Ok(token),
            _ => Err(mismatch()),
        }
    }
}

/// The statement [`SqliteStore::list`] runs for `query`, with named
/// parameters for what [`bind_list`] binds.
///
/// The status is written into the SQL, not bound, and a filter that is not
/// asked for is left out rather than written as `:param IS NULL`. Either
/// kind of term can be checked against the partial indexes' conditions
/// (`status = 'pending'`, `remind_at IS NOT NULL`), so SQLite marked the
/// statement as depending on the bound value and compiled it again on
/// every run: a seventh of an inbox page's time. There are five statuses,
/// so the statement cache holds one statement per status and filter.
fn list_sql(query: &ListQuery) -> String {
    let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE 1 = 1");
    if let Some(status) = query.status {
        and_status(&mut sql, status.as_str());
    }
    if query.status == Some(Status::Pending) {
        sql.push_str(" AND expires_at > :now");
    }
    if query.before.is_some() {
        sql.push_str(" AND id < :before");
    }
    if query.requester.is_some() {
        sql.push_str(" AND requester = :requester");
    }
    // No LIMIT: the planner reads a bound LIMIT's value too. The rows come
    // in index order, unsorted, so stopping after the page's last row (in
    // `list`) costs the same.
    sql.push_str(" ORDER BY id DESC");
    sql
}

/// Binds the parameters [`list_sql`] named for `query`.
fn bind_list(
    stmt: &mut rusqlite::Statement<'_>,
    query: &ListQuery,
    now: i64,
) -> rusqlite::Result<()> {
    bind_named(stmt, ":now", &now)?;
    if let Some(before) = query.before {
        bind_named(stmt, ":before", &before.hyphenated().to_string())?;
    }
    if let Some(requester) = &query.requester {
        bind_named(stmt, ":requester", requester)?;
    }
    Ok(())
}

/// The statement [`SqliteStore::audit`] runs for `query`: like
/// [`list_sql`], without a bound `LIMIT` (the trail's readers, the event
/// stream among them, run it after every change).
///
/// One request's trail is its `created` entry, found through the request's
/// `created_seq` (and checked to be that request's, whatever the column
/// says), merged with its later entries, which `audit_by_request` indexes
/// (migration 9). The index leaves `created` entries out, so the
/// `event <> 'created'` here must stay word for word for SQLite to use it.
fn audit_sql(query: &AuditQuery) -> String {
    if query.request_id.is_some() {
        return format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE seq = (SELECT created_seq FROM requests WHERE id = ?2)
                 AND request_id = ?2 AND seq > ?1
             UNION ALL
             SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE request_id = ?2 AND event <> 'created' AND seq > ?1
             ORDER BY seq"
        );
    }
    format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq")
}

/// Binds the parameters [`audit_sql`] named for `query`.
fn bind_audit(stmt: &mut rusqlite::Statement<'_>, query: &AuditQuery) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(1, query.after_seq.unwrap_or(0))?;
    if let Some(id) = query.request_id {
        stmt.raw_bind_parameter(2, id.hyphenated().to_string())?;
    }
    Ok(())
}

fn verify(conn: &rusqlite::Connection) -> StoreResult<AuditReport> {
    let head = read_head(conn)?;
    let mut verifier = Verifier::new();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"
        ))
        .map_err(unavailable)?;
    let mut rows = stmt.query([]).map_err(unavailable)?;
    while let Some(row) = rows.next().map_err(unavailable)? {
        let seq: i64 = row.get(0).map_err(unavailable)?;
        // A row that no longer decodes was edited as surely as one whose
        // hash does not match.
        let checked = match entry_from_row(row) {
            Ok(entry) => verifier.check(&entry),
            Err(_) => Err(signoff_core::ChainBreak {
                seq,
                fault: signoff_core::ChainFault::Edited,
            }),
        };
        if let Err(broken) = checked {
            return Ok(AuditReport {
                checked: verifier.checked(),
                head,
                broken: Some(broken),
            });
        }
    }
    Ok(AuditReport {
        checked: verifier.checked(),
        head,
        broken: verifier.finish(head).err(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use signoff_core::DeliveryStatus;

    use super::*;

    fn migrated() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open_writer(&SqliteOptions::new(dir.path().join("list.db"))).unwrap();
        (dir, conn)
    }

    /// Runs `sql` three times from the statement cache, bound by `bind`,
    /// and asserts SQLite never compiled it again.
    fn assert_not_reprepared(
        conn: &rusqlite::Connection,
        sql: &str,
        bind: impl Fn(&mut rusqlite::Statement<'_>) -> rusqlite::Result<()>,
    ) {
        for _ in 0..3 {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            bind(&mut stmt).unwrap();
            let mut rows = stmt.raw_query();
            while rows.next().unwrap().is_some() {}
            drop(rows);
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }

    /// The steps of `sql`'s query plan.
    fn plan(
        conn: &rusqlite::Connection,
        sql: &str,
        bind: impl Fn(&mut rusqlite::Statement<'_>) -> rusqlite::Result<()>,
    ) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        bind(&mut stmt).unwrap();
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get(3).unwrap());
        }
        steps
    }

    /// Asserts that `plan`, the query plan of `sql`, reads `index` (or a
    /// name containing it) and never sorts into a temporary b-tree.
    pub(crate) fn assert_reads_without_sorting(sql: &str, plan: &[String], index: &str) {
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{sql}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{sql}: {plan:?}"
        );
    }

    fn queries() -> Vec<ListQuery> {
        let mut queries = Vec::new();
        for status in std::iter::once(None).chain(Status::ALL.into_iter().map(Some)) {
            for before in [None, Some(Uuid::now_v7())] {
                for requester in [None, Some("agent".to_owned())] {
                    queries.push(ListQuery {
                        status,
                        limit: 50,
                        before,
                        requester: requester.clone(),
                    });
                }
            }
        }
        queries
    }

    #[test]
    fn listing_runs_the_cached_statement_without_compiling_it_again() {
        let (_dir, conn) = migrated();
        for query in queries() {
            assert_not_reprepared(&conn, &list_sql(&query), |stmt| bind_list(stmt, &query, 1));
        }
    }

    /// The seqs of `id`'s trail as [`audit_sql`] reads it.
    fn trail_seqs(conn: &rusqlite::Connection, id: Uuid) -> Vec<i64> {
        let query = AuditQuery {
            request_id: Some(id),
            after_seq: None,
            limit: 10,
        };
        let mut stmt = conn.prepare(&audit_sql(&query)).unwrap();
        bind_audit(&mut stmt, &query).unwrap();
        let mut rows = stmt.raw_query();
        let mut seqs = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            seqs.push(row.get(0).unwrap());
        }
        seqs
    }

    /// A request's trail is its `created` entry and its later ones, in
    /// order; a `created_seq` pointed at another request's entry brings
    /// that entry into nobody else's trail.
    #[test]
    fn a_trail_holds_only_the_requests_own_entries() {
        let (_dir, conn) = migrated();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let insert = |created_seq_of_a: i64| {
            conn.execute_batch(&format!(
                "DELETE FROM requests; DELETE FROM audit_log;
                 INSERT INTO requests (id, title, description, proposed_action, requester,
                     labels, created_at, expires_at, status, created_seq) VALUES
                     ('{a}', 'A', '', '{{}}', 'agent', '{{}}', 1, 2, 'cancelled', {created_seq_of_a}),
                     ('{b}', 'B', '', '{{}}', 'agent', '{{}}', 1, 2, 'pending', 2);
                 INSERT INTO audit_log (seq, at, event, request_id, title, prev_hash, hash) VALUES
                     (1, 't', 'created', '{a}', 'A', 'x', 'y'),
                     (2, 't', 'created', '{b}', 'B', 'y', 'z'),
                     (3, 't', 'cancelled', '{a}', 'A', 'z', 'w');"
            ))
            .unwrap();
        };
        insert(1);
        assert_eq!(trail_seqs(&conn, a), [1, 3]);
        assert_eq!(trail_seqs(&conn, b), [2]);
        insert(2);
        assert_eq!(trail_seqs(&conn, a), [3]);
        assert_eq!(trail_seqs(&conn, b), [2]);
    }

    #[test]
    fn reading_the_trail_runs_the_cached_statement_without_compiling_it_again() {
        let (_dir, conn) = migrated();
        for request_id in [None, Some(Uuid::now_v7())] {
            let query = AuditQuery {
                request_id,
                after_seq: Some(3),
                limit: 100,
            };
            let sql = audit_sql(&query);
            assert_not_reprepared(&conn, &sql, |stmt| bind_audit(stmt, &query));
            let plan = plan(&conn, &sql, |stmt| bind_audit(stmt, &query));
            let index = if request_id.is_some() {
                "audit_by_request"
            } else {
                "INTEGER PRIMARY KEY"
            };
            assert_reads_without_sorting(&sql, &plan, index);
        }
    }

    #[test]
    fn reading_run_steps_runs_the_cached_statement_without_compiling_it_again() {
        let (_dir, conn) = migrated();
        let bind = |stmt: &mut rusqlite::Statement<'_>| stmt.raw_bind_parameter(1, 3_i64);
        assert_not_reprepared(&conn, runs::STAGE_EVENTS, bind);
        let plan = plan(&conn, runs::STAGE_EVENTS, bind);
        assert_reads_without_sorting(runs::STAGE_EVENTS, &plan, "INTEGER PRIMARY KEY");
    }

    /// Listing deliveries runs its cached statement without compiling it
    /// again, for every shape of the query, and a filter by subscription or
    /// request reads that index instead of scanning the table; claiming
    /// the due ones does not compile its statement again either.
    #[test]
    fn delivery_queries_run_the_cached_statement_and_read_their_index() {
        let (_dir, conn) = migrated();
        let statuses = [
            None,
            Some(DeliveryStatus::Pending),
            Some(DeliveryStatus::Delivered),
            Some(DeliveryStatus::Dead),
        ];
        for webhook_id in [None, Some(Uuid::now_v7())] {
            for status in statuses {
                for request_id in [None, Some(Uuid::now_v7())] {
                    let query = DeliveryQuery {
                        webhook_id,
                        status,
                        request_id,
                        limit: 50,
                    };
                    let sql = webhooks::list_sql(&query);
                    let bind =
                        |stmt: &mut rusqlite::Statement<'_>| webhooks::bind_list(stmt, &query);
                    assert_not_reprepared(&conn, &sql, bind);
                    let plan = plan(&conn, &sql, bind);
                    if webhook_id.is_some() || request_id.is_some() {
                        assert!(
                            !plan.iter().any(|step| step.starts_with("SCAN")),
                            "{sql}: {plan:?}"
                        );
                    }
                    if request_id.is_some() {
                        assert!(
                            plan.iter()
                                .any(|step| step.contains("webhook_deliveries_by_request")),
                            "{sql}: {plan:?}"
                        );
                    }
                }
            }
        }
        assert_not_reprepared(&conn, webhooks::DUE, |stmt| {
            stmt.raw_bind_parameter(1, 5_i64)
        });
    }

    #[test]
    fn a_page_reads_an_index_newest_first_without_sorting() {
        let (_dir, conn) = migrated();
        for query in queries() {
            let sql = list_sql(&query);
            let plan = plan(&conn, &sql, |stmt| bind_list(stmt, &query, 1));
            let index = if query.status.is_some() {
                "requests_by_status"
            } else {
                "sqlite_autoindex_requests_1"
            };
            assert_reads_without_sorting(&sql, &plan, index);
        }
    }
}

//! Converting between domain values and SQLite rows.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row, Statement, ToSql, params};
use signoff_core::{
    AuditEntry, CanonicalJson, Chain, Decision, Digest, Request, format_time, rfc3339,
};
use signoff_store::StoreError;
use signoff_store::codec::{self, AuditRow, RequestRow};
use uuid::Uuid;

use crate::unavailable;

// Macros rather than constants so that the statements on the write path are
// literals too (`concat!`), not formatted again on every call.
macro_rules! request_columns {
    () => {
        "id, title, description, proposed_action, requester, labels, \
         created_at, expires_at, status, reviewer, decided_at, comment, rejection_reason, \
         edited_action, action_hash, plan, approvals, stage"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, at, event, request_id, title, actor, reason, comment, action, prev_hash, hash, original_action, stage"
    };
}
/// The columns of `requests`, in the order [`request_from_row`] reads them.
pub(crate) const REQUEST_COLUMNS: &str = request_columns!();

/// The columns of `audit_log`, in the order [`entry_from_row`] reads them.
pub(crate) const AUDIT_COLUMNS: &str = audit_columns!();

pub(crate) use signoff_store::codec::{corrupt, micros};

fn uuid(what: &str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| corrupt(what, e))
}

/// Appends `AND status = '<status>'` to a filtered read: a closed enum's
/// value written into the SQL rather than bound, since a bound one checked
/// against a partial index's `status = 'pending'` makes SQLite compile the
/// statement again on every run. `status` is a fixed lowercase word:
/// nothing to quote.
pub(crate) fn and_status(sql: &mut String, status: &'static str) {
    sql.push_str(" AND status = '");
    sql.push_str(status);
    sql.push('\'');
}

/// Binds `value` to the parameter `name`, when the statement has it (a
/// filtered read names only the filters it was asked for).
pub(crate) fn bind_named(
    stmt: &mut Statement<'_>,
    name: &str,
    value: &dyn ToSql,
) -> rusqlite::Result<()> {
    match stmt.parameter_index(name)? {
        Some(index) => stmt.raw_bind_parameter(index, value),
        None => Ok(()),
    }
}

/// Reads a request from a row selected with [`REQUEST_COLUMNS`].
pub(crate) fn request_from_row(row: &Row<'_>) -> Result<Request, StoreError> {
    let get_err = |e: rusqlite::Error| corrupt("request row", e);
    let id: String = row.get(0).map_err(get_err)?;
    RequestRow {
        id: uuid("request id", &id)?,
        title: row.get(1).map_err(get_err)?,
        description: row.get(2).map_err(get_err)?,
        proposed_action: row.get(3).map_err(get_err)?,
        requester: row.get(4).map_err(get_err)?,
        labels: row.get(5).map_err(get_err)?,
        created_at: row.get(6).map_err(get_err)?,
        expires_at: row.get(7).map_err(get_err)?,
        status: row.get(8).map_err(get_err)?,
        reviewer: row.get(9).map_err(get_err)?,
        decided_at: row.get(10).map_err(get_err)?,
        comment: row.get(11).map_err(get_err)?,
        rejection_reason: row.get(12).map_err(get_err)?,
        edited_action: row.get(13).map_err(get_err)?,
        action_hash: row.get(14).map_err(get_err)?,
        plan: row.get(15).map_err(get_err)?,
        approvals: row.get(16).map_err(get_err)?,
        stage: row.get(17).map_err(get_err)?,
        remind_at: None,
    }
    .decode()
}

/// Reads one request by id.
pub(crate) fn load_request(conn: &Connection, id: Uuid) -> Result<Option<Request>, StoreError> {
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE id = ?1"
        ))
        .map_err(unavailable)?;
    let mut rows = stmt.query([id.to_string()]).map_err(unavailable)?;
    match rows.next().map_err(unavailable)? {
        Some(row) => request_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// A new request and the canonical text of its proposed action (which its
/// `created` entry already holds), as [`insert_requests`] takes them.
pub(crate) struct NewRow {
    pub(crate) request: Request,
    pub(crate) action: CanonicalJson,
    /// The sequence number of its `created` entry, which `audit_by_request`
    /// leaves out: the trail of one request finds that entry through this.
    pub(crate) created_seq: i64,
}

/// Inserts new requests, a few multi-row statements for all of them (see
/// [`CHUNKS`]).
pub(crate) fn insert_requests(conn: &Connection, rows: &[NewRow]) -> Result<(), StoreError> {
    insert_in_runs(conn, rows, &REQUEST_SHAPES)
}

/// A new request that is pending on the default plan, as nearly all are:
/// every column after `status` is NULL (the default plan has no reminder,
/// so no `remind_at` either), so it is inserted naming only the first nine
/// and `created_seq` (binding ten NULLs, and four more for its `created`
/// entry, was about 7% of the writer's instructions).
fn is_plain_request(row: &NewRow) -> bool {
    let request = &row.request;
    request.decision.is_none() && request.approvals.is_empty() && request.plan.is_single()
}

/// How requests are inserted: plain ones naming nine columns, others all.
static REQUEST_SHAPES: Shapes<NewRow> = Shapes {
    is_plain: is_plain_request,
    plain: Shape {
        statements: &INSERT_PLAIN_REQUESTS,
        columns: PLAIN_REQUEST_COLUMNS,
        bind: bind_plain_request,
    },
    full: Shape {
        statements: &INSERT_REQUESTS,
        columns: REQUEST_INSERT_COLUMNS,
        bind: bind_request,
    },
};

/// The values every new request has: the first nine of [`REQUEST_COLUMNS`].
const COMMON_REQUEST_COLUMNS: usize = 9;

/// The columns [`bind_plain_request`] binds: the common ones and
/// `created_seq`.
const PLAIN_REQUEST_COLUMNS: usize = COMMON_REQUEST_COLUMNS + 1;

fn bind_plain_request(
    stmt: &mut Statement<'_>,
    first: usize,
    row: &NewRow,
) -> Result<(), StoreError> {
    bind_request_with(stmt, row, |stmt, common| {
        bind_values(stmt, first, &common)?;
        bind_values(stmt, first + COMMON_REQUEST_COLUMNS, &[&row.created_seq])
    })
}

/// The columns [`bind_request`] binds: [`REQUEST_COLUMNS`], `remind_at`
/// and `created_seq`.
const REQUEST_INSERT_COLUMNS: usize = 20;

fn bind_request(stmt: &mut Statement<'_>, first: usize, row: &NewRow) -> Result<(), StoreError> {
    let request = &row.request;
    let decision = request.decision.as_ref();
    let plan = codec::plan_column(request)?;
    let approvals = codec::approvals_column(request)?;
    bind_request_with(stmt, row, |stmt, common| {
        let [
            id,
            title,
            description,
            action,
            requester,
            labels,
            created,
            expires,
            status,
        ] = common;
        let values: [&dyn ToSql; REQUEST_INSERT_COLUMNS] = [
            id,
            title,
            description,
            action,
            requester,
            labels,
            created,
            expires,
            status,
            &decision.and_then(|d| d.reviewer.as_deref()),
            &decision.map(|d| micros(d.decided_at)),
            &decision.and_then(|d| d.comment.as_deref()),
            &decision.and_then(|d| d.rejection_reason.as_deref()),
            &edited_action(decision),
            &decision.and_then(|d| d.action_hash).map(|h| h.to_hex()),
            &plan,
            &approvals,
            &decision.and_then(|d| d.stage.as_deref()),
            &request.remind_at().map(micros),
            &row.created_seq,
        ];
        bind_values(stmt, first, &values)
    })
}

/// Hands `bind` the values every new request has, in the order of
/// [`REQUEST_COLUMNS`]: id, title, description, proposed_action,
/// requester, labels, created_at, expires_at, status.
fn bind_request_with(
    stmt: &mut Statement<'_>,
    row: &NewRow,
    bind: impl FnOnce(
        &mut Statement<'_>,
        [&dyn ToSql; COMMON_REQUEST_COLUMNS],
    ) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let request = &row.request;
    let labels = labels_column(request)?;
    let mut id = Uuid::encode_buffer();
    bind(
        stmt,
        [
            &&*request.id.hyphenated().encode_lower(&mut id),
            &request.title,
            &request.description,
            &row.action.as_str(),
            &request.requester,
            &labels,
            &micros(request.created_at),
            &micros(request.expires_at),
            &request.status.as_str(),
        ],
    )
}

/// Labels as stored: most requests have none, and `{}` needs no serialiser.
fn labels_column(request: &Request) -> Result<std::borrow::Cow<'static, str>, StoreError> {
    if request.labels.is_empty() {
        return Ok("{}".into());
    }
    serde_json::to_string(&request.labels)
        .map(Into::into)
        .map_err(|e| corrupt("labels", e))
}

fn edited_action(decision: Option<&Decision>) -> Option<String> {
    decision
        .and_then(|d| d.edited_action.as_ref())
        .and_then(|edit| serde_json::to_string(edit).ok())
}

/// Records a transition of a pending request (or one more sign-off on it):
/// the compare-and-set that makes a second decision on the same request
/// impossible.
pub(crate) fn update_decided(conn: &Connection, request: &Request) -> Result<(), StoreError> {
    let decision = request.decision.as_ref();
    let approvals = codec::approvals_column(request)?;
    let plan = codec::plan_column(request)?;
    let changed = conn
        .prepare_cached(
            "UPDATE requests SET status = ?2, reviewer = ?3, decided_at = ?4, comment = ?5, rejection_reason = ?6,
                 edited_action = ?7, action_hash = ?8, approvals = ?9, stage = ?10, plan = ?11,
                 remind_at = ?12
             WHERE id = ?1 AND status = 'pending'",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                request.id.to_string(),
                request.status.as_str(),
                decision.and_then(|d| d.reviewer.as_deref()),
                decision.map(|d| micros(d.decided_at)),
                decision.and_then(|d| d.comment.as_deref()),
                decision.and_then(|d| d.rejection_reason.as_deref()),
                edited_action(decision),
                decision.and_then(|d| d.action_hash).map(|h| h.to_hex()),
                approvals,
                decision.and_then(|d| d.stage.as_deref()),
                plan,
                request.remind_at().map(micros),
            ])
        })
        .map_err(unavailable)?;
    if changed != 1 {
        return Err(StoreError::Corrupt(format!(
            "request {} was not pending when its decision was written",
            request.id
        )));
    }
    Ok(())
}

/// Appends audit entries, in the order given, a few multi-row statements
/// for all of them (see [`CHUNKS`]).
pub(crate) fn insert_entries(conn: &Connection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    insert_in_runs(conn, entries, &ENTRY_SHAPES)
}

/// How entries are inserted: plain ones naming nine columns, others all.
static ENTRY_SHAPES: Shapes<AuditEntry> = Shapes {
    is_plain: is_plain_entry,
    plain: Shape {
        statements: &INSERT_PLAIN_ENTRIES,
        columns: PLAIN_AUDIT_COLUMNS,
        bind: bind_plain_entry,
    },
    full: Shape {
        statements: &INSERT_ENTRIES,
        columns: AUDIT_INSERT_COLUMNS,
        bind: bind_entry,
    },
};

/// An entry without reason, comment, original action or stage (every
/// `created` one): inserted without naming those four columns.
fn is_plain_entry(entry: &AuditEntry) -> bool {
    let r = &entry.record;
    r.reason.is_none() && r.comment.is_none() && r.original_action.is_none() && r.stage.is_none()
}

/// The columns [`bind_plain_entry`] binds.
const PLAIN_AUDIT_COLUMNS: usize = 9;

/// The columns [`bind_entry`] binds: [`AUDIT_COLUMNS`].
const AUDIT_INSERT_COLUMNS: usize = 13;

/// Text columns are bound from stack buffers and the record's own strings,
/// not copies.
fn bind_entry(
    stmt: &mut Statement<'_>,
    first: usize,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    let r = &entry.record;
    bind_entry_with(stmt, entry, |stmt, common| {
        let [
            seq,
            at,
            event,
            request_id,
            title,
            actor,
            action,
            prev_hash,
            hash,
        ] = common;
        let values: [&dyn ToSql; AUDIT_INSERT_COLUMNS] = [
            seq,
            at,
            event,
            request_id,
            title,
            actor,
            &r.reason,
            &r.comment,
            action,
            prev_hash,
            hash,
            &r.original_action.as_ref().map(CanonicalJson::as_str),
            &r.stage,
        ];
        bind_values(stmt, first, &values)
    })
}

fn bind_plain_entry(
    stmt: &mut Statement<'_>,
    first: usize,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    bind_entry_with(stmt, entry, |stmt, common| {
        bind_values(stmt, first, &common)
    })
}

/// Hands `bind` the values every entry has, in the order of
/// [`PLAIN_AUDIT_COLUMNS`]: seq, at, event, request_id, title, actor,
/// action, prev_hash, hash.
fn bind_entry_with(
    stmt: &mut Statement<'_>,
    entry: &AuditEntry,
    bind: impl FnOnce(&mut Statement<'_>, [&dyn ToSql; PLAIN_AUDIT_COLUMNS]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let r = &entry.record;
    let at = rfc3339::micros(r.at);
    let at_fallback;
    let at = match &at {
        Some(at) => at.as_str(),
        None => {
            at_fallback = format_time(r.at);
            &at_fallback
        }
    };
    let mut request_id = Uuid::encode_buffer();
    let (mut prev_hash, mut hash) = ([0; 64], [0; 64]);
    bind(
        stmt,
        [
            &entry.seq,
            &at,
            &r.event.as_str(),
            &&*r.request_id.hyphenated().encode_lower(&mut request_id),
            &r.title,
            &r.actor,
            &r.action.as_ref().map(CanonicalJson::as_str),
            &entry.prev_hash.hex(&mut prev_hash),
            &entry.hash.hex(&mut hash),
        ],
    )
}

/// Row counts the multi-row INSERTs are prepared for, largest first; rows
/// go in the largest chunks that fit (a batch of 18 is 8 + 8 + 2). Within
/// one statement SQLite keeps its cursors open, so each row appends at the
/// end of every index instead of descending to it from the root, and the
/// statement is stepped, reset and looked up once per chunk, not per row.
const CHUNKS: [usize; 4] = [32, 8, 2, 1];

/// `INSERT OR ROLLBACK INTO requests ... VALUES (...), (...)` for each of
/// [`CHUNKS`]. A statement that can fail after writing some of its rows
/// (the default `OR ABORT`) makes SQLite copy every page it touches into a
/// statement journal first, to undo just that statement. The writer rolls
/// the whole batch back when a write fails anyway, so `OR ROLLBACK` lets
/// SQLite do that at once and keep no statement journal.
pub(crate) static INSERT_REQUESTS: LazyLock<[String; 4]> = LazyLock::new(|| {
    CHUNKS.map(|rows| {
        values_sql(
            concat!(
                "INSERT OR ROLLBACK INTO requests (",
                request_columns!(),
                ", remind_at, created_seq)"
            ),
            REQUEST_INSERT_COLUMNS,
            rows,
        )
    })
});

/// [`INSERT_REQUESTS`] naming only the columns [`bind_plain_request`]
/// binds.
static INSERT_PLAIN_REQUESTS: LazyLock<[String; 4]> = LazyLock::new(|| {
    CHUNKS.map(|rows| {
        values_sql(
            "INSERT OR ROLLBACK INTO requests (id, title, description, proposed_action, \
             requester, labels, created_at, expires_at, status, created_seq)",
            PLAIN_REQUEST_COLUMNS,
            rows,
        )
    })
});

/// [`INSERT_ENTRIES`] naming only the columns [`bind_plain_entry`] binds.
static INSERT_PLAIN_ENTRIES: LazyLock<[String; 4]> = LazyLock::new(|| {
    CHUNKS.map(|rows| {
        values_sql(
            "INSERT OR ROLLBACK INTO audit_log (seq, at, event, request_id, title, actor, \
             action, prev_hash, hash)",
            PLAIN_AUDIT_COLUMNS,
            rows,
        )
    })
});

/// `INSERT OR ROLLBACK INTO audit_log ... VALUES (...), (...)` for each of
/// [`CHUNKS`], for the reason given at [`INSERT_REQUESTS`].
static INSERT_ENTRIES: LazyLock<[String; 4]> = LazyLock::new(|| {
    CHUNKS.map(|rows| {
        values_sql(
            concat!("INSERT OR ROLLBACK INTO audit_log (", audit_columns!(), ")"),
            AUDIT_INSERT_COLUMNS,
            rows,
        )
    })
});

/// `head VALUES (?, ...), ...`: `rows` groups of `columns` placeholders.
fn values_sql(head: &str, columns: usize, rows: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    format!("{head} VALUES {}", vec![group; rows].join(", "))
}

/// One way to insert rows of `T`: the multi-row statements for each of
/// [`CHUNKS`], how many columns a row has in them, and how one row's values
/// are bound from a zero-based parameter offset.
struct Shape<T: 'static> {
    statements: &'static LazyLock<[String; 4]>,
    columns: usize,
    bind: fn(&mut Statement<'_>, usize, &T) -> Result<(), StoreError>,
}

/// The two ways to insert rows of `T`: naming only the columns a plain row
/// has, or every column.
struct Shapes<T: 'static> {
    is_plain: fn(&T) -> bool,
    plain: Shape<T>,
    full: Shape<T>,
}

/// Inserts `items` in order, each maximal run of plain or other rows with
/// its shape's statements.
fn insert_in_runs<T>(
    conn: &Connection,
    mut items: &[T],
    shapes: &Shapes<T>,
) -> Result<(), StoreError> {
    while let Some(first) = items.first() {
        let plain = (shapes.is_plain)(first);
        let end = items
            .iter()
            .position(|item| (shapes.is_plain)(item) != plain)
            .unwrap_or(items.len());
        let (run, rest) = items.split_at(end);
        let shape = if plain { &shapes.plain } else { &shapes.full };
        insert_rows(conn, shape, run)?;
        items = rest;
    }
    Ok(())
}

/// Inserts `items` with `shape`'s statements, largest chunks first.
fn insert_rows<T>(conn: &Connection, shape: &Shape<T>, mut items: &[T]) -> Result<(), StoreError> {
    while let Some((&rows, sql)) = CHUNKS
        .iter()
        .zip(shape.statements.iter())
        .find(|(rows, _)| **rows <= items.len())
    {
        let (chunk, rest) = items.split_at(rows);
        let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
        for (row, item) in chunk.iter().enumerate() {
            (shape.bind)(&mut stmt, row * shape.columns, item)?;
        }
        stmt.raw_execute().map_err(unavailable)?;
        items = rest;
    }
    Ok(())
}

/// Binds `values` to the parameters after the first `offset`.
fn bind_values(
    stmt: &mut Statement<'_>,
    offset: usize,
    values: &[&dyn ToSql],
) -> Result<(), StoreError> {
    for (i, value) in values.iter().enumerate() {
        stmt.raw_bind_parameter(offset + i + 1, value)
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Records the head of the chain beside it.
pub(crate) fn write_head(conn: &Connection, chain: &Chain) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_head (id, last_seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq, hash = excluded.hash",
    )
    .and_then(|mut stmt| stmt.execute(params![chain.last_seq(), chain.head().to_hex()]))
    .map_err(unavailable)?;
    Ok(())
}

/// Reads the recorded head (genesis for an empty trail).
pub(crate) fn read_head(conn: &Connection) -> Result<Chain, StoreError> {
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT last_seq, hash FROM audit_head WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    match head {
        None => Ok(Chain::genesis()),
        Some((seq, hash)) => Digest::from_hex(&hash)
            .map(|digest| Chain::resume(seq, digest))
            .ok_or_else(|| corrupt("audit head hash", hash)),
    }
}

/// Reads an audit entry from a row selected with [`AUDIT_COLUMNS`].
pub(crate) fn entry_from_row(row: &Row<'_>) -> Result<AuditEntry, StoreError> {
    let get_err = |e: rusqlite::Error| corrupt("audit row", e);
    let request_id: String = row.get(3).map_err(get_err)?;
    AuditRow {
        seq: row.get(0).map_err(get_err)?,
        at: row.get(1).map_err(get_err)?,
        event: row.get(2).map_err(get_err)?,
        request_id: uuid("audit request id", &request_id)?,
        title: row.get(4).map_err(get_err)?,
        actor: row.get(5).map_err(get_err)?,
        reason: row.get(6).map_err(get_err)?,
        comment: row.get(7).map_err(get_err)?,
        action: row.get(8).map_err(get_err)?,
        prev_hash: row.get(9).map_err(get_err)?,
        hash: row.get(10).map_err(get_err)?,
        original_action: row.get(11).map_err(get_err)?,
        stage: row.get(12).map_err(get_err)?,
    }
    .decode()
}

//! Webhook subscriptions and their deliveries in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use signoff_core::{Attempt, Delivery, Webhook};
use signoff_store::codec::{DeliveryRow, WebhookRow};
use signoff_store::{DeliveryQuery, StoreError, StoreResult};
use uuid::Uuid;

use crate::rows::{and_status, bind_named, corrupt, micros};
use crate::unavailable;

const WEBHOOK_COLUMNS: &str = "id, url, events, secret, format, created_by, created_at, cursor";

macro_rules! delivery_columns {
    () => {
        "id, webhook_id, seq, event, request_id, body, status, attempts, \
         next_attempt_at, last_status, last_error, created_at, delivered_at"
    };
}
const DELIVERY_COLUMNS: &str = delivery_columns!();

/// The pending deliveries due by `?1`, the first due first. No `LIMIT`:
/// SQLite compiles a statement again on every run when its plan reads a
/// bound value, as it does a bound `LIMIT`'s; [`claim`] stops reading
/// instead.
pub(crate) const DUE: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 \
     ORDER BY next_attempt_at, id"
);

/// Stores a new subscription.
pub(crate) fn insert(conn: &Connection, hook: &Webhook) -> StoreResult<()> {
    let row = WebhookRow::encode(hook)?;
    conn.prepare_cached(&format!(
        "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            row.id.to_string(),
            row.url,
            row.events,
            row.secret,
            row.format,
            row.created_by,
            row.created_at,
            row.cursor,
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// Deletes a subscription (its deliveries go with it).
pub(crate) fn delete(conn: &Connection, id: Uuid) -> StoreResult<bool> {
    let id = id.to_string();
    conn.prepare_cached("DELETE FROM webhook_deliveries WHERE webhook_id = ?1")
        .and_then(|mut stmt| stmt.execute([&id]))
        .map_err(unavailable)?;
    let deleted = conn
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([&id]))
        .map_err(unavailable)?;
    Ok(deleted > 0)
}

/// Every subscription, oldest first.
pub(crate) fn load_all(conn: &Connection) -> StoreResult<Vec<Webhook>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
        ))
        .map_err(unavailable)?;
    let mut rows = stmt.query([]).map_err(unavailable)?;
    let mut hooks = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        hooks.push(webhook_from_row(row)?);
    }
    Ok(hooks)
}

/// Moves the cursor from `from` to `to` and writes the deliveries, if the
/// cursor is still at `from`. Checked before writing, so a refusal leaves
/// nothing behind.
pub(crate) fn enqueue(
    conn: &Connection,
    webhook_id: Uuid,
    from: i64,
    to: i64,
    deliveries: &[Delivery],
) -> Result<bool, (StoreError, bool)> {
    let clean = |e: StoreError| (e, false);
    let torn = |e: rusqlite::Error| (unavailable(e), true);
    let moved = conn
        .prepare_cached("UPDATE webhooks SET cursor = ?3 WHERE id = ?1 AND cursor = ?2")
        .and_then(|mut stmt| stmt.execute(params![webhook_id.to_string(), from, to]))
        .map_err(unavailable)
        .map_err(clean)?;
    if moved == 0 {
        return Ok(false);
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT (webhook_id, seq) DO NOTHING"
        ))
        .map_err(torn)?;
    for delivery in deliveries {
        let row = DeliveryRow::encode(delivery);
        stmt.execute(params![
            row.id.to_string(),
            row.webhook_id.to_string(),
            row.seq,
            row.event,
            row.request_id.to_string(),
            row.body,
            row.status,
            row.attempts,
            row.next_attempt_at,
            row.last_status,
            row.last_error,
            row.created_at,
            row.delivered_at,
        ])
        .map_err(torn)?;
    }
    Ok(true)
}

/// Claims the due pending deliveries until `until`.
pub(crate) fn claim(
    conn: &Connection,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    let mut claimed = Vec::new();
    {
        let mut stmt = conn.prepare_cached(DUE).map_err(unavailable)?;
        let mut rows = stmt.query([micros(now)]).map_err(unavailable)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        while claimed.len() < limit
            && let Some(row) = rows.next().map_err(unavailable)?
        {
            claimed.push(delivery_from_row(row)?);
        }
    }
    let mut stmt = conn
        .prepare_cached("UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1")
        .map_err(unavailable)?;
    for delivery in &mut claimed {
        // Each UPDATE either happened or not; a later failure leaves earlier
        // claims, which only delay those deliveries until `until`.
        stmt.execute(params![delivery.id.to_string(), micros(until)])
            .map_err(unavailable)?;
        delivery.next_attempt_at = until;
    }
    Ok(claimed)
}

/// Records one try.
pub(crate) fn record(conn: &Connection, id: Uuid, attempt: &Attempt) -> StoreResult<()> {
    let (status, next, delivered) = match (&attempt.error, attempt.retry_at) {
        (None, _) => ("delivered", attempt.at, Some(micros(attempt.at))),
        (Some(_), Some(retry_at)) => ("pending", retry_at, None),
        (Some(_), None) => ("dead", attempt.at, None),
    };
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, \
         next_attempt_at = ?3, last_status = ?4, last_error = ?5, delivered_at = ?6 \
         WHERE id = ?1 AND status = 'pending'",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            id.to_string(),
            status,
            micros(next),
            attempt.status,
            attempt.error,
            delivered,
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// Makes a delivery pending again, due `now`.
pub(crate) fn redeliver(
    conn: &Connection,
    id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Option<Delivery>> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2 \
         WHERE id = ?1 AND status <> 'pending'",
    )
    .and_then(|mut stmt| stmt.execute(params![id.to_string(), micros(now)]))
    .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1"
        ))
        .map_err(unavailable)?;
    stmt.query_row([id.to_string()], |row| Ok(delivery_from_row(row)))
        .optional()
        .map_err(unavailable)?
        .transpose()
}

/// Deliveries, newest first.
pub(crate) fn list(conn: &Connection, query: DeliveryQuery) -> StoreResult<Vec<Delivery>> {
    let mut stmt = conn
        .prepare_cached(&list_sql(&query))
        .map_err(unavailable)?;
    bind_list(&mut stmt, &query).map_err(unavailable)?;
    let mut rows = stmt.raw_query();
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let mut deliveries = Vec::new();
    while deliveries.len() < limit
        && let Some(row) = rows.next().map_err(unavailable)?
    {
        deliveries.push(delivery_from_row(row)?);
    }
    Ok(deliveries)
}

/// The statement [`list`] runs for `query`: only the filters it asks for,
/// so that a filter by subscription or request reads that index (a
/// `?1 IS NULL OR` term can use none, and the whole table was scanned),
/// and the status, a closed enum, written into the SQL (a bound one is
/// checked against the partial index's `status = 'pending'`, so SQLite
/// compiled the statement again on every run). No `LIMIT`, for the same
/// reason; [`list`] stops after the page.
pub(crate) fn list_sql(query: &DeliveryQuery) -> String {
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE 1 = 1");
    if query.webhook_id.is_some() {
        sql.push_str(" AND webhook_id = :webhook");
    }
    if let Some(status) = query.status {
        and_status(&mut sql, status.as_str());
    }
    if query.request_id.is_some() {
        sql.push_str(" AND request_id = :request");
    }
    sql.push_str(" ORDER BY id DESC");
    sql
}

/// Binds the parameters [`list_sql`] named for `query`.
pub(crate) fn bind_list(
    stmt: &mut rusqlite::Statement<'_>,
    query: &DeliveryQuery,
) -> rusqlite::Result<()> {
    if let Some(id) = query.webhook_id {
        bind_named(stmt, ":webhook", &id.hyphenated().to_string())?;
    }
    if let Some(id) = query.request_id {
        bind_named(stmt, ":request", &id.hyphenated().to_string())?;
    }
    Ok(())
}

/// When the next pending delivery is due.
pub(crate) fn next_due(conn: &Connection) -> StoreResult<Option<DateTime<Utc>>> {
    let at: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
        )
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(unavailable)?;
    at.map(|at| signoff_store::codec::from_micros("next delivery", at))
        .transpose()
}

fn uuid(row: &Row<'_>, index: usize, what: &str) -> StoreResult<Uuid> {
    let text: String = row.get(index).map_err(|e| corrupt(what, e))?;
    Uuid::parse_str(&text).map_err(|e| corrupt(what, e))
}

fn webhook_from_row(row: &Row<'_>) -> StoreResult<Webhook> {
    let get_err = |e: rusqlite::Error| corrupt("webhook row", e);
    WebhookRow {
        id: uuid(row, 0, "webhook id")?,
        url: row.get(1).map_err(get_err)?,
        events: row.get(2).map_err(get_err)?,
        secret: row.get(3).map_err(get_err)?,
        format: row.get(4).map_err(get_err)?,
        created_by: row.get(5).map_err(get_err)?,
        created_at: row.get(6).map_err(get_err)?,
        cursor: row.get(7).map_err(get_err)?,
    }
    .decode()
}

fn delivery_from_row(row: &Row<'_>) -> StoreResult<Delivery> {
    let get_err = |e: rusqlite::Error| corrupt("delivery row", e);
    DeliveryRow {
        id: uuid(row, 0, "delivery id")?,
        webhook_id: uuid(row, 1, "delivery webhook id")?,
        seq: row.get(2).map_err(get_err)?,
        event: row.get(3).map_err(get_err)?,
        request_id: uuid(row, 4, "delivery request id")?,
        body: row.get(5).map_err(get_err)?,
        status: row.get(6).map_err(get_err)?,
        attempts: row.get(7).map_err(get_err)?,
        next_attempt_at: row.get(8).map_err(get_err)?,
        last_status: row.get(9).map_err(get_err)?,
        last_error: row.get(10).map_err(get_err)?,
        created_at: row.get(11).map_err(get_err)?,
        delivered_at: row.get(12).map_err(get_err)?,
    }
    .decode()
}

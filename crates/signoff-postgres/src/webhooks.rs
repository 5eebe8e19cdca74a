//! Webhook subscriptions and their deliveries in PostgreSQL. Several
//! replicas send: a fan-out moves a subscription's cursor as a
//! compare-and-set, and a sender claims deliveries `FOR UPDATE SKIP
//! LOCKED`, so each delivery is tried by one replica at a time.

use chrono::{DateTime, Utc};
use signoff_core::{Attempt, Delivery, DeliveryStatus, Webhook};
use signoff_store::codec::{DeliveryRow, WebhookRow, corrupt, from_micros, micros};
use signoff_store::{DeliveryQuery, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::unavailable;

macro_rules! webhook_columns {
    () => {
        "id, url, events, secret, format, created_by, created_at, cursor"
    };
}

macro_rules! delivery_columns {
    () => {
        "id, webhook_id, seq, event, request_id, body, status, attempts, next_attempt_at, \
         last_status, last_error, created_at, delivered_at"
    };
}

/// Stores a new subscription; its cursor is the head of the trail as
/// committed now (every entry up to it is committed, since the head row is
/// written in the same transaction as the entries).
pub(crate) async fn insert(pool: &PgPool, hook: Webhook) -> StoreResult<Webhook> {
    let row = WebhookRow::encode(&hook)?;
    let inserted = sqlx::query(concat!(
        "INSERT INTO webhooks (",
        webhook_columns!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7, last_seq FROM audit_head WHERE id = 1 RETURNING ",
        webhook_columns!()
    ))
    .bind(row.id)
    .bind(row.url)
    .bind(row.events)
    .bind(row.secret)
    .bind(row.format)
    .bind(row.created_by)
    .bind(row.created_at)
    .fetch_one(pool)
    .await
    .map_err(unavailable)?;
    webhook_from_row(&inserted)
}

/// Every subscription, oldest first.
pub(crate) async fn load_all(pool: &PgPool) -> StoreResult<Vec<Webhook>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.iter().map(webhook_from_row).collect()
}

/// Deletes a subscription (its deliveries cascade).
pub(crate) async fn delete(pool: &PgPool, id: Uuid) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(unavailable)?;
    Ok(done.rows_affected() > 0)
}

/// Moves the cursor and writes the deliveries in one transaction, if the
/// cursor is still at `from`.
pub(crate) async fn enqueue(
    pool: &PgPool,
    webhook_id: Uuid,
    from: i64,
    to: i64,
    deliveries: &[Delivery],
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let moved = sqlx::query("UPDATE webhooks SET cursor = $3 WHERE id = $1 AND cursor = $2")
        .bind(webhook_id)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    if moved.rows_affected() == 0 {
        return Ok(false);
    }
    if !deliveries.is_empty() {
        let rows: Vec<DeliveryRow> = deliveries.iter().map(DeliveryRow::encode).collect();
        sqlx::query(concat!(
            "INSERT INTO webhook_deliveries (",
            delivery_columns!(),
            ") SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], \
             $5::uuid[], $6::text[], $7::text[], $8::int[], $9::bigint[], $10::int[], \
             $11::text[], $12::bigint[], $13::bigint[]) \
             ON CONFLICT (webhook_id, seq) DO NOTHING"
        ))
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.webhook_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.request_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.body.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| narrow(r.attempts)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.last_status.map(narrow))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.last_error.clone())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.delivered_at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(true)
}

fn narrow(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Claims the due pending deliveries until `until`.
pub(crate) async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    let rows = sqlx::query(concat!(
        "UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id IN (\
             SELECT id FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $3 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING ",
        delivery_columns!()
    ))
    .bind(micros(now))
    .bind(micros(until))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let mut claimed = rows
        .iter()
        .map(delivery_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    claimed.sort_by_key(|d| d.id);
    Ok(claimed)
}

/// Records one try.
pub(crate) async fn record(pool: &PgPool, id: Uuid, attempt: &Attempt) -> StoreResult<()> {
    let (status, next, delivered) = match (&attempt.error, attempt.retry_at) {
        (None, _) => ("delivered", attempt.at, Some(micros(attempt.at))),
        (Some(_), Some(retry_at)) => ("pending", retry_at, None),
        (Some(_), None) => ("dead", attempt.at, None),
    };
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, \
         next_attempt_at = $3, last_status = $4, last_error = $5, delivered_at = $6 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(micros(next))
    .bind(attempt.status.map(i32::from))
    .bind(attempt.error.as_deref())
    .bind(delivered)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Makes a delivery pending again, due `now`.
pub(crate) async fn redeliver(
    pool: &PgPool,
    id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Option<Delivery>> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $2 \
         WHERE id = $1 AND status <> 'pending'",
    )
    .bind(id)
    .bind(micros(now))
    .execute(pool)
    .await
    .map_err(unavailable)?;
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?;
    row.as_ref().map(delivery_from_row).transpose()
}

/// Deliveries, newest first.
pub(crate) async fn list(pool: &PgPool, query: DeliveryQuery) -> StoreResult<Vec<Delivery>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries \
         WHERE ($1::uuid IS NULL OR webhook_id = $1) AND ($2::text IS NULL OR status = $2) \
         AND ($3::uuid IS NULL OR request_id = $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(query.webhook_id)
    .bind(query.status.map(DeliveryStatus::as_str))
    .bind(query.request_id)
    .bind(i64::from(query.limit))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.iter().map(delivery_from_row).collect()
}

/// When the next pending delivery is due.
pub(crate) async fn next_due(pool: &PgPool) -> StoreResult<Option<DateTime<Utc>>> {
    let row =
        sqlx::query("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'")
            .fetch_one(pool)
            .await
            .map_err(unavailable)?;
    let at: Option<i64> = row.try_get(0).map_err(unavailable)?;
    at.map(|at| from_micros("next delivery", at)).transpose()
}

fn webhook_from_row(row: &PgRow) -> StoreResult<Webhook> {
    let get = |e: sqlx::Error| corrupt("webhook row", e);
    WebhookRow {
        id: row.try_get("id").map_err(get)?,
        url: row.try_get("url").map_err(get)?,
        events: row.try_get("events").map_err(get)?,
        secret: row.try_get("secret").map_err(get)?,
        format: row.try_get("format").map_err(get)?,
        created_by: row.try_get("created_by").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        cursor: row.try_get("cursor").map_err(get)?,
    }
    .decode()
}

fn delivery_from_row(row: &PgRow) -> StoreResult<Delivery> {
    let get = |e: sqlx::Error| corrupt("delivery row", e);
    let attempts: i32 = row.try_get("attempts").map_err(get)?;
    let last_status: Option<i32> = row.try_get("last_status").map_err(get)?;
    DeliveryRow {
        id: row.try_get("id").map_err(get)?,
        webhook_id: row.try_get("webhook_id").map_err(get)?,
        seq: row.try_get("seq").map_err(get)?,
        event: row.try_get("event").map_err(get)?,
        request_id: row.try_get("request_id").map_err(get)?,
        body: row.try_get("body").map_err(get)?,
        status: row.try_get("status").map_err(get)?,
        attempts: i64::from(attempts),
        next_attempt_at: row.try_get("next_attempt_at").map_err(get)?,
        last_status: last_status.map(i64::from),
        last_error: row.try_get("last_error").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        delivered_at: row.try_get("delivered_at").map_err(get)?,
    }
    .decode()
}

//! Workflow runs and their stage records in SQLite: rows in, rows out, and
//! the compare-and-set that moves a run on.

use rusqlite::{Connection, Row, params};
use serde_json::Value;
use signoff_core::{Run, RunStatus, StageRecord};
use signoff_store::{StoreError, StoreResult};
use uuid::Uuid;

use signoff_store::codec::{RunRow, StageRow};

use crate::rows::{corrupt, micros};
use crate::unavailable;

/// The columns of `runs`, in the order [`run_from_row`] reads them.
pub(crate) const RUN_COLUMNS: &str = "id, workflow, input, status, attempt, draft, request_id, \
     result, error, created_at, updated_at, started_by";

fn json_text(value: &Value) -> String {
    value.to_string()
}

/// Inserts a new run.
pub(crate) fn insert_run(conn: &Connection, run: &Run) -> StoreResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            run.id.to_string(),
            run.workflow,
            json_text(&run.input),
            run.status.as_str(),
            run.attempt,
            run.draft.as_ref().map(json_text),
            run.request_id.map(|id| id.to_string()),
            run.result.as_ref().map(json_text),
            run.error,
            micros(run.created_at),
            micros(run.updated_at),
            run.started_by,
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// Reads one run.
pub(crate) fn load_run(conn: &Connection, id: Uuid) -> StoreResult<Option<Run>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
        .map_err(unavailable)?;
    let mut rows = stmt.query([id.to_string()]).map_err(unavailable)?;
    match rows.next().map_err(unavailable)? {
        Some(row) => run_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// Writes `run` if the stored one is still in `from`.
pub(crate) fn advance_run(conn: &Connection, run: &Run, from: RunStatus) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE runs SET status = ?2, attempt = ?3, draft = ?4, request_id = ?5, result = ?6,
                 error = ?7, updated_at = ?8
             WHERE id = ?1 AND status = ?9",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                run.id.to_string(),
                run.status.as_str(),
                run.attempt,
                run.draft.as_ref().map(json_text),
                run.request_id.map(|id| id.to_string()),
                run.result.as_ref().map(json_text),
                run.error,
                micros(run.updated_at),
                from.as_str(),
            ])
        })
        .map_err(unavailable)?;
    if changed == 1 {
        return Ok(());
    }
    match load_run(conn, run.id)? {
        Some(stored) => Err(StoreError::RunMoved {
            id: run.id,
            status: stored.status,
            expected: from,
        }),
        None => Err(StoreError::RunNotFound(run.id)),
    }
}

/// Appends a stage record.
pub(crate) fn insert_stage(conn: &Connection, record: &StageRecord) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO run_stages (run_id, attempt, stage, ok, at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            record.run_id.to_string(),
            record.attempt,
            record.stage.as_str(),
            record.ok,
            micros(record.at),
            json_text(&record.detail),
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// The stage records of a run, oldest first.
pub(crate) fn load_stages(conn: &Connection, id: Uuid) -> StoreResult<Vec<StageRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT run_id, attempt, stage, ok, at, detail FROM run_stages
             WHERE run_id = ?1 ORDER BY seq",
        )
        .map_err(unavailable)?;
    let mut rows = stmt.query([id.to_string()]).map_err(unavailable)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let get_err = |e: rusqlite::Error| corrupt("stage row", e);
        let run_id: String = row.get(0).map_err(get_err)?;
        records.push(
            StageRow {
                run_id: Uuid::parse_str(&run_id).map_err(|e| corrupt("stage run id", e))?,
                attempt: row.get(1).map_err(get_err)?,
                stage: row.get(2).map_err(get_err)?,
                ok: row.get(3).map_err(get_err)?,
                at: row.get(4).map_err(get_err)?,
                detail: row.get(5).map_err(get_err)?,
            }
            .decode()?,
        );
    }
    Ok(records)
}

/// The statement [`stage_events`] runs, `?1` the position to read after.
/// No bound `LIMIT` (SQLite would compile the statement again on every
/// run to plan with its value): the reader stops after the page.
pub(crate) const STAGE_EVENTS: &str =
    "SELECT s.seq, s.run_id, s.attempt, s.stage, s.ok, s.at, s.detail, r.workflow, r.started_by
     FROM run_stages s JOIN runs r ON r.id = s.run_id
     WHERE s.seq > ?1 ORDER BY s.seq";

/// Stage records after `after`, with their runs' workflow and starter.
pub(crate) fn stage_events(
    conn: &Connection,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<signoff_store::StageEvent>> {
    let mut stmt = conn.prepare_cached(STAGE_EVENTS).map_err(unavailable)?;
    let mut rows = stmt.query([after]).map_err(unavailable)?;
    let mut events = Vec::new();
    while events.len() < limit as usize
        && let Some(row) = rows.next().map_err(unavailable)?
    {
        let get_err = |e: rusqlite::Error| corrupt("stage row", e);
        let run_id: String = row.get(1).map_err(get_err)?;
        let record = StageRow {
            run_id: Uuid::parse_str(&run_id).map_err(|e| corrupt("stage run id", e))?,
            attempt: row.get(2).map_err(get_err)?,
            stage: row.get(3).map_err(get_err)?,
            ok: row.get(4).map_err(get_err)?,
            at: row.get(5).map_err(get_err)?,
            detail: row.get(6).map_err(get_err)?,
        }
        .decode()?;
        events.push(signoff_store::StageEvent {
            seq: row.get(0).map_err(get_err)?,
            record,
            workflow: row.get(7).map_err(get_err)?,
            started_by: row.get(8).map_err(get_err)?,
        });
    }
    Ok(events)
}

/// The last stage record's position.
pub(crate) fn last_stage_seq(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM run_stages")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(unavailable)
}

/// Runs that are not over, oldest first.
pub(crate) fn load_unfinished(conn: &Connection) -> StoreResult<Vec<Run>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE status IN ('drafting', 'validating', 'awaiting_approval', 'executing')
             ORDER BY id"
        ))
        .map_err(unavailable)?;
    let mut rows = stmt.query([]).map_err(unavailable)?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        runs.push(run_from_row(row)?);
    }
    Ok(runs)
}

/// Reads a run from a row selected with [`RUN_COLUMNS`].
fn run_from_row(row: &Row<'_>) -> StoreResult<Run> {
    let get_err = |e: rusqlite::Error| corrupt("run row", e);
    let id: String = row.get(0).map_err(get_err)?;
    let request_id: Option<String> = row.get(6).map_err(get_err)?;
    RunRow {
        id: Uuid::parse_str(&id).map_err(|e| corrupt("run id", e))?,
        workflow: row.get(1).map_err(get_err)?,
        input: row.get(2).map_err(get_err)?,
        status: row.get(3).map_err(get_err)?,
        attempt: row.get(4).map_err(get_err)?,
        draft: row.get(5).map_err(get_err)?,
        request_id: request_id
            .map(|id| Uuid::parse_str(&id).map_err(|e| corrupt("run request id", e)))
            .transpose()?,
        result: row.get(7).map_err(get_err)?,
        error: row.get(8).map_err(get_err)?,
        created_at: row.get(9).map_err(get_err)?,
        updated_at: row.get(10).map_err(get_err)?,
        started_by: row.get(11).map_err(get_err)?,
    }
    .decode()
}

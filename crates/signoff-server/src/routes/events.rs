//! `GET /v1/events`: the audit trail as a live Server-Sent Events stream.
//!
//! Every entry of the trail is an event: its `id` is the entry's sequence
//! number, its type `request.<event>` (`request.created`,
//! `request.approved`, ...), its data the entry as `/v1/audit` returns it.
//! A client that reconnects with `Last-Event-ID` (browsers' `EventSource`
//! does it by itself) gets every event after that one, then live ones:
//! nothing is missed across a reconnect. A stream lasts at most the
//! server's `--max-wait`, like a long poll, so no proxy cuts it first; the
//! client reconnects. New entries are noticed through the service's change
//! signal (local writes, and other replicas' through the database), never
//! by polling.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use signoff_api::{AuditEntryView, ErrorBody};
use signoff_core::AuditEntry;
use signoff_store::AuditQuery;
use tokio::sync::watch;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::LongPoll;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::Query;
use crate::service::Service;

/// Entries read per store call while catching up.
const PAGE: u32 = 500;

/// One event of the stream, as the `text/event-stream` lines carry it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StreamEvent {
    /// The audit entry's sequence number: send it back as `Last-Event-ID`.
    pub id: String,
    /// `request.created`, `request.approved`, `request.endorsed`,
    /// `request.rejected`, `request.expired`, `request.cancelled`,
    /// `request.denied` or `request.reminded`.
    pub event: String,
    /// The entry, as JSON (an `AuditEntryView`).
    pub data: String,
}

/// Query of `GET /v1/events`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Start after this audit entry (as `Last-Event-ID`, which wins when
    /// both are given); without either, only events from now on.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Also stream workflow runs' steps (`run.draft`, `run.validate`,
    /// `run.approve`, `run.execute`). Event ids are then `A-R`: the last
    /// audit entry and the last run step sent, so a reconnect resumes both.
    pub runs: Option<bool>,
}

/// One step of a workflow run, as `run.<stage>` events carry it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RunEventView {
    /// The step's position among all runs' steps.
    pub seq: i64,
    /// The run.
    pub run_id: Uuid,
    /// Its workflow.
    pub workflow: String,
    /// Which attempt (a redraft after a rejection is the next one).
    pub attempt: u32,
    /// `draft`, `validate`, `approve` or `execute`.
    pub stage: String,
    /// Whether the step succeeded.
    pub ok: bool,
    /// When it ended.
    pub at: chrono::DateTime<chrono::Utc>,
    /// What it produced: the draft, the validator's verdict, the decision,
    /// the executor's result, or the error.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Where a stream resumes: after audit entry `audit`, and with run steps
/// after `runs` (`None`: run steps are not streamed, or from now on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resume {
    audit: i64,
    runs: Option<i64>,
}

/// Reads `Last-Event-ID`: `A` or `A-R`, each up to 18 digits.
fn parse_event_id(value: &str) -> Option<Resume> {
    let number = |text: &str| {
        (!text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<i64>().ok())
            .flatten()
    };
    match value.split_once('-') {
        None => Some(Resume {
            audit: number(value)?,
            runs: None,
        }),
        Some((audit, runs)) => Some(Resume {
            audit: number(audit)?,
            runs: Some(number(runs)?),
        }),
    }
}

/// Streams the audit trail's events the caller may see.
#[utoipa::path(
    get, path = "/v1/events", tag = "audit",
    params(
        EventsParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (empty: as if absent): `A`, or `A-R` from a stream with runs=true", nullable = false, pattern = r"^([0-9]{0,18}|[0-9]{1,18}-[0-9]{1,18})$"),
    ),
    responses(
        (status = 200, description = "An event stream: `id` is the entry's sequence number, `event` is `request.created`, `request.approved`, `request.endorsed`, `request.rejected`, `request.expired`, `request.cancelled`, `request.denied` or `request.reminded`, `data` is the entry (AuditEntryView). With runs=true, also `run.draft`, `run.validate`, `run.approve` and `run.execute` events whose `data` is a RunEventView, and ids are `A-R` (the last audit entry and run step sent). It ends after the server's --max-wait; reconnect with Last-Event-ID.", content_type = "text/event-stream", body = StreamEvent),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 400, description = "Invalid Last-Event-ID or after", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn events(
    State(service): State<Service>,
    State(LongPoll(cap)): State<LongPoll>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<EventsParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    // Checked even when Last-Event-ID wins: a bad parameter is an error.
    if params.after.is_some_and(|after| after < 0) {
        return Err(AppError::bad_request("after: must not be negative"));
    }
    // An empty Last-Event-ID means none (as the SSE standard has it).
    let header = headers
        .get("last-event-id")
        .filter(|value| !value.as_bytes().iter().all(u8::is_ascii_whitespace));
    let resume = match header {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .map(str::trim)
                // As documented: `A` or `A-R`, up to 18 digits each.
                .and_then(parse_event_id)
                .ok_or_else(|| {
                    AppError::bad_request(
                        "Last-Event-ID: must be an event id (an integer >= 0, or two joined by '-')",
                    )
                })?,
        ),
        None => params.after.map(|audit| Resume { audit, runs: None }),
    };
    let with_runs = params.runs.unwrap_or(false);
    // Subscribe before reading where "now" is, so nothing falls between.
    let changes = service.subscribe_changes();
    let last = match resume {
        Some(resume) => resume.audit,
        None => service.store().last_audit_seq().await?,
    };
    let last_step = match (with_runs, resume.and_then(|r| r.runs)) {
        (false, _) => None,
        (true, Some(after)) => Some(after),
        (true, None) => Some(service.store().last_stage_seq().await?),
    };
    let feed = Feed {
        service: service.clone(),
        caller,
        last,
        last_step,
        buffer: VecDeque::new(),
        changes,
        closing: service.closing_signal(),
        deadline: tokio::time::Instant::now() + cap,
        done: false,
        requesters: HashMap::new(),
    };
    let stream = futures_util::stream::unfold(feed, Feed::next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Feed {
    service: Service,
    caller: Caller,
    /// The last entry read (sent or not).
    last: i64,
    /// The last run step read, when run steps are streamed.
    last_step: Option<i64>,
    buffer: VecDeque<Event>,
    changes: watch::Receiver<()>,
    closing: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
    done: bool,
    /// Requesters of requests seen so far (an agent sees its own).
    requesters: HashMap<Uuid, bool>,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            // Whatever changes from here on wakes the wait below.
            self.changes.borrow_and_update();
            let query = AuditQuery {
                request_id: None,
                after_seq: Some(self.last),
                limit: PAGE,
            };
            let mut full = match self.service.store().audit(query).await {
                Ok(entries) => {
                    let full = entries.len() == PAGE as usize;
                    for entry in entries {
                        self.last = entry.seq;
                        if self.may_see(&entry).await {
                            let id = self.event_id();
                            self.buffer.push_back(event(entry, id));
                        }
                    }
                    full
                }
                Err(error) => {
                    tracing::warn!(%error, "event stream cannot read the trail");
                    // The client reconnects with its Last-Event-ID.
                    self.done = true;
                    continue;
                }
            };
            if let Some(after) = self.last_step {
                match self.service.store().stage_events(after, PAGE).await {
                    Ok(steps) => {
                        full |= steps.len() == PAGE as usize;
                        for step in steps {
                            self.last_step = Some(step.seq);
                            if self.caller.can_see_run(step.started_by.as_deref()) {
                                let id = self.event_id();
                                self.buffer.push_back(run_event(step, id));
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "event stream cannot read run steps");
                        self.done = true;
                        continue;
                    }
                }
            }
            if full || !self.buffer.is_empty() {
                continue;
            }
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        self.done = true;
                    }
                }
                () = tokio::time::sleep_until(self.deadline) => self.done = true,
                _ = self.closing.wait_for(|closing| *closing) => self.done = true,
            }
        }
    }

    /// The id of the event about to be queued: everything read so far.
    fn event_id(&self) -> String {
        match self.last_step {
            Some(step) => format!("{}-{step}", self.last),
            None => self.last.to_string(),
        }
    }

    async fn may_see(&mut self, entry: &AuditEntry) -> bool {
        let Some(identity) = self.caller.identity() else {
            return true;
        };
        if identity.reads_all() {
            return true;
        }
        let id = entry.record.request_id;
        if let Some(own) = self.requesters.get(&id) {
            return *own;
        }
        let own = match self.service.get(id).await {
            Ok(request) => request.requester == identity.name,
            Err(_) => false,
        };
        self.requesters.insert(id, own);
        own
    }
}

fn event(entry: AuditEntry, id: String) -> Event {
    let kind = format!("request.{}", entry.record.event.as_str());
    let view = AuditEntryView::from(entry);
    let data = serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(id).event(kind).data(data)
}

fn run_event(step: signoff_store::StageEvent, id: String) -> Event {
    let kind = format!("run.{}", step.record.stage.as_str());
    let view = RunEventView {
        seq: step.seq,
        run_id: step.record.run_id,
        workflow: step.workflow,
        attempt: step.record.attempt,
        stage: step.record.stage.as_str().to_owned(),
        ok: step.record.ok,
        at: step.record.at,
        detail: step.record.detail,
    };
    let data = serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(id).event(kind).data(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_one_or_two_positions() {
        assert_eq!(
            parse_event_id("12"),
            Some(Resume {
                audit: 12,
                runs: None
            })
        );
        assert_eq!(
            parse_event_id("12-7"),
            Some(Resume {
                audit: 12,
                runs: Some(7)
            })
        );
        for bad in [
            "",
            "-",
            "12-",
            "-7",
            "1-2-3",
            "x",
            "1234567890123456789",
            "+1",
        ] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }
}

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
    /// Start after this event id (as `Last-Event-ID`, which wins when both
    /// are given); without either, only events from now on.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

/// Streams the audit trail's events the caller may see.
#[utoipa::path(
    get, path = "/v1/events", tag = "audit",
    params(
        EventsParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (empty: as if absent)", nullable = false, pattern = r"^[0-9]{0,18}$"),
    ),
    responses(
        (status = 200, description = "An event stream: `id` is the entry's sequence number, `event` is `request.created`, `request.approved`, `request.endorsed`, `request.rejected`, `request.expired`, `request.cancelled`, `request.denied` or `request.reminded`, `data` is the entry (AuditEntryView). It ends after the server's --max-wait; reconnect with Last-Event-ID.", content_type = "text/event-stream", body = StreamEvent),
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
                // As documented: up to 18 digits, nothing else.
                .filter(|v| v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    AppError::bad_request("Last-Event-ID: must be an event id (an integer >= 0)")
                })?,
        ),
        None => params.after,
    };
    // Subscribe before reading where "now" is, so nothing falls between.
    let changes = service.subscribe_changes();
    let last = match resume {
        Some(after) => after,
        None => service.store().last_audit_seq().await?,
    };
    let feed = Feed {
        service: service.clone(),
        caller,
        last,
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
            match self.service.store().audit(query).await {
                Ok(entries) => {
                    let full = entries.len() == PAGE as usize;
                    for entry in entries {
                        self.last = entry.seq;
                        if self.may_see(&entry).await {
                            self.buffer.push_back(event(entry));
                        }
                    }
                    if full || !self.buffer.is_empty() {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "event stream cannot read the trail");
                    // The client reconnects with its Last-Event-ID.
                    self.done = true;
                    continue;
                }
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

fn event(entry: AuditEntry) -> Event {
    let id = entry.seq.to_string();
    let kind = format!("request.{}", entry.record.event.as_str());
    let view = AuditEntryView::from(entry);
    let data = serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(id).event(kind).data(data)
}

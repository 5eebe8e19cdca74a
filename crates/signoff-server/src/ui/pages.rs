//! The `/ui` handlers and their templates.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Map, Value};
use signoff_api::{ApproveBody, RejectBody};
use signoff_core::{AuditEvent, Request, Stage, Status, progress};
use signoff_store::{AuditQuery, ListQuery};
use uuid::Uuid;

use super::render::{DiffLine, json_diff, json_html, relative};
use super::{
    CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Session, check_csrf, csrf_token, percent_encode,
    secure_cookies, set_cookie,
};
use crate::AppState;
use crate::auth::AuthMode;
use crate::error::AppError;
use crate::extract::request_id;
use crate::routes::v1::{deciding, denied, visible};
use crate::service::Service;

/// Requests read per store call while filling the inbox.
const INBOX_SCAN: u32 = 500;
/// The most requests one inbox view looks through (newest first).
const INBOX_SCAN_MAX: usize = 10_000;
/// Rows shown.
const INBOX_ROWS: usize = 200;

// ---------------------------------------------------------------- assets

/// `GET /ui/assets/app.css`.
pub async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    )
}

/// `GET /ui/assets/icon.svg`.
pub async fn icon() -> Response {
    asset("image/svg+xml", include_str!("../../assets/icon.svg"))
}

/// `GET /ui/assets/app.js`.
pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A rendered page with the headers every page carries: nothing but our
/// own scripts and styles may run, no framing, no referrer to other sites,
/// no caching of
/// pages that hold requests.
fn page(status: StatusCode, html: Result<String, askama::Error>) -> Response {
    let html = match html {
        Ok(html) => html,
        Err(error) => {
            tracing::error!(%error, "template failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "page failed to render").into_response();
        }
    };
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        // Same-origin: browsers then send `Origin` on our own forms, which
        // the CSRF check compares; nothing leaks to other sites.
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

// ---------------------------------------------------------------- errors

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    user: Option<String>,
    csrf: String,
    status: u16,
    message: String,
}

/// A page saying what went wrong, with the error's status.
pub fn error_page(error: &AppError) -> Response {
    let template = ErrorPage {
        user: None,
        csrf: String::new(),
        status: error.status().as_u16(),
        message: error.message().to_owned(),
    };
    page(error.status(), template.render())
}

// ---------------------------------------------------------------- sign in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    user: Option<String>,
    csrf: String,
    auth_on: bool,
    error: Option<String>,
}

/// `GET /ui/login`.
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, cookie) = csrf_token(&headers, secure_cookies(&state));
    let template = LoginPage {
        user: None,
        csrf,
        auth_on: state.auth.mode == AuthMode::On,
        error: None,
    };
    with_cookie(page(StatusCode::OK, template.render()), cookie)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
}

/// `POST /ui/login`: checks the token (or takes the name, auth off) and
/// starts the session.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(error) = check_csrf(&headers, &state.webhooks.public_url, &form.csrf) {
        return error_page(&error);
    }
    let auth_on = state.auth.mode == AuthMode::On;
    let refuse = |status: StatusCode, message: String| {
        let template = LoginPage {
            user: None,
            csrf: form.csrf.clone(),
            auth_on,
            error: Some(message),
        };
        page(status, template.render())
    };
    let value = if auth_on {
        let token = form.token.trim();
        match state.auth.identify(token).await {
            Ok(identity) if identity.can_decide() || identity.reads_all() => token.to_owned(),
            Ok(identity) => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "{} '{}' cannot review: the inbox is for reviewers and admins",
                        identity.role, identity.name
                    ),
                );
            }
            Err(error) => {
                return refuse(
                    error.status(),
                    format!("Sign-in refused: {}", error.message()),
                );
            }
        }
    } else {
        let name = form.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return refuse(
                StatusCode::BAD_REQUEST,
                "Your name: 1 to 200 characters".into(),
            );
        }
        percent_encode(name)
    };
    let mut response = Redirect::to("/ui/inbox").into_response();
    if let Some(cookie) = set_cookie(
        SESSION_COOKIE,
        &value,
        SESSION_SECONDS,
        secure_cookies(&state),
    ) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A form with only its CSRF field.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /ui/logout`: ends the session (the cookie is dropped).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(error) = check_csrf(&headers, &state.webhooks.public_url, &form.csrf) {
        return error_page(&error);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Some(clear) = set_cookie(name, "", 0, false) {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
    }
    response
}

// ---------------------------------------------------------------- inbox

/// One row of the inbox.
struct Row {
    id: String,
    title: String,
    requester: String,
    labels: Vec<(String, String)>,
    status: &'static str,
    when: String,
    urgent: bool,
    stage: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    user: Option<String>,
    csrf: String,
    status: String,
    label: String,
    statuses: Vec<(&'static str, &'static str)>,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "rows.html")]
struct RowsFragment {
    status: String,
    rows: Vec<Row>,
}

/// Inbox filters.
#[derive(Debug, Default, Deserialize)]
pub struct InboxParams {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

const STATUSES: [(&str, &str); 6] = [
    ("pending", "To decide"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("expired", "Expired"),
    ("cancelled", "Cancelled"),
    ("all", "All"),
];

/// Why `session` may not decide `request` now, if it may not.
fn cannot_decide(session: &Session, request: &Request) -> Option<String> {
    if request.status != Status::Pending {
        return Some(format!("It is {}.", request.status.as_str()));
    }
    if let Err(error) = session.caller.may_decide(request) {
        return Some(error.message().to_owned());
    }
    if request.approvals.iter().any(|a| a.reviewer == session.name) {
        return Some("You already signed off; it waits for others.".into());
    }
    let stage = progress(&request.plan, &request.approvals)
        .current
        .and_then(|index| request.plan.stages.get(index))?;
    match &session.identity {
        Some(identity) if !stage.admits(&identity.name, &identity.groups) => Some(format!(
            "The {} stage is for {}.",
            stage.name,
            stage.eligible_text()
        )),
        _ => None,
    }
}

fn stage_text(request: &Request) -> String {
    if request.status != Status::Pending {
        return String::new();
    }
    let at = progress(&request.plan, &request.approvals);
    match at.current.and_then(|index| request.plan.stages.get(index)) {
        Some(stage) if request.plan.is_single() => {
            let _ = stage;
            "one sign-off".to_owned()
        }
        Some(stage) => format!(
            "{} ({} of {} stages), {} more",
            stage.name,
            at.current.map_or(0, |i| i + 1),
            request.plan.stages.len(),
            at.remaining
        ),
        None => String::new(),
    }
}

async fn rows(
    state: &AppState,
    session: &Session,
    params: &InboxParams,
) -> Result<(String, String, Vec<Row>), AppError> {
    let status = params
        .status
        .as_deref()
        .filter(|s| STATUSES.iter().any(|(name, _)| name == s))
        .unwrap_or("pending")
        .to_owned();
    let label = params.label.clone().unwrap_or_default().trim().to_owned();
    let now = state.service.clock().now();
    let wanted = |request: &Request| {
        let labelled = match label.split_once('=') {
            _ if label.is_empty() => true,
            Some((key, value)) => {
                request.labels.get(key.trim()).map(String::as_str) == Some(value.trim())
            }
            None => request.labels.contains_key(&label),
        };
        labelled && (status != "pending" || cannot_decide(session, request).is_none())
    };
    // Newest first, a page at a time, until the rows are full or the scan
    // reaches its bound (a reviewer of a late stage may have to look past
    // many requests still at earlier ones).
    let mut rows = Vec::new();
    let mut before = None;
    let mut scanned = 0;
    while rows.len() < INBOX_ROWS && scanned < INBOX_SCAN_MAX {
        let page = state
            .service
            .list(ListQuery {
                status: Status::parse(&status),
                limit: INBOX_SCAN,
                before,
                requester: session.caller.list_filter(),
            })
            .await?;
        scanned += page.requests.len();
        for r in page.requests.iter().filter(|r| wanted(r)) {
            if rows.len() == INBOX_ROWS {
                break;
            }
            let pending = r.status == Status::Pending;
            let left = (r.expires_at - now).num_seconds();
            rows.push(Row {
                id: r.id.to_string(),
                title: r.title.clone(),
                requester: r.requester.clone(),
                labels: r
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                status: r.status.as_str(),
                when: if pending {
                    format!("expires {}", relative(r.expires_at, now))
                } else {
                    format!("created {}", relative(r.created_at, now))
                },
                urgent: pending && left < 3600,
                stage: stage_text(r),
            });
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    Ok((status, label, rows))
}

/// `GET /ui/inbox`.
pub async fn inbox(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Query(params): Query<InboxParams>,
) -> Response {
    let (csrf, cookie) = csrf_token(&headers, secure_cookies(&state));
    let (status, label, rows) = match rows(&state, &session, &params).await {
        Ok(found) => found,
        Err(error) => return error_page(&error),
    };
    let template = InboxPage {
        user: Some(session.name),
        csrf,
        status,
        label,
        statuses: STATUSES.to_vec(),
        rows,
    };
    with_cookie(page(StatusCode::OK, template.render()), cookie)
}

/// `GET /ui/inbox/rows`: the rows alone, for live updates.
pub async fn inbox_rows(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<InboxParams>,
) -> Response {
    match rows(&state, &session, &params).await {
        Ok((status, _, rows)) => page(StatusCode::OK, RowsFragment { status, rows }.render()),
        Err(error) => error_page(&error),
    }
}

/// `GET /ui/events`: one `change` event whenever anything changed (here
/// or on another replica), so open pages refresh what they show. It says
/// nothing about what changed: pages fetch that with the session's rights.
pub async fn changes(
    State(service): State<Service>,
    _session: Session,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = service.subscribe_changes();
    let closing = service.closing_signal();
    let stream = futures_util::stream::unfold(
        (changes, closing),
        |(mut changes, mut closing)| async move {
            if *closing.borrow() {
                return None;
            }
            tokio::select! {
                changed = changes.changed() => changed.ok()?,
                _ = closing.changed() => return None,
            }
            // Browsers drop an event without data, so it carries a token one.
            let event = Event::default().event("change").data("1");
            Some((Ok(event), (changes, closing)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

// ---------------------------------------------------------------- one request

struct StageRow {
    name: String,
    state: &'static str,
    needs: String,
    signed: Vec<String>,
}

struct Validation {
    passed: bool,
    score: Option<String>,
    issues: Vec<String>,
}

struct Redraft {
    attempt: u32,
    previous: String,
    reviewer: String,
    reason: String,
    diff: Vec<DiffLine>,
}

struct TimelineEntry {
    at: String,
    ago: String,
    event: &'static str,
    actor: String,
    stage: String,
    detail: String,
}

struct DecisionInfo {
    reviewer: String,
    at: String,
    comment: String,
    reason: String,
    edited_html: String,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    user: Option<String>,
    csrf: String,
    id: String,
    title: String,
    description: String,
    status: &'static str,
    requester: String,
    created: String,
    expires: String,
    expires_in: String,
    labels: Vec<(String, String)>,
    policy: String,
    chain: Vec<StageRow>,
    reminder: String,
    action_html: String,
    action_text: String,
    validation: Option<Validation>,
    redraft: Option<Redraft>,
    decision: Option<DecisionInfo>,
    cannot: Option<String>,
    timeline: Vec<TimelineEntry>,
    previous: Option<String>,
    next: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// Query of the request page.
#[derive(Debug, Default, Deserialize)]
pub struct RequestParams {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /ui/requests/{id}`.
pub async fn request_page(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<RequestParams>,
) -> Response {
    let (csrf, cookie) = csrf_token(&headers, secure_cookies(&state));
    let notice = match params.done.as_deref() {
        Some("approved") => Some("Approved.".to_owned()),
        Some("endorsed") => Some("Signed off; the request waits for the next sign-off.".to_owned()),
        Some("rejected") => Some("Rejected; the requester gets your reason.".to_owned()),
        _ => None,
    };
    let response = match request_id(&id) {
        Ok(id) => render_request(&state, &session, csrf, id, notice, None, StatusCode::OK).await,
        Err(error) => error_page(&error),
    };
    with_cookie(response, cookie)
}

async fn render_request(
    state: &AppState,
    session: &Session,
    csrf: String,
    id: Uuid,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    match build_request_page(state, session, csrf, id, notice, error).await {
        Ok(template) => page(status, template.render()),
        Err(error) => error_page(&error),
    }
}

async fn build_request_page(
    state: &AppState,
    session: &Session,
    csrf: String,
    id: Uuid,
    notice: Option<String>,
    error: Option<String>,
) -> Result<RequestPage, AppError> {
    let service = &state.service;
    let request = visible(service, &session.caller, id).await?;
    let now = service.clock().now();
    let entries = service
        .store()
        .audit(AuditQuery {
            request_id: Some(id),
            after_seq: None,
            limit: 1000,
        })
        .await?;
    let timeline = entries
        .iter()
        .map(|entry| {
            let record = &entry.record;
            let detail = [record.reason.as_deref(), record.comment.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
            TimelineEntry {
                at: signoff_core::format_time(record.at),
                ago: relative(record.at, now),
                event: record.event.as_str(),
                actor: record.actor.clone().unwrap_or_default(),
                stage: record.stage.clone().unwrap_or_default(),
                detail: if record.event == AuditEvent::Approved && record.original_action.is_some()
                {
                    format!("{detail} (with edits)").trim().to_owned()
                } else {
                    detail
                },
            }
        })
        .collect();
    let at = progress(&request.plan, &request.approvals);
    let chain = request
        .plan
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            let signed: Vec<String> = request
                .approvals
                .iter()
                .filter(|a| a.stage == stage.name)
                .map(|a| format!("{} ({})", a.reviewer, relative(a.at, now)))
                .collect();
            let state = match at.current {
                _ if signed.len() as u32 >= stage.quorum => "done",
                Some(current) if current == index && request.status == Status::Pending => "current",
                _ => "waiting",
            };
            StageRow {
                name: stage.name.clone(),
                state,
                needs: format!("{} of {}", stage.quorum, stage.eligible_text()),
                signed,
            }
        })
        .collect();
    let (validation, redraft) = workflow_context(service, &request).await;
    let decision = request.decision.as_ref().map(|d| DecisionInfo {
        reviewer: d.reviewer.clone().unwrap_or_default(),
        at: signoff_core::format_time(d.decided_at),
        comment: d.comment.clone().unwrap_or_default(),
        reason: d.rejection_reason.clone().unwrap_or_default(),
        edited_html: d
            .edited_action
            .as_ref()
            .map(|edit| json_html(&Value::Object(edit.clone())))
            .unwrap_or_default(),
    });
    let (previous, next) = neighbours(state, session, &request).await;
    let action = Value::Object(request.proposed_action.to_map());
    Ok(RequestPage {
        user: Some(session.name.clone()),
        csrf,
        id: request.id.to_string(),
        title: request.title.clone(),
        description: request.description.clone(),
        status: request.status.as_str(),
        requester: request.requester.clone(),
        created: signoff_core::format_time(request.created_at),
        expires: signoff_core::format_time(request.expires_at),
        expires_in: relative(request.expires_at, now),
        labels: request
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        policy: if request.plan.is_single() {
            String::new()
        } else {
            request.plan.policy.clone()
        },
        chain,
        reminder: match (request.remind_at(), &request.plan.reminder) {
            (Some(at), Some(reminder)) => {
                let escalation = reminder
                    .escalate_to
                    .as_deref()
                    .map(|group| format!("; group {group} joins the current stage"))
                    .unwrap_or_default();
                format!("Reminder {}{escalation}.", relative(at, now))
            }
            _ => String::new(),
        },
        action_html: json_html(&action),
        action_text: serde_json::to_string_pretty(&action).unwrap_or_default(),
        validation,
        redraft,
        decision,
        cannot: cannot_decide(session, &request),
        timeline,
        previous,
        next,
        notice,
        error,
    })
}

/// For a request a workflow run made: the validator's verdict on this
/// attempt, and for a redraft the rejected attempt's reason and the
/// difference from its action.
async fn workflow_context(
    service: &Service,
    request: &Request,
) -> (Option<Validation>, Option<Redraft>) {
    let Some(run_id) = request
        .labels
        .get("run")
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        return (None, None);
    };
    let attempt: u32 = request
        .labels
        .get("attempt")
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let Ok(stages) = service.store().run_stages(run_id).await else {
        return (None, None);
    };
    let validation = stages
        .iter()
        .rev()
        .find(|r| r.stage == Stage::Validate && r.attempt == attempt)
        .map(|r| Validation {
            passed: r.ok,
            score: r.detail.get("score").map(|s| match s {
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            }),
            issues: match r.detail.get("issues") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![other.to_string()],
            },
        });
    let rejected = stages
        .iter()
        .rev()
        .find(|r| r.stage == Stage::Approve && !r.ok && r.attempt + 1 == attempt);
    let mut redraft = None;
    if let Some(rejected) = rejected {
        let previous_id = rejected
            .detail
            .get("request_id")
            .and_then(Value::as_str)
            .and_then(|id| Uuid::parse_str(id).ok());
        let previous = match previous_id {
            Some(id) => service.store().get(id).await.ok().flatten(),
            None => None,
        };
        if let Some(previous) = previous {
            redraft = Some(Redraft {
                attempt,
                previous: previous.id.to_string(),
                reviewer: rejected
                    .detail
                    .get("reviewer")
                    .and_then(Value::as_str)
                    .unwrap_or("a reviewer")
                    .to_owned(),
                reason: rejected
                    .detail
                    .get("rejection_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("(no reason recorded)")
                    .to_owned(),
                diff: json_diff(
                    &Value::Object(previous.proposed_action.to_map()),
                    &Value::Object(request.proposed_action.to_map()),
                ),
            });
        }
    }
    (validation, redraft)
}

/// The requests before and after this one in the reviewer's to-decide
/// list, for j/k.
async fn neighbours(
    state: &AppState,
    session: &Session,
    request: &Request,
) -> (Option<String>, Option<String>) {
    let Ok((_, _, rows)) = rows(state, session, &InboxParams::default()).await else {
        return (None, None);
    };
    let id = request.id.to_string();
    match rows.iter().position(|row| row.id == id) {
        Some(index) => (
            index
                .checked_sub(1)
                .and_then(|i| rows.get(i))
                .map(|r| r.id.clone()),
            rows.get(index + 1).map(|r| r.id.clone()),
        ),
        None => (None, rows.first().map(|r| r.id.clone())),
    }
}

// ---------------------------------------------------------------- decide

/// The approve forms (plain, and with edits).
#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    csrf: String,
    #[serde(default)]
    comment: String,
    /// The edited action as JSON text; absent or empty: no edit.
    #[serde(default)]
    edited_action: Option<String>,
}

/// The reject form.
#[derive(Debug, Deserialize)]
pub struct RejectForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// After a decision: back to the request, saying what happened.
fn decided(id: Uuid, request: &Request) -> Response {
    let done = match request.status {
        Status::Approved => "approved",
        Status::Rejected => "rejected",
        _ => "endorsed",
    };
    Redirect::to(&format!("/ui/requests/{id}?done={done}")).into_response()
}

async fn refused(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    id: Uuid,
    error: AppError,
) -> Response {
    let (csrf, _) = csrf_token(headers, secure_cookies(state));
    let message = error.message().to_owned();
    render_request(
        state,
        session,
        csrf,
        id,
        None,
        Some(message),
        error.status(),
    )
    .await
}

fn parse_edit(text: &str) -> Result<Map<String, Value>, AppError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AppError::bad_request(
            "edited action: must be a JSON object ({...})",
        )),
        Err(e) => Err(AppError::bad_request(format!(
            "edited action: not valid JSON ({e})"
        ))),
    }
}

/// The checks every decision form passes first, as `/v1` does them: the
/// id, the CSRF token, and whether this reviewer may decide (a refusal is
/// recorded as `denied`). Gives the id and the reviewer name to record.
async fn deciding_form(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    id: &str,
    csrf: &str,
) -> Result<(Uuid, Option<String>), Response> {
    let id = request_id(id).map_err(|error| error_page(&error))?;
    check_csrf(headers, &state.webhooks.public_url, csrf).map_err(|error| error_page(&error))?;
    let service = &state.service;
    match deciding(service, &session.caller, id, Some(&session.name)).await {
        Ok(reviewer) => Ok((id, reviewer)),
        Err(error) => {
            let error = denied(service, id, Some(&session.caller), error).await;
            Err(refused(state, session, headers, id, error).await)
        }
    }
}

/// `POST /ui/requests/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ApproveForm>,
) -> Response {
    let (id, reviewer) = match deciding_form(&state, &session, &headers, &id, &form.csrf).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let service = &state.service;
    let edited_action = match form.edited_action.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match parse_edit(text) {
            Ok(edit) => Some(edit),
            Err(error) => return refused(&state, &session, &headers, id, error).await,
        },
    };
    let body = ApproveBody {
        reviewer,
        comment: Some(form.comment).filter(|c| !c.trim().is_empty()),
        edited_action,
    };
    match service.approve(id, body, session.caller.groups()).await {
        Ok(request) => decided(id, &request),
        Err(error) => refused(&state, &session, &headers, id, error.into()).await,
    }
}

/// `POST /ui/requests/{id}/reject`.
pub async fn reject(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RejectForm>,
) -> Response {
    let (id, reviewer) = match deciding_form(&state, &session, &headers, &id, &form.csrf).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let service = &state.service;
    let body = RejectBody {
        reviewer,
        reason: form.reason,
    };
    match service.reject(id, body, session.caller.groups()).await {
        Ok(request) => decided(id, &request),
        Err(error) => refused(&state, &session, &headers, id, error.into()).await,
    }
}

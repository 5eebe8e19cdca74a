//! The `/v1` API: thin handlers over [`Service`].

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use signoff_api::{
    ApproveBody, AuditEntryView, AuditPage, AuditParams, CancelBody, ChainBreakView, ErrorBody,
    ListParams, NewRequest, RejectBody, RequestPage, RequestView, VerifyReport, WaitParams,
};
use signoff_core::{ChainFault, Role};
use signoff_store::{AuditQuery, ListQuery};

use crate::LongPoll;
use crate::auth::{Caller, forbidden};
use crate::error::AppError;
use crate::extract::{Json, Query, optional_object, request_id};
use crate::service::{MAX_WAIT_SECONDS, Service};

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `Idempotency-Key` header, checked; read from the request in place
/// (a `HeaderMap` extractor would copy every header of every create). A bad
/// key is reported by the handler, after the caller's role is checked.
pub struct IdempotencyKey(Result<Option<String>, AppError>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(idempotency_key(&parts.headers)))
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    // HTTP has already trimmed the value; tabs inside are refused too.
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .filter(|k| k.bytes().all(|b| (0x20..=0x7E).contains(&b)))
        .ok_or_else(|| {
            AppError::bad_request(format!(
                "Idempotency-Key: must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            ))
        })?;
    Ok(Some(key.to_owned()))
}

/// Creates an approval request.
#[utoipa::path(
    post, path = "/v1/requests", tag = "requests",
    request_body = NewRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe create: the same key and body return the same request. 1 to 255 printable ASCII characters; spaces inside are kept, around it dropped (as HTTP does).", pattern = r"^[ \t]*[\x21-\x7E]([\x20-\x7E]{0,253}[\x21-\x7E])?[ \t]*$")),
    responses(
        (status = 201, description = "Created (or replayed for a repeated Idempotency-Key)", body = RequestView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body (code idempotency_key_reused), or an approval rule could not be evaluated for this request (code policy_error)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn create(
    State(service): State<Service>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Json(mut body): Json<NewRequest>,
) -> Result<Response, AppError> {
    caller.require(&[Role::Agent, Role::Admin], "propose actions")?;
    body.requester = caller.acting_as("requester", body.requester.as_deref())?;
    let key = key?;
    let created = service.create(body, key).await?;
    let location = request_path(created.request.id);
    let mut response = (
        StatusCode::CREATED,
        Json(RequestView::from(created.request)),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_bytes(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if created.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `/v1/requests/{id}`, for the `Location` of a create: written into a
/// stack buffer, not through `format!`.
fn request_path(id: uuid::Uuid) -> [u8; 49] {
    const PREFIX: &[u8] = b"/v1/requests/";
    let mut path = [0; 49];
    path[..PREFIX.len()].copy_from_slice(PREFIX);
    id.hyphenated().encode_lower(&mut path[PREFIX.len()..]);
    path
}

/// Lists requests, newest first.
#[utoipa::path(
    get, path = "/v1/requests", tag = "requests",
    params(ListParams),
    responses(
        (status = 200, description = "A page of requests", body = RequestPage),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(service): State<Service>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<RequestPage>, AppError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::bad_request("limit: must be between 1 and 500"));
    }
    let before = params
        .cursor
        .as_deref()
        .map(|c| {
            uuid::Uuid::parse_str(c).map_err(|_| {
                AppError::bad_request("cursor: not a cursor returned by this API (next_cursor)")
            })
        })
        .transpose()?;
    let page = service
        .list(ListQuery {
            status: params.status.map(Into::into),
            limit,
            before,
            requester: caller.list_filter(),
        })
        .await?;
    Ok(Json(RequestPage {
        requests: page.requests.into_iter().map(RequestView::from).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}

/// Reads one request.
#[utoipa::path(
    get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = RequestView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn get(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, AppError> {
    let request = visible(&service, &caller, request_id(&id)?).await?;
    Ok(Json(request.into()))
}

/// Approves a pending request.
#[utoipa::path(
    post, path = "/v1/requests/{id}/approve", tag = "decisions",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    request_body = ApproveBody,
    responses(
        (status = 200, description = "Approved, or signed off at the current stage of its approval chain (status stays pending until the last stage has its quorum)", body = RequestView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this, or the reviewer is not eligible at the request's current approval stage", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 400, description = "Invalid id or body", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already decided, already signed off by this reviewer, or an edit after someone approved (code conflict); expired (code expired)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn approve(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
    Path(id): Path<String>,
    Json(mut body): Json<ApproveBody>,
) -> Result<Json<RequestView>, AppError> {
    let id = request_id(&id)?;
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => return Err(denied(&service, id, None, error).await),
    };
    body.reviewer = match deciding(&service, &caller, id, body.reviewer.as_deref()).await {
        Ok(reviewer) => reviewer,
        Err(error) => return Err(denied(&service, id, Some(&caller), error).await),
    };
    let request = service.approve(id, body, caller.groups()).await?;
    Ok(Json(request.into()))
}

/// Rejects a pending request, with a reason.
#[utoipa::path(
    post, path = "/v1/requests/{id}/reject", tag = "decisions",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "Rejected", body = RequestView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this, or the reviewer is not eligible at the request's current approval stage", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 400, description = "Invalid id or body (the reason is required)", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already decided or expired", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn reject(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
    Path(id): Path<String>,
    Json(mut body): Json<RejectBody>,
) -> Result<Json<RequestView>, AppError> {
    let id = request_id(&id)?;
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => return Err(denied(&service, id, None, error).await),
    };
    body.reviewer = match deciding(&service, &caller, id, body.reviewer.as_deref()).await {
        Ok(reviewer) => reviewer,
        Err(error) => return Err(denied(&service, id, Some(&caller), error).await),
    };
    let request = service.reject(id, body, caller.groups()).await?;
    Ok(Json(request.into()))
}

/// Withdraws a pending request. The body is optional.
#[utoipa::path(
    post, path = "/v1/requests/{id}/cancel", tag = "decisions",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    request_body(content = Option<CancelBody>, description = "Optional: who cancels and why"),
    responses(
        (status = 200, description = "Cancelled", body = RequestView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 400, description = "Invalid id or body", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already decided or expired", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<RequestView>, AppError> {
    let id = request_id(&id)?;
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => return Err(denied(&service, id, None, error).await),
    };
    let request = visible(&service, &caller, id).await?;
    // Its requester withdraws it, or an admin.
    if let Some(identity) = caller.identity()
        && identity.role != Role::Admin
        && identity.name != request.requester
    {
        let error = forbidden(format!(
            "only the requester or an admin may cancel; '{}' is neither",
            identity.name
        ));
        return Err(denied(&service, id, Some(&caller), error).await);
    }
    let body = optional_object::<CancelBody>(&headers, &body)?;
    let mut body = body.unwrap_or_default();
    body.actor = caller.acting_as("actor", body.actor.as_deref())?;
    let request = service.cancel(id, body).await?;
    Ok(Json(request.into()))
}

/// Waits for a decision (long poll).
#[utoipa::path(
    get, path = "/v1/requests/{id}/wait", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "Request id"), WaitParams),
    responses(
        (status = 200, description = "The request once it left pending, or still pending when the timeout (capped by the server's --max-wait) ended", body = RequestView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 400, description = "Invalid id or timeout", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn wait(
    State(service): State<Service>,
    State(LongPoll(cap)): State<LongPoll>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<WaitParams>,
) -> Result<Json<RequestView>, AppError> {
    let id = request_id(&id)?;
    visible(&service, &caller, id).await?;
    let timeout = params.timeout.unwrap_or(30);
    if timeout > MAX_WAIT_SECONDS {
        return Err(AppError::bad_request(format!(
            "timeout: must be at most {MAX_WAIT_SECONDS} seconds"
        )));
    }
    let request = service
        .wait(id, Duration::from_secs(timeout).min(cap))
        .await?;
    Ok(Json(request.into()))
}

/// Reads the audit trail, oldest first.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of the trail", body = AuditPage),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn audit(
    State(service): State<Service>,
    caller: Caller,
    Query(params): Query<AuditParams>,
) -> Result<Json<AuditPage>, AppError> {
    caller.require(&[Role::Reviewer, Role::Admin], "read the audit trail")?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::bad_request("limit: must be between 1 and 1000"));
    }
    if params.after.is_some_and(|a| a < 0) {
        return Err(AppError::bad_request("after: must not be negative"));
    }
    let entries = service
        .store()
        .audit(AuditQuery {
            request_id: params.request_id,
            after_seq: params.after,
            limit,
        })
        .await?;
    let next_after = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_after,
    }))
}

/// Walks the whole audit chain and names the first entry that was edited,
/// removed or reordered.
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "audit",
    responses(
        (status = 200, description = "The result of the walk (ok false names the break)", body = VerifyReport),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn verify(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Json<VerifyReport>, AppError> {
    caller.require(&[Role::Reviewer, Role::Admin], "verify the audit trail")?;
    let report = service.store().verify_audit().await?;
    Ok(Json(VerifyReport {
        ok: report.broken.is_none(),
        checked: report.checked,
        last_seq: report.head.last_seq(),
        head_hash: report.head.head().to_hex(),
        broken: report.broken.map(|b| ChainBreakView {
            seq: b.seq,
            fault: match b.fault {
                ChainFault::Edited => "edited",
                ChainFault::Removed { .. } => "removed",
                ChainFault::Reordered => "reordered",
                ChainFault::Truncated { .. } => "truncated",
                ChainFault::HeadMismatch => "head_mismatch",
            }
            .to_owned(),
            message: b.to_string(),
        }),
    }))
}

/// The request, if the caller may see it; an agent asking for someone
/// else's gets the same 404 as for a request that does not exist.
pub(crate) async fn visible(
    service: &Service,
    caller: &Caller,
    id: uuid::Uuid,
) -> Result<signoff_core::Request, AppError> {
    let request = service.get(id).await?;
    if caller.can_see(&request) {
        Ok(request)
    } else {
        Err(AppError::from(signoff_store::StoreError::NotFound(id)))
    }
}

/// Checks the caller may decide request `id` and returns the reviewer name
/// to record (the token's, never a different name from the body).
pub(crate) async fn deciding(
    service: &Service,
    caller: &Caller,
    id: uuid::Uuid,
    named: Option<&str>,
) -> Result<Option<String>, AppError> {
    let request = visible(service, caller, id).await?;
    caller.may_decide(&request)?;
    caller.acting_as("reviewer", named)
}

/// Puts a refused attempt (401 or 403) on request `id` in the audit trail,
/// then hands the error back.
pub(crate) async fn denied(
    service: &Service,
    id: uuid::Uuid,
    caller: Option<&Caller>,
    error: AppError,
) -> AppError {
    if matches!(
        error.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        let actor = caller
            .and_then(Caller::identity)
            .map_or_else(|| "unauthenticated".to_owned(), |i| i.name.clone());
        let recorded = service
            .store()
            .record_denial(id, Some(actor), error.message().to_owned())
            .await;
        if let Err(failure) = recorded {
            tracing::warn!(%failure, request = %id, "could not record a denied attempt");
        }
        service.changed();
    }
    error
}

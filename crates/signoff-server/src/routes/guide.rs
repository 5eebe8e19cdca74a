//! The guide's Flask routes (`/approval/...`), field for field, as thin
//! adapters over the same [`Service`] calls as `/v1`. Errors keep the guide's
//! shape, `{"error": "..."}`: 404 for an unknown id on `GET`, 400 for any
//! refused approval or rejection (the guide raised `ValueError` there).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use signoff_api::guide::{
    GuideApprove, GuideApproved, GuideCreate, GuideError, GuidePending, GuideReject, GuideRejected,
    GuideRequest, GuideSummary,
};
use signoff_api::{ApproveBody, ExpiresIn, NewRequest, RejectBody};
use signoff_core::{Request, Role, Status};
use signoff_store::{ListQuery, StoreError};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{AppError, close_if_body_unread};
use crate::extract::Json;
use crate::routes::v1::{deciding, denied};
use crate::service::{Service, ServiceError};

/// Most requests listed by `GET /approval/pending`.
const PENDING_LIMIT: u32 = 1000;

/// An error in the guide's shape.
pub struct GuideFailure(StatusCode, String);

impl IntoResponse for GuideFailure {
    fn into_response(self) -> Response {
        close_if_body_unread((self.0, Json(GuideError { error: self.1 })).into_response())
    }
}

impl From<AppError> for GuideFailure {
    fn from(e: AppError) -> Self {
        Self(e.status(), e.message().to_owned())
    }
}

fn body<T>(json: Result<Json<T>, AppError>) -> Result<T, GuideFailure> {
    json.map(|Json(value)| value).map_err(GuideFailure::from)
}

/// A refused decision: the guide answers 400 with the message for every
/// `ValueError`, including an unknown id.
fn refused(error: ServiceError) -> GuideFailure {
    match error {
        ServiceError::Store(StoreError::NotFound(id)) => {
            GuideFailure(StatusCode::BAD_REQUEST, format!("Request {id} not found"))
        }
        ServiceError::Store(StoreError::Transition(signoff_core::TransitionError::Expired {
            ..
        })) => GuideFailure(StatusCode::BAD_REQUEST, "Request has expired".into()),
        ServiceError::Store(StoreError::Transition(
            e @ signoff_core::TransitionError::NotEligible { .. },
        )) => GuideFailure(StatusCode::FORBIDDEN, e.to_string()),
        ServiceError::Store(StoreError::Transition(e)) => {
            GuideFailure(StatusCode::BAD_REQUEST, format!("Request {e}"))
        }
        other => AppError::from(other).into(),
    }
}

fn parse_id(text: &str, status: StatusCode) -> Result<Uuid, GuideFailure> {
    Uuid::parse_str(text).map_err(|_| GuideFailure(status, "Request not found".into()))
}

fn view(r: Request) -> GuideRequest {
    GuideRequest {
        request_id: r.id.to_string(),
        title: r.title,
        description: r.description,
        proposed_action: r.proposed_action,
        status: r.status.as_str().to_owned(),
        created_at: r.created_at,
        expires_at: r.expires_at,
    }
}

/// Lists pending requests (`list_pending_approvals`).
#[utoipa::path(
    get, path = "/approval/pending", tag = "guide",
    responses(
        (status = 200, description = "Pending requests", body = GuidePending),
        (status = 401, description = "Auth is on and no valid token was sent", body = GuideError),
        (status = 403, description = "The token's role or identity may not do this", body = GuideError),
        (status = 503, description = "Database unavailable", body = GuideError),
    )
)]
pub async fn pending(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
) -> Result<Json<GuidePending>, GuideFailure> {
    let caller = caller?;
    let page = service
        .list(ListQuery {
            status: Some(Status::Pending),
            limit: PENDING_LIMIT,
            before: None,
            requester: caller.list_filter(),
        })
        .await
        .map_err(AppError::from)?;
    let pending_count = if page.next.is_some() && caller.list_filter().is_none() {
        service
            .store()
            .count(Status::Pending)
            .await
            .map_err(AppError::from)?
    } else {
        page.requests.len() as u64
    };
    Ok(Json(GuidePending {
        pending_count,
        requests: page
            .requests
            .into_iter()
            .map(|r| GuideSummary {
                request_id: r.id.to_string(),
                title: r.title,
                description: r.description,
                created_at: r.created_at,
                expires_at: r.expires_at,
            })
            .collect(),
    }))
}

/// Creates a request (our addition to the guide's routes).
#[utoipa::path(
    post, path = "/approval", tag = "guide",
    request_body = GuideCreate,
    responses(
        (status = 201, description = "Created", body = GuideRequest),
        (status = 401, description = "Auth is on and no valid token was sent", body = GuideError),
        (status = 403, description = "The token's role or identity may not do this", body = GuideError),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = GuideError),
        (status = 400, description = "Invalid body", body = GuideError),
        (status = 413, description = "Body over 1 MiB", body = GuideError),
        (status = 415, description = "Not JSON", body = GuideError),
        (status = 503, description = "Database unavailable", body = GuideError),
    )
)]
pub async fn create(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
    json: Result<Json<GuideCreate>, AppError>,
) -> Result<(StatusCode, Json<GuideRequest>), GuideFailure> {
    let caller = caller?;
    caller.require(&[Role::Agent, Role::Admin], "propose actions")?;
    let b = body(json)?;
    let new = NewRequest {
        title: b.title,
        description: b.description,
        proposed_action: b.proposed_action,
        requester: caller.identity().map(|i| i.name.clone()),
        labels: Default::default(),
        expires_in: Some(ExpiresIn::Seconds(
            u64::from(b.expires_in_hours.unwrap_or(24)) * 3600,
        )),
    };
    let created = service.create(new, None).await.map_err(AppError::from)?;
    Ok((StatusCode::CREATED, Json(view(created.request))))
}

/// Reads one request (`get_approval_request`).
#[utoipa::path(
    get, path = "/approval/{request_id}", tag = "guide",
    params(("request_id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = GuideRequest),
        (status = 401, description = "Auth is on and no valid token was sent", body = GuideError),
        (status = 403, description = "The token's role or identity may not do this", body = GuideError),
        (status = 404, description = "Request not found", body = GuideError),
        (status = 503, description = "Database unavailable", body = GuideError),
    )
)]
pub async fn get(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
    Path(request_id): Path<String>,
) -> Result<Json<GuideRequest>, GuideFailure> {
    let caller = caller?;
    let id = parse_id(&request_id, StatusCode::NOT_FOUND)?;
    match service.get(id).await {
        Ok(request) if caller.can_see(&request) => Ok(Json(view(request))),
        Ok(_) => Err(GuideFailure(
            StatusCode::NOT_FOUND,
            "Request not found".into(),
        )),
        Err(ServiceError::Store(StoreError::NotFound(_))) => Err(GuideFailure(
            StatusCode::NOT_FOUND,
            "Request not found".into(),
        )),
        Err(other) => Err(AppError::from(other).into()),
    }
}

/// Approves (`approve_request`); the reviewer defaults to "unknown".
#[utoipa::path(
    post, path = "/approval/{request_id}/approve", tag = "guide",
    params(("request_id" = String, Path, description = "Request id")),
    request_body = GuideApprove,
    responses(
        (status = 200, description = "Approved", body = GuideApproved),
        (status = 401, description = "Auth is on and no valid token was sent", body = GuideError),
        (status = 403, description = "The token's role or identity may not do this", body = GuideError),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = GuideError),
        (status = 400, description = "Not found, expired, already decided or invalid body", body = GuideError),
        (status = 413, description = "Body over 1 MiB", body = GuideError),
        (status = 415, description = "Not JSON", body = GuideError),
        (status = 503, description = "Database unavailable", body = GuideError),
    )
)]
pub async fn approve(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
    Path(request_id): Path<String>,
    json: Result<Json<GuideApprove>, AppError>,
) -> Result<Json<GuideApproved>, GuideFailure> {
    let b = body(json)?;
    let id = parse_id(&request_id, StatusCode::BAD_REQUEST).map_err(|_| {
        GuideFailure(
            StatusCode::BAD_REQUEST,
            format!("Request {request_id} not found"),
        )
    })?;
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => return Err(denied(&service, id, None, error).await.into()),
    };
    let reviewer = guide_reviewer(&service, &caller, id, b.reviewer).await?;
    let request = service
        .approve(
            id,
            ApproveBody {
                reviewer: Some(reviewer.clone()),
                comment: None,
                edited_action: None,
            },
            caller.groups(),
        )
        .await
        .map_err(refused)?;
    // With an approval chain the sign-off may leave the request pending.
    let approved_at = request
        .approvals
        .iter()
        .rev()
        .find(|a| a.reviewer == reviewer)
        .map(|a| a.at)
        .or(request.decision.as_ref().map(|d| d.decided_at))
        .unwrap_or(request.created_at);
    Ok(Json(GuideApproved {
        status: request.status.as_str().to_owned(),
        request_id: request.id.to_string(),
        reviewer,
        approved_at,
    }))
}

/// Rejects (`reject_request`); the reason defaults to "No reason provided".
#[utoipa::path(
    post, path = "/approval/{request_id}/reject", tag = "guide",
    params(("request_id" = String, Path, description = "Request id")),
    request_body = GuideReject,
    responses(
        (status = 200, description = "Rejected", body = GuideRejected),
        (status = 401, description = "Auth is on and no valid token was sent", body = GuideError),
        (status = 403, description = "The token's role or identity may not do this", body = GuideError),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = GuideError),
        (status = 400, description = "Not found, expired, already decided or invalid body", body = GuideError),
        (status = 413, description = "Body over 1 MiB", body = GuideError),
        (status = 415, description = "Not JSON", body = GuideError),
        (status = 503, description = "Database unavailable", body = GuideError),
    )
)]
pub async fn reject(
    State(service): State<Service>,
    caller: Result<Caller, AppError>,
    Path(request_id): Path<String>,
    json: Result<Json<GuideReject>, AppError>,
) -> Result<Json<GuideRejected>, GuideFailure> {
    let b = body(json)?;
    let id = parse_id(&request_id, StatusCode::BAD_REQUEST).map_err(|_| {
        GuideFailure(
            StatusCode::BAD_REQUEST,
            format!("Request {request_id} not found"),
        )
    })?;
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => return Err(denied(&service, id, None, error).await.into()),
    };
    let reviewer = guide_reviewer(&service, &caller, id, b.reviewer).await?;
    let reason = b.reason.unwrap_or_else(|| "No reason provided".into());
    let request = service
        .reject(
            id,
            RejectBody {
                reviewer: Some(reviewer.clone()),
                reason: reason.clone(),
            },
            caller.groups(),
        )
        .await
        .map_err(refused)?;
    Ok(Json(GuideRejected {
        status: "rejected".into(),
        request_id: request.id.to_string(),
        reviewer,
        reason,
        rejected_at: request
            .decision
            .map(|d| d.decided_at)
            .unwrap_or(request.created_at),
    }))
}

/// The reviewer to record: with auth on, the token's identity (checked like
/// `/v1`: role, matching name, not the requester); else the body's, or
/// "unknown" as in the guide. An unknown id keeps the guide's 400.
async fn guide_reviewer(
    service: &Service,
    caller: &Caller,
    id: Uuid,
    named: Option<String>,
) -> Result<String, GuideFailure> {
    if caller.identity().is_none() {
        return Ok(named.unwrap_or_else(|| "unknown".into()));
    }
    match deciding(service, caller, id, named.as_deref()).await {
        Ok(reviewer) => Ok(reviewer.unwrap_or_default()),
        Err(error) if error.status() == StatusCode::NOT_FOUND => Err(GuideFailure(
            StatusCode::BAD_REQUEST,
            format!("Request {id} not found"),
        )),
        Err(error) => Err(denied(service, id, Some(caller), error).await.into()),
    }
}

//! The one error boundary of the `/v1` API: every failure becomes
//! `{"error": {"code", "message"}}` with the right status. Client errors say
//! what to fix; server errors say only that something failed (the details
//! go to the log, never to the client).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use signoff_api::{ErrorBody, ErrorDetail};
use signoff_core::TransitionError;
use signoff_store::StoreError;

use crate::service::ServiceError;

/// An error answered by a `/v1` route.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl AppError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 429: too many writes; try again after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many writes for this token; retry in {seconds} s"),
            )
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ServiceError> for AppError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(e) => Self::bad_request(e.to_string()),
            ServiceError::Store(e) => e.into(),
            ServiceError::Policy(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy_error",
                e.to_string(),
            ),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("request {id} not found"),
            ),
            StoreError::Transition(e @ TransitionError::Expired { .. }) => {
                Self::new(StatusCode::CONFLICT, "expired", e.to_string())
            }
            StoreError::Transition(e @ TransitionError::NotEligible { .. }) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            StoreError::Transition(e) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            StoreError::RunNotFound(id) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("run {id} not found"),
            ),
            e @ StoreError::RunMoved { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::IdempotencyMismatch => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            ),
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; nothing was changed, try again",
                )
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "stored data is corrupt");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "stored data could not be read",
                )
            }
        }
    }
}

/// `N` random bytes for a secret (`what`, named in the error); a 500 when
/// the system has no randomness to give.
pub fn random_bytes<const N: usize>(what: &str) -> Result<[u8; N], AppError> {
    let mut random = [0u8; N];
    getrandom::fill(&mut random).map_err(|e| {
        tracing::error!(%e, "no random source");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot make a {what} now"),
        )
    })?;
    Ok(random)
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = close_if_body_unread((self.status, Json(body)).into_response());
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// After a 413 the rest of the oversized body was never read, so the
/// connection cannot carry another request: say so with `Connection: close`,
/// rather than let the client reuse it and fail.
pub fn close_if_body_unread(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

//! Extractors whose rejections have the API's error shape instead of
//! axum's plain-text ones.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::AppError;

/// A JSON body; a body that is too large, not JSON, or of the wrong shape is
/// a 413, 415 or 400 that says why.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(value)| Self(value))
            .map_err(json_rejection)
    }
}

/// Maps axum's JSON rejection to an [`AppError`].
pub fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the 1 MiB limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        _ => AppError::bad_request(json_message(&rejection)),
    }
}

/// The useful part of a JSON rejection's text (which names the field).
pub fn json_message(rejection: &JsonRejection) -> String {
    let text = rejection.body_text();
    match &rejection {
        JsonRejection::JsonDataError(_) => text
            .strip_prefix("Failed to deserialize the JSON body into the target type: ")
            .map(|rest| format!("invalid body: {rest}"))
            .unwrap_or(text),
        JsonRejection::JsonSyntaxError(_) => text
            .strip_prefix("Failed to parse the request body as JSON: ")
            .map(|rest| format!("body is not valid JSON: {rest}"))
            .unwrap_or(text),
        _ => text,
    }
}

/// Query parameters; bad ones are a 400 that names them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                let text = rejection.body_text();
                AppError::bad_request(
                    text.strip_prefix("Failed to deserialize query string: ")
                        .map(|rest| format!("invalid query: {rest}"))
                        .unwrap_or(text),
                )
            })
    }
}

/// Parses a request id from the path.
pub fn request_id(text: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(text).map_err(|_| {
        AppError::bad_request(format!("id: '{text}' is not a valid request id (a UUID)"))
    })
}

//! Extractors whose rejections have the API's error shape instead of
//! axum's plain-text ones, and the JSON response every route sends.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::AppError;

/// A JSON object body; a body that is too large, not JSON, not an object,
/// or of the wrong shape is a 413, 415 or 400 that says why. As a response,
/// the value serialised as JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Room reserved for a response body: one request's view fits, so the
/// common answers are written without growing the buffer.
const RESPONSE_CAPACITY: usize = 1024;

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        // Into a `Vec` sized for the usual answer: axum's own `Json` starts
        // at 128 bytes and writes through `BytesMut`, growing several times.
        let mut body = Vec::with_capacity(RESPONSE_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "response could not be serialised");
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the response could not be serialised",
                )
                .into_response()
            }
        }
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
                _ => AppError::bad_request(rejection.body_text()),
            }
        })?;
        parse_object(&bytes).map(Self)
    }
}

/// Parses a body that must be a JSON object. serde would also read a struct
/// from a JSON array (`[null, null]`), which no client means.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Err(AppError::bad_request("body must be a JSON object")),
        None => return Err(AppError::bad_request("body is empty: send a JSON object")),
    }
    // The plain parser first: axum's tracks the path to every value so that
    // an error can name the field, which only a bad body needs. It accepts
    // exactly what axum's does, so a failure is parsed again for the message.
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => axum::Json::<T>::from_bytes(bytes)
            .map(|axum::Json(value)| value)
            .map_err(json_rejection),
    }
}

/// True when `Content-Type` is `application/json` or `application/*+json`
/// (parameters such as `charset` allowed).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

fn unsupported_media_type() -> AppError {
    AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
    )
}

fn payload_too_large() -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body is larger than the 1 MiB limit",
    )
}

/// Maps axum's JSON rejection to an [`AppError`].
pub fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
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

/// A JSON object body that may be absent: no body or `null` is `None`.
/// A body of only whitespace is neither JSON nor absent, and is refused.
pub fn optional_object<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<T>, AppError> {
    if body.is_empty() {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(unsupported_media_type());
    }
    match body.trim_ascii() {
        b"null" => Ok(None),
        b"" => Err(AppError::bad_request(
            "body holds only whitespace: send a JSON object, or no body",
        )),
        _ => parse_object(body).map(Some),
    }
}

/// Parses a request id from the path.
pub fn request_id(text: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(text).map_err(|_| {
        AppError::bad_request(format!("id: '{text}' is not a valid request id (a UUID)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        headers
    }

    #[test]
    fn json_media_types() {
        assert!(is_json(&with_type("application/json")));
        assert!(is_json(&with_type("Application/JSON; charset=utf-8")));
        assert!(is_json(&with_type("application/merge-patch+json")));
        assert!(!is_json(&with_type("text/plain")));
        assert!(!is_json(&with_type("application/+json")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn only_objects_are_bodies() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[allow(dead_code)]
            a: Option<u8>,
        }
        assert!(parse_object::<Body>(b" {\"a\": 1}").is_ok());
        assert!(parse_object::<Body>(b"[null]").is_err());
        assert!(parse_object::<Body>(b"").is_err());
        let json = with_type("application/json");
        assert!(matches!(optional_object::<Body>(&json, b"null"), Ok(None)));
        assert!(matches!(
            optional_object::<Body>(&HeaderMap::new(), b""),
            Ok(None)
        ));
        assert!(optional_object::<Body>(&HeaderMap::new(), b"{}").is_err());
        // Found by schemathesis: a lone newline is not JSON.
        assert!(optional_object::<Body>(&json, b"\n").is_err());
        assert!(optional_object::<Body>(&HeaderMap::new(), b" ").is_err());
    }
}

//! The reviewers' web inbox under `/ui`: server-rendered pages (askama
//! templates compiled into the binary), one stylesheet and one script
//! served by the binary itself, no front-end build and nothing fetched from
//! elsewhere.
//!
//! Sign-in takes an API token (or, with auth off, a name) and keeps it in
//! a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind https);
//! the token's identity is who decides, through the same [`Service`] calls
//! and the same rules as `/v1`. Every form carries a CSRF token that must
//! match the `signoff_csrf` cookie (double submit; the cookie is
//! `SameSite=Strict` too), and a cross-site `Origin` is refused.

mod pages;
pub mod render;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest as _, Sha256};
use signoff_core::Identity;

use crate::AppState;
use crate::auth::{Auth, AuthMode, Caller};
use crate::error::AppError;

/// The session cookie: the API token (auth on) or the reviewer's name
/// (auth off).
pub const SESSION_COOKIE: &str = "signoff_session";
/// The double-submit CSRF cookie.
pub const CSRF_COOKIE: &str = "signoff_csrf";
/// How long a sign-in lasts.
const SESSION_SECONDS: u64 = 12 * 3600;

/// The `/ui` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/inbox") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/inbox") }))
        .route("/ui/login", get(pages::login_page).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/inbox", get(pages::inbox))
        .route("/ui/inbox/rows", get(pages::inbox_rows))
        .route("/ui/events", get(pages::changes))
        .route("/ui/requests/{id}", get(pages::request_page))
        .route("/ui/requests/{id}/approve", post(pages::approve))
        .route("/ui/requests/{id}/reject", post(pages::reject))
        .route("/ui/assets/app.css", get(pages::stylesheet))
        .route("/ui/assets/app.js", get(pages::script))
        .route("/ui/assets/icon.svg", get(pages::icon))
}

/// Reads one cookie from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value for `/ui`.
fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// Whether cookies are marked `Secure`: when reviewers reach the server
/// over https.
fn secure_cookies(state: &AppState) -> bool {
    state.webhooks.public_url.starts_with("https://")
}

/// The signed-in reviewer of a `/ui` request.
pub struct Session {
    /// Who, for the same checks as `/v1`.
    pub caller: Caller,
    /// The name shown and recorded.
    pub name: String,
    /// The identity behind a token (auth on).
    pub identity: Option<Identity>,
}

/// Why there is no session: pages send the browser to sign in, forms are
/// refused.
pub enum NoSession {
    /// A page: go sign in.
    SignIn,
    /// The token is no longer valid (revoked, expired).
    Refused(AppError),
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::SignIn => Redirect::to("/ui/login").into_response(),
            NoSession::Refused(error) => {
                let mut response = pages::error_page(&error).into_response();
                // A stale cookie is dropped so the next visit asks again.
                if let Some(clear) = set_cookie(SESSION_COOKIE, "", 0, false) {
                    response.headers_mut().append(header::SET_COOKIE, clear);
                }
                response
            }
        }
    }
}

impl<S> FromRequestParts<S> for Session
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(if parts.method == axum::http::Method::GET {
                NoSession::SignIn
            } else {
                NoSession::Refused(AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "sign in first: this form needs a session",
                ))
            });
        };
        match auth.mode {
            AuthMode::Off => {
                let name = percent_decode(value);
                if name.trim().is_empty() {
                    return Err(NoSession::SignIn);
                }
                Ok(Session {
                    caller: Caller::Trusted,
                    name,
                    identity: None,
                })
            }
            AuthMode::On => {
                let identity = auth.identify(value).await.map_err(NoSession::Refused)?;
                if parts.method == axum::http::Method::POST {
                    auth.check_write_rate(&identity.name)
                        .map_err(NoSession::Refused)?;
                }
                Ok(Session {
                    caller: Caller::Token(identity.clone()),
                    name: identity.name.clone(),
                    identity: Some(identity),
                })
            }
        }
    }
}

/// Refuses a form whose CSRF field does not match the cookie, or that comes
/// from another origin: one that is neither this request's host nor
/// `public_url`'s (behind a proxy that rewrites `Host`, the latter).
pub fn check_csrf(headers: &HeaderMap, public_url: &str, submitted: &str) -> Result<(), AppError> {
    let refused = |why: &str| {
        AppError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            format!("{why}: reload the page and try again"),
        )
    };
    // `null` (a privacy setting, a sandboxed frame) says nothing either
    // way; the token below still has to match.
    if let (Some(origin), Some(host)) = (
        headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .filter(|o| *o != "null"),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
        let public_host = public_url.split("://").nth(1).unwrap_or(public_url);
        if origin_host != host && origin_host != public_host.trim_end_matches('/') {
            return Err(refused("cross-site form refused"));
        }
    }
    let Some(expected) = cookie(headers, CSRF_COOKIE) else {
        return Err(refused("no CSRF cookie"));
    };
    // Compared as hashes: equal length, and no early exit on the secret.
    let same = Sha256::digest(expected.as_bytes()) == Sha256::digest(submitted.as_bytes());
    if !same || submitted.is_empty() {
        return Err(refused("CSRF token does not match"));
    }
    Ok(())
}

/// A fresh CSRF token.
fn new_csrf() -> Option<String> {
    let mut random = [0u8; 24];
    getrandom::fill(&mut random).ok()?;
    Some(hex::encode(random))
}

/// The request's CSRF token, and the cookie to set when it had none.
pub fn csrf_token(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    match cookie(headers, CSRF_COOKIE) {
        Some(token) => (token.to_owned(), None),
        None => {
            let token = new_csrf().unwrap_or_default();
            let header = set_cookie(CSRF_COOKIE, &token, SESSION_SECONDS, secure);
            (token, header)
        }
    }
}

/// Cookie values are kept to a safe alphabet: names are percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; signoff_session=so_x_y; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("so_x_y"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn csrf_needs_the_matching_cookie_and_the_same_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("signoff_csrf=abc"));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8470"));
        let public = "https://signoff.example.com";
        assert!(check_csrf(&headers, public, "abc").is_ok());
        assert!(check_csrf(&headers, public, "abd").is_err());
        assert!(check_csrf(&headers, public, "").is_err());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(check_csrf(&headers, public, "abc").is_err());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8470"),
        );
        assert!(check_csrf(&headers, public, "abc").is_ok());
    }

    #[test]
    fn names_survive_the_cookie() {
        let name = "Zoë O'Neil; x=1";
        assert_eq!(percent_decode(&percent_encode(name)), name);
        assert!(!percent_encode(name).contains(';'));
    }
}

//! Who is calling, and what they may do.
//!
//! With auth on, every API call carries `Authorization: Bearer so_...`; the
//! token's identity, not a name in the body, is who acts: the reviewer of a
//! decision, the requester of a request. A body naming someone else is
//! refused (403), and so is a requester deciding their own request
//! (separation of duties). With auth off (only allowed on loopback: a
//! single-user mode, logged at start) every caller is trusted and names come
//! from the body, as in the guide.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use signoff_core::{Clock, Identity, Request, Role, parse_token};
use signoff_store::Store;

use crate::error::AppError;

/// Whether tokens are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Single-user mode on loopback: every caller is trusted.
    Off,
    /// Every API call needs a valid token.
    On,
}

/// Writes (POSTs) per token, kept in memory: a token bucket per identity.
pub type WriteLimiter = governor::DefaultKeyedRateLimiter<String>;

/// A limiter allowing `per_second` writes per identity, with bursts of
/// twice that.
pub fn write_limiter(per_second: std::num::NonZeroU32) -> Arc<WriteLimiter> {
    let burst = per_second.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
    Arc::new(governor::RateLimiter::keyed(
        governor::Quota::per_second(per_second).allow_burst(burst),
    ))
}

/// What the extractor needs: the mode, where tokens are, and the limit on
/// writes.
#[derive(Clone)]
pub struct Auth {
    /// Whether tokens are required.
    pub mode: AuthMode,
    /// The store holding the tokens.
    pub store: Arc<dyn Store>,
    /// To judge expiry.
    pub clock: Arc<dyn Clock>,
    /// Writes per identity.
    pub writes: Arc<WriteLimiter>,
}

impl Auth {
    /// The identity of a bearer token, or 401.
    pub(crate) async fn identify(&self, token: &str) -> Result<Identity, AppError> {
        let (id, secret) = parse_token(token).ok_or_else(|| unauthorized("invalid token"))?;
        let record = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| unauthorized("invalid token"))?;
        record
            .verify(secret, self.clock.now())
            .map_err(|refusal| unauthorized(&refusal.to_string()))
    }

    /// Counts one write by `name`; 429 past the per-identity rate.
    pub(crate) fn check_write_rate(&self, name: &str) -> Result<(), AppError> {
        if let Err(not_until) = self.writes.check_key(&name.to_owned()) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(AppError::rate_limited(wait.as_secs().max(1)));
        }
        Ok(())
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Auth is off: trusted, unnamed.
    Trusted,
    /// A verified token's identity.
    Token(Identity),
}

fn unauthorized(message: &str) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// A 403 that says why.
pub fn forbidden(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

impl<S> FromRequestParts<S> for Caller
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        if auth.mode == AuthMode::Off {
            return Ok(Caller::Trusted);
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "this server requires a token: send Authorization: Bearer <token>",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be: Bearer <token>"))?;
        let identity = auth.identify(token).await?;
        if parts.method == axum::http::Method::POST {
            auth.check_write_rate(&identity.name)?;
        }
        Ok(Caller::Token(identity))
    }
}

impl Caller {
    /// The identity, when there is one.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Caller::Trusted => None,
            Caller::Token(identity) => Some(identity),
        }
    }

    /// The groups a token vouches for; `None` with auth off, where approval
    /// stages do not check who signs.
    pub fn groups(&self) -> Option<Vec<String>> {
        self.identity().map(|identity| identity.groups.clone())
    }

    /// Refuses callers whose role is not in `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), AppError> {
        match self {
            Caller::Token(identity) if !roles.contains(&identity.role) => Err(forbidden(format!(
                "{} '{}' may not {what}",
                identity.role, identity.name
            ))),
            _ => Ok(()),
        }
    }

    /// The name to act under: the token's, or (auth off) the body's. A body
    /// naming someone other than the token is refused.
    pub fn acting_as(&self, field: &str, named: Option<&str>) -> Result<Option<String>, AppError> {
        match self {
            Caller::Trusted => Ok(named.map(str::to_owned)),
            Caller::Token(identity) => match named {
                Some(name) if name != identity.name => Err(forbidden(format!(
                    "{field} '{name}' does not match the token's identity '{}'",
                    identity.name
                ))),
                _ => Ok(Some(identity.name.clone())),
            },
        }
    }

    /// Whether the caller may see `request` (an agent sees its own).
    pub fn can_see(&self, request: &Request) -> bool {
        match self {
            Caller::Trusted => true,
            Caller::Token(identity) => identity.reads_all() || identity.name == request.requester,
        }
    }

    /// Whether the caller may see runs started by `started_by`.
    pub fn can_see_run(&self, started_by: Option<&str>) -> bool {
        match self {
            Caller::Trusted => true,
            Caller::Token(identity) => {
                identity.reads_all() || started_by == Some(identity.name.as_str())
            }
        }
    }

    /// Only reviewers and admins decide, never on their own request.
    pub fn may_decide(&self, request: &Request) -> Result<(), AppError> {
        self.require(&[Role::Reviewer, Role::Admin], "decide requests")?;
        match self {
            Caller::Token(identity) if identity.name == request.requester => {
                Err(forbidden(format!(
                    "'{}' requested this and so cannot decide it (separation of duties)",
                    identity.name
                )))
            }
            _ => Ok(()),
        }
    }

    /// The requester filter for listing: an agent lists its own.
    pub fn list_filter(&self) -> Option<String> {
        match self {
            Caller::Token(identity) if !identity.reads_all() => Some(identity.name.clone()),
            _ => None,
        }
    }
}

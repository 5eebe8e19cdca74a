//! `/v1/tokens`: API tokens, for admins (or anyone in loopback single-user
//! mode). A created token is shown once; only a hash of it is stored.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use signoff_api::{CreatedToken, ErrorBody, ExpiresIn, NewToken, TokenList, TokenView};
use signoff_core::{Actor, Role, TokenRecord};

use crate::auth::Caller;
use crate::error::{AppError, random_bytes};
use crate::extract::Json;
use crate::service::Service;

fn admins_only(caller: &Caller) -> Result<(), AppError> {
    caller.require(&[Role::Admin], "manage tokens")
}

/// Creates a token.
#[utoipa::path(
    post, path = "/v1/tokens", tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created; the token is shown only now", body = CreatedToken),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn create(
    State(service): State<Service>,
    caller: Caller,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    admins_only(&caller)?;
    let name =
        Actor::parse("name", &body.name).map_err(|e| AppError::bad_request(e.to_string()))?;
    if body.groups.len() > 32 {
        return Err(AppError::bad_request("groups: at most 32"));
    }
    let now = service.clock().now();
    let expires_at = match body.expires_in {
        None => None,
        Some(life) => {
            let seconds = match life {
                ExpiresIn::Seconds(seconds) => signoff_core::ExpiresIn::from_seconds(seconds),
                ExpiresIn::Text(text) => signoff_core::ExpiresIn::parse(&text),
            }
            .map_err(|e| AppError::bad_request(e.to_string()))?;
            Some(now + seconds.duration())
        }
    };
    let random: [u8; 38] = random_bytes("token")?;
    let (record, token) = TokenRecord::issue(
        name.into_string(),
        body.role.into(),
        body.groups,
        &random,
        now,
        expires_at,
    );
    let record = service.store().create_token(record).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            record: record.into(),
        }),
    ))
}

/// Lists tokens (never their secrets).
#[utoipa::path(
    get, path = "/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "Every token, oldest first", body = TokenList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Json<TokenList>, AppError> {
    admins_only(&caller)?;
    let tokens = service.store().tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Revokes a token; it is refused from then on.
#[utoipa::path(
    post, path = "/v1/tokens/{id}/revoke", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 200, description = "Revoked", body = TokenView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, AppError> {
    admins_only(&caller)?;
    let token = service.store().revoke_token(&id).await?.ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("token {id} not found"),
        )
    })?;
    Ok(Json(token.into()))
}

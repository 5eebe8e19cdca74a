//! `/v1/webhooks` and `/v1/deliveries`: outbound notifications, for
//! admins (or anyone in loopback single-user mode).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use signoff_api::{
    CreatedWebhook, DeliveryList, DeliveryParams, DeliveryView, ErrorBody, NewWebhook, WebhookList,
    WebhookView,
};
use signoff_core::{Role, Webhook};
use signoff_store::DeliveryQuery;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{AppError, random_bytes};
use crate::extract::{Json, Query};
use crate::service::Service;

fn admins_only(caller: &Caller) -> Result<(), AppError> {
    caller.require(&[Role::Admin], "manage webhooks")
}

fn parse_id(what: &str, text: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(text).map_err(|_| {
        AppError::bad_request(format!("id: '{text}' is not a valid {what} id (a UUID)"))
    })
}

fn not_found(what: &str, id: Uuid) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{what} {id} not found"),
    )
}

/// Checks a new subscription: where it points, what it wants, its key.
/// What the schema rules out is a 400; a URL that fits the schema but does
/// not parse is a 422.
fn check(body: &NewWebhook) -> Result<(), AppError> {
    let scheme_ok = body.url.starts_with("http://") || body.url.starts_with("https://");
    // White space and the like are left to the parser (422): what counts as
    // white space differs between the schema's regex and Rust.
    if !scheme_ok || body.url.chars().count() > 2000 {
        return Err(AppError::bad_request(
            "url: must be an http:// or https:// URL of at most 2000 characters",
        ));
    }
    let url = reqwest::Url::parse(&body.url).map_err(|e| {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_url",
            format!("url: not a valid URL ({e})"),
        )
    })?;
    if url.host_str().is_none() {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_url",
            "url: has no host",
        ));
    }
    if body.events.is_empty() || body.events.len() > 16 {
        return Err(AppError::bad_request(
            "events: between 1 and 16 event names",
        ));
    }
    if let Some(secret) = &body.secret {
        let length = secret.chars().count();
        if !(16..=256).contains(&length) || secret.contains('\0') {
            return Err(AppError::bad_request(
                "secret: 16 to 256 characters (or leave it out to have one made)",
            ));
        }
    }
    Ok(())
}

fn random_secret() -> Result<String, AppError> {
    let random: [u8; 24] = random_bytes("secret")?;
    Ok(format!("whsec_{}", hex::encode(random)))
}

/// Subscribes a URL to events.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Created; events from now on are delivered. The secret is shown only now", body = CreatedWebhook),
        (status = 400, description = "Invalid URL, event name or secret", body = ErrorBody),
        (status = 422, description = "The URL does not parse", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn create(
    State(service): State<Service>,
    caller: Caller,
    Json(body): Json<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), AppError> {
    admins_only(&caller)?;
    check(&body)?;
    let secret = match body.secret {
        Some(secret) => secret,
        None => random_secret()?,
    };
    let mut events: Vec<String> = Vec::with_capacity(body.events.len());
    for event in &body.events {
        if !events.iter().any(|e| e == event.as_str()) {
            events.push(event.as_str().to_owned());
        }
    }
    let hook = service
        .store()
        .create_webhook(Webhook {
            id: Uuid::now_v7(),
            url: body.url,
            events,
            secret: secret.clone(),
            format: body.format.into(),
            created_by: caller.identity().map(|i| i.name.clone()),
            created_at: service.clock().now(),
            cursor: 0,
        })
        .await?;
    service.webhooks_changed();
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            secret,
            webhook: hook.into(),
        }),
    ))
}

/// Lists subscriptions (never their secrets).
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Every subscription, oldest first", body = WebhookList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Json<WebhookList>, AppError> {
    admins_only(&caller)?;
    let hooks = service.store().webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: hooks.into_iter().map(WebhookView::from).collect(),
    }))
}

/// Removes a subscription and its deliveries.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, format = Uuid, description = "Subscription id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn delete(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    admins_only(&caller)?;
    let id = parse_id("webhook", &id)?;
    if !service.store().delete_webhook(id).await? {
        return Err(not_found("webhook", id));
    }
    service.webhooks_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Lists deliveries, newest first.
#[utoipa::path(
    get, path = "/v1/deliveries", tag = "webhooks",
    params(DeliveryParams),
    responses(
        (status = 200, description = "Deliveries, newest first", body = DeliveryList),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn deliveries(
    State(service): State<Service>,
    caller: Caller,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<DeliveryList>, AppError> {
    admins_only(&caller)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::bad_request("limit: must be between 1 and 500"));
    }
    let deliveries = service
        .store()
        .deliveries(DeliveryQuery {
            webhook_id: params.webhook_id,
            status: params.status.map(Into::into),
            request_id: params.request_id,
            limit,
        })
        .await?;
    Ok(Json(DeliveryList {
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    }))
}

/// Sends a delivery again (a dead one, typically), now.
#[utoipa::path(
    post, path = "/v1/deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = String, Path, format = Uuid, description = "Delivery id")),
    responses(
        (status = 200, description = "Pending again, due now", body = DeliveryView),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn redeliver(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, AppError> {
    admins_only(&caller)?;
    let id = parse_id("delivery", &id)?;
    let delivery = service
        .store()
        .redeliver(id)
        .await?
        .ok_or_else(|| not_found("delivery", id))?;
    service.webhooks_changed();
    Ok(Json(delivery.into()))
}

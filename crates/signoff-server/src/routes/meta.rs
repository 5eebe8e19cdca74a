//! Health, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use signoff_api::Health;

use crate::AppState;
use crate::extract::Json;

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "Serving", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state
        .metrics
        .as_ref()
        .map(|m| m.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// The OpenAPI 3.1 document of this API, generated from the code.
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi(State(auth): State<crate::auth::Auth>) -> impl IntoResponse {
    let document = crate::openapi::document(auth.mode == crate::auth::AuthMode::On);
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.to_json().unwrap_or_default(),
    )
}

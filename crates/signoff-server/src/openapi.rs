//! The OpenAPI document, assembled from the handlers' annotations.

use utoipa::OpenApi;

use crate::routes::{guide, meta, runs, tokens, v1};

/// Signoff's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Signoff",
        description = "A human-in-the-loop approval gate for AI agents: an agent proposes an action, a person approves or rejects it, and every step is in a tamper-evident audit trail."
    ),
    paths(
        v1::create, v1::list, v1::get, v1::approve, v1::reject, v1::cancel, v1::wait,
        v1::audit, v1::verify,
        runs::start, runs::get, runs::wait,
        tokens::create, tokens::list, tokens::revoke,
        guide::pending, guide::create, guide::get, guide::approve, guide::reject,
        meta::healthz, meta::metrics, meta::openapi,
    ),
    tags(
        (name = "requests", description = "Approval requests"),
        (name = "decisions", description = "Approve, reject, cancel"),
        (name = "audit", description = "The tamper-evident audit trail"),
        (name = "workflows", description = "Draft, Validate, Approve, Execute runs"),
        (name = "tokens", description = "API tokens (admins)"),
        (name = "guide", description = "The routes of the original Flask guide, unchanged for its clients"),
        (name = "meta", description = "Health, metrics, this document"),
    )
)]
pub struct ApiDoc;

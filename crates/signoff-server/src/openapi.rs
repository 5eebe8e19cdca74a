//! The OpenAPI document, assembled from the handlers' annotations.

use utoipa::OpenApi;

use crate::routes::{events, guide, meta, runs, tokens, v1, webhooks};

/// Signoff's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Signoff",
        description = "A human-in-the-loop approval gate for AI agents: an agent proposes an action, a person approves or rejects it, and every step is in a tamper-evident audit trail."
    ),
    paths(
        v1::create, v1::list, v1::get, v1::approve, v1::reject, v1::cancel, v1::wait,
        v1::audit, v1::verify, events::events,
        runs::start, runs::get, runs::wait,
        tokens::create, tokens::list, tokens::revoke,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::deliveries,
        webhooks::redeliver,
        guide::pending, guide::create, guide::get, guide::approve, guide::reject,
        meta::healthz, meta::metrics, meta::openapi,
    ),
    components(schemas(events::RunEventView)),
    tags(
        (name = "requests", description = "Approval requests"),
        (name = "decisions", description = "Approve, reject, cancel"),
        (name = "audit", description = "The tamper-evident audit trail"),
        (name = "workflows", description = "Draft, Validate, Approve, Execute runs"),
        (name = "tokens", description = "API tokens (admins)"),
        (name = "webhooks", description = "Outbound notifications, signed, retried, recorded (admins)"),
        (name = "guide", description = "The routes of the original Flask guide, unchanged for its clients"),
        (name = "meta", description = "Health, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The document as this server serves it: with auth on, every route but
/// health, metrics and this document requires a bearer token, and the
/// document says so; in loopback single-user mode it does not.
pub fn document(auth_on: bool) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    let mut document = ApiDoc::openapi();
    if !auth_on {
        return document;
    }
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API token (`so_...`) made with `signoff token create`",
                ))
                .build(),
        ),
    );
    let open = ["/healthz", "/metrics", "/openapi.json"];
    for (path, item) in document.paths.paths.iter_mut() {
        let requirement = if open.contains(&path.as_str()) {
            Vec::new()
        } else {
            vec![SecurityRequirement::new("bearer", Vec::<String>::new())]
        };
        for operation in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            operation.security = Some(requirement.clone());
        }
    }
    document
}

//! A typed async client for Signoff's `/v1` HTTP API.
//!
//! One method per endpoint, speaking the wire types of `signoff-api`, so the
//! client and the server cannot drift apart. Every failure is a
//! [`ClientError`]: the server's own `{"error": {"code", "message"}}` answers
//! become [`ClientError::Api`], anything that kept the exchange from
//! happening is [`ClientError::Transport`], and an answer that is not the
//! JSON we expected is [`ClientError::Decode`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), signoff_client::ClientError> {
//! use signoff_client::Client;
//! use signoff_api::ApproveBody;
//!
//! let client = Client::new("http://127.0.0.1:8470");
//! let page = client.list(&Default::default()).await?;
//! for request in page.requests {
//!     let body = ApproveBody { reviewer: Some("alice".into()), comment: None, edited_action: None };
//!     client.approve(request.id, &body).await?;
//! }
//! # Ok(())
//! # }
//! ```

use std::error::Error as _;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use signoff_api::{
    ApproveBody, AuditPage, AuditParams, CancelBody, CreatedWebhook, DeliveryList, DeliveryParams,
    DeliveryView, ErrorBody, Health, ListParams, NewRequest, NewWebhook, RejectBody, RequestPage,
    RequestView, RunView, RunWaitParams, StartRun, VerifyReport, WaitParams, WebhookList,
};
use uuid::Uuid;

pub use signoff_api;

/// The longest long poll the server accepts, in seconds.
pub const MAX_WAIT_SECS: u64 = 300;

/// How long an ordinary call may take before it fails as a transport error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Extra time a long poll is given beyond its own timeout, so the server's
/// "still pending" answer arrives before the HTTP timeout fires.
const WAIT_GRACE: Duration = Duration::from_secs(30);

/// What a call to the server can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error: `code` is its stable
    /// machine-readable code (`not_found`, `conflict`, `expired`,
    /// `bad_request`, ...), `message` says what went wrong.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The human-readable message.
        message: String,
    },
    /// The exchange did not happen: connection refused, timeout, bad URL.
    #[error("{endpoint}: {}", describe(source))]
    Transport {
        /// Method and URL of the call.
        endpoint: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered success with a body that is not what this
    /// client expects (a different server, or a version mismatch).
    #[error("{endpoint}: unexpected answer (HTTP {status}): {source}")]
    Decode {
        /// Method and URL of the call.
        endpoint: String,
        /// The HTTP status of the answer.
        status: u16,
        /// Why the body did not parse.
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            ClientError::Transport { source, .. } => source.status().map(|s| s.as_u16()),
        }
    }

    /// True for a 409: the request already left `pending` (decided,
    /// cancelled or expired), so this call changed nothing.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT.as_u16())
    }

    /// True for a 404: no such request.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND.as_u16())
    }
}

/// The error and its causes on one line; reqwest's own message alone
/// ("error sending request") hides the useful part (the refused connection).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    // The root cause ("Connection refused (os error 111)") is what a person
    // can act on; the layers between repeat each other.
    let mut root = None;
    let mut cause = error.source();
    while let Some(inner) = cause {
        root = Some(inner.to_string());
        cause = inner.source();
    }
    let what = if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        // reqwest's own words without the URL, which the endpoint names.
        let text = error.to_string();
        text.split(" for url (").next().unwrap_or(&text).to_owned()
    };
    match root {
        Some(root) if !what.contains(&root) => format!("{what}: {root}"),
        _ => what,
    }
}

/// A handle on one Signoff server. Cheap to clone: clones share the
/// connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8470`),
    /// with [`DEFAULT_TIMEOUT`] per call. A malformed URL is reported by the
    /// first call, as a [`ClientError::Transport`].
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), base_url)
    }

    /// A client that sends through `http` (to share a pool or set proxies).
    pub fn with_http(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            http,
            base_url,
            timeout: DEFAULT_TIMEOUT,
            token: None,
        }
    }

    /// Whether calls carry a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The same client, sending `token` as `Authorization: Bearer`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The same client with another per-call timeout (long polls add their
    /// own wait on top of it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL calls are sent to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /v1/requests`: proposes an action. With an `idempotency_key`, a
    /// retry with the same key and body returns the first request instead of
    /// creating another.
    pub async fn create(
        &self,
        body: &NewRequest,
        idempotency_key: Option<&str>,
    ) -> Result<RequestView, ClientError> {
        let mut call = self.call(Method::POST, "/v1/requests").json(body);
        if let Some(key) = idempotency_key {
            call = call.header("Idempotency-Key", key);
        }
        self.send(call, Method::POST, "/v1/requests").await
    }

    /// `GET /v1/requests`: one page of requests, newest first.
    pub async fn list(&self, params: &ListParams) -> Result<RequestPage, ClientError> {
        let call = self.call(Method::GET, "/v1/requests").query(params);
        self.send(call, Method::GET, "/v1/requests").await
    }

    /// `GET /v1/requests/{id}`.
    pub async fn get(&self, id: Uuid) -> Result<RequestView, ClientError> {
        let path = format!("/v1/requests/{id}");
        self.send(self.call(Method::GET, &path), Method::GET, &path)
            .await
    }

    /// `POST /v1/requests/{id}/approve`. A request that already left
    /// `pending` answers a conflict ([`ClientError::is_conflict`]), with code
    /// `expired` when its time ran out.
    pub async fn approve(&self, id: Uuid, body: &ApproveBody) -> Result<RequestView, ClientError> {
        self.post_json(&format!("/v1/requests/{id}/approve"), body)
            .await
    }

    /// `POST /v1/requests/{id}/reject`; conflicts as [`Client::approve`].
    pub async fn reject(&self, id: Uuid, body: &RejectBody) -> Result<RequestView, ClientError> {
        self.post_json(&format!("/v1/requests/{id}/reject"), body)
            .await
    }

    /// `POST /v1/requests/{id}/cancel`: withdraws a pending request.
    pub async fn cancel(&self, id: Uuid, body: &CancelBody) -> Result<RequestView, ClientError> {
        self.post_json(&format!("/v1/requests/{id}/cancel"), body)
            .await
    }

    /// `GET /v1/requests/{id}/wait`: a long poll that answers as soon as the
    /// request leaves `pending`, or with the still-pending request once
    /// `timeout_secs` (0 to [`MAX_WAIT_SECS`]) have passed. The HTTP timeout
    /// of this call is longer than the poll, so a quiet wait is not cut off.
    pub async fn wait(&self, id: Uuid, timeout_secs: u64) -> Result<RequestView, ClientError> {
        let path = format!("/v1/requests/{id}/wait");
        let params = WaitParams {
            timeout: Some(timeout_secs),
        };
        let call = self
            .call(Method::GET, &path)
            .query(&params)
            .timeout(Duration::from_secs(timeout_secs).saturating_add(WAIT_GRACE));
        self.send(call, Method::GET, &path).await
    }

    /// `GET /v1/audit`: one page of the audit trail, oldest first; pass
    /// `next_after` back as `after` for the next page.
    pub async fn audit(&self, params: &AuditParams) -> Result<AuditPage, ClientError> {
        let call = self.call(Method::GET, "/v1/audit").query(params);
        self.send(call, Method::GET, "/v1/audit").await
    }

    /// `GET /v1/audit/verify`: walks the hash chain on the server.
    pub async fn verify(&self) -> Result<VerifyReport, ClientError> {
        let path = "/v1/audit/verify";
        self.send(self.call(Method::GET, path), Method::GET, path)
            .await
    }

    /// `POST /v1/workflows/{name}/runs`: starts a run of a configured
    /// workflow on `input`.
    pub async fn start_run(
        &self,
        workflow: &str,
        input: &StartRun,
    ) -> Result<RunView, ClientError> {
        let path = format!("/v1/workflows/{workflow}/runs");
        let call = self.call(Method::POST, &path).json(input);
        self.send(call, Method::POST, &path).await
    }

    /// `GET /v1/runs/{id}`: a run and its stages.
    pub async fn get_run(&self, id: Uuid) -> Result<RunView, ClientError> {
        let path = format!("/v1/runs/{id}");
        self.send(self.call(Method::GET, &path), Method::GET, &path)
            .await
    }

    /// `GET /v1/runs/{id}/wait`: answers once `seen` (the run as last read)
    /// is out of date, or after `timeout_secs` (at most [`MAX_WAIT_SECS`]).
    pub async fn wait_run(
        &self,
        seen: &RunView,
        timeout_secs: u64,
    ) -> Result<RunView, ClientError> {
        let path = format!("/v1/runs/{}/wait", seen.id);
        let params = RunWaitParams {
            status: Some(seen.status),
            since: Some(seen.updated_at),
            timeout: Some(timeout_secs),
        };
        let call = self
            .call(Method::GET, &path)
            .query(&params)
            .timeout(Duration::from_secs(timeout_secs).saturating_add(WAIT_GRACE));
        self.send(call, Method::GET, &path).await
    }

    /// `POST /v1/webhooks`: subscribes a URL to events (admins).
    pub async fn create_webhook(&self, body: &NewWebhook) -> Result<CreatedWebhook, ClientError> {
        let path = "/v1/webhooks";
        let call = self.call(Method::POST, path).json(body);
        self.send(call, Method::POST, path).await
    }

    /// `GET /v1/webhooks`.
    pub async fn webhooks(&self) -> Result<WebhookList, ClientError> {
        let path = "/v1/webhooks";
        self.send(self.call(Method::GET, path), Method::GET, path)
            .await
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub async fn delete_webhook(&self, id: Uuid) -> Result<(), ClientError> {
        let path = format!("/v1/webhooks/{id}");
        self.send_empty(self.call(Method::DELETE, &path), Method::DELETE, &path)
            .await
    }

    /// `GET /v1/deliveries`: newest first.
    pub async fn deliveries(&self, params: &DeliveryParams) -> Result<DeliveryList, ClientError> {
        let path = "/v1/deliveries";
        let call = self.call(Method::GET, path).query(params);
        self.send(call, Method::GET, path).await
    }

    /// `POST /v1/deliveries/{id}/redeliver`.
    pub async fn redeliver(&self, id: Uuid) -> Result<DeliveryView, ClientError> {
        let path = format!("/v1/deliveries/{id}/redeliver");
        self.send(self.call(Method::POST, &path), Method::POST, &path)
            .await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let path = "/healthz";
        self.send(self.call(Method::GET, path), Method::GET, path)
            .await
    }

    async fn post_json<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<RequestView, ClientError> {
        let call = self.call(Method::POST, path).json(body);
        self.send(call, Method::POST, path).await
    }

    fn call(&self, method: Method, path: &str) -> RequestBuilder {
        let call = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .timeout(self.timeout);
        match &self.token {
            Some(token) => call.bearer_auth(token),
            None => call,
        }
    }

    /// Sends `call`, expecting no body back.
    async fn send_empty(
        &self,
        call: RequestBuilder,
        method: Method,
        path: &str,
    ) -> Result<(), ClientError> {
        let endpoint = format!("{method} {}{path}", self.base_url);
        let response = call.send().await.map_err(|source| ClientError::Transport {
            endpoint: endpoint.clone(),
            source,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport { endpoint, source })?;
        Err(api_error(status, &body))
    }

    /// Sends `call` and reads its answer: `T` on success, the server's error
    /// body otherwise. `method` and `path` only name the call in errors.
    async fn send<T: DeserializeOwned>(
        &self,
        call: RequestBuilder,
        method: Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let endpoint = format!("{method} {}{path}", self.base_url);
        let transport = |source| ClientError::Transport {
            endpoint: endpoint.clone(),
            source,
        };
        let response = call.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
            endpoint: endpoint.clone(),
            status: status.as_u16(),
            source,
        })
    }
}

/// Reads the server's error body; a body in another shape (a proxy's HTML
/// page, say) still gives an [`ClientError::Api`] with its status.
fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => ClientError::Api {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let snippet: String = text.chars().take(200).collect();
            let reason = status.canonical_reason().unwrap_or("error");
            ClientError::Api {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: if snippet.is_empty() {
                    format!("HTTP {} {reason}", status.as_u16())
                } else {
                    format!("HTTP {} {reason}: {snippet}", status.as_u16())
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_servers_error_body() {
        let body = br#"{"error":{"code":"conflict","message":"request is already approved"}}"#;
        let error = api_error(StatusCode::CONFLICT, body);
        assert!(error.is_conflict());
        assert_eq!(error.code(), Some("conflict"));
        assert_eq!(error.to_string(), "request is already approved");
    }

    #[test]
    fn a_foreign_error_body_keeps_its_status() {
        let error = api_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(error.status(), Some(502));
        assert_eq!(error.code(), Some("http_502"));
        assert!(error.to_string().contains("bad gateway"));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_error() {
        // Port 1 is privileged and unused: the connection is refused at once.
        let client = Client::new("http://127.0.0.1:1/");
        let error = client.health().await.err();
        assert!(matches!(error, Some(ClientError::Transport { .. })));
    }
}

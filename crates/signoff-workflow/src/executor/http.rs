//! An executor behind a webhook: `{"action", "idempotency_key"}` is POSTed
//! as JSON with an `Idempotency-Key` header, so the receiver can drop a
//! duplicate of an execution it already applied.
//!
//! Any 2xx is success: a JSON body is the result; any other body is kept as
//! `{"status": <code>, "body": <text>}`. Any other status is
//! [`ConnectorError::Failed`] with the status and the start of the body.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::http::transport;
use crate::{ConnectorError, Executor};

/// The most of an error body kept in the error.
const BODY_SNIPPET: usize = 500;

/// An `http` executor.
#[derive(Debug, Clone)]
pub struct HttpExecutor {
    /// Where to POST.
    pub url: String,
    /// How long a call may take, from sending to the end of the answer.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

#[async_trait]
impl Executor for HttpExecutor {
    async fn execute(
        &self,
        action: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ConnectorError> {
        let body = json!({"action": action, "idempotency_key": idempotency_key});
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .header("Idempotency-Key", idempotency_key)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|error| transport(&self.url, self.timeout, &error))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| transport(&self.url, self.timeout, &error))?;
        if !status.is_success() {
            let snippet: String = text.trim().chars().take(BODY_SNIPPET).collect();
            return Err(ConnectorError::Failed {
                peer: self.url.clone(),
                message: format!("HTTP {status}: {snippet}"),
            });
        }
        Ok(serde_json::from_str(&text)
            .unwrap_or_else(|_| json!({"status": status.as_u16(), "body": text})))
    }
}

//! An executor behind a webhook: `{"action", "idempotency_key"}` is POSTed
//! with an `Idempotency-Key` header, so the receiver can drop a duplicate.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::http::post_json;
use crate::{ConnectorError, Executor};

/// An `http` executor.
#[derive(Debug, Clone)]
pub struct HttpExecutor {
    /// Where to POST.
    pub url: String,
    /// How long a call may take.
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
        let headers = [("Idempotency-Key", idempotency_key)];
        let (status, answer) =
            post_json(&self.client, &self.url, &body, self.timeout, &headers).await?;
        Ok(answer.unwrap_or_else(|| json!({"status": status})))
    }
}

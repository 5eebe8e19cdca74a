//! An agent behind an HTTP endpoint: the task is POSTed as JSON and the
//! answer is the JSON object in the response.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::http::post_json;
use crate::{Agent, ConnectorError};

/// An `http` agent.
#[derive(Debug, Clone)]
pub struct HttpAgent {
    /// Where to POST.
    pub url: String,
    /// How long a call may take.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

#[async_trait]
impl Agent for HttpAgent {
    async fn ask(&self, task: &Value) -> Result<Value, ConnectorError> {
        let (_, answer) = post_json(&self.client, &self.url, task, self.timeout, &[]).await?;
        match answer {
            Some(value @ Value::Object(_)) => Ok(value),
            _ => Err(ConnectorError::BadAnswer {
                peer: self.url.clone(),
                message: "the answer is not a JSON object".into(),
            }),
        }
    }
}

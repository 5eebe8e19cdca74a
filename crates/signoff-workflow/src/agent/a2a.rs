//! An A2A agent, over the A2A 1.0 JSON-RPC binding.
//!
//! The agent card is read from `{base}/.well-known/agent-card.json`; its
//! JSON-RPC interface (`supportedInterfaces[].protocolBinding == "JSONRPC"`)
//! gives the endpoint. A task goes out as `SendMessage` with the header
//! `A2A-Version: 1.0` and one data part holding the task; the answer is the
//! first data part of the returned message, or of the completed task's
//! artifacts (or status message). A task that failed, was rejected, was
//! cancelled or wants input is an error with the agent's own words.
//!
//! Written by hand (reqwest and serde_json): the wire format was checked
//! against the official Python SDK (a2a-sdk 1.3.0), which the interop tests
//! run as the peer.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::http::transport;
use crate::{Agent, ConnectorError};

/// Where the card lives, under the agent's base URL.
pub const AGENT_CARD_PATH: &str = "/.well-known/agent-card.json";

/// How often a task still working is looked at again.
const TASK_POLL: Duration = Duration::from_millis(250);

/// An `a2a` agent. The card is fetched on first use (so a server can start
/// before its agents do) and kept.
#[derive(Debug)]
pub struct A2aAgent {
    base_url: String,
    timeout: Duration,
    client: reqwest::Client,
    endpoint: OnceLock<String>,
    discovering: Mutex<()>,
}

impl A2aAgent {
    /// An agent at `base_url`; calls may take `timeout`.
    pub fn new(base_url: impl Into<String>, timeout: Duration, client: reqwest::Client) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            timeout,
            client,
            endpoint: OnceLock::new(),
            discovering: Mutex::new(()),
        }
    }

    /// Reads the agent card and returns the JSON-RPC endpoint.
    pub async fn discover(&self) -> Result<String, ConnectorError> {
        if let Some(endpoint) = self.endpoint.get() {
            return Ok(endpoint.clone());
        }
        let _one_at_a_time = self.discovering.lock().await;
        if let Some(endpoint) = self.endpoint.get() {
            return Ok(endpoint.clone());
        }
        let url = format!("{}{AGENT_CARD_PATH}", self.base_url);
        let response = self
            .client
            .get(&url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport(&url, self.timeout, &e))?;
        if !response.status().is_success() {
            return Err(self.failed(format!("agent card: HTTP {}", response.status())));
        }
        let card: Value = response
            .json()
            .await
            .map_err(|e| self.garbage(format!("agent card is not JSON: {e}")))?;
        let endpoint = jsonrpc_endpoint(&card)
            .ok_or_else(|| self.garbage("the agent card lists no JSONRPC interface".into()))?;
        let _ = self.endpoint.set(endpoint.clone());
        Ok(endpoint)
    }

    fn failed(&self, message: String) -> ConnectorError {
        ConnectorError::Failed {
            peer: self.base_url.clone(),
            message,
        }
    }

    fn garbage(&self, message: String) -> ConnectorError {
        ConnectorError::BadAnswer {
            peer: self.base_url.clone(),
            message,
        }
    }

    /// One JSON-RPC call; returns `result`.
    async fn call(
        &self,
        endpoint: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, ConnectorError> {
        let body = json!({"jsonrpc": "2.0", "id": Uuid::now_v7().to_string(), "method": method, "params": params});
        let response = self
            .client
            .post(endpoint)
            .header("A2A-Version", "1.0")
            .json(&body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport(endpoint, self.timeout, &e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| transport(endpoint, self.timeout, &e))?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| {
            let snippet: String = text.chars().take(200).collect();
            self.garbage(format!("HTTP {status}, not JSON-RPC: {snippet:?}"))
        })?;
        if let Some(error) = answer.get("error") {
            let code = error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(self.failed(format!("{method}: error {code}: {message}")));
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| self.garbage(format!("{method}: the answer has no result")))
    }
}

/// The URL of the card's JSON-RPC interface (or of the card itself, as
/// 0.3 cards had it).
fn jsonrpc_endpoint(card: &Value) -> Option<String> {
    card.get("supportedInterfaces")
        .and_then(Value::as_array)
        .and_then(|interfaces| {
            interfaces.iter().find(|i| {
                i.get("protocolBinding")
                    .and_then(Value::as_str)
                    .is_some_and(|b| b.eq_ignore_ascii_case("JSONRPC"))
            })
        })
        .and_then(|i| i.get("url"))
        .or_else(|| card.get("url"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The first JSON object among `parts`: a data part, or a text part that
/// holds JSON.
fn answer_in(parts: Option<&Value>) -> Option<Value> {
    let parts = parts?.as_array()?;
    parts
        .iter()
        .find_map(|p| p.get("data").filter(|d| d.is_object()).cloned())
        .or_else(|| {
            parts.iter().find_map(|p| {
                p.get("text")
                    .and_then(Value::as_str)
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
                    .filter(Value::is_object)
            })
        })
}

/// What the agent said in words, for an error.
fn words(message: Option<&Value>) -> Option<String> {
    let parts = message?.get("parts")?.as_array()?;
    let text: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    (!text.is_empty()).then(|| text.join(" "))
}

#[async_trait]
impl Agent for A2aAgent {
    async fn ask(&self, task: &Value) -> Result<Value, ConnectorError> {
        let endpoint = self.discover().await?;
        let params = json!({
            "message": {
                "messageId": Uuid::now_v7().to_string(),
                "role": "ROLE_USER",
                "parts": [{"data": task, "mediaType": "application/json"}],
            },
            "configuration": {"acceptedOutputModes": ["application/json", "text/plain"]},
        });
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut result = self.call(&endpoint, "SendMessage", params).await?;
        loop {
            if let Some(message) = result.get("message") {
                return answer_in(message.get("parts"))
                    .ok_or_else(|| self.garbage("the reply holds no JSON object".into()));
            }
            let Some(task) = result.get("task") else {
                return Err(self.garbage("the result is neither a message nor a task".into()));
            };
            let status = task.get("status");
            let state = status
                .and_then(|s| s.get("state"))
                .and_then(Value::as_str)
                .unwrap_or("TASK_STATE_UNSPECIFIED");
            match state {
                "TASK_STATE_COMPLETED" => {
                    let from_artifacts = task
                        .get("artifacts")
                        .and_then(Value::as_array)
                        .and_then(|a| a.iter().find_map(|a| answer_in(a.get("parts"))));
                    return from_artifacts
                        .or_else(|| {
                            answer_in(
                                status
                                    .and_then(|s| s.get("message"))
                                    .and_then(|m| m.get("parts")),
                            )
                        })
                        .ok_or_else(|| {
                            self.garbage("the completed task holds no JSON object".into())
                        });
                }
                "TASK_STATE_SUBMITTED" | "TASK_STATE_WORKING" => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ConnectorError::Timeout {
                            peer: self.base_url.clone(),
                            after: self.timeout,
                        });
                    }
                    tokio::time::sleep(TASK_POLL).await;
                    let id = task.get("id").cloned().unwrap_or(Value::Null);
                    result =
                        json!({"task": self.call(&endpoint, "GetTask", json!({"id": id})).await?});
                }
                other => {
                    let said = words(status.and_then(|s| s.get("message")))
                        .unwrap_or_else(|| "no reason given".into());
                    let what = other
                        .strip_prefix("TASK_STATE_")
                        .unwrap_or(other)
                        .to_lowercase()
                        .replace('_', "-");
                    return Err(self.failed(format!("task {what}: {said}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_jsonrpc_interface() {
        let card = json!({"supportedInterfaces": [
            {"url": "http://x/grpc", "protocolBinding": "GRPC"},
            {"url": "http://x/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ]});
        assert_eq!(jsonrpc_endpoint(&card).as_deref(), Some("http://x/"));
        assert_eq!(
            jsonrpc_endpoint(&json!({"url": "http://old/"})).as_deref(),
            Some("http://old/")
        );
        assert_eq!(jsonrpc_endpoint(&json!({})), None);
    }

    #[test]
    fn answers_are_data_parts_or_json_text() {
        let parts = json!([{"text": "hello"}, {"data": {"a": 1.0}}]);
        assert_eq!(answer_in(Some(&parts)), Some(json!({"a": 1.0})));
        let parts = json!([{"text": "{\"b\": 2}"}]);
        assert_eq!(answer_in(Some(&parts)), Some(json!({"b": 2})));
        assert_eq!(answer_in(Some(&json!([{"text": "no"}]))), None);
    }
}

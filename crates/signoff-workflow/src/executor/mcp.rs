//! An executor that is a tool of an MCP server, called through the official
//! Rust SDK (rmcp): a server started as a child process over stdio, or one
//! reached over streamable HTTP.
//!
//! One connection per execution: an execution is rare (one per approval),
//! and a fresh session means a crashed or restarted server costs nothing
//! but that call. Each call initializes, checks the tool exists, calls it,
//! and closes. A result with `isError` is a failure carrying the tool's
//! message; `structuredContent` (or else the text, parsed as JSON when it
//! is JSON) is the result.

use std::time::Duration;

use async_trait::async_trait;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Map, Value, json};

use crate::config::McpArguments;
use crate::process::Program;
use crate::{ConnectorError, Executor};

/// How to reach the server.
#[derive(Debug, Clone)]
pub enum McpServer {
    /// A child process speaking MCP on stdin/stdout.
    Stdio(Program),
    /// A streamable HTTP endpoint.
    Http(String),
}

/// An `mcp` executor.
#[derive(Debug, Clone)]
pub struct McpExecutor {
    /// Where the server is.
    pub server: McpServer,
    /// The tool to call.
    pub tool: String,
    /// What the tool receives.
    pub arguments: McpArguments,
    /// Also pass `idempotency_key` to the tool.
    pub pass_idempotency_key: bool,
    /// How long the whole call may take.
    pub timeout: Duration,
}

impl McpExecutor {
    fn peer(&self) -> String {
        match &self.server {
            McpServer::Stdio(program) => program.name(),
            McpServer::Http(url) => url.clone(),
        }
    }

    fn arguments(&self, action: &Value, key: &str) -> Map<String, Value> {
        let mut arguments = match self.arguments {
            McpArguments::Changes => {
                let mut arguments = Map::new();
                let changes = action.get("changes").cloned().unwrap_or(Value::Null);
                arguments.insert("changes".into(), changes);
                arguments
            }
            McpArguments::Whole => action.as_object().cloned().unwrap_or_default(),
        };
        if self.pass_idempotency_key {
            arguments.insert("idempotency_key".into(), Value::from(key));
        }
        arguments
    }

    async fn call(&self, arguments: Map<String, Value>) -> Result<Value, ConnectorError> {
        let peer = self.peer();
        let unreachable = |message: String| ConnectorError::Unreachable {
            peer: peer.clone(),
            message,
        };
        let client = match &self.server {
            McpServer::Stdio(program) => {
                let Some((name, args)) = program.argv.split_first() else {
                    return Err(unreachable("the command is empty".into()));
                };
                let mut command = tokio::process::Command::new(name);
                command.args(args).envs(&program.env);
                let transport = TokioChildProcess::new(command)
                    .map_err(|e| unreachable(format!("cannot start it: {e}")))?;
                ().serve(transport)
                    .await
                    .map_err(|e| unreachable(format!("MCP initialization failed: {e}")))?
            }
            McpServer::Http(url) => {
                let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                ().serve(transport)
                    .await
                    .map_err(|e| unreachable(format!("MCP initialization failed: {e}")))?
            }
        };
        let outcome = async {
            let tools = client
                .list_all_tools()
                .await
                .map_err(|e| ConnectorError::BadAnswer {
                    peer: peer.clone(),
                    message: format!("tools/list failed: {e}"),
                })?;
            if !tools.iter().any(|t| t.name == self.tool.as_str()) {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
                return Err(ConnectorError::Failed {
                    peer: peer.clone(),
                    message: format!(
                        "the server has no tool named '{}' (it has: {})",
                        self.tool,
                        names.join(", ")
                    ),
                });
            }
            let params = CallToolRequestParams::new(self.tool.clone()).with_arguments(arguments);
            let result = client
                .call_tool(params)
                .await
                .map_err(|e| ConnectorError::Failed {
                    peer: peer.clone(),
                    message: format!("tools/call failed: {e}"),
                })?;
            serde_json::to_value(&result).map_err(|e| ConnectorError::BadAnswer {
                peer: peer.clone(),
                message: format!("unreadable tool result: {e}"),
            })
        }
        .await;
        // Close the session (and the child) whatever happened.
        let _ = client.cancel().await;
        tool_result(&peer, outcome?)
    }
}

/// The tool's result as the run records it, or its error.
fn tool_result(peer: &str, result: Value) -> Result<Value, ConnectorError> {
    let text: Vec<&str> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let text = text.join("\n");
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(ConnectorError::Failed {
            peer: peer.to_owned(),
            message: if text.is_empty() {
                "the tool reported an error".into()
            } else {
                text
            },
        });
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        return Ok(structured.clone());
    }
    Ok(serde_json::from_str(&text).unwrap_or_else(|_| json!({"text": text})))
}

#[async_trait]
impl Executor for McpExecutor {
    async fn execute(
        &self,
        action: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ConnectorError> {
        let arguments = self.arguments(action, idempotency_key);
        match tokio::time::timeout(self.timeout, self.call(arguments)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::Timeout {
                peer: self.peer(),
                after: self.timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_errors_and_results() {
        let error = tool_result(
            "p",
            json!({"content": [{"type": "text", "text": "bad changes"}], "isError": true}),
        );
        assert!(
            matches!(error, Err(ConnectorError::Failed { message, .. }) if message == "bad changes")
        );
        let ok = tool_result(
            "p",
            json!({"content": [], "structuredContent": {"applied": true}}),
        );
        assert_eq!(ok.ok(), Some(json!({"applied": true})));
        let ok = tool_result(
            "p",
            json!({"content": [{"type": "text", "text": "{\"a\":1}"}]}),
        );
        assert_eq!(ok.ok(), Some(json!({"a": 1})));
        let ok = tool_result("p", json!({"content": [{"type": "text", "text": "done"}]}));
        assert_eq!(ok.ok(), Some(json!({"text": "done"})));
    }

    #[test]
    fn arguments_follow_the_configuration() {
        let executor = McpExecutor {
            server: McpServer::Http("http://x".into()),
            tool: "apply_changes".into(),
            arguments: McpArguments::Changes,
            pass_idempotency_key: true,
            timeout: Duration::from_secs(1),
        };
        let action = json!({"title": "t", "changes": {"max": 5}});
        assert_eq!(
            Value::Object(executor.arguments(&action, "k")),
            json!({"changes": {"max": 5}, "idempotency_key": "k"})
        );
        let whole = McpExecutor {
            arguments: McpArguments::Whole,
            pass_idempotency_key: false,
            ..executor
        };
        assert_eq!(Value::Object(whole.arguments(&action, "k")), action);
    }
}

//! An executor that is a tool of an MCP server, called through the official
//! Rust SDK (rmcp): a server started as a child process over stdio, or one
//! reached over streamable HTTP.
//!
//! One session per execution, not a kept-alive connection: an execution is
//! rare (one per approval), and a fresh session means a crashed, restarted
//! or stuck server costs that one call and nothing after it; there is no
//! reconnect logic to get wrong and no child left running between
//! approvals. Each execution initializes, lists the tools (a missing tool
//! is a clear [`ConnectorError::Failed`], not a JSON-RPC error from deep
//! inside the call), calls the tool, and closes the session (for stdio:
//! stdin closed, the child given a moment to exit, then killed).
//!
//! A result with `isError` is a failure carrying the tool's message; the
//! result is otherwise `structuredContent`, or else the text content,
//! parsed as JSON when it is JSON and kept as a string when not.
//!
//! A stdio child does not inherit the server's environment (which may hold
//! database URLs and tokens): like the official SDKs' stdio clients, it gets
//! only `HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM` and `USER`, plus the
//! variables its configuration names. Its stderr is kept (the last
//! [`STDERR_TAIL`] characters) so that a server that dies says why.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, Implementation,
    InitializeRequestParams,
};
use rmcp::service::{ClientInitializeError, RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ServiceError, ServiceExt};
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::McpArguments;
use crate::process::Program;
use crate::{ConnectorError, Executor};

/// The variables a stdio child inherits from the server, as the official
/// SDKs' stdio clients pass them on Unix; everything else must be
/// configured.
pub const INHERITED_ENV: [&str; 6] = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

/// The most of a child's stderr kept for error messages.
pub const STDERR_TAIL: usize = 2000;

/// How long closing a session may take once the work is done. Closing
/// never changes the outcome; past this the child is killed in the
/// background.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long to wait for a dead child's last words on stderr.
const STDERR_SETTLE: Duration = Duration::from_millis(500);

/// A connected MCP session.
type Session = RunningService<RoleClient, InitializeRequestParams>;

/// How to reach the server.
#[derive(Debug, Clone)]
pub enum McpServer {
    /// A child process speaking MCP on stdin/stdout. Its `env` is all it
    /// gets besides [`INHERITED_ENV`]; its own `timeout` is not used (the
    /// executor's is).
    Stdio(Program),
    /// A streamable HTTP endpoint (the URL of its MCP path, such as
    /// `http://127.0.0.1:8000/mcp`).
    Http(String),
}

/// An `mcp` executor: calls one tool of one server per execution.
#[derive(Debug, Clone)]
pub struct McpExecutor {
    /// Where the server is.
    pub server: McpServer,
    /// The tool to call.
    pub tool: String,
    /// What the tool receives.
    pub arguments: McpArguments,
    /// Also pass the idempotency key to the tool, as the argument
    /// `idempotency_key` (only for tools that declare it: a strict tool
    /// would refuse an argument it does not know).
    pub pass_idempotency_key: bool,
    /// How long connecting, listing the tools and calling the tool may take
    /// together.
    pub timeout: Duration,
}

impl McpExecutor {
    fn peer(&self) -> String {
        match &self.server {
            McpServer::Stdio(program) => program.name(),
            McpServer::Http(url) => url.clone(),
        }
    }

    /// The tool's arguments for `action`, as configured.
    fn arguments(&self, action: &Value, key: &str) -> Map<String, Value> {
        let mut arguments = match self.arguments {
            McpArguments::Changes => {
                let changes = action.get("changes").cloned().unwrap_or(Value::Null);
                Map::from_iter([("changes".to_owned(), changes)])
            }
            McpArguments::Whole => action.as_object().cloned().unwrap_or_default(),
        };
        if self.pass_idempotency_key {
            arguments.insert("idempotency_key".into(), Value::from(key));
        }
        arguments
    }

    /// Starts or reaches the server and initializes a session.
    async fn connect(&self, peer: &str) -> Result<(Session, Option<StderrTail>), ConnectorError> {
        let info = InitializeRequestParams::new(
            ClientCapabilities::default(),
            Implementation::new("signoff", env!("CARGO_PKG_VERSION")),
        );
        match &self.server {
            McpServer::Stdio(program) => {
                let (transport, stderr) = spawn(program).map_err(|e| unreachable(peer, e))?;
                let stderr = StderrTail::collect(stderr, peer);
                match info.serve(transport).await {
                    Ok(session) => Ok((session, Some(stderr))),
                    Err(error) => {
                        let said = stderr.settled().await;
                        Err(initialize_error(peer, &error, &said))
                    }
                }
            }
            McpServer::Http(url) => {
                let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                match info.serve(transport).await {
                    Ok(session) => Ok((session, None)),
                    Err(error) => Err(initialize_error(peer, &error, "")),
                }
            }
        }
    }

    /// Lists the tools, checks ours is there, and calls it.
    async fn call(
        &self,
        session: &Session,
        peer: &str,
        arguments: Map<String, Value>,
    ) -> Result<CallToolResult, ConnectorError> {
        let tools = session
            .list_all_tools()
            .await
            .map_err(|e| service_error(peer, "tools/list", e))?;
        if !tools.iter().any(|t| t.name == self.tool.as_str()) {
            let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
            return Err(ConnectorError::Failed {
                peer: peer.to_owned(),
                message: format!(
                    "the server has no tool named '{}' (it has: {})",
                    self.tool,
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            });
        }
        let params = CallToolRequestParams::new(self.tool.clone()).with_arguments(arguments);
        session
            .call_tool(params)
            .await
            .map_err(|e| service_error(peer, "tools/call", e))
    }
}

#[async_trait]
impl Executor for McpExecutor {
    async fn execute(
        &self,
        action: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ConnectorError> {
        let peer = self.peer();
        let arguments = self.arguments(action, idempotency_key);
        let timed_out = || ConnectorError::Timeout {
            peer: peer.clone(),
            after: self.timeout,
        };
        let deadline = Instant::now() + self.timeout;
        // A timeout while connecting drops the half-made session, which
        // kills the child.
        let (mut session, stderr) = tokio::time::timeout_at(deadline, self.connect(&peer))
            .await
            .map_err(|_| timed_out())??;
        let outcome = tokio::time::timeout_at(deadline, self.call(&session, &peer, arguments))
            .await
            .map_err(|_| timed_out())
            .and_then(|result| result);
        // Closed outside the deadline: the tool's answer stands whatever
        // closing does.
        if let Ok(None) | Err(_) = session.close_with_timeout(CLOSE_GRACE).await {
            tracing::debug!(
                peer,
                "the MCP session did not close in time; left to be killed"
            );
        }
        match outcome {
            Ok(result) => tool_result(&peer, result),
            Err(ConnectorError::Unreachable { peer, message }) => {
                // The child may have said why it went away.
                let said = match stderr {
                    Some(stderr) => stderr.settled().await,
                    None => String::new(),
                };
                Err(ConnectorError::Unreachable {
                    peer,
                    message: with_stderr(message, &said),
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// Spawns a stdio server with its configured environment only.
fn spawn(program: &Program) -> Result<(TokioChildProcess, Option<ChildStderr>), String> {
    let Some((name, args)) = program.argv.split_first() else {
        return Err("the command is empty".into());
    };
    let mut command = tokio::process::Command::new(name);
    command.args(args).env_clear().kill_on_drop(true);
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command.envs(&program.env);
    TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))
}

/// The tool's result as the run records it, or its error.
fn tool_result(peer: &str, result: CallToolResult) -> Result<Value, ConnectorError> {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|block| block.as_text())
        .map(|block| block.text.as_str())
        .collect();
    let text = text.join("\n");
    if result.is_error == Some(true) {
        return Err(ConnectorError::Failed {
            peer: peer.to_owned(),
            message: if text.is_empty() {
                "the tool reported an error without a message".into()
            } else {
                text
            },
        });
    }
    if let Some(structured) = result.structured_content {
        return Ok(structured);
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn unreachable(peer: &str, message: String) -> ConnectorError {
    ConnectorError::Unreachable {
        peer: peer.to_owned(),
        message,
    }
}

/// A failed `initialize`: no connection or a dead child is unreachable, an
/// answer that is not MCP is garbage.
fn initialize_error(peer: &str, error: &ClientInitializeError, stderr: &str) -> ConnectorError {
    let message = with_stderr(format!("MCP initialization failed: {error}"), stderr);
    let mut cause = error;
    while let ClientInitializeError::LegacyFallbackFailed { fallback, .. } = cause {
        cause = fallback;
    }
    match cause {
        ClientInitializeError::ConnectionClosed(_)
        | ClientInitializeError::TransportError { .. }
        | ClientInitializeError::Cancelled => unreachable(peer, message),
        _ => ConnectorError::BadAnswer {
            peer: peer.to_owned(),
            message,
        },
    }
}

/// A failed request inside a session. A JSON-RPC error is the server's own
/// answer (Failed); a lost connection is Unreachable, though a `tools/call`
/// in flight may or may not have run.
fn service_error(peer: &str, method: &str, error: ServiceError) -> ConnectorError {
    match error {
        ServiceError::McpError(error) => ConnectorError::Failed {
            peer: peer.to_owned(),
            message: format!("{method} failed: {}", error.message),
        },
        ServiceError::TransportSend(_) | ServiceError::TransportClosed => unreachable(
            peer,
            format!(
                "lost the connection during {method} ({error}); the tool may or may not have run"
            ),
        ),
        error => ConnectorError::BadAnswer {
            peer: peer.to_owned(),
            message: format!("{method} failed: {error}"),
        },
    }
}

fn with_stderr(message: String, stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        message
    } else {
        format!("{message}; its stderr ends with: {stderr}")
    }
}

/// A child's stderr, read as it comes (so a chatty child never blocks on a
/// full pipe), logged at debug level, and its tail kept.
struct StderrTail {
    tail: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl StderrTail {
    fn collect(stderr: Option<ChildStderr>, peer: &str) -> Self {
        let tail = Arc::new(Mutex::new(String::new()));
        let reader = stderr.map(|mut stderr| {
            let tail = tail.clone();
            let peer = peer.to_owned();
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
                    let text = String::from_utf8_lossy(&chunk[..n]);
                    tracing::debug!(peer, stderr = %text.trim_end(), "MCP server stderr");
                    let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    tail.push_str(&text);
                    let excess = tail.chars().count().saturating_sub(STDERR_TAIL);
                    if excess > 0 {
                        *tail = tail.chars().skip(excess).collect();
                    }
                }
            })
        });
        Self { tail, reader }
    }

    /// The tail, once the child closed its stderr (or after a short wait).
    async fn settled(mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(STDERR_SETTLE, reader).await;
        }
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.clone()
    }
}

impl Drop for StderrTail {
    fn drop(&mut self) {
        // The reader ends by itself when the child is gone; this only
        // stops it early when the tail is no longer wanted.
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(wire: Value) -> CallToolResult {
        serde_json::from_value(wire).unwrap_or_else(|e| panic!("not a CallToolResult: {e}"))
    }

    #[test]
    fn tool_errors_and_results() {
        let error = tool_result(
            "p",
            result(json!({"content": [{"type": "text", "text": "bad changes"}], "isError": true})),
        );
        assert!(
            matches!(error, Err(ConnectorError::Failed { message, .. }) if message == "bad changes")
        );
        let ok = tool_result(
            "p",
            result(json!({
                "content": [{"type": "text", "text": "{\"applied\": true}"}],
                "structuredContent": {"applied": true, "from": "structured"}
            })),
        );
        assert_eq!(
            ok.ok(),
            Some(json!({"applied": true, "from": "structured"}))
        );
        let ok = tool_result(
            "p",
            result(json!({"content": [{"type": "text", "text": "{\"a\":1}"}]})),
        );
        assert_eq!(ok.ok(), Some(json!({"a": 1})));
        let ok = tool_result(
            "p",
            result(json!({"content": [{"type": "text", "text": "done"}]})),
        );
        assert_eq!(ok.ok(), Some(json!("done")));
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

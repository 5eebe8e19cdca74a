//! The policy store as an MCP server over stdio (rmcp): one tool,
//! `apply_changes`, merges approved changes into the JSON policy file named
//! by POLICY_FILE (default `./policy.json`, created if missing) and appends
//! one line per application to `POLICY_FILE.log`. A repeated idempotency
//! key returns the first result without applying again.
//!
//! Bad input (changes that are not an object, a non-positive amount, a
//! policy file that is not a JSON object) is a tool result with `isError`,
//! never a JSON-RPC error or a crash, so Signoff records the reason.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

/// The tool's arguments. `changes` is taken as any JSON value so that a
/// wrong type reaches [`PolicyStore::apply`] and becomes a tool error
/// (a typed field would make rmcp answer with a JSON-RPC error instead).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct ApplyChanges {
    /// The keys of the policy to set, e.g.
    /// `{"max_amount_without_approval": 5000, "approval_chain": ["manager", "finance", "cfo"]}`.
    #[serde(default)]
    #[schemars(with = "Map<String, Value>")]
    changes: Value,
    /// Signoff's key for this approval; a repeat is not applied twice.
    idempotency_key: Option<String>,
}

/// The server: where the policy lives, and the tools it offers.
#[derive(Clone)]
struct PolicyStore {
    file: PathBuf,
    /// One application at a time: the replay check, the merge and the log
    /// line must not interleave between two concurrent calls.
    lock: Arc<Mutex<()>>,
    #[allow(dead_code)] // read by the code #[tool_handler] generates
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl PolicyStore {
    fn new(file: PathBuf) -> Self {
        Self {
            file,
            lock: Arc::new(Mutex::new(())),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Apply approved changes to the expense approval policy. Each key of `changes` replaces that key of the policy; a repeated idempotency_key returns the earlier result without applying again."
    )]
    async fn apply_changes(
        &self,
        Parameters(request): Parameters<ApplyChanges>,
    ) -> Result<CallToolResult, ErrorData> {
        let _one_at_a_time = self.lock.lock().await;
        Ok(match self.apply(request) {
            Ok(result) => CallToolResult::structured(result),
            Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        })
    }
}

impl PolicyStore {
    /// `POLICY_FILE.log`: one JSON line per application.
    fn log_file(&self) -> PathBuf {
        let mut name = self.file.clone().into_os_string();
        name.push(".log");
        PathBuf::from(name)
    }

    /// Applies `request`, or replays the result of its idempotency key.
    fn apply(&self, request: ApplyChanges) -> Result<Value, String> {
        let Value::Object(changes) = request.changes else {
            return Err(format!(
                "changes must be a JSON object of policy keys, not {}",
                kind(&request.changes)
            ));
        };
        if let Some(amount) = changes.get("max_amount_without_approval")
            && amount.as_f64().is_none_or(|a| a <= 0.0)
        {
            return Err(format!(
                "max_amount_without_approval must be a positive number, not {amount}"
            ));
        }
        if let Some(key) = &request.idempotency_key
            && let Some(earlier) = self.earlier_result(key)?
        {
            return Ok(json!({"applied": false, "replayed": true, "policy": earlier}));
        }
        let mut policy = self.read_policy()?;
        policy_update_example::merge(&mut policy, &changes);
        let policy = Value::Object(policy);
        write_atomically(&self.file, &policy)?;
        let entry = json!({
            "idempotency_key": request.idempotency_key,
            "changes": changes,
            "policy": policy,
        });
        self.append_log(&entry)?;
        Ok(json!({"applied": true, "policy": policy}))
    }

    /// The policy an earlier application with `key` produced, if any.
    fn earlier_result(&self, key: &str) -> Result<Option<Value>, String> {
        let log = match std::fs::read_to_string(self.log_file()) {
            Ok(log) => log,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("cannot read the log: {error}")),
        };
        Ok(log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|entry| entry["idempotency_key"].as_str() == Some(key))
            .map(|entry| entry["policy"].clone()))
    }

    /// The current policy; an absent file is an empty policy.
    fn read_policy(&self) -> Result<Map<String, Value>, String> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(error) => return Err(format!("cannot read {}: {error}", self.file.display())),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(policy)) => Ok(policy),
            _ => Err(format!("{} is not a JSON object", self.file.display())),
        }
    }

    fn append_log(&self, entry: &Value) -> Result<(), String> {
        let cannot = |error: std::io::Error| format!("cannot write the log: {error}");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .map_err(cannot)?;
        // One write per line, so a reader never sees half an entry.
        log.write_all(format!("{entry}\n").as_bytes())
            .map_err(cannot)?;
        log.sync_all().map_err(cannot)
    }
}

/// Writes `policy` to a temporary file beside `file` and renames it over
/// `file`: a crash leaves the old policy or the new one, never half of one.
fn write_atomically(file: &Path, policy: &Value) -> Result<(), String> {
    let cannot = |error: std::io::Error| format!("cannot write {}: {error}", file.display());
    let text = serde_json::to_string_pretty(policy).map_err(|e| e.to_string())?;
    let mut temporary = file.to_path_buf().into_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut out = std::fs::File::create(&temporary).map_err(cannot)?;
    out.write_all(format!("{text}\n").as_bytes())
        .map_err(cannot)?;
    out.sync_all().map_err(cannot)?;
    std::fs::rename(&temporary, file).map_err(cannot)
}

/// "a string", "null": what a JSON value is, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null (or missing)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[tool_handler]
impl ServerHandler for PolicyStore {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Applies approved changes to the expense approval policy.")
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let file =
        std::env::var_os("POLICY_FILE").map_or_else(|| PathBuf::from("policy.json"), PathBuf::from);
    let service = PolicyStore::new(file)
        .serve(rmcp::transport::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}

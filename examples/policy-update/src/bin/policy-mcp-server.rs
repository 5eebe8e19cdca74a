//! The policy store as an MCP server over stdio (rmcp): one tool,
//! `apply_changes`, merges approved changes into the JSON policy file named
//! by POLICY_FILE (default `policy.json`) and appends what it did to
//! `POLICY_FILE.log`. A repeated idempotency key returns the first result
//! without applying again.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

/// The tool's arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct ApplyChanges {
    /// The keys of the policy to set.
    changes: Map<String, Value>,
    /// Signoff's key for this approval; a repeat is not applied twice.
    idempotency_key: Option<String>,
}

#[derive(Clone)]
struct PolicyStore {
    file: PathBuf,
    // One change at a time: read, merge, write.
    lock: Arc<Mutex<()>>,
    #[allow(dead_code)] // read by the tool_handler macro
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

    #[tool(description = "Apply approved changes to the expense approval policy")]
    async fn apply_changes(
        &self,
        Parameters(request): Parameters<ApplyChanges>,
    ) -> Result<CallToolResult, ErrorData> {
        let _one_at_a_time = self.lock.lock().await;
        match self.apply(request) {
            Ok(result) => Ok(CallToolResult::structured(result)),
            Err(message) => Ok(CallToolResult::error(vec![ContentBlock::text(message)])),
        }
    }
}

impl PolicyStore {
    fn log_file(&self) -> PathBuf {
        let mut name = self.file.clone().into_os_string();
        name.push(".log");
        PathBuf::from(name)
    }

    fn apply(&self, request: ApplyChanges) -> Result<Value, String> {
        if let Some(amount) = request.changes.get("max_amount_without_approval")
            && amount.as_f64().is_none_or(|a| a <= 0.0)
        {
            return Err("max_amount_without_approval must be a positive number".into());
        }
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        if let Some(key) = &request.idempotency_key {
            let earlier = log
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|entry| entry["idempotency_key"].as_str() == Some(key.as_str()));
            if let Some(entry) = earlier {
                return Ok(json!({"applied": false, "replayed": true, "policy": entry["policy"]}));
            }
        }
        let mut policy = match std::fs::read_to_string(&self.file) {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(policy)) => policy,
                _ => return Err(format!("{} is not a JSON object", self.file.display())),
            },
            Err(_) => Map::new(),
        };
        policy_update_example::merge(&mut policy, &request.changes);
        let policy = Value::Object(policy);
        let text = serde_json::to_string_pretty(&policy).map_err(|e| e.to_string())?;
        std::fs::write(&self.file, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", self.file.display()))?;
        let entry = json!({
            "idempotency_key": request.idempotency_key,
            "changes": request.changes,
            "policy": policy,
        });
        let mut log = log;
        log.push_str(&entry.to_string());
        log.push('\n');
        std::fs::write(self.log_file(), log).map_err(|e| format!("cannot write the log: {e}"))?;
        Ok(json!({"applied": true, "policy": policy}))
    }
}

#[tool_handler]
impl ServerHandler for PolicyStore {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
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

//! An executor that is a program: `{"action", "idempotency_key"}` on its
//! stdin (and the key in `SIGNOFF_IDEMPOTENCY_KEY`), its result on stdout.

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::process::Program;
use crate::{ConnectorError, Executor};

/// A `command` executor.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    /// What to run.
    pub program: Program,
}

#[async_trait]
impl Executor for CommandExecutor {
    async fn execute(
        &self,
        action: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ConnectorError> {
        let input = json!({"action": action, "idempotency_key": idempotency_key});
        let stdout = self
            .program
            .run(&input, &[("SIGNOFF_IDEMPOTENCY_KEY", idempotency_key)])
            .await?;
        // Whatever the program printed is its result; JSON when it is JSON.
        Ok(serde_json::from_str(stdout.trim()).unwrap_or_else(|_| json!({"stdout": stdout})))
    }
}

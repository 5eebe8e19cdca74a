//! An executor that is a program: `{"action", "idempotency_key"}` as JSON on
//! its stdin, the key also in `SIGNOFF_IDEMPOTENCY_KEY`, its result on
//! stdout.
//!
//! Each execution starts the program once ([`Program::run`]): stdin is
//! closed after the input, a non-zero exit is [`ConnectorError::Failed`]
//! with the end of its stderr, and past the timeout the program is killed
//! and the execution is [`ConnectorError::Timeout`]. Stdout that is JSON is
//! the result; anything else is kept as `{"stdout": <text>}`.

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::process::Program;
use crate::{ConnectorError, Executor};

/// The environment variable that carries the idempotency key.
pub const IDEMPOTENCY_KEY_VAR: &str = "SIGNOFF_IDEMPOTENCY_KEY";

/// A `command` executor.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    /// What to run, with its extra environment and its timeout.
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
            .run(&input, &[(IDEMPOTENCY_KEY_VAR, idempotency_key)])
            .await?;
        Ok(serde_json::from_str(stdout.trim()).unwrap_or_else(|_| json!({"stdout": stdout})))
    }
}

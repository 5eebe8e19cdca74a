//! An agent that is a program: the JSON task on its stdin, the JSON answer
//! on its stdout. Any script or LLM command-line tool becomes an agent.

use async_trait::async_trait;
use serde_json::Value;

use crate::process::{Program, json_object};
use crate::{Agent, ConnectorError};

/// A `command` agent.
#[derive(Debug, Clone)]
pub struct CommandAgent {
    /// What to run.
    pub program: Program,
}

#[async_trait]
impl Agent for CommandAgent {
    async fn ask(&self, task: &Value) -> Result<Value, ConnectorError> {
        let stdout = self.program.run(task, &[]).await?;
        json_object(&self.program.name(), &stdout)
    }
}

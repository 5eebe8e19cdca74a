//! Builds the connectors a configuration names: one [`Agent`] per agent
//! and one [`Executor`] per executor, shared by the workflows that use them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::agent::{A2aAgent, CommandAgent, HttpAgent};
use crate::config::{AgentConfig, Config, ConfigError, ExecutorConfig, Problem, timeout};
use crate::engine::Workflow;
use crate::executor::{CommandExecutor, HttpExecutor, McpExecutor, McpServer};
use crate::process::Program;
use crate::{Agent, Executor};

/// The configured workflows with their agents and executors. `config` has
/// been checked by [`Config::parse`]; `path` only names it in errors.
pub fn build(config: &Config, path: &Path) -> Result<Vec<Workflow>, ConfigError> {
    let client = reqwest::Client::new();
    let agents: BTreeMap<&str, Arc<dyn Agent>> = config
        .agents
        .iter()
        .map(|(name, agent)| (name.as_str(), agent_of(&agent.value, &client)))
        .collect();
    let executors: BTreeMap<&str, Arc<dyn Executor>> = config
        .executors
        .iter()
        .map(|(name, executor)| (name.as_str(), executor_of(&executor.value, &client)))
        .collect();
    let missing = |what: &str, name: &str| ConfigError {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            column: 0,
            message: format!("{what} '{name}' is not declared"),
        }],
    };
    config
        .workflows
        .iter()
        .map(|(name, workflow)| {
            let workflow = &workflow.value;
            let drafter = agents
                .get(workflow.draft_agent.value.as_str())
                .cloned()
                .ok_or_else(|| missing("agent", &workflow.draft_agent.value))?;
            let validator = match &workflow.validator_agent {
                Some(validator) => Some(
                    agents
                        .get(validator.value.as_str())
                        .cloned()
                        .ok_or_else(|| missing("agent", &validator.value))?,
                ),
                None => None,
            };
            let executor = executors
                .get(workflow.executor.value.as_str())
                .cloned()
                .ok_or_else(|| missing("executor", &workflow.executor.value))?;
            Ok(Workflow {
                name: name.clone(),
                drafter,
                validator,
                min_score: workflow.min_score,
                executor,
                max_retries: workflow.max_retries,
                expires_in: workflow.expires_in(),
                labels: workflow.labels.clone(),
            })
        })
        .collect()
}

fn agent_of(config: &AgentConfig, client: &reqwest::Client) -> Arc<dyn Agent> {
    match config {
        AgentConfig::A2a { url, timeout: t } => Arc::new(A2aAgent::new(
            url.clone(),
            timeout(t.as_deref()),
            client.clone(),
        )),
        AgentConfig::Command {
            command,
            env,
            timeout: t,
        } => Arc::new(CommandAgent {
            program: Program {
                argv: command.clone(),
                env: env.clone(),
                timeout: timeout(t.as_deref()),
            },
        }),
        AgentConfig::Http { url, timeout: t } => Arc::new(HttpAgent {
            url: url.clone(),
            timeout: timeout(t.as_deref()),
            client: client.clone(),
        }),
    }
}

fn executor_of(config: &ExecutorConfig, client: &reqwest::Client) -> Arc<dyn Executor> {
    match config {
        ExecutorConfig::Mcp {
            command,
            env,
            url,
            tool,
            arguments,
            pass_idempotency_key,
            timeout: t,
        } => {
            let server = match (command, url) {
                (Some(command), _) => McpServer::Stdio(Program {
                    argv: command.clone(),
                    env: env.clone(),
                    timeout: timeout(t.as_deref()),
                }),
                (None, url) => McpServer::Http(url.clone().unwrap_or_default()),
            };
            Arc::new(McpExecutor {
                server,
                tool: tool.clone(),
                arguments: *arguments,
                pass_idempotency_key: *pass_idempotency_key,
                timeout: timeout(t.as_deref()),
            })
        }
        ExecutorConfig::Http { url, timeout: t } => Arc::new(HttpExecutor {
            url: url.clone(),
            timeout: timeout(t.as_deref()),
            client: client.clone(),
        }),
        ExecutorConfig::Command {
            command,
            env,
            timeout: t,
        } => Arc::new(CommandExecutor {
            program: Program {
                argv: command.clone(),
                env: env.clone(),
                timeout: timeout(t.as_deref()),
            },
        }),
    }
}

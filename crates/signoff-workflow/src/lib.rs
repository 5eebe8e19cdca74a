//! The four-stage workflow of the guide (Draft, Validate, Approve, Execute)
//! and the connectors it talks through.
//!
//! An [`Agent`] answers a JSON task with a JSON answer: the drafter proposes
//! an action, the validator scores it. An [`Executor`] applies an approved
//! action. Each comes in several kinds (`agent::a2a`, `agent::command`,
//! `agent::http`; `executor::mcp`, `executor::command`, `executor::http`),
//! chosen in the configuration file. Every failure of a peer (down, slow,
//! garbage, an error it reports) is a [`ConnectorError`], which the workflow
//! records as the state of the run: a peer can never crash the server.
//!
//! Architecture invariant: this crate knows the store and the service, not
//! HTTP routing; connectors know their protocol, not the workflow.

pub mod agent;
pub mod config;
pub mod connectors;
pub mod engine;
pub mod executor;
mod http;
pub mod process;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

/// Why a call to an agent or an executor did not give a usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    /// The peer could not be reached or started (connection refused, DNS,
    /// no such program).
    #[error("{peer} is unreachable: {message}")]
    Unreachable {
        /// The peer, as configured (URL or program).
        peer: String,
        /// What went wrong.
        message: String,
    },
    /// No answer within the configured time.
    #[error("{peer} did not answer within {after:?}")]
    Timeout {
        /// The peer.
        peer: String,
        /// How long it was given.
        after: Duration,
    },
    /// An answer came but is not what the protocol promises (not JSON, not
    /// an object, a malformed JSON-RPC envelope).
    #[error("{peer} answered garbage: {message}")]
    BadAnswer {
        /// The peer.
        peer: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The peer answered and reported a failure: an A2A error or a task
    /// that `failed`, was `rejected` or needs input; an MCP tool result with
    /// `isError`; a command that exited non-zero; an HTTP error status.
    #[error("{peer} failed: {message}")]
    Failed {
        /// The peer.
        peer: String,
        /// Its own words, where it gave any.
        message: String,
    },
}

/// Something that answers a JSON task: a drafting or a validating agent.
#[async_trait]
pub trait Agent: Send + Sync {
    /// Sends `task` (a JSON object) and returns the agent's answer (a JSON
    /// object).
    async fn ask(&self, task: &Value) -> Result<Value, ConnectorError>;
}

/// Something that applies an approved action.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Applies `action`. `idempotency_key` is the same for every attempt to
    /// apply this one approval (the run and attempt), so an executor that
    /// passes it on lets its target drop a duplicate. Returns the
    /// executor's result, recorded on the run.
    async fn execute(&self, action: &Value, idempotency_key: &str)
    -> Result<Value, ConnectorError>;
}

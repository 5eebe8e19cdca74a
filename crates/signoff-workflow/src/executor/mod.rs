//! Executors: what applies an approved action. Each kind implements
//! [`crate::Executor`] and turns every way its peer can fail into a
//! [`crate::ConnectorError`]:
//!
//! - [`McpExecutor`]: a tool of an MCP server (stdio child or streamable
//!   HTTP), through the official Rust SDK;
//! - [`HttpExecutor`]: a webhook, with an `Idempotency-Key` header;
//! - [`CommandExecutor`]: a program, JSON on stdin and stdout.

pub mod command;
pub mod http;
pub mod mcp;

pub use command::CommandExecutor;
pub use http::HttpExecutor;
pub use mcp::{McpExecutor, McpServer};

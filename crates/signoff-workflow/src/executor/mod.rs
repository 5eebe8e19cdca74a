//! Executors: what applies an approved action.

pub mod command;
pub mod http;
pub mod mcp;

pub use command::CommandExecutor;
pub use http::HttpExecutor;
pub use mcp::{McpExecutor, McpServer};

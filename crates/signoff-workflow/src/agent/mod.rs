//! Agents: the drafter and the validator of a workflow.

pub mod a2a;
pub mod command;
pub mod http;

pub use a2a::A2aAgent;
pub use command::CommandAgent;
pub use http::HttpAgent;

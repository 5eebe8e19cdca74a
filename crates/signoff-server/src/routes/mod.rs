//! The HTTP routes. Each submodule is a family of thin handlers.

pub mod events;
pub mod guide;
pub mod meta;
pub mod runs;
pub mod tokens;
pub mod v1;
pub mod webhooks;

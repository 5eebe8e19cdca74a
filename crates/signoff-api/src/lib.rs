//! The JSON that crosses the wire: request and response bodies of `/v1` and
//! of the guide's `/approval` routes, with their OpenAPI schemas.
//!
//! Both the server (which answers with these) and the client (which reads
//! them) use this crate, so the two cannot drift apart.

pub mod guide;
pub mod runs;
pub mod tokens;
pub mod v1;
pub mod webhooks;

pub use runs::*;
pub use tokens::*;
pub use v1::*;
pub use webhooks::*;

//! Bodies of `/v1/tokens`: API tokens, for admins.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signoff_core::{Role, TokenRecord};
use utoipa::ToSchema;

use crate::v1::ExpiresIn;

/// A role on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleView {
    /// Creates requests and starts runs; reads its own.
    Agent,
    /// Reads everything; decides.
    Reviewer,
    /// Everything.
    Admin,
}

impl From<RoleView> for Role {
    fn from(role: RoleView) -> Self {
        match role {
            RoleView::Agent => Role::Agent,
            RoleView::Reviewer => Role::Reviewer,
            RoleView::Admin => Role::Admin,
        }
    }
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        match role {
            Role::Agent => RoleView::Agent,
            Role::Reviewer => RoleView::Reviewer,
            Role::Admin => RoleView::Admin,
        }
    }
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The identity's name (1 to 200 characters, not all white space).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub name: String,
    /// Its role.
    pub role: RoleView,
    /// Its groups (at most 32, each 1 to 100 characters).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub groups: Vec<String>,
    /// Lifetime; absent: until revoked.
    #[serde(default)]
    pub expires_in: Option<ExpiresIn>,
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Its public id.
    pub id: String,
    /// The identity's name.
    pub name: String,
    /// Its role.
    pub role: RoleView,
    /// Its groups.
    pub groups: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            role: t.role.into(),
            groups: t.groups,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// Answer to `POST /v1/tokens`: the only time the token is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token to send as `Authorization: Bearer`.
    pub token: String,
    /// What was stored.
    #[serde(flatten)]
    pub record: TokenView,
}

/// A list of tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    /// Oldest first.
    pub tokens: Vec<TokenView>,
}

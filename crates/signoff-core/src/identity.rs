//! Who is calling: API tokens, the identity they carry, and the roles that
//! say what an identity may do.
//!
//! A token reads `so_<id>_<secret>`. The id (12 hex digits) finds the stored
//! record; only the SHA-256 of the secret (32 random bytes, 64 hex digits)
//! is stored, and the secret is compared in constant time. A token is shown
//! once, when it is created.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::audit::Digest;

/// What an identity may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Proposes: creates requests, starts runs, reads and waits on its own.
    Agent,
    /// Decides: reads everything, approves and rejects.
    Reviewer,
    /// Everything, including tokens.
    Admin,
}

impl Role {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(name: &str) -> Option<Self> {
        [Role::Agent, Role::Reviewer, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name decisions and requests are recorded under.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Groups it belongs to (for approval policies).
    pub groups: Vec<String>,
}

impl Identity {
    /// Whether it may decide requests.
    pub fn can_decide(&self) -> bool {
        matches!(self.role, Role::Reviewer | Role::Admin)
    }

    /// Whether it may read every request (an agent reads its own).
    pub fn reads_all(&self) -> bool {
        matches!(self.role, Role::Reviewer | Role::Admin)
    }

    /// Whether it may propose (create requests, start runs).
    pub fn can_propose(&self) -> bool {
        matches!(self.role, Role::Agent | Role::Admin)
    }
}

/// A stored token: everything but the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// The public part of the token (12 hex digits).
    pub id: String,
    /// The identity's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its groups.
    pub groups: Vec<String>,
    /// SHA-256 of the secret.
    pub secret_hash: Digest,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// After this it is refused; `None`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a presented token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// Not a token of ours, or the secret does not match.
    #[error("invalid token")]
    Invalid,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Revoked.
    #[error("token revoked")]
    Revoked,
}

impl TokenRecord {
    /// A new token for `name`: the record to store and the token to show
    /// once. `random` must be 38 bytes from a cryptographic source (6 for
    /// the id, 32 for the secret).
    pub fn issue(
        name: String,
        role: Role,
        groups: Vec<String>,
        random: &[u8; 38],
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> (Self, String) {
        let id = hex(&random[..6]);
        let secret = hex(&random[6..]);
        let token = format!("so_{id}_{secret}");
        let record = Self {
            id,
            name,
            role,
            groups,
            secret_hash: secret_hash(&secret),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        (record, token)
    }

    /// Checks `secret` (the part after the id) at `now`.
    pub fn verify(&self, secret: &str, now: DateTime<Utc>) -> Result<Identity, TokenRefusal> {
        if !constant_time_eq(&secret_hash(secret).0, &self.secret_hash.0) {
            return Err(TokenRefusal::Invalid);
        }
        if self.revoked_at.is_some() {
            return Err(TokenRefusal::Revoked);
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            return Err(TokenRefusal::Expired);
        }
        Ok(Identity {
            name: self.name.clone(),
            role: self.role,
            groups: self.groups.clone(),
        })
    }
}

/// Splits a presented token into its id and secret.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("so_")?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 12) && hexish(secret, 64)).then_some((id, secret))
}

fn secret_hash(secret: &str) -> Digest {
    Digest(Sha256::digest(secret.as_bytes()).into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal in time that depends only on the length, not on where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(expires_at: Option<DateTime<Utc>>) -> (TokenRecord, String) {
        TokenRecord::issue(
            "alice".into(),
            Role::Reviewer,
            vec!["finance".into()],
            &[7; 38],
            Utc::now(),
            expires_at,
        )
    }

    #[test]
    fn a_token_verifies_and_carries_its_identity() {
        let (record, token) = issue(None);
        let (id, secret) = parse_token(&token).unwrap();
        assert_eq!(id, record.id);
        let identity = record.verify(secret, Utc::now()).unwrap();
        assert_eq!(identity.name, "alice");
        assert_eq!(identity.role, Role::Reviewer);
        assert!(identity.can_decide() && !identity.can_propose());
    }

    #[test]
    fn wrong_expired_and_revoked_tokens_are_refused() {
        let (record, token) = issue(Some(Utc::now() - chrono::Duration::seconds(1)));
        let (_, secret) = parse_token(&token).unwrap();
        assert_eq!(
            record.verify(secret, Utc::now()),
            Err(TokenRefusal::Expired)
        );
        let wrong = "0".repeat(64);
        assert_eq!(
            record.verify(&wrong, Utc::now()),
            Err(TokenRefusal::Invalid)
        );
        let (mut record, token) = issue(None);
        record.revoked_at = Some(Utc::now());
        let (_, secret) = parse_token(&token).unwrap();
        assert_eq!(
            record.verify(secret, Utc::now()),
            Err(TokenRefusal::Revoked)
        );
    }

    #[test]
    fn only_well_formed_tokens_parse() {
        assert!(parse_token("so_abc_def").is_none());
        assert!(parse_token("Bearer x").is_none());
        let good = format!("so_{}_{}", "a".repeat(12), "b".repeat(64));
        assert!(parse_token(&good).is_some());
    }
}

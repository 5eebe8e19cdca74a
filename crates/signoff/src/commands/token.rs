//! `signoff token create|list|revoke`: API tokens, managed in the database
//! file itself (so the first admin token exists before anyone can call the
//! API). A token is printed once; only the hash of its secret is stored.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use signoff_core::{Clock, Role, SystemClock, TokenRecord};
use signoff_sqlite::Durability;
use signoff_store::Store;

use super::{Outcome, UsageError, parse_duration};
use crate::cli::{RoleArg, TokenCommand};
use crate::output::{self, BOLD, DIM};

/// Runs one token command.
pub async fn run(command: TokenCommand, json: bool) -> anyhow::Result<Outcome> {
    match command {
        TokenCommand::Create(args) => {
            let store = open(&args.database.database).await?;
            let name = args.name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 200 {
                return Err(UsageError::new("--name: 1 to 200 characters").into());
            }
            let expires_at = match args.expires_in.as_deref() {
                Some(text) => {
                    let life = parse_duration("--expires-in", text)?;
                    let life = chrono::Duration::from_std(life)
                        .map_err(|_| UsageError::new("--expires-in: too long"))?;
                    Some(Utc::now() + life)
                }
                None => None,
            };
            let mut random = [0u8; 38];
            getrandom::fill(&mut random).context("no random source")?;
            let role = match args.role {
                RoleArg::Agent => Role::Agent,
                RoleArg::Reviewer => Role::Reviewer,
                RoleArg::Admin => Role::Admin,
            };
            let now = SystemClock.now();
            let (record, token) =
                TokenRecord::issue(name, role, args.groups, &random, now, expires_at);
            let record = store.create_token(record).await?;
            if json {
                output::json(&serde_json::json!({
                    "id": record.id, "name": record.name, "role": record.role.as_str(),
                    "groups": record.groups, "expires_at": record.expires_at, "token": token,
                }))?;
            } else {
                let mut out = anstream::stdout().lock();
                writeln!(out, "{token}")?;
                writeln!(
                    out,
                    "{DIM}token {} for {} ({}); shown once: store it now (e.g. in SIGNOFF_TOKEN){DIM:#}",
                    record.id, record.name, record.role
                )?;
            }
            Ok(Outcome::Success)
        }
        TokenCommand::List(args) => {
            let store = open(&args.database).await?;
            let tokens = store.tokens().await?;
            if json {
                let list: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "name": t.name, "role": t.role.as_str(), "groups": t.groups,
                            "created_at": t.created_at, "expires_at": t.expires_at, "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                output::json(&list)?;
            } else if tokens.is_empty() {
                anstream::println!("No tokens.");
            } else {
                let mut out = anstream::stdout().lock();
                writeln!(
                    out,
                    "{BOLD}{:<12}  {:<8}  {:<20}  STATE{BOLD:#}",
                    "ID", "ROLE", "NAME"
                )?;
                for t in tokens {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(at), _) => format!("revoked {}", output::time(at)),
                        (None, Some(at)) if at <= Utc::now() => {
                            format!("expired {}", output::time(at))
                        }
                        (None, Some(at)) => format!("expires {}", output::time(at)),
                        (None, None) => "active".to_owned(),
                    };
                    writeln!(
                        out,
                        "{:<12}  {:<8}  {:<20}  {state}",
                        t.id,
                        t.role.as_str(),
                        t.name
                    )?;
                }
            }
            Ok(Outcome::Success)
        }
        TokenCommand::Revoke(args) => {
            let store = open(&args.database.database).await?;
            match store.revoke_token(&args.id).await? {
                Some(token) => {
                    anstream::println!("Revoked {} ({})", token.id, token.name);
                    Ok(Outcome::Success)
                }
                None => Err(anyhow::anyhow!("no token with id {}", args.id)),
            }
        }
    }
}

async fn open(database: &str) -> anyhow::Result<Arc<dyn Store>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Token commands drive no runs: the lease is never used.
    let lease = std::time::Duration::from_secs(15);
    signoff_server::open_store(database, Durability::Full, lease, clock).await
}

//! The commands behind the CLI: each parses what clap could not, calls the
//! server (or runs it), prints, and returns the [`Outcome`] that becomes the
//! exit code.

mod audit;
mod config;
mod policy;
mod requests;
mod review;
mod runs;
mod serve;
mod token;
mod webhook;

use std::process::ExitCode;
use std::time::Duration;

use signoff_client::Client;

use crate::cli::{
    Cli, Command, ConfigCommand, PolicyCommand, RequestCommand, ReviewerArg, RunsCommand,
};

/// What a command ends with; each is a documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: done; for `wait`, approved.
    Success,
    /// 1: something failed.
    Error,
    /// 2: bad flags or arguments.
    Usage,
    /// 3: the request was rejected.
    Rejected,
    /// 4: the request expired.
    Expired,
    /// 5: the request was cancelled.
    Cancelled,
    /// 6: no decision (or no answer) before the timeout.
    TimedOut,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(match outcome {
            Outcome::Success => 0,
            Outcome::Error => 1,
            Outcome::Usage => 2,
            Outcome::Rejected => 3,
            Outcome::Expired => 4,
            Outcome::Cancelled => 5,
            Outcome::TimedOut => 6,
        })
    }
}

/// An argument clap accepted but that does not make sense (malformed JSON,
/// a bad duration): exits 2 like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// A usage error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let client = Client::new(cli.server.as_str()).with_token(token(cli.token));
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Request(RequestCommand::Create(args)) => {
            requests::create(&client, args, json).await
        }
        Command::Pending(args) => requests::pending(&client, args, json).await,
        Command::List(args) => requests::list(&client, args, json).await,
        Command::Show(args) => requests::show(&client, args.id, json).await,
        Command::Approve(args) => requests::approve(&client, args, json).await,
        Command::Reject(args) => requests::reject(&client, args, json).await,
        Command::Cancel(args) => requests::cancel(&client, args, json).await,
        Command::Wait(args) => requests::wait(&client, args, json).await,
        Command::Review(args) => review::run(&client, args).await,
        Command::Audit(command) => audit::run(&client, command, json).await,
        Command::Config(ConfigCommand::Check(args)) => config::check(&args, json),
        Command::Policy(PolicyCommand::Explain(args)) => policy::explain(&args, json),
        Command::Run(args) => runs::run(&client, args, json).await,
        Command::Runs(RunsCommand::Show(args)) => runs::show(&client, args.id, json).await,
        Command::Token(command) => token::run(command, json).await,
        Command::Webhook(command) => webhook::run(&client, command, json).await,
    }
}

/// The API token: `--token`/SIGNOFF_TOKEN (clap reads both), else the
/// credentials file `$XDG_CONFIG_HOME/signoff/token` (or `~/.config/...`).
fn token(flag: Option<String>) -> Option<String> {
    flag.filter(|t| !t.trim().is_empty()).or_else(|| {
        let dir = std::env::var_os("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config"))
            })?;
        let text = std::fs::read_to_string(dir.join("signoff").join("token")).ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    })
}

/// The reviewer's name: `--reviewer`/SIGNOFF_REVIEWER (clap reads both),
/// else, with a token, none (the server records the token's identity), else
/// the OS user.
fn reviewer_name(arg: &ReviewerArg, client: &Client) -> anyhow::Result<Option<String>> {
    if let Some(name) = arg.reviewer.as_deref().filter(|n| !n.trim().is_empty()) {
        return Ok(Some(name.to_owned()));
    }
    if client.has_token() {
        return Ok(None);
    }
    os_user().map(Some).ok_or_else(|| {
        UsageError::new("no reviewer name: pass --reviewer NAME or set SIGNOFF_REVIEWER").into()
    })
}

/// The name of the user running the CLI, from the usual variables.
fn os_user() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|name| !name.trim().is_empty())
}

/// Parses `--timeout`/`--expires-in` style durations: seconds or "90s",
/// "30m", "24h", "7d", with the same rules as the server.
fn parse_duration(flag: &str, value: &str) -> Result<Duration, UsageError> {
    signoff_core::ExpiresIn::parse(value)
        .map(|expires| Duration::from_secs(expires.seconds()))
        .map_err(|error| UsageError::new(format!("{flag}: {}", error.message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(
            parse_duration("--timeout", "90s").ok(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("--timeout", "2m").ok(),
            Some(Duration::from_secs(120))
        );
        let error = parse_duration("--timeout", "soon").err();
        assert!(error.is_some_and(|e| e.0.starts_with("--timeout:")));
    }
}

//! `signoff serve`: logging, then the server crate does the rest.

use signoff_server::service::MAX_WAIT_SECONDS;
use signoff_server::{AuthSetting, LongPoll, ServeConfig};
use signoff_sqlite::Durability;
use tracing_subscriber::EnvFilter;

use super::{Outcome, UsageError, parse_duration};
use crate::cli::{AuthArg, DurabilityArg, ServeArgs};

/// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
pub async fn run(args: ServeArgs) -> anyhow::Result<Outcome> {
    // RUST_LOG overrides; by default, our own info and everyone's warnings.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,signoff=info,signoff_server=info"));
    // A second subscriber (tests that run serve twice) is harmless: ignore.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let max_wait = parse_duration("--max-wait", &args.max_wait)?;
    if max_wait.is_zero() || max_wait.as_secs() > MAX_WAIT_SECONDS {
        return Err(UsageError::new(format!(
            "--max-wait: must be from 1s to {MAX_WAIT_SECONDS}s"
        ))
        .into());
    }
    let run_lease = parse_duration("--run-lease", &args.run_lease)?;
    if run_lease < std::time::Duration::from_secs(1) {
        return Err(UsageError::new("--run-lease: must be at least 1s").into());
    }
    let retry_delay = parse_duration("--webhook-retry-delay", &args.webhook_retry_delay)?;
    if retry_delay.is_zero() {
        return Err(UsageError::new("--webhook-retry-delay: must be at least 1s").into());
    }
    if let Some(url) = &args.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(UsageError::new("--public-url: must start with http:// or https://").into());
    }
    let backoff = signoff_core::Backoff {
        first: retry_delay,
        attempts: args.webhook_attempts.get(),
        ..signoff_core::Backoff::default()
    };
    let config = ServeConfig {
        listen: args.listen,
        database: args.database,
        durability: match args.durability {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Normal => Durability::Normal,
        },
        long_poll: LongPoll(max_wait),
        config: args.config,
        auth: match args.auth {
            AuthArg::Auto => AuthSetting::Auto,
            AuthArg::On => AuthSetting::On,
            AuthArg::Off => AuthSetting::Off,
        },
        write_rate: args.write_rate,
        run_lease,
        public_url: args.public_url,
        webhook_backoff: backoff,
    };
    signoff_server::serve(config).await?;
    Ok(Outcome::Success)
}

//! Signoff's HTTP server.
//!
//! [`router`] builds the axum application over a [`Service`]; [`run`] serves
//! it on a bound listener with the background sweeper until shutdown;
//! [`serve`] is what `signoff serve` calls: open the store, bind, run until
//! SIGINT or SIGTERM.
//!
//! Architecture invariant: generic over `Arc<dyn Store>`; no SQL here, and
//! handlers only parse, call the service, and shape answers.

pub mod auth;
pub mod error;
pub mod extract;
pub mod gate;
pub mod hub;
pub mod openapi;
pub mod routes;
pub mod service;
pub mod sweeper;
pub mod ui;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::StatusCode;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use signoff_core::{Clock, SystemClock};
use signoff_sqlite::{Durability, SqliteOptions, SqliteStore};
use signoff_store::Store;
use signoff_workflow::engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::auth::{Auth, AuthMode};
use crate::error::AppError;
pub use crate::service::Service;

/// How long a shutdown waits for executions in flight to record their result.
const EXECUTION_GRACE: Duration = Duration::from_secs(30);

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What the routes share. One `Arc`: axum clones the state for every
/// request.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts` with the routes.
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What an [`AppState`] holds.
pub struct AppParts {
    /// The approval service.
    pub service: Service,
    /// Renders `/metrics`; `None` when another server in this process
    /// installed the recorder first.
    pub metrics: Option<PrometheusHandle>,
    /// The longest a long poll is held before it answers "still pending".
    pub long_poll: LongPoll,
    /// The workflow engine, when a configuration was loaded.
    pub workflows: Option<Engine>,
    /// Whether callers need tokens, and where the tokens are.
    pub auth: Auth,
    /// Where the server is reached, and how webhooks are sent.
    pub webhooks: webhooks::WebhookSettings,
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Option<Engine> {
    fn from_ref(state: &AppState) -> Self {
        state.workflows.clone()
    }
}

/// The cap on long polls (`--max-wait`): a client may ask for up to
/// [`service::MAX_WAIT_SECONDS`], and is answered after at most this long,
/// so a proxy with a short idle timeout never cuts a wait off.
#[derive(Debug, Clone, Copy)]
pub struct LongPoll(pub Duration);

impl Default for LongPoll {
    fn default() -> Self {
        Self(Duration::from_secs(service::MAX_WAIT_SECONDS))
    }
}

impl FromRef<AppState> for LongPoll {
    fn from_ref(state: &AppState) -> Self {
        state.long_poll
    }
}

impl FromRef<AppState> for Service {
    fn from_ref(state: &AppState) -> Self {
        state.service.clone()
    }
}

/// Settings of `signoff serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// A SQLite path or `sqlite:` URL, or a `postgres://` URL.
    pub database: String,
    /// Commit durability for SQLite.
    pub durability: Durability,
    /// The cap on long polls.
    pub long_poll: LongPoll,
    /// The workflow configuration (`signoff.yaml`), if any.
    pub config: Option<PathBuf>,
    /// Whether callers need tokens.
    pub auth: AuthSetting,
    /// Writes (POSTs) allowed per token per second (bursts of twice that).
    pub write_rate: std::num::NonZeroU32,
    /// With PostgreSQL: how long a replica's claim on a run lasts.
    pub run_lease: std::time::Duration,
    /// The address reviewers reach the server at (links in notifications);
    /// `None`: `http://` and the listening address.
    pub public_url: Option<String>,
    /// Webhook retries.
    pub webhook_backoff: signoff_core::Backoff,
}

/// `--auth`: whether API calls need a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSetting {
    /// On, unless the server listens on loopback only (single-user mode).
    Auto,
    /// Always.
    On,
    /// Never: refused unless listening on loopback.
    Off,
}

impl AuthSetting {
    /// What this setting means for a server listening on `listen`.
    pub fn resolve(self, listen: SocketAddr) -> anyhow::Result<AuthMode> {
        let loopback = listen.ip().is_loopback();
        match (self, loopback) {
            (AuthSetting::On, _) | (AuthSetting::Auto, false) => Ok(AuthMode::On),
            (AuthSetting::Off | AuthSetting::Auto, true) => Ok(AuthMode::Off),
            (AuthSetting::Off, false) => anyhow::bail!(
                "--auth off is refused on {listen}: beyond loopback anyone could approve; create tokens with `signoff token create`"
            ),
        }
    }
}

/// The application: every route, the body limit, JSON 404s.
pub fn router(state: AppState) -> Router {
    use routes::{events, guide, meta, runs, tokens, v1, webhooks};
    Router::new()
        .route("/v1/requests", post(v1::create).get(v1::list))
        .route("/v1/requests/{id}", get(v1::get))
        .route("/v1/requests/{id}/approve", post(v1::approve))
        .route("/v1/requests/{id}/reject", post(v1::reject))
        .route("/v1/requests/{id}/cancel", post(v1::cancel))
        .route("/v1/requests/{id}/wait", get(v1::wait))
        .route("/v1/audit", get(v1::audit))
        .route("/v1/audit/verify", get(v1::verify))
        .route("/v1/events", get(events::events))
        .route("/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/v1/tokens/{id}/revoke", post(tokens::revoke))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/v1/deliveries", get(webhooks::deliveries))
        .route("/v1/deliveries/{id}/redeliver", post(webhooks::redeliver))
        .route("/v1/workflows/{name}/runs", post(runs::start))
        .route("/v1/runs/{id}", get(runs::get))
        .route("/v1/runs/{id}/wait", get(runs::wait))
        .route("/approval", post(guide::create))
        .route("/approval/pending", get(guide::pending))
        .route("/approval/{request_id}", get(guide::get))
        .route("/approval/{request_id}/approve", post(guide::approve))
        .route("/approval/{request_id}/reject", post(guide::reject))
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi))
        .merge(ui::routes())
        .fallback(|| async { AppError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Installs the Prometheus recorder for this process (once).
pub fn install_metrics() -> Option<PrometheusHandle> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok().map(|()| handle)
}

/// Opens the store named by `database`: a `postgres://` URL (PostgreSQL,
/// shared by replicas), or else a SQLite file path or `sqlite:` URL.
pub async fn open_store(
    database: &str,
    durability: Durability,
    run_lease: std::time::Duration,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn Store>> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        let mut options = signoff_postgres::PgOptions::new(database);
        options.lease = run_lease;
        let store = signoff_postgres::PgStore::open(options, clock)
            .await
            .context("failed to open the PostgreSQL database")?;
        return Ok(Arc::new(store));
    }
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database);
    let path = path.split('?').next().unwrap_or(path);
    let mut options = SqliteOptions::new(path);
    options.durability = durability;
    let store = SqliteStore::open(options, clock)
        .with_context(|| format!("failed to open database {path}"))?;
    Ok(Arc::new(store))
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish and stops the sweeper.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweeper::run(state.service.clone(), stop_rx.clone()));
    let dispatcher = tokio::spawn(webhooks::run(
        state.service.clone(),
        state.webhooks.clone(),
        stop_rx,
    ));
    let workflows = state.workflows.clone();
    let closing = (state.service.clone(), workflows.clone());
    let shutdown = async move {
        shutdown.await;
        // Long polls answer now, so connections drain; runs stop claiming.
        closing.0.close();
        if let Some(engine) = &closing.1 {
            engine.begin_shutdown();
        }
    };
    let app = router(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("server failed");
    if let Some(engine) = workflows {
        engine.shut_down(EXECUTION_GRACE).await;
    }
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    let _ = dispatcher.await;
    served
}

/// `signoff serve`: open the database, load the workflows, bind, announce,
/// resume unfinished runs, serve until a signal.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(
        &config.database,
        config.durability,
        config.run_lease,
        clock.clone(),
    )
    .await?;
    let auth_mode = config.auth.resolve(config.listen)?;
    let auth = Auth {
        mode: auth_mode,
        store: store.clone(),
        clock: clock.clone(),
        writes: auth::write_limiter(config.write_rate),
    };
    // A bad file is refused before anything starts, with every problem.
    let file = match &config.config {
        Some(path) => Some((signoff_workflow::config::Config::load(path)?, path)),
        None => None,
    };
    let mut service = Service::new(store.clone(), clock.clone());
    if let Some((file, _)) = &file {
        let policies = file.policies().clone();
        if !policies.is_empty() && auth_mode == AuthMode::Off {
            tracing::warn!(
                "approval policies loaded with auth off: stages and quorums apply, but nobody's identity is checked, so anyone may sign any stage"
            );
        }
        service = service.with_policies(policies);
    }
    let workflows = match file {
        Some((file, path)) => {
            let workflows = signoff_workflow::connectors::build(&file, path)?;
            let gate: Arc<dyn signoff_workflow::engine::Gate> = Arc::new(service.clone());
            Some(Engine::new(store, gate, clock, workflows))
        }
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    tracing::info!(%addr, database = %config.database, "signoff serving");
    match auth_mode {
        AuthMode::On => tracing::info!("auth on: every API call needs a token"),
        AuthMode::Off => tracing::warn!(
            "auth off: single-user mode on loopback, every caller is trusted and names come from request bodies; start with --auth on to require tokens"
        ),
    }
    if let Some(engine) = &workflows {
        let resumed = engine.resume().await.context("cannot resume runs")?;
        tracing::info!(
            workflows = engine.workflows().collect::<Vec<_>>().join(", "),
            resumed,
            "workflows loaded"
        );
    }
    // Tests and scripts read this line to learn the port when asked for :0.
    println!("signoff listening on http://{addr}");
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut webhook_settings = webhooks::WebhookSettings::new(public_url);
    webhook_settings.backoff = config.webhook_backoff;
    let state = AppState::new(AppParts {
        service,
        metrics: install_metrics(),
        long_poll: config.long_poll,
        workflows,
        auth,
        webhooks: webhook_settings,
    });
    run(listener, state, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

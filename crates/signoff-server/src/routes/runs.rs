//! `/v1/workflows/{name}/runs` and `/v1/runs/{id}`: start and follow
//! workflow runs. Thin handlers over the workflow [`Engine`].

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use signoff_api::{ErrorBody, RunView, RunWaitParams, StartRun};
use signoff_core::Role;
use signoff_workflow::engine::{Engine, EngineError};

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{Json, Query, request_id};
use crate::service::MAX_WAIT_SECONDS;

/// The engine, when a configuration was loaded.
pub type Workflows = Option<Engine>;

fn engine(workflows: &Workflows) -> Result<&Engine, AppError> {
    workflows.as_ref().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no workflows are configured on this server (start it with --config signoff.yaml)",
        )
    })
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownWorkflow(_) => {
                AppError::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            EngineError::InputNotObject => AppError::bad_request(error.to_string()),
            EngineError::Store(error) => error.into(),
        }
    }
}

/// Starts a run of a configured workflow.
#[utoipa::path(
    post, path = "/v1/workflows/{name}/runs", tag = "workflows",
    params(("name" = String, Path, description = "Workflow name")),
    request_body = StartRun,
    responses(
        (status = 201, description = "Started (drafting)", body = RunView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 429, description = "Too many writes for this token (Retry-After)", body = ErrorBody),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn start(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<StartRun>,
) -> Result<(StatusCode, Json<RunView>), AppError> {
    caller.require(&[Role::Agent, Role::Admin], "start runs")?;
    let started_by = caller.identity().map(|i| i.name.clone());
    let run = engine(&workflows)?
        .start(&name, serde_json::Value::Object(body.input), started_by)
        .await?;
    Ok((StatusCode::CREATED, Json(RunView::new(run, Vec::new()))))
}

/// Reads a run and the result of each of its stages.
#[utoipa::path(
    get, path = "/v1/runs/{id}", tag = "workflows",
    params(("id" = uuid::Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn get(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, AppError> {
    let id = request_id(&id)?;
    let engine = engine(&workflows)?;
    let (run, stages) = engine
        .get(id)
        .await?
        .filter(|(run, _)| caller.can_see_run(run.started_by.as_deref()))
        .ok_or_else(|| not_found(id))?;
    Ok(Json(RunView::new(run, stages)))
}

/// Long poll: answers once the run has left `status` or changed after
/// `since` (or at once without either), or when the timeout ends.
#[utoipa::path(
    get, path = "/v1/runs/{id}/wait", tag = "workflows",
    params(("id" = uuid::Uuid, Path, description = "Run id"), RunWaitParams),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 401, description = "Auth is on and no valid token was sent", body = ErrorBody),
        (status = 403, description = "The token's role or identity may not do this", body = ErrorBody),
        (status = 400, description = "Invalid id or query", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn wait(
    State(workflows): State<Workflows>,
    State(crate::LongPoll(cap)): State<crate::LongPoll>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<RunWaitParams>,
) -> Result<Json<RunView>, AppError> {
    let id = request_id(&id)?;
    if let Some((run, _)) = engine(&workflows)?.get(id).await?
        && !caller.can_see_run(run.started_by.as_deref())
    {
        return Err(not_found(id));
    }
    let timeout = params.timeout.unwrap_or(30);
    if timeout > MAX_WAIT_SECONDS {
        return Err(AppError::bad_request(format!(
            "timeout: must be at most {MAX_WAIT_SECONDS} seconds"
        )));
    }
    let engine = engine(&workflows)?;
    let timeout = Duration::from_secs(timeout).min(cap);
    engine
        .wait(id, params.status.map(Into::into), params.since, timeout)
        .await?
        .ok_or_else(|| not_found(id))?;
    let (run, stages) = engine.get(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(RunView::new(run, stages)))
}

fn not_found(id: uuid::Uuid) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("run {id} not found"),
    )
}

//! `signoff run` and `signoff runs show`: start a workflow run and follow it
//! live, stage by stage, with long polls (the server answers the moment the
//! run moves on).

use std::io::Write;

use signoff_api::{RunStatusView, RunView, StageView, StartRun};
use signoff_client::{Client, MAX_WAIT_SECS};
use uuid::Uuid;

use super::Outcome;
use super::requests::read_object;
use crate::cli::RunArgs;
use crate::output::{self, BAD, BOLD, DIM, GOOD, WAITING};

/// Starts the run and, unless detached, follows it to its end.
pub async fn run(client: &Client, args: RunArgs, json: bool) -> anyhow::Result<Outcome> {
    // A bare path is the common case for a task file.
    let input = if std::path::Path::new(&args.input).is_file() {
        format!("@{}", args.input)
    } else {
        args.input
    };
    let input = read_object("--input", &input)?;
    let mut run = client
        .start_run(&args.workflow, &StartRun { input })
        .await?;
    if args.detach {
        if json {
            output::json(&run)?;
        } else {
            anstream::println!("Started run {BOLD}{}{BOLD:#} of {}", run.id, run.workflow);
        }
        return Ok(Outcome::Success);
    }
    if !json {
        anstream::println!("Run {BOLD}{}{BOLD:#} of {}", run.id, run.workflow);
    }
    let mut shown = 0;
    let mut announced_request = None;
    let mut announced_step = None;
    loop {
        if !json {
            shown = print_new_stages(&run, shown)?;
            announce_step(&run, &mut announced_step);
            announce(&run, &mut announced_request)?;
        }
        if is_final(run.status) {
            break;
        }
        run = client.wait_run(&run, MAX_WAIT_SECS).await?;
    }
    if json {
        output::json(&run)?;
    } else {
        ending(&run);
    }
    Ok(outcome(run.status))
}

/// `signoff runs show`.
pub async fn show(client: &Client, id: Uuid, json: bool) -> anyhow::Result<Outcome> {
    let run = client.get_run(id).await?;
    if json {
        output::json(&run)?;
    } else {
        anstream::println!(
            "Run {BOLD}{}{BOLD:#} of {}: {} (attempt {})",
            run.id,
            run.workflow,
            status_name(run.status),
            run.attempt
        );
        print_new_stages(&run, 0)?;
        if let Some(request) = run.request_id {
            anstream::println!("  {DIM}approval request{DIM:#} {request}");
        }
        ending(&run);
    }
    Ok(Outcome::Success)
}

fn is_final(status: RunStatusView) -> bool {
    !matches!(
        status,
        RunStatusView::Drafting
            | RunStatusView::Validating
            | RunStatusView::AwaitingApproval
            | RunStatusView::Executing
    )
}

fn outcome(status: RunStatusView) -> Outcome {
    match status {
        RunStatusView::Succeeded => Outcome::Success,
        RunStatusView::Rejected => Outcome::Rejected,
        RunStatusView::Expired => Outcome::Expired,
        RunStatusView::Cancelled => Outcome::Cancelled,
        _ => Outcome::Error,
    }
}

fn status_name(status: RunStatusView) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Prints the stages after the first `shown`; returns how many are shown.
fn print_new_stages(run: &RunView, shown: usize) -> anyhow::Result<usize> {
    let mut out = anstream::stdout().lock();
    for stage in run.stages.iter().skip(shown) {
        let (mark, style) = if stage.ok {
            ("✓", GOOD)
        } else {
            ("✗", BAD)
        };
        writeln!(
            out,
            "  {style}{mark}{style:#} {DIM}attempt {}{DIM:#} {:<8} {}",
            stage.attempt,
            stage.stage,
            summary(stage)
        )?;
    }
    out.flush()?;
    Ok(run.stages.len())
}

/// One line about what a stage produced.
fn summary(stage: &StageView) -> String {
    let detail = &stage.detail;
    let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    match (stage.stage.as_str(), stage.ok) {
        ("draft", true) => format!("drafted: {}", text("title").unwrap_or_default()),
        ("validate", ok) => format!(
            "{} (score {})",
            if ok { "valid" } else { "invalid" },
            detail
                .get("score")
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into())
        ),
        ("approve", true) => format!(
            "approved by {}{}",
            text("reviewer").unwrap_or_default(),
            if detail.get("edited") == Some(&serde_json::Value::Bool(true)) {
                " (with edits)"
            } else {
                ""
            }
        ),
        ("approve", false) => match text("rejection_reason") {
            Some(reason) => format!(
                "rejected by {}: {reason}",
                text("reviewer").unwrap_or_default()
            ),
            None => text("status").unwrap_or_else(|| "not approved".into()),
        },
        ("execute", true) => format!("executed: {detail}"),
        (_, false) => text("error").unwrap_or_else(|| detail.to_string()),
        _ => detail.to_string(),
    }
}

/// Says, once per step, what the run is doing now (drafting, validating,
/// executing), so a slow agent or tool shows where the time goes.
fn announce_step(run: &RunView, announced: &mut Option<(RunStatusView, u32)>) {
    let doing = match run.status {
        RunStatusView::Drafting => "drafting",
        RunStatusView::Validating => "validating",
        RunStatusView::Executing => "executing the approved action",
        _ => return,
    };
    if *announced == Some((run.status, run.attempt)) {
        return;
    }
    *announced = Some((run.status, run.attempt));
    anstream::println!(
        "  {WAITING}…{WAITING:#} {DIM}attempt {}{DIM:#} {doing}",
        run.attempt
    );
}

/// Says, once per request, where the run waits and how to decide it.
fn announce(run: &RunView, announced: &mut Option<Uuid>) -> anyhow::Result<()> {
    if run.status != RunStatusView::AwaitingApproval {
        return Ok(());
    }
    let Some(request) = run.request_id else {
        return Ok(());
    };
    if *announced == Some(request) {
        return Ok(());
    }
    *announced = Some(request);
    anstream::println!(
        "  {WAITING}…{WAITING:#} waiting for approval of request {BOLD}{request}{BOLD:#}\n    {DIM}approve: signoff approve {request}   reject: signoff reject {request} --reason ...   or: signoff review{DIM:#}"
    );
    Ok(())
}

fn ending(run: &RunView) {
    let (style, word) = match run.status {
        RunStatusView::Succeeded => (GOOD, "Done"),
        RunStatusView::Drafting
        | RunStatusView::Validating
        | RunStatusView::AwaitingApproval
        | RunStatusView::Executing => (WAITING, "In progress"),
        _ => (BAD, "Stopped"),
    };
    let mut line = format!("{style}{word}:{style:#} {}", status_name(run.status));
    if let Some(error) = &run.error {
        line.push_str(&format!(": {error}"));
    }
    anstream::println!("{line}");
}

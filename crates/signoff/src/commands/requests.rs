//! Request commands: create, pending, list, show, approve, reject, cancel,
//! wait.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use serde_json::{Map, Value};
use signoff_api::{
    ApproveBody, CancelBody, ExpiresIn, ListParams, NewRequest, RejectBody, RequestPage,
    RequestView, StatusView,
};
use signoff_client::{Client, MAX_WAIT_SECS};
use tokio::time::Instant;

use super::{Outcome, UsageError, os_user, parse_duration, reviewer_name};
use crate::cli::{
    ApproveArgs, CancelArgs, CreateArgs, ListArgs, PageArgs, RejectArgs, StatusArg, WaitArgs,
};
use crate::output::{self, BOLD, DIM};

/// `signoff request create`.
pub async fn create(client: &Client, args: CreateArgs, json: bool) -> anyhow::Result<Outcome> {
    let proposed_action = read_object("--action", &args.action)?;
    let labels = parse_labels(&args.labels)?;
    let expires_in = match args.expires_in.as_deref() {
        Some(text) => Some(ExpiresIn::Seconds(
            parse_duration("--expires-in", text)?.as_secs(),
        )),
        None => None,
    };
    let body = NewRequest {
        title: args.title,
        description: args.description,
        proposed_action,
        requester: args.requester,
        labels,
        expires_in,
    };
    let request = client
        .create(&body, args.idempotency_key.as_deref())
        .await?;
    if json {
        output::json(&request)?;
    } else {
        let mut out = anstream::stdout().lock();
        writeln!(
            out,
            "Created {BOLD}{}{BOLD:#} ({}, expires {})",
            request.id,
            output::status_name(request.status),
            output::relative(request.expires_at, Utc::now())
        )?;
        writeln!(
            out,
            "{DIM}approve: signoff approve {id}\nreject:  signoff reject {id} --reason ...\nwait:    signoff wait {id}{DIM:#}",
            id = request.id
        )?;
    }
    Ok(Outcome::Success)
}

/// Reads a JSON object flag (`--action`, `--edit`): inline JSON, `@FILE`, or
/// `-` for stdin.
pub(super) fn read_object(flag: &str, arg: &str) -> anyhow::Result<Map<String, Value>> {
    let (text, source) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("{flag}: cannot read stdin"))?;
        (text, "stdin".to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|error| UsageError::new(format!("{flag}: cannot read {path}: {error}")))?;
        (text, path.to_owned())
    } else {
        (arg.to_owned(), flag.to_owned())
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(UsageError::new(format!(
            "{flag}: the action must be a JSON object, {source} holds {}",
            kind(&other)
        ))
        .into()),
        Err(error) => {
            Err(UsageError::new(format!("--action: {source} is not valid JSON: {error}")).into())
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `KEY=VALUE` pairs into a map; a repeated key keeps the last value.
pub(super) fn parse_labels(pairs: &[String]) -> Result<BTreeMap<String, String>, UsageError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(UsageError::new(format!(
                "--label: '{pair}' is not KEY=VALUE"
            ))),
        })
        .collect()
}

/// `signoff pending`.
pub async fn pending(client: &Client, args: PageArgs, json: bool) -> anyhow::Result<Outcome> {
    let params = ListParams {
        status: Some(StatusView::Pending),
        limit: Some(args.limit),
        cursor: None,
    };
    let page = client.list(&params).await?;
    if json {
        output::json(&page)?;
    } else if page.requests.is_empty() {
        anstream::println!("No pending requests.");
    } else {
        output::table(&page.requests, Utc::now())?;
        more_hint(&page, Some(StatusView::Pending))?;
    }
    Ok(Outcome::Success)
}

/// `signoff list`.
pub async fn list(client: &Client, args: ListArgs, json: bool) -> anyhow::Result<Outcome> {
    let status = args.status.map(status_view);
    let params = ListParams {
        status,
        limit: Some(args.limit),
        cursor: args.cursor,
    };
    let page = client.list(&params).await?;
    if json {
        output::json(&page)?;
    } else if page.requests.is_empty() {
        anstream::println!("No requests.");
    } else {
        output::table(&page.requests, Utc::now())?;
        more_hint(&page, status)?;
    }
    Ok(Outcome::Success)
}

fn more_hint(page: &RequestPage, status: Option<StatusView>) -> anyhow::Result<()> {
    if let Some(cursor) = &page.next_cursor {
        let filter = status
            .map(|s| format!(" --status {}", output::status_name(s)))
            .unwrap_or_default();
        anstream::println!("{DIM}more: signoff list{filter} --cursor {cursor}{DIM:#}");
    }
    Ok(())
}

fn status_view(status: StatusArg) -> StatusView {
    match status {
        StatusArg::Pending => StatusView::Pending,
        StatusArg::Approved => StatusView::Approved,
        StatusArg::Rejected => StatusView::Rejected,
        StatusArg::Expired => StatusView::Expired,
        StatusArg::Cancelled => StatusView::Cancelled,
    }
}

/// `signoff show`.
pub async fn show(client: &Client, id: uuid::Uuid, json: bool) -> anyhow::Result<Outcome> {
    let request = client.get(id).await?;
    if json {
        output::json(&request)?;
    } else {
        output::details(&request, Utc::now())?;
    }
    Ok(Outcome::Success)
}

/// `signoff approve`.
pub async fn approve(client: &Client, args: ApproveArgs, json: bool) -> anyhow::Result<Outcome> {
    let edited_action = match args.edit.as_deref() {
        Some(arg) => Some(read_object("--edit", arg)?),
        None => None,
    };
    let body = ApproveBody {
        reviewer: reviewer_name(&args.reviewer, client)?,
        comment: args.comment,
        edited_action,
    };
    let request = client.approve(args.id, &body).await?;
    decided(&request, json)
}

/// `signoff reject`.
pub async fn reject(client: &Client, args: RejectArgs, json: bool) -> anyhow::Result<Outcome> {
    let body = RejectBody {
        reviewer: reviewer_name(&args.reviewer, client)?,
        reason: args.reason,
    };
    let request = client.reject(args.id, &body).await?;
    decided(&request, json)
}

/// `signoff cancel`.
pub async fn cancel(client: &Client, args: CancelArgs, json: bool) -> anyhow::Result<Outcome> {
    let body = CancelBody {
        actor: args.actor.or_else(os_user),
        reason: args.reason,
    };
    let request = client.cancel(args.id, &body).await?;
    decided(&request, json)
}

/// Prints the request a decision produced.
fn decided(request: &RequestView, json: bool) -> anyhow::Result<Outcome> {
    if json {
        output::json(request)?;
    } else {
        let style = output::status_style(request.status);
        anstream::println!(
            "{style}{}{style:#} {} {DIM}({}){DIM:#}",
            capitalised(output::status_name(request.status)),
            request.title,
            request.id
        );
        if request.status == StatusView::Pending {
            anstream::println!("{}", output::progress(request));
        }
    }
    Ok(Outcome::Success)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `signoff wait`: long polls (each up to the server's limit) until the
/// request leaves `pending` or `--timeout` runs out.
pub async fn wait(client: &Client, args: WaitArgs, json: bool) -> anyhow::Result<Outcome> {
    let deadline = match args.timeout.as_deref() {
        Some(text) => Some(Instant::now() + parse_duration("--timeout", text)?),
        None => None,
    };
    let request = loop {
        let chunk = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(MAX_WAIT_SECS),
        };
        // Whole seconds for the server; round up so a short timeout still waits.
        let secs = chunk
            .as_secs()
            .saturating_add(u64::from(chunk.subsec_nanos() > 0))
            .min(MAX_WAIT_SECS);
        let request = client.wait(args.id, secs).await?;
        let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
        if request.status != StatusView::Pending || out_of_time {
            break request;
        }
    };
    let outcome = match request.status {
        StatusView::Pending => Outcome::TimedOut,
        StatusView::Approved => Outcome::Success,
        StatusView::Rejected => Outcome::Rejected,
        StatusView::Expired => Outcome::Expired,
        StatusView::Cancelled => Outcome::Cancelled,
    };
    if json {
        output::json(&request)?;
    } else {
        let style = output::status_style(request.status);
        let mut line = format!(
            "{style}{}{style:#} {}",
            capitalised(output::status_name(request.status)),
            request.title
        );
        if let Some(decision) = &request.decision {
            if let Some(reviewer) = &decision.reviewer {
                line.push_str(&format!(" by {reviewer}"));
            }
            if let Some(reason) = &decision.rejection_reason {
                line.push_str(&format!(": {reason}"));
            }
        }
        if outcome == Outcome::TimedOut {
            line.push_str(" (still pending: timed out)");
        }
        anstream::println!("{line}");
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_key_value_pairs() {
        let labels = parse_labels(&["team=finance".into(), "risk=low=ish".into()]).ok();
        let labels = labels.unwrap_or_default();
        assert_eq!(labels.get("team").map(String::as_str), Some("finance"));
        assert_eq!(labels.get("risk").map(String::as_str), Some("low=ish"));
        assert!(parse_labels(&["oops".into()]).is_err());
        assert!(parse_labels(&["=x".into()]).is_err());
    }

    #[test]
    fn the_action_must_be_an_object() {
        assert!(read_object("--action", r#"{"a": 1}"#).is_ok());
        let error = read_object("--action", "[1]").err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("an array")));
        let error = read_object("--edit", "{nope").err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("not valid JSON")));
    }
}

//! How the CLI prints: styles (dropped automatically when stdout is not a
//! terminal, or when NO_COLOR is set, by `anstream`), tables, request
//! details and JSON.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use chrono::{DateTime, Utc};
use serde::Serialize;
use signoff_api::{RequestView, StatusView};

/// Headings and labels.
pub const BOLD: Style = Style::new().bold();
/// Secondary text: ids, times.
pub const DIM: Style = Style::new().dimmed();
/// The `error:` prefix.
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
/// A good outcome.
pub const GOOD: Style = AnsiColor::Green.on_default().bold();
/// A bad outcome.
pub const BAD: Style = AnsiColor::Red.on_default().bold();
/// Waiting.
pub const WAITING: Style = AnsiColor::Yellow.on_default().bold();

/// The style that goes with a status.
pub fn status_style(status: StatusView) -> Style {
    match status {
        StatusView::Pending => WAITING,
        StatusView::Approved => GOOD,
        StatusView::Rejected => BAD,
        StatusView::Expired | StatusView::Cancelled => DIM,
    }
}

/// The status's wire name.
pub fn status_name(status: StatusView) -> &'static str {
    match status {
        StatusView::Pending => "pending",
        StatusView::Approved => "approved",
        StatusView::Rejected => "rejected",
        StatusView::Expired => "expired",
        StatusView::Cancelled => "cancelled",
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    // Through a `Value`, so that JSON the server passed on as text (a
    // request's action) is indented like the rest.
    let value = serde_json::to_value(value)?;
    let mut out = anstream::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)?;
    Ok(())
}

/// "in 23h 59m", "3m ago": how far `at` is from `now`, to the two largest
/// units.
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let span = span(seconds.unsigned_abs());
    if seconds >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

fn span(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A time as people read it: RFC 3339 to the second, UTC.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// One line per request: id, status, expiry, title.
pub fn table(requests: &[RequestView], now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    writeln!(
        out,
        "{BOLD}{:<36}  {:<9}  {:<16}  TITLE{BOLD:#}",
        "ID", "STATUS", "EXPIRES"
    )?;
    for request in requests {
        let style = status_style(request.status);
        let expires = if request.status == StatusView::Pending {
            relative(request.expires_at, now)
        } else {
            "-".to_owned()
        };
        writeln!(
            out,
            "{:<36}  {style}{:<9}{style:#}  {:<16}  {}",
            request.id,
            status_name(request.status),
            expires,
            request.title
        )?;
    }
    Ok(())
}

/// Everything about one request, for `show`.
pub fn details(request: &RequestView, now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    let style = status_style(request.status);
    writeln!(out, "{BOLD}{}{BOLD:#}", request.title)?;
    writeln!(out, "  {DIM}id{DIM:#}          {}", request.id)?;
    writeln!(
        out,
        "  {DIM}status{DIM:#}      {style}{}{style:#}",
        status_name(request.status)
    )?;
    writeln!(out, "  {DIM}requester{DIM:#}   {}", request.requester)?;
    writeln!(
        out,
        "  {DIM}created{DIM:#}     {}",
        time(request.created_at)
    )?;
    writeln!(
        out,
        "  {DIM}expires{DIM:#}     {} ({})",
        time(request.expires_at),
        relative(request.expires_at, now)
    )?;
    for (key, value) in &request.labels {
        writeln!(out, "  {DIM}label{DIM:#}       {key}={value}")?;
    }
    if let Some(decision) = &request.decision {
        let who = decision.reviewer.as_deref().unwrap_or("(expiry)");
        writeln!(
            out,
            "  {DIM}decided{DIM:#}     {} by {who}",
            time(decision.decided_at)
        )?;
        if let Some(comment) = &decision.comment {
            writeln!(out, "  {DIM}comment{DIM:#}     {comment}")?;
        }
        if let Some(reason) = &decision.rejection_reason {
            writeln!(out, "  {DIM}reason{DIM:#}      {reason}")?;
        }
        if let Some(stage) = &decision.stage {
            writeln!(out, "  {DIM}at stage{DIM:#}    {stage}")?;
        }
        if let Some(hash) = &decision.action_hash {
            writeln!(out, "  {DIM}action hash{DIM:#} {hash}")?;
        }
    }
    approval(&mut out, request)?;
    if !request.description.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", request.description)?;
    }
    writeln!(out)?;
    writeln!(out, "{BOLD}Proposed action{BOLD:#}")?;
    writeln!(out, "{}", pretty_action(request))?;
    if let Some(edit) = request
        .decision
        .as_ref()
        .and_then(|d| d.edited_action.as_ref())
    {
        writeln!(out)?;
        writeln!(out, "{BOLD}Approved with edits{BOLD:#} (this runs instead)")?;
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(edit).unwrap_or_else(|_| "(unprintable)".to_owned())
        )?;
    }
    Ok(())
}

/// The approval chain, unless it is the default single sign-off.
fn approval(out: &mut impl Write, request: &RequestView) -> anyhow::Result<()> {
    let plan = &request.approval;
    let single = plan.rule.is_none()
        && plan.stages.len() == 1
        && plan.stages[0].quorum == 1
        && plan.stages[0].eligible.any_reviewer;
    if single {
        return Ok(());
    }
    writeln!(out)?;
    let rule = plan
        .rule
        .as_deref()
        .map(|r| format!(" (chosen by rule {r})"))
        .unwrap_or_default();
    writeln!(
        out,
        "{BOLD}Approval{BOLD:#}    policy {}{rule}",
        plan.policy
    )?;
    if plan.stages.is_empty() {
        writeln!(out, "  approved automatically: the rule needs no review")?;
    }
    for stage in &plan.stages {
        let mark = match &*stage.state {
            "done" => "✓",
            "current" => "▸",
            _ => " ",
        };
        let who: Vec<&str> = stage
            .approvals
            .iter()
            .map(|a| a.reviewer.as_str())
            .collect();
        writeln!(
            out,
            "  {mark} {:<12} {} of {}  {:<28} {}",
            stage.name,
            stage.approvals.len(),
            stage.quorum,
            eligible(&stage.eligible),
            who.join(", ")
        )?;
    }
    if let (Some(stage), Some(may)) = (&plan.current_stage, &plan.may_approve) {
        writeln!(
            out,
            "  {DIM}waiting for{DIM:#} {} more at {stage}: {}",
            plan.remaining,
            eligible(may)
        )?;
    }
    if let Some(at) = plan.remind_at {
        let escalation = plan
            .escalate_to
            .as_deref()
            .map(|group| format!(", adding group {group} to the stage"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {DIM}reminder{DIM:#}    {}{escalation}",
            relative(at, Utc::now())
        )?;
    }
    Ok(())
}

/// After a sign-off that left the request pending: what it still needs.
pub fn progress(request: &RequestView) -> String {
    let plan = &request.approval;
    match (&plan.current_stage, &plan.may_approve) {
        (Some(stage), Some(may)) => format!(
            "✓ Signed off. Waiting for {} more at stage {stage} ({}).",
            plan.remaining,
            eligible(may)
        ),
        _ => "✓ Signed off.".to_owned(),
    }
}

fn eligible(who: &signoff_api::EligibleView) -> String {
    signoff_core::describe_eligible(who.any_reviewer, &who.users, &who.groups)
}

/// The proposed action as indented JSON.
pub fn pretty_action(request: &RequestView) -> String {
    serde_json::to_string_pretty(&request.proposed_action.to_map())
        .unwrap_or_else(|_| "(unprintable)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(42), "42s");
        assert_eq!(span(90), "1m 30s");
        assert_eq!(span(86_399), "23h 59m");
        assert_eq!(span(7 * 86_400 + 3600), "7d 1h");
    }

    #[test]
    fn relative_times_have_a_direction() {
        let now = Utc::now();
        assert_eq!(
            relative(now + chrono::Duration::seconds(90), now),
            "in 1m 30s"
        );
        assert_eq!(
            relative(now - chrono::Duration::seconds(90), now),
            "1m 30s ago"
        );
    }
}

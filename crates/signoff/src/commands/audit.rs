//! `signoff audit show|export|verify`: the tamper-evident trail, read from
//! the server page by page.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context;
use serde_json::{Map, Value, json};
use signoff_api::{AuditEntryView, AuditParams};
use signoff_client::Client;
use signoff_core::{AuditEvent, format_time};
use uuid::Uuid;

use super::Outcome;
use crate::cli::AuditCommand;
use crate::output::{self, BAD, BOLD, DIM, GOOD};

/// Entries fetched per call.
const PAGE: u32 = 1000;

/// Runs one audit command.
pub async fn run(client: &Client, command: AuditCommand, json: bool) -> anyhow::Result<Outcome> {
    match command {
        AuditCommand::Show(args) => show(client, args.request_id, json).await,
        AuditCommand::Export(args) => export(client, args.request_id, args.output).await,
        AuditCommand::Verify => verify(client, json).await,
    }
}

/// Calls `each` with every page of the trail, oldest first.
async fn for_each_page(
    client: &Client,
    request_id: Option<Uuid>,
    mut each: impl FnMut(Vec<AuditEntryView>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = None;
    loop {
        let params = AuditParams {
            request_id,
            after,
            limit: Some(PAGE),
        };
        let page = client.audit(&params).await?;
        each(page.entries)?;
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

async fn show(client: &Client, request_id: Option<Uuid>, json: bool) -> anyhow::Result<Outcome> {
    if json {
        let mut all = Vec::new();
        for_each_page(client, request_id, |entries| {
            all.extend(entries);
            Ok(())
        })
        .await?;
        output::json(&all)?;
        return Ok(Outcome::Success);
    }
    let mut any = false;
    for_each_page(client, request_id, |entries| {
        any |= !entries.is_empty();
        print_entries(&entries)
    })
    .await?;
    if !any {
        anstream::println!("No audit entries.");
    }
    Ok(Outcome::Success)
}

/// One readable line per entry (two when the action is shown).
pub fn print_entries(entries: &[AuditEntryView]) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    for entry in entries {
        let event = AuditEvent::parse(&entry.event);
        let style = match event {
            Some(AuditEvent::Approved) => GOOD,
            Some(AuditEvent::Rejected) => BAD,
            _ => BOLD,
        };
        let name = log_name(event, &entry.event);
        let mut line = format!(
            "{DIM}#{:<5} {}{DIM:#}  {style}{name:<12}{style:#}  {}  {:?}",
            entry.seq,
            output::time(entry.timestamp),
            entry.request_id,
            entry.title
        );
        if let Some(actor) = &entry.actor {
            line.push_str(&format!(" by {actor}"));
        }
        if let Some(stage) = &entry.stage {
            line.push_str(&format!(" at stage {stage}"));
        }
        if let Some(reason) = &entry.reason {
            line.push_str(&format!(": {reason}"));
        }
        if let Some(comment) = &entry.comment {
            line.push_str(&format!(" ({comment})"));
        }
        writeln!(out, "{line}")?;
        if matches!(event, Some(AuditEvent::Approved | AuditEvent::Endorsed))
            && let Some(action) = &entry.action
        {
            writeln!(out, "{DIM}       approved action: {action}{DIM:#}")?;
            if let Some(original) = &entry.original_action {
                writeln!(out, "{DIM}       edited from:     {original}{DIM:#}")?;
            }
        }
    }
    Ok(())
}

/// The guide's event name; an event this CLI does not know keeps its own.
fn log_name(event: Option<AuditEvent>, raw: &str) -> &str {
    match event {
        Some(event) => event.log_name(),
        None => raw,
    }
}

/// Writes JSON lines, one per entry, to `output` or stdout.
async fn export(
    client: &Client,
    request_id: Option<Uuid>,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<Outcome> {
    let mut sink: Box<dyn Write> = match &output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    for_each_page(client, request_id, |entries| {
        for entry in &entries {
            serde_json::to_writer(&mut sink, &log_line(entry))?;
            sink.write_all(b"\n")?;
        }
        Ok(())
    })
    .await?;
    sink.flush().context("cannot write the export")?;
    Ok(Outcome::Success)
}

/// One entry in the shape of the guide's approvals.log (timestamp, event,
/// request_id, title, reviewer, proposed_action or reason), plus what makes
/// the line checkable: seq, actor, comment and the hashes.
fn log_line(entry: &AuditEntryView) -> Value {
    let event = AuditEvent::parse(&entry.event);
    let mut line = Map::new();
    line.insert("timestamp".into(), json!(format_time(entry.timestamp)));
    line.insert("event".into(), json!(log_name(event, &entry.event)));
    line.insert("request_id".into(), json!(entry.request_id));
    line.insert("title".into(), json!(entry.title));
    if matches!(
        event,
        Some(AuditEvent::Approved | AuditEvent::Endorsed | AuditEvent::Rejected)
    ) {
        line.insert("reviewer".into(), json!(entry.actor));
    }
    if let Some(stage) = &entry.stage {
        line.insert("stage".into(), json!(stage));
    }
    if let Some(action) = &entry.action {
        line.insert("proposed_action".into(), action.clone());
    }
    if let Some(original) = &entry.original_action {
        line.insert("original_action".into(), original.clone());
    }
    if let Some(reason) = &entry.reason {
        line.insert("reason".into(), json!(reason));
    }
    if let Some(comment) = &entry.comment {
        line.insert("comment".into(), json!(comment));
    }
    line.insert("actor".into(), json!(entry.actor));
    line.insert("seq".into(), json!(entry.seq));
    line.insert("prev_hash".into(), json!(entry.prev_hash));
    line.insert("hash".into(), json!(entry.hash));
    Value::Object(line)
}

/// Asks the server to walk the chain; a broken chain exits 1.
async fn verify(client: &Client, json: bool) -> anyhow::Result<Outcome> {
    let report = client.verify().await?;
    if json {
        output::json(&report)?;
    } else if let Some(broken) = &report.broken {
        anstream::println!(
            "{BAD}Audit trail BROKEN{BAD:#} at entry #{}: {} ({}); {} entries checked before it.",
            broken.seq,
            broken.message,
            broken.fault,
            report.checked
        );
    } else {
        anstream::println!(
            "{GOOD}Audit trail intact:{GOOD:#} {} entries, last #{}, head {}",
            report.checked,
            report.last_seq,
            report.head_hash
        );
    }
    Ok(if report.ok {
        Outcome::Success
    } else {
        Outcome::Error
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn entry(event: &str) -> AuditEntryView {
        AuditEntryView {
            seq: 7,
            timestamp: Utc::now(),
            event: event.into(),
            request_id: Uuid::nil(),
            title: "Update policy".into(),
            actor: Some("alice".into()),
            reason: None,
            comment: None,
            action: Some(json!({"changes": {"max": 5000}})),
            original_action: None,
            stage: None,
            prev_hash: "00".into(),
            hash: "11".into(),
        }
    }

    #[test]
    fn export_lines_keep_the_guides_fields() {
        let line = log_line(&entry("approved"));
        assert_eq!(line["event"], "APPROVAL");
        assert_eq!(line["reviewer"], "alice");
        assert_eq!(line["proposed_action"]["changes"]["max"], 5000);
        assert_eq!(line["request_id"], Uuid::nil().to_string());
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn only_decisions_name_a_reviewer() {
        let line = log_line(&entry("created"));
        assert_eq!(line["event"], "REQUEST");
        assert!(line.get("reviewer").is_none());
        assert_eq!(line["actor"], "alice");
    }
}

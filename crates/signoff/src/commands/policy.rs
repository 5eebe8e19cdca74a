//! `signoff policy explain`: the configuration's rules evaluated against an
//! action exactly as the server evaluates them on create, without a server.

use signoff_policy::{Facts, Verdict};
use signoff_workflow::config::Config;

use super::Outcome;
use super::requests::{parse_labels, read_object};
use crate::cli::ExplainArgs;
use crate::output::{self, BOLD, DIM, GOOD};

/// Prints each rule's verdict and the plan the request would get. A file
/// with problems prints them (exit 1); a rule that cannot be evaluated for
/// this action is an error too, since the server would refuse the request.
pub fn explain(args: &ExplainArgs, json: bool) -> anyhow::Result<Outcome> {
    let action = read_object("--action", &args.action)?;
    let labels = parse_labels(&args.labels)?;
    let config = match Config::load(&args.config.config) {
        Ok(config) => config,
        Err(error) => {
            anstream::eprintln!("{error}");
            return Ok(Outcome::Error);
        }
    };
    let facts = Facts {
        action: &action,
        labels: &labels,
        requester: &args.requester,
        title: &args.title,
    };
    let explanation = match config.policies().explain(facts) {
        Ok(explanation) => explanation,
        Err(error) => {
            if json {
                output::json(&serde_json::json!({
                    "ok": false, "rule": error.rule, "error": error.message,
                }))?;
            } else {
                anstream::eprintln!("{error}: the server would refuse this request (422)");
            }
            return Ok(Outcome::Error);
        }
    };
    let matched = explanation
        .rules
        .iter()
        .find(|r| r.verdict == Verdict::Matched)
        .map(|r| r.rule.clone());
    let plan = &explanation.plan;
    if json {
        let rules: Vec<_> = explanation
            .rules
            .iter()
            .map(|r| {
                let (verdict, detail) = match &r.verdict {
                    Verdict::Matched => ("matched", None),
                    Verdict::NotMatched => ("not_matched", None),
                    Verdict::MissingField(field) => ("missing_field", Some(field.clone())),
                    Verdict::NotEvaluated => ("not_evaluated", None),
                };
                serde_json::json!({"rule": r.rule, "when": r.when, "verdict": verdict, "missing": detail})
            })
            .collect();
        output::json(&serde_json::json!({
            "ok": true,
            "matched": matched,
            "auto_approve": plan.approves_at_once(),
            "policy": plan.policy,
            "stages": plan.stages,
            "rules": rules,
        }))?;
        return Ok(Outcome::Success);
    }
    if explanation.rules.is_empty() {
        anstream::println!("{DIM}no rules in {}{DIM:#}", args.config.config.display());
    }
    for check in &explanation.rules {
        let verdict = match &check.verdict {
            Verdict::Matched => format!("{GOOD}matched{GOOD:#}"),
            Verdict::NotMatched => "no match".to_owned(),
            Verdict::MissingField(field) => format!("no match (the action has no '{field}')"),
            Verdict::NotEvaluated => format!("{DIM}not evaluated (an earlier rule matched){DIM:#}"),
        };
        anstream::println!(
            "  rule {BOLD}{}{BOLD:#}: {verdict}\n    {DIM}when {}{DIM:#}",
            check.rule,
            check.when
        );
    }
    anstream::println!();
    match &matched {
        Some(rule) => anstream::println!("{BOLD}Matched rule{BOLD:#} {rule}"),
        None => anstream::println!("{BOLD}No rule matched{BOLD:#}: the default policy applies"),
    }
    if plan.approves_at_once() {
        anstream::println!(
            "  approved automatically, recorded with rule:{} as the approver",
            matched.unwrap_or_default()
        );
        return Ok(Outcome::Success);
    }
    anstream::println!("{BOLD}Requires{BOLD:#}     policy {}", plan.policy);
    for (n, stage) in plan.stages.iter().enumerate() {
        anstream::println!(
            "  {}. {:<12} {} of {}",
            n + 1,
            stage.name,
            stage.quorum,
            stage.eligible_text()
        );
    }
    Ok(Outcome::Success)
}

//! `signoff config check`: the configuration checked exactly as the server
//! will check it, without starting anything.

use signoff_workflow::config::Config;

use super::Outcome;
use crate::cli::ConfigArgs;
use crate::output::{self, BOLD, GOOD};

/// Prints what the file declares, or every problem in it (exit 1).
pub fn check(args: &ConfigArgs, json: bool) -> anyhow::Result<Outcome> {
    match Config::load(&args.config) {
        Ok(config) => {
            let names = |keys: Vec<&String>| {
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if json {
                output::json(&serde_json::json!({
                    "ok": true,
                    "file": args.config,
                    "agents": config.agents.keys().collect::<Vec<_>>(),
                    "executors": config.executors.keys().collect::<Vec<_>>(),
                    "workflows": config.workflows.keys().collect::<Vec<_>>(),
                    "policies": config.policies.keys().collect::<Vec<_>>(),
                    "rules": config.rules.iter().map(|r| r.value.name.as_str()).collect::<Vec<_>>(),
                }))?;
            } else {
                let rules: Vec<&String> = config.rules.iter().map(|r| &r.value.name).collect();
                anstream::println!(
                    "{GOOD}{} is valid{GOOD:#}\n  {BOLD}agents{BOLD:#}     {}\n  {BOLD}executors{BOLD:#}  {}\n  {BOLD}workflows{BOLD:#}  {}\n  {BOLD}policies{BOLD:#}   {}\n  {BOLD}rules{BOLD:#}      {}",
                    args.config.display(),
                    names(config.agents.keys().collect()),
                    names(config.executors.keys().collect()),
                    names(config.workflows.keys().collect()),
                    names(config.policies.keys().collect()),
                    names(rules),
                );
            }
            Ok(Outcome::Success)
        }
        Err(error) => {
            if json {
                output::json(&serde_json::json!({
                    "ok": false,
                    "file": args.config,
                    "problems": error.problems.iter().map(|p| serde_json::json!({
                        "line": p.line, "column": p.column, "message": p.message,
                    })).collect::<Vec<_>>(),
                }))?;
            } else {
                anstream::eprintln!("{error}");
            }
            Ok(Outcome::Error)
        }
    }
}

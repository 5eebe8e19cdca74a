//! The drafting agent: reads the task (JSON) on stdin, writes the draft on
//! stdout. A `command` agent in signoff.yaml.

use std::io::{Read, Write};

fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let task: serde_json::Value = serde_json::from_str(&input)?;
    let draft = policy_update_example::draft(&task);
    writeln!(std::io::stdout(), "{draft}")?;
    Ok(())
}

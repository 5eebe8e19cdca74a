//! The drafting agent: reads the task (one JSON object) on stdin, writes the
//! draft (one JSON object) on stdout and exits 0. A `command` agent in
//! signoff.yaml; see [`policy_update_example::draft`] for what it proposes.
//! Input that is not JSON is reported on stderr with a non-zero exit.

use std::io::{Read, Write};

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("failed to read the task from stdin")?;
    let task: serde_json::Value =
        serde_json::from_str(&input).context("the task on stdin is not JSON")?;
    let draft = policy_update_example::draft(&task);
    writeln!(std::io::stdout(), "{draft}").context("failed to write the draft")?;
    Ok(())
}

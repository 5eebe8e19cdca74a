//! The validating agent: reads `{"draft", "validation_type"}` (one JSON
//! object) on stdin, writes `{"is_valid", "score", "issues"}` on stdout and
//! exits 0. A `command` agent in signoff.yaml; see
//! [`policy_update_example::validate`] for the rules. Input that is not JSON
//! is reported on stderr with a non-zero exit.

use std::io::{Read, Write};

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("failed to read the task from stdin")?;
    let task: serde_json::Value =
        serde_json::from_str(&input).context("the task on stdin is not JSON")?;
    let verdict = policy_update_example::validate(&task);
    writeln!(std::io::stdout(), "{verdict}").context("failed to write the verdict")?;
    Ok(())
}

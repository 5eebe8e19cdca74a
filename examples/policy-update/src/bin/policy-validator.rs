//! The validating agent: reads `{"draft", "validation_type"}` on stdin,
//! writes `{"is_valid", "score", "issues"}` on stdout.

use std::io::{Read, Write};

fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let task: serde_json::Value = serde_json::from_str(&input)?;
    let verdict = policy_update_example::validate(&task);
    writeln!(std::io::stdout(), "{verdict}")?;
    Ok(())
}

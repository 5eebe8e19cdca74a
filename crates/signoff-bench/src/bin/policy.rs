//! The cost of choosing an approval plan: the README's rules compiled once,
//! then evaluated against a typical policy-update action, as `create` does
//! when a server has rules. Prints the time per evaluation.
//!
//! Usage: `policy [ITERATIONS]`

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use signoff_workflow::config::Config;

const CONFIG: &str = r#"
policies:
  standard:
    stages:
      - { name: manager, groups: [managers] }
      - { name: finance, groups: [finance], quorum: 2 }
rules:
  - name: low-risk
    when: 'has(action.changes.max_amount_without_approval) && action.changes.max_amount_without_approval <= 1000'
    auto_approve: true
  - name: refunds
    when: labels.kind == "refund" && requester.startsWith("support-")
    policy: standard
  - name: large-limit
    when: action.changes.max_amount_without_approval > 10000
    policy: standard
    add_stages:
      - { name: cfo, users: [carol] }
default_policy: standard
"#;

fn main() -> anyhow::Result<()> {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(200_000);
    let config = Config::parse(CONFIG, std::path::Path::new("bench.yaml"))?;
    let policies = config.policies();
    let action = serde_json::json!({
        "type": "policy_update",
        "policy_name": "Expense Approval Policy",
        "changes": {
            "max_amount_without_approval": 20000,
            "approval_chain": ["manager", "finance", "cfo"]
        }
    });
    let action = action.as_object().context("not an object")?;
    let labels = BTreeMap::from([("kind".to_owned(), "policy".to_owned())]);
    let facts = signoff_policy::Facts {
        action,
        labels: &labels,
        requester: "drafter",
        title: "Raise the expense approval limit",
    };
    // The last rule matches: every rule is evaluated.
    let plan = policies.plan(facts)?;
    anyhow::ensure!(plan.rule.as_deref() == Some("large-limit"), "wrong rule");
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(policies.plan(std::hint::black_box(facts))?);
    }
    let elapsed = started.elapsed();
    println!(
        "{iterations} plans in {:.2?}: {:.1} µs per plan (3 rules evaluated)",
        elapsed,
        elapsed.as_secs_f64() * 1e6 / f64::from(iterations)
    );
    Ok(())
}

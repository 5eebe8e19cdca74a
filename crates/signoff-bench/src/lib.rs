//! Shared bits of the benchmark programs (see `bench/run.sh`, which drives
//! them, and docs/BENCHMARKS.md, which records what they measured).

use std::time::Duration;

/// The request body every benchmark sends: the same JSON for the echo
/// baseline and for Signoff, so the comparison is like for like.
pub const BODY: &str = r#"{"title":"Raise the expense approval limit","description":"Finance asked for 5000 without approval","proposed_action":{"type":"policy_update","changes":{"max_amount_without_approval":5000,"approval_chain":["manager","finance","cfo"]}},"expires_in":"24h"}"#;

/// The `q`-quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Resident memory of process `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Microseconds, for printing.
pub fn micros(d: Duration) -> u128 {
    d.as_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_ranks() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&samples, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&samples, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn the_body_is_json() {
        assert!(serde_json::from_str::<serde_json::Value>(BODY).is_ok());
    }
}

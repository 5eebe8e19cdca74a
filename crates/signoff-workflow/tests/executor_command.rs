//! `CommandExecutor` running real programs (`sh` scripts): what the program
//! gets on stdin and in its environment, how its output becomes the result,
//! and how a failing, missing or slow program is reported (a slow one is
//! killed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use signoff_workflow::executor::CommandExecutor;
use signoff_workflow::process::Program;
use signoff_workflow::{ConnectorError, Executor};

fn sh(script: &str, timeout: Duration) -> CommandExecutor {
    CommandExecutor {
        program: Program {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: BTreeMap::from([("POLICY".to_owned(), "expenses".to_owned())]),
            timeout,
        },
    }
}

#[tokio::test]
async fn the_program_gets_the_action_the_key_and_its_environment() {
    // Echoes its stdin and two variables back as JSON.
    let executor = sh(
        r#"input=$(cat); printf '{"input": %s, "key": "%s", "policy": "%s"}' "$input" "$SIGNOFF_IDEMPOTENCY_KEY" "$POLICY""#,
        Duration::from_secs(5),
    );
    let action = json!({"title": "t", "changes": {"max": 5000}});
    let result = executor.execute(&action, "run-5-attempt-2").await.unwrap();
    assert_eq!(
        result,
        json!({
            "input": {"action": action, "idempotency_key": "run-5-attempt-2"},
            "key": "run-5-attempt-2",
            "policy": "expenses"
        })
    );
}

#[tokio::test]
async fn output_that_is_not_json_is_kept_as_text() {
    let executor = sh(
        "cat >/dev/null; echo 'applied 3 changes'",
        Duration::from_secs(5),
    );
    let result = executor.execute(&json!({}), "k").await.unwrap();
    assert_eq!(result, json!({"stdout": "applied 3 changes\n"}));
}

#[tokio::test]
async fn a_non_zero_exit_is_a_failure_with_the_end_of_stderr() {
    let executor = sh(
        "i=0; while [ $i -lt 500 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; \
         echo 'policy store refused: locked' >&2; exit 4",
        Duration::from_secs(5),
    );
    let error = executor.execute(&json!({}), "k").await.unwrap_err();
    let ConnectorError::Failed { message, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("policy store refused: locked"),
        "{message}"
    );
    assert!(message.contains('4'), "{message}");
    // Only the tail: the first lines are gone.
    assert!(!message.contains("noise line 0\n"), "{message}");
}

#[tokio::test]
async fn a_missing_program_is_unreachable() {
    let executor = CommandExecutor {
        program: Program {
            argv: vec!["/nonexistent/apply".into()],
            env: BTreeMap::new(),
            timeout: Duration::from_secs(5),
        },
    };
    let error = executor.execute(&json!({}), "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Unreachable { peer, .. } if peer == "/nonexistent/apply"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_slow_program_times_out_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let executor = sh(
        &format!("echo $$ > '{}'; exec sleep 30", pid_file.display()),
        Duration::from_millis(500),
    );
    let started = Instant::now();
    let error = executor.execute(&json!({}), "k").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Timeout { after, .. } if *after == Duration::from_millis(500)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = Path::new("/proc").join(pid.trim());
    // Gone, or a zombie about to be reaped: not running.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(proc_dir.join("stat")).ok();
        let running = state.as_deref().is_some_and(|stat| {
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            !after_name.trim_start().starts_with('Z')
        });
        if !running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the program still runs: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

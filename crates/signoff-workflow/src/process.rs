//! Running a program with JSON in and JSON out, for the `command` agents and
//! executors: the JSON on stdin, stdin closed, stdout read to the end, a
//! deadline, and the child killed if the deadline passes or the caller goes
//! away.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::ConnectorError;

/// The most of a failing program's stderr kept in the error.
const STDERR_TAIL: usize = 2000;

/// A program and how to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// How long it may take.
    pub timeout: Duration,
}

impl Program {
    /// How the program is named in errors.
    pub fn name(&self) -> String {
        self.argv.first().cloned().unwrap_or_default()
    }

    /// Runs it with `input` on stdin and returns its stdout.
    pub async fn run(
        &self,
        input: &Value,
        extra_env: &[(&str, &str)],
    ) -> Result<String, ConnectorError> {
        let peer = self.name();
        let Some((program, args)) = self.argv.split_first() else {
            return Err(ConnectorError::Unreachable {
                peer,
                message: "the command is empty".into(),
            });
        };
        let mut child = Command::new(program)
            .args(args)
            .envs(&self.env)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| ConnectorError::Unreachable {
                peer: peer.clone(),
                message: format!("cannot start it: {error}"),
            })?;
        let body = serde_json::to_vec(input).map_err(|error| ConnectorError::BadAnswer {
            peer: peer.clone(),
            message: format!("cannot encode the input: {error}"),
        })?;
        let mut stdin = child.stdin.take();
        let exchange = async move {
            if let Some(stdin) = stdin.as_mut() {
                // A program that exits without reading its input is judged
                // by its exit status and output, not by this write.
                let _ = stdin.write_all(&body).await;
                let _ = stdin.shutdown().await;
            }
            drop(stdin);
            child.wait_with_output().await
        };
        let output = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => {
                return Err(ConnectorError::Unreachable {
                    peer,
                    message: format!("lost the process: {error}"),
                });
            }
            // Dropping the future dropped the child: kill_on_drop ends it.
            Err(_) => {
                return Err(ConnectorError::Timeout {
                    peer,
                    after: self.timeout,
                });
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            let tail: String = stderr
                .chars()
                .rev()
                .take(STDERR_TAIL)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(ConnectorError::Failed {
                peer,
                message: if tail.is_empty() {
                    format!("exited with {}", output.status)
                } else {
                    format!("exited with {}: {tail}", output.status)
                },
            });
        }
        String::from_utf8(output.stdout).map_err(|_| ConnectorError::BadAnswer {
            peer,
            message: "its output is not UTF-8".into(),
        })
    }
}

/// Parses `text` as a JSON object answer.
pub(crate) fn json_object(peer: &str, text: &str) -> Result<Value, ConnectorError> {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ConnectorError::BadAnswer {
            peer: peer.to_owned(),
            message: "the answer is JSON but not an object".into(),
        }),
        Err(error) => {
            let snippet: String = text.trim().chars().take(200).collect();
            Err(ConnectorError::BadAnswer {
                peer: peer.to_owned(),
                message: format!("the answer is not JSON ({error}): {snippet:?}"),
            })
        }
    }
}

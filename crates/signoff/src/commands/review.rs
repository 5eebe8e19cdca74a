//! `signoff review`: the guide's interactive gate. Shows each pending request
//! in a box and asks what to do with it.
//!
//! Answers are read as lines from stdin on a thread of their own, so the
//! same code serves a person at a terminal and a script piping answers in,
//! and `--timeout` can give up on a silent reviewer (the guide's "approval
//! request hangs" problem) without deciding anything. A line-based prompt
//! rather than a terminal widget library for that reason: widgets need a
//! terminal and cannot be abandoned on a timer.

use std::io::{BufRead, Write};
use std::time::Duration;

use chrono::Utc;
use signoff_api::{ApproveBody, AuditParams, ListParams, RejectBody, RequestView, StatusView};
use signoff_client::{Client, ClientError};
use tokio::sync::mpsc;

use super::{Outcome, parse_duration, reviewer_name};
use crate::cli::ReviewArgs;
use crate::output::{self, BAD, BOLD, DIM, GOOD, WAITING};

/// What the reviewer typed, or why there is nothing.
enum Answer {
    /// One line, trimmed.
    Line(String),
    /// `--timeout` passed without an answer.
    TimedOut,
    /// stdin ended (Ctrl-D, or the piped answers ran out).
    Closed,
}

/// Lines from stdin, delivered as they are typed.
struct Answers {
    lines: mpsc::Receiver<String>,
    timeout: Option<Duration>,
}

impl Answers {
    fn spawn(timeout: Option<Duration>) -> Self {
        let (tx, lines) = mpsc::channel(1);
        // A plain thread: a blocked stdin read must not keep the runtime from
        // shutting down when review ends.
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Self { lines, timeout }
    }

    /// Prints `prompt` and waits for the next line.
    async fn ask(&mut self, prompt: &str) -> anyhow::Result<Answer> {
        let mut out = anstream::stdout().lock();
        write!(out, "{BOLD}{prompt}{BOLD:#}")?;
        out.flush()?;
        drop(out);
        let next = self.lines.recv();
        let line = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, next).await {
                Ok(line) => line,
                Err(_) => return Ok(Answer::TimedOut),
            },
            None => next.await,
        };
        Ok(match line {
            Some(line) => Answer::Line(line.trim().to_owned()),
            None => Answer::Closed,
        })
    }
}

/// How the session went, printed at the end.
#[derive(Default)]
struct Tally {
    approved: usize,
    rejected: usize,
    skipped: usize,
    missed: usize,
}

impl Tally {
    fn print(&self) {
        anstream::println!(
            "\nApproved {}, rejected {}, skipped {}{}.",
            self.approved,
            self.rejected,
            self.skipped,
            if self.missed > 0 {
                format!(", {} already decided elsewhere", self.missed)
            } else {
                String::new()
            }
        );
    }
}

/// What became of one request.
enum Step {
    Next,
    Stop(Outcome),
}

/// Reviews every request pending when it starts, soonest expiry first.
pub async fn run(client: &Client, args: ReviewArgs) -> anyhow::Result<Outcome> {
    let reviewer = reviewer_name(&args.reviewer, client)?;
    let timeout = match args.timeout.as_deref() {
        Some(text) => Some(parse_duration("--timeout", text)?),
        None => None,
    };
    let pending = all_pending(client).await?;
    if pending.is_empty() {
        anstream::println!("No pending requests.");
        return Ok(Outcome::Success);
    }
    anstream::println!(
        "{} pending request{} to review as {BOLD}{}{BOLD:#}.",
        pending.len(),
        if pending.len() == 1 { "" } else { "s" },
        reviewer.as_deref().unwrap_or("your token's identity")
    );
    let mut answers = Answers::spawn(timeout);
    let mut tally = Tally::default();
    let total = pending.len();
    for (index, request) in pending.iter().enumerate() {
        draw(request, index + 1, total)?;
        let step = review_one(
            client,
            request,
            reviewer.as_deref(),
            &mut answers,
            &mut tally,
        )
        .await?;
        if let Step::Stop(outcome) = step {
            tally.print();
            return Ok(outcome);
        }
    }
    tally.print();
    Ok(Outcome::Success)
}

/// Every pending request, across pages, ordered by expiry.
async fn all_pending(client: &Client) -> Result<Vec<RequestView>, ClientError> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let params = ListParams {
            status: Some(StatusView::Pending),
            limit: Some(500),
            cursor,
        };
        let page = client.list(&params).await?;
        all.extend(page.requests);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.sort_by_key(|r| r.expires_at);
    Ok(all)
}

/// Asks about one request until it is decided, skipped, or the session ends.
async fn review_one(
    client: &Client,
    request: &RequestView,
    reviewer: Option<&str>,
    answers: &mut Answers,
    tally: &mut Tally,
) -> anyhow::Result<Step> {
    loop {
        let answer = answers
            .ask("[a]pprove  [r]eject  [d]etails  [s]kip  [q]uit > ")
            .await?;
        let line = match answer {
            Answer::Line(line) => line,
            Answer::TimedOut => return Ok(Step::Stop(timed_out(request))),
            Answer::Closed => return Ok(Step::Stop(closed())),
        };
        match line.to_lowercase().as_str() {
            "a" | "approve" => {
                let body = ApproveBody {
                    reviewer: reviewer.map(str::to_owned),
                    comment: None,
                    edited_action: None,
                };
                let result = client.approve(request.id, &body).await;
                report(result, tally)?;
                return Ok(Step::Next);
            }
            "r" | "reject" => {
                let reason = match ask_reason(answers).await? {
                    Answer::Line(reason) => reason,
                    Answer::TimedOut => return Ok(Step::Stop(timed_out(request))),
                    Answer::Closed => return Ok(Step::Stop(closed())),
                };
                let body = RejectBody {
                    reviewer: reviewer.map(str::to_owned),
                    reason,
                };
                let result = client.reject(request.id, &body).await;
                report(result, tally)?;
                return Ok(Step::Next);
            }
            "d" | "details" => details(client, request).await?,
            "s" | "skip" => {
                tally.skipped += 1;
                anstream::println!("{DIM}Skipped.{DIM:#}");
                return Ok(Step::Next);
            }
            "q" | "quit" => return Ok(Step::Stop(Outcome::Success)),
            "" => {}
            other => anstream::println!("Unknown answer '{other}': type a, r, d, s or q."),
        }
    }
}

/// Asks why, until a non-empty reason is given (or the session ends).
async fn ask_reason(answers: &mut Answers) -> anyhow::Result<Answer> {
    loop {
        match answers.ask("Reason for rejection > ").await? {
            Answer::Line(reason) if reason.is_empty() => {
                anstream::println!("A rejection needs a reason.");
            }
            answer => return Ok(answer),
        }
    }
}

/// Prints what a decision came to; a request someone else decided (or that
/// expired) in the meantime is reported, not an error.
fn report(result: Result<RequestView, ClientError>, tally: &mut Tally) -> anyhow::Result<()> {
    match result {
        Ok(decided) => {
            let style = output::status_style(decided.status);
            let text = match decided.status {
                StatusView::Approved => {
                    tally.approved += 1;
                    "✓ Approved.".to_owned()
                }
                // One stage of an approval chain: the request goes on.
                StatusView::Pending => {
                    tally.approved += 1;
                    output::progress(&decided)
                }
                _ => {
                    tally.rejected += 1;
                    "✗ Rejected.".to_owned()
                }
            };
            anstream::println!("{style}{text}{style:#}");
            Ok(())
        }
        // Decided elsewhere, or not this reviewer's stage: say so, go on.
        Err(error) if error.is_conflict() || error.status() == Some(403) => {
            tally.missed += 1;
            anstream::println!("{WAITING}! {error}{WAITING:#}");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

fn timed_out(request: &RequestView) -> Outcome {
    anstream::println!(
        "\n{WAITING}No answer in time:{WAITING:#} request {} stays pending; nothing was decided.",
        request.id
    );
    Outcome::TimedOut
}

fn closed() -> Outcome {
    anstream::println!("\nNo more input; stopping.");
    Outcome::Success
}

/// The request in a box: what is proposed and how long it may wait.
fn draw(request: &RequestView, index: usize, total: usize) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    let rule = "─".repeat(60);
    let bar = format!("{DIM}│{DIM:#}");
    writeln!(out)?;
    writeln!(out, "{DIM}╭─ {index} of {total} {rule}{DIM:#}")?;
    writeln!(out, "{bar} {BOLD}{}{BOLD:#}", request.title)?;
    writeln!(out, "{bar} {DIM}{}{DIM:#}", request.id)?;
    writeln!(out, "{bar}")?;
    for (i, line) in request.description.lines().enumerate() {
        let label = if i == 0 { "Description:" } else { "" };
        writeln!(out, "{bar} {label:<14}{line}")?;
    }
    writeln!(out, "{bar} {:<14}{}", "Requested by:", request.requester)?;
    let now = Utc::now();
    let left = output::relative(request.expires_at, now);
    let style = if request.expires_at <= now { BAD } else { GOOD };
    writeln!(
        out,
        "{bar} {:<14}{} ({style}{left}{style:#})",
        "Expires:",
        output::time(request.expires_at)
    )?;
    writeln!(out, "{bar} Proposed action:")?;
    for line in output::pretty_action(request).lines() {
        writeln!(out, "{bar}   {line}")?;
    }
    writeln!(out, "{DIM}╰{rule}───────{DIM:#}")?;
    Ok(())
}

/// Labels, timestamps and the request's audit trail.
async fn details(client: &Client, request: &RequestView) -> anyhow::Result<()> {
    output::details(request, Utc::now())?;
    let params = AuditParams {
        request_id: Some(request.id),
        after: None,
        limit: Some(100),
    };
    let page = client.audit(&params).await?;
    anstream::println!("\n{BOLD}Audit trail{BOLD:#}");
    super::audit::print_entries(&page.entries)?;
    Ok(())
}

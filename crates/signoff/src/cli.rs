//! The command line: every command, flag and environment variable, parsed by
//! clap. Parsing only; the commands themselves live in `commands/`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

/// The port `signoff serve` listens on and the CLI talks to by default.
pub const DEFAULT_PORT: u16 = 8470;

const AFTER_HELP: &str = "\
Exit codes:
  0  success; for `wait`: approved
  1  error (server unreachable, bad answer, conflict, broken audit chain)
  2  usage error (bad flags or arguments)
  3  `wait`: rejected
  4  `wait`: expired
  5  `wait`: cancelled
  6  `wait`: still pending when --timeout ran out; `review`: no answer in time
`run` ends like `wait`: 0 executed, 1 failed (agent, validation, executor), 3 rejected, 4 expired, 5 cancelled.";

/// Signoff: a human-in-the-loop approval gate for AI agents.
///
/// An agent proposes an action, a person approves or rejects it, and nothing
/// runs until someone has signed off. `signoff serve` runs the server; every
/// other command talks to it over HTTP.
#[derive(Debug, Parser)]
#[command(name = "signoff", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Base URL of the Signoff server.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_URL",
        default_value = "http://127.0.0.1:8470"
    )]
    pub server: String,

    /// API token (else SIGNOFF_TOKEN, else the file
    /// ~/.config/signoff/token).
    #[arg(long, global = true, env = "SIGNOFF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Print JSON instead of text (one document; `audit export` is always
    /// JSON lines).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the HTTP API, the guide's routes and the expiry sweeper.
    Serve(ServeArgs),
    /// Propose actions for approval.
    #[command(subcommand)]
    Request(RequestCommand),
    /// List requests waiting for a decision.
    Pending(PageArgs),
    /// List requests, newest first, optionally of one status.
    List(ListArgs),
    /// Show one request.
    Show(IdArg),
    /// Approve a pending request.
    Approve(ApproveArgs),
    /// Reject a pending request, with a reason.
    Reject(RejectArgs),
    /// Withdraw a pending request.
    Cancel(CancelArgs),
    /// Wait until a request is decided; the exit code tells the outcome.
    Wait(WaitArgs),
    /// Review pending requests one by one, interactively.
    Review(ReviewArgs),
    /// Read, export and verify the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check the workflow configuration file (signoff.yaml).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Approval policies: which rule a request would match and what it needs.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Start a workflow run and follow it stage by stage until it is over.
    Run(RunArgs),
    /// Inspect workflow runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Create, list and revoke API tokens (directly in the database).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Outbound webhooks: subscribe URLs to events, see their deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

/// `signoff webhook ...` (admins).
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribe a URL to events; prints the signing secret (once).
    Add(WebhookAddArgs),
    /// List subscriptions.
    List,
    /// Remove a subscription and its deliveries.
    Remove(WebhookIdArg),
    /// List deliveries, newest first.
    Deliveries(DeliveriesArgs),
    /// Send a delivery again now (a dead one, typically).
    Redeliver(WebhookIdArg),
}

/// `signoff webhook add`.
#[derive(Debug, Args)]
pub struct WebhookAddArgs {
    /// Where to POST events (http:// or https://).
    pub url: String,
    /// Comma-separated event names: request.created, request.decided
    /// (approved or rejected), request.approved, request.endorsed,
    /// request.rejected, request.expired, request.cancelled,
    /// request.denied, or * for all.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "request.created,request.decided"
    )]
    pub events: Vec<String>,
    /// The HMAC-SHA256 signing key (16 to 256 characters); by default one
    /// is made and printed.
    #[arg(long, env = "SIGNOFF_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// `json` (Signoff's event) or `slack` (a Slack incoming-webhook
    /// message with a link to the request page).
    #[arg(long, value_enum, default_value_t = WebhookFormatArg::Json)]
    pub format: WebhookFormatArg,
}

/// `--format` of `webhook add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookFormatArg {
    /// Signoff's JSON event.
    Json,
    /// A Slack message.
    Slack,
}

/// A subscription's or delivery's id.
#[derive(Debug, Args)]
pub struct WebhookIdArg {
    /// The id.
    pub id: Uuid,
}

/// `signoff webhook deliveries`.
#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// Only those of this subscription.
    #[arg(long)]
    pub webhook: Option<Uuid>,
    /// Only those in this state.
    #[arg(long, value_enum)]
    pub status: Option<DeliveryStatusArg>,
    /// Only those about this request.
    #[arg(long)]
    pub request: Option<Uuid>,
    /// At most this many (1 to 500).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// `--status` of `webhook deliveries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeliveryStatusArg {
    /// Not yet accepted; will be retried.
    Pending,
    /// Accepted by the receiver.
    Delivered,
    /// Every try failed.
    Dead,
}

/// `signoff token ...`: works on the database file itself, so the first
/// admin token can be made before anyone can call the API.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: only its hash is stored).
    Create(TokenCreateArgs),
    /// List tokens (never their secrets).
    List(DatabaseArg),
    /// Revoke a token by its id (the part after `so_`, before the next `_`).
    Revoke(TokenRevokeArgs),
}

/// The database the token commands work on.
#[derive(Debug, Args)]
pub struct DatabaseArg {
    /// The server's database: a SQLite file path, `sqlite:` URL or `postgres://` URL.
    #[arg(long, env = "SIGNOFF_DATABASE_URL", default_value = "signoff.db")]
    pub database: String,
}

/// `signoff token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The identity's name: recorded as reviewer or requester.
    #[arg(long)]
    pub name: String,
    /// agent, reviewer or admin.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// A group it belongs to; repeat for several.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Lifetime ("90d", "12h"); default: until revoked.
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArg,
}

/// `signoff token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id.
    pub id: String,
    #[command(flatten)]
    pub database: DatabaseArg,
}

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Creates requests, starts runs, reads its own.
    Agent,
    /// Reads everything, decides.
    Reviewer,
    /// Everything.
    Admin,
}

/// `signoff run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow's name in the server's configuration.
    pub workflow: String,
    /// The task for the draft agent, a JSON object: inline, `@FILE`, or `-`
    /// for stdin (a bare path also works).
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub input: String,
    /// Print the run and return at once instead of following it.
    #[arg(long)]
    pub detach: bool,
}

/// `signoff runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Show a run and the result of each stage.
    Show(IdArg),
}

/// `signoff config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse and check the file without starting anything; every problem is
    /// reported as FILE:LINE:COLUMN: message.
    Check(ConfigArgs),
}

/// `signoff policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate the configuration's rules against an action, as the server
    /// would on create, and print which rule matched and what it requires.
    Explain(ExplainArgs),
}

/// `signoff policy explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The proposed action, a JSON object: inline, `@FILE`, or `-` for stdin.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub action: String,
    /// A label of the request, KEY=VALUE; repeat for several.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Who would ask.
    #[arg(long, default_value = "anonymous")]
    pub requester: String,
    /// The request's title (rules may read it).
    #[arg(long, default_value = "")]
    pub title: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Where the configuration file is.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(long, env = "SIGNOFF_CONFIG", default_value = "signoff.yaml")]
    pub config: PathBuf,
}

/// `signoff serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "SIGNOFF_LISTEN", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub listen: SocketAddr,

    /// Database: a SQLite file path or `sqlite:` URL, or a `postgres://` URL
    /// (PostgreSQL: several replicas may share it).
    #[arg(long, env = "SIGNOFF_DATABASE_URL", default_value = "signoff.db")]
    pub database: String,

    /// `full`: a write is acknowledged once it is on disk (survives power
    /// loss). `normal`: survives a crash of the server but may lose the last
    /// writes on power loss.
    #[arg(long, env = "SIGNOFF_DURABILITY", value_enum, default_value_t = DurabilityArg::Full)]
    pub durability: DurabilityArg,

    /// Answer long polls (`wait`) after at most this long ("60s", "5m";
    /// at most 300s): keep it under the idle timeout of any proxy in front.
    #[arg(
        long,
        env = "SIGNOFF_MAX_WAIT",
        default_value = "300s",
        value_name = "DURATION"
    )]
    pub max_wait: String,

    /// Workflow configuration (agents, executors, workflows); a bad file is
    /// refused at start with every problem and its line.
    #[arg(long, env = "SIGNOFF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Whether API calls need a token: `auto` (on unless listening on
    /// loopback only), `on`, or `off` (loopback only).
    #[arg(long, env = "SIGNOFF_AUTH", value_enum, default_value_t = AuthArg::Auto)]
    pub auth: AuthArg,

    /// Writes each token may make per second (bursts of twice that); more
    /// are answered 429 with Retry-After.
    #[arg(long, env = "SIGNOFF_WRITE_RATE", default_value = "50")]
    pub write_rate: std::num::NonZeroU32,

    /// With PostgreSQL: how long a replica's claim on a workflow run lasts
    /// unless renewed (every third of it). A replica that dies has its
    /// runs taken over by another this long after its last renewal.
    #[arg(
        long,
        env = "SIGNOFF_RUN_LEASE",
        default_value = "15s",
        value_name = "DURATION"
    )]
    pub run_lease: String,

    /// The address reviewers reach this server at, for the links in
    /// notifications (`https://signoff.example.com`); by default `http://`
    /// and the listening address.
    #[arg(long, env = "SIGNOFF_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Wait before retrying a failed webhook delivery; doubled after each
    /// further failure, up to 5 minutes.
    #[arg(
        long,
        env = "SIGNOFF_WEBHOOK_RETRY_DELAY",
        default_value = "5s",
        value_name = "DURATION"
    )]
    pub webhook_retry_delay: String,

    /// Tries of a webhook delivery, the first included, before it is
    /// dead-lettered (kept, and sent again only by `webhook redeliver`).
    #[arg(long, env = "SIGNOFF_WEBHOOK_ATTEMPTS", default_value = "8")]
    pub webhook_attempts: std::num::NonZeroU32,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// On unless listening on loopback only.
    Auto,
    /// Always require a token.
    On,
    /// Never (refused beyond loopback).
    Off,
}

/// `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// fsync on every commit.
    Full,
    /// fsync at checkpoints only.
    Normal,
}

/// `signoff request ...`.
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Propose an action; prints the new request.
    Create(CreateArgs),
}

/// `signoff request create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// One line that says what is proposed (1 to 200 characters).
    #[arg(long)]
    pub title: String,

    /// The proposed action, a JSON object: inline, `@FILE`, or `-` for stdin.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub action: String,

    /// Longer explanation for the reviewer.
    #[arg(long, default_value = "")]
    pub description: String,

    /// How long it may wait: seconds or "90s", "30m", "24h", "7d" (default 24h).
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,

    /// Who proposes it (default: the server's `anonymous`).
    #[arg(long, env = "SIGNOFF_REQUESTER")]
    pub requester: Option<String>,

    /// A label, `KEY=VALUE`; repeat for several.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Makes a retried create return the first request instead of a new one.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Paging of `pending`.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// How many to show (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
}

/// `signoff list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// How many to show (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    /// Continue after this page (the cursor a previous `list` printed).
    #[arg(long)]
    pub cursor: Option<String>,
}

/// A status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Waiting for a reviewer.
    Pending,
    /// Signed off.
    Approved,
    /// Refused.
    Rejected,
    /// Ran out of time.
    Expired,
    /// Withdrawn.
    Cancelled,
}

/// A request id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The request's id.
    pub id: Uuid,
}

/// Who is deciding: `--reviewer`, else SIGNOFF_REVIEWER, else the OS user.
#[derive(Debug, Args)]
pub struct ReviewerArg {
    /// Your name as the reviewer (default: SIGNOFF_REVIEWER, then the OS user).
    #[arg(long, env = "SIGNOFF_REVIEWER")]
    pub reviewer: Option<String>,
}

/// `signoff approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request's id.
    pub id: Uuid,
    /// A note kept with the decision.
    #[arg(long)]
    pub comment: Option<String>,
    /// Approve with edits: the action as you changed it, a JSON object
    /// (inline, `@FILE`, or `-` for stdin). It runs instead of the proposed
    /// one; the audit trail keeps both.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub edit: Option<String>,
    #[command(flatten)]
    pub reviewer: ReviewerArg,
}

/// `signoff reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The request's id.
    pub id: Uuid,
    /// Why: sent back to whoever proposed it.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub reviewer: ReviewerArg,
}

/// `signoff cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The request's id.
    pub id: Uuid,
    /// Why it is withdrawn.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who withdraws it (default: SIGNOFF_REVIEWER, then the OS user).
    #[arg(long, env = "SIGNOFF_ACTOR")]
    pub actor: Option<String>,
}

/// `signoff wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The request's id.
    pub id: Uuid,
    /// Give up after this long ("90s", "30m", seconds); default: until decided
    /// or expired.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// `signoff review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    pub reviewer: ReviewerArg,
    /// Stop waiting for an answer after this long ("90s", "5m", seconds),
    /// leaving the request undecided.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// `signoff audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the trail, of one request or of all.
    Show(AuditShowArgs),
    /// Write the trail as JSON lines (the guide's approvals.log fields).
    Export(AuditExportArgs),
    /// Walk the hash chain and name the first entry that was tampered with.
    Verify,
}

/// `signoff audit show`.
#[derive(Debug, Args)]
pub struct AuditShowArgs {
    /// Only this request's entries.
    pub request_id: Option<Uuid>,
}

/// `signoff audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Only this request's entries.
    #[arg(long)]
    pub request_id: Option<Uuid>,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}

//! `signoff.yaml`: the agents, executors and workflows a server runs.
//!
//! Parsed with serde-saphyr, which knows where every value came from, so a
//! mistake is reported as `signoff.yaml:12:5: what is wrong`, whether it is
//! a YAML syntax error, a wrong type, an unknown field, or a reference to an
//! agent that is not declared. Every problem in the file is reported at once.
//!
//! ```yaml
//! agents:
//!   drafter:   { kind: a2a, url: "http://127.0.0.1:9001", timeout: 60s }
//!   validator: { kind: command, command: [python3, validate.py] }
//! executors:
//!   apply:     { kind: mcp, command: [policy-server], tool: apply_changes }
//! workflows:
//!   policy-update:
//!     draft_agent: drafter
//!     validator_agent: validator
//!     min_score: 70
//!     executor: apply
//!     max_retries: 2
//!     expires_in: 24h
//!     labels: { team: finance }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use signoff_core::ExpiresIn;
use signoff_policy::{Policies, PolicyConfig, RuleConfig};

/// How long a call to an agent or executor may take unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Agents by name.
    #[serde(default)]
    pub agents: BTreeMap<String, Spanned<AgentConfig>>,
    /// Executors by name.
    #[serde(default)]
    pub executors: BTreeMap<String, Spanned<ExecutorConfig>>,
    /// Workflows by name.
    #[serde(default)]
    pub workflows: BTreeMap<String, Spanned<WorkflowConfig>>,
    /// Approval policies by name (see `signoff-policy`).
    #[serde(default)]
    pub policies: BTreeMap<String, Spanned<PolicyConfig>>,
    /// Rules choosing a policy for each request, first match wins.
    #[serde(default)]
    pub rules: Vec<Spanned<RuleConfig>>,
    /// The policy of a request no rule matches (default: one sign-off by
    /// any reviewer).
    pub default_policy: Option<Spanned<String>>,
    /// The policies and rules, compiled when the file is checked.
    #[serde(skip)]
    compiled: Policies,
}

/// One agent: who drafts or validates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum AgentConfig {
    /// An A2A agent; its card is read from `{url}/.well-known/agent-card.json`.
    A2a {
        /// Base URL of the agent.
        url: String,
        /// Per call, e.g. "30s" (default 60s).
        timeout: Option<String>,
    },
    /// A program: the JSON task on stdin, the JSON answer on stdout.
    Command {
        /// Program and arguments.
        command: Vec<String>,
        /// Extra environment variables.
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// Per call.
        timeout: Option<String>,
    },
    /// An HTTP endpoint: the task is POSTed as JSON, the answer is JSON.
    Http {
        /// Where to POST.
        url: String,
        /// Per call.
        timeout: Option<String>,
    },
}

/// What the MCP tool receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpArguments {
    /// `{"changes": action.changes}`, as the guide calls `apply_changes`.
    #[default]
    Changes,
    /// The whole approved action as the arguments object.
    Whole,
}

/// One executor: what applies an approved action.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ExecutorConfig {
    /// A tool of an MCP server: started as a child over stdio (`command`) or
    /// reached over streamable HTTP (`url`).
    Mcp {
        /// Program and arguments of a stdio server.
        command: Option<Vec<String>>,
        /// Environment for the child: besides these it gets only HOME,
        /// LOGNAME, PATH, SHELL, TERM and USER from the server.
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// URL of a streamable HTTP server.
        url: Option<String>,
        /// The tool to call.
        tool: String,
        /// What the tool receives.
        #[serde(default)]
        arguments: McpArguments,
        /// Also pass `idempotency_key` to the tool.
        #[serde(default)]
        pass_idempotency_key: bool,
        /// Per call.
        timeout: Option<String>,
    },
    /// A webhook: the action is POSTed with an `Idempotency-Key` header.
    Http {
        /// Where to POST.
        url: String,
        /// Per call.
        timeout: Option<String>,
    },
    /// A program: the action on stdin as JSON.
    Command {
        /// Program and arguments.
        command: Vec<String>,
        /// Extra environment variables.
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// Per call.
        timeout: Option<String>,
    },
}

/// One workflow: Draft, Validate, Approve, Execute.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// The agent that drafts (and redrafts after a rejection).
    pub draft_agent: Spanned<String>,
    /// The agent that scores a draft; none: every draft goes to approval.
    pub validator_agent: Option<Spanned<String>>,
    /// A draft scoring below this stops the run as `validation_failed`.
    #[serde(default)]
    pub min_score: f64,
    /// What applies the approved action.
    pub executor: Spanned<String>,
    /// Redrafts after a rejection before the run ends `rejected`.
    #[serde(default)]
    pub max_retries: u32,
    /// Life of each approval request ("24h" by default).
    pub expires_in: Option<Spanned<String>>,
    /// Labels put on each approval request.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One thing wrong in the file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

/// Why a configuration file was refused: every problem found, with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if problem.line == 0 {
                write!(f, "{}: {}", self.path.display(), problem.message)?;
            } else {
                write!(
                    f,
                    "{}:{}:{}: {}",
                    self.path.display(),
                    problem.line,
                    problem.column,
                    problem.message
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line: 0,
                column: 0,
                message: format!("cannot read the file: {error}"),
            }],
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let refused = |problems| ConfigError {
            path: path.to_path_buf(),
            problems,
        };
        let mut config: Config = serde_saphyr::from_str(text).map_err(|error| {
            let (line, column) = error
                .location()
                .map_or((0, 0), |at| (at.line(), at.column()));
            refused(vec![Problem {
                line,
                column,
                message: yaml_message(&error),
            }])
        })?;
        let mut problems = config.problems();
        match Policies::compile(
            &config.policies,
            &config.rules,
            config.default_policy.as_ref(),
        ) {
            Ok(compiled) => config.compiled = compiled,
            Err(found) => problems.extend(found.into_iter().map(|p| problem(p.at, p.message))),
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            problems.sort_by_key(|p| (p.line, p.column));
            Err(refused(problems))
        }
    }

    /// What deserialisation cannot see: references, durations, missing
    /// transports, empty commands.
    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, agent) in &self.agents {
            let at = agent.referenced;
            let (timeout, command) = match &agent.value {
                AgentConfig::A2a { timeout, url } | AgentConfig::Http { timeout, url } => {
                    check_url(&mut problems, at, &format!("agent '{name}'"), url);
                    (timeout, None)
                }
                AgentConfig::Command {
                    timeout, command, ..
                } => (timeout, Some(command)),
            };
            check_timeout(&mut problems, at, &format!("agent '{name}'"), timeout);
            if command.is_some_and(Vec::is_empty) {
                problems.push(problem(at, format!("agent '{name}': command is empty")));
            }
        }
        for (name, executor) in &self.executors {
            let at = executor.referenced;
            let what = format!("executor '{name}'");
            match &executor.value {
                ExecutorConfig::Mcp {
                    command,
                    url,
                    timeout,
                    tool,
                    ..
                } => {
                    match (command, url) {
                        (Some(_), Some(_)) | (None, None) => problems.push(problem(
                            at,
                            format!("{what}: give exactly one of command (stdio) or url (streamable HTTP)"),
                        )),
                        (Some(command), None) if command.is_empty() => {
                            problems.push(problem(at, format!("{what}: command is empty")));
                        }
                        (None, Some(url)) => check_url(&mut problems, at, &what, url),
                        _ => {}
                    }
                    if tool.trim().is_empty() {
                        problems.push(problem(at, format!("{what}: tool is empty")));
                    }
                    check_timeout(&mut problems, at, &what, timeout);
                }
                ExecutorConfig::Http { url, timeout } => {
                    check_url(&mut problems, at, &what, url);
                    check_timeout(&mut problems, at, &what, timeout);
                }
                ExecutorConfig::Command {
                    command, timeout, ..
                } => {
                    if command.is_empty() {
                        problems.push(problem(at, format!("{what}: command is empty")));
                    }
                    check_timeout(&mut problems, at, &what, timeout);
                }
            }
        }
        for (name, workflow) in &self.workflows {
            self.check_workflow(&mut problems, name, &workflow.value);
        }
        problems
    }

    fn check_workflow(&self, problems: &mut Vec<Problem>, name: &str, workflow: &WorkflowConfig) {
        let what = format!("workflow '{name}'");
        let agents = || known(self.agents.keys());
        let draft = &workflow.draft_agent;
        if !self.agents.contains_key(&draft.value) {
            problems.push(problem(
                draft.referenced,
                format!(
                    "{what}: draft_agent '{}' is not declared under agents ({})",
                    draft.value,
                    agents()
                ),
            ));
        }
        if let Some(validator) = &workflow.validator_agent
            && !self.agents.contains_key(&validator.value)
        {
            problems.push(problem(
                validator.referenced,
                format!(
                    "{what}: validator_agent '{}' is not declared under agents ({})",
                    validator.value,
                    agents()
                ),
            ));
        }
        let executor = &workflow.executor;
        if !self.executors.contains_key(&executor.value) {
            problems.push(problem(
                executor.referenced,
                format!(
                    "{what}: executor '{}' is not declared under executors ({})",
                    executor.value,
                    known(self.executors.keys())
                ),
            ));
        }
        if let Some(expires_in) = &workflow.expires_in
            && let Err(error) = ExpiresIn::parse(&expires_in.value)
        {
            problems.push(problem(
                expires_in.referenced,
                format!("{what}: expires_in {}", error.message),
            ));
        }
        if !workflow.min_score.is_finite() {
            problems.push(problem(
                draft.referenced,
                format!("{what}: min_score must be a number"),
            ));
        }
    }
}

impl Config {
    /// The compiled approval policies and rules.
    pub fn policies(&self) -> &Policies {
        &self.compiled
    }
}

impl WorkflowConfig {
    /// The life of each approval request.
    pub fn expires_in(&self) -> ExpiresIn {
        self.expires_in
            .as_ref()
            .and_then(|text| ExpiresIn::parse(&text.value).ok())
            .unwrap_or(ExpiresIn::DEFAULT)
    }
}

/// A configured timeout ("30s", "5m"), or [`DEFAULT_TIMEOUT`].
pub fn timeout(value: Option<&str>) -> Duration {
    value
        .and_then(|text| ExpiresIn::parse(text).ok())
        .map_or(DEFAULT_TIMEOUT, |d| Duration::from_secs(d.seconds()))
}

fn problem(at: Location, message: String) -> Problem {
    Problem {
        line: at.line(),
        column: at.column(),
        message,
    }
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none are".to_owned()
    } else {
        format!("declared: {}", names.join(", "))
    }
}

fn check_timeout(problems: &mut Vec<Problem>, at: Location, what: &str, value: &Option<String>) {
    if let Some(text) = value {
        match ExpiresIn::parse(text) {
            Ok(d) if d.seconds() > 0 => {}
            Ok(_) => problems.push(problem(at, format!("{what}: timeout must be positive"))),
            Err(error) => problems.push(problem(at, format!("{what}: timeout {}", error.message))),
        }
    }
}

fn check_url(problems: &mut Vec<Problem>, at: Location, what: &str, url: &str) {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
        Ok(parsed) => problems.push(problem(
            at,
            format!(
                "{what}: url '{url}' must be http or https, not {}",
                parsed.scheme()
            ),
        )),
        Err(error) => problems.push(problem(
            at,
            format!("{what}: url '{url}' is not a URL: {error}"),
        )),
    }
}

/// serde-saphyr's message without its source snippet (we print the place).
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    // The place is printed in front; drop the copy some messages end with.
    match first.rfind(" at line ") {
        Some(cut) if first[cut..].contains(", column ") => first[..cut].to_owned(),
        _ => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const GOOD: &str = r#"
agents:
  drafter:
    kind: a2a
    url: http://127.0.0.1:9001
    timeout: 30s
  validator:
    kind: command
    command: [python3, validate.py]
executors:
  apply:
    kind: mcp
    command: [policy-server]
    tool: apply_changes
workflows:
  policy-update:
    draft_agent: drafter
    validator_agent: validator
    min_score: 70
    executor: apply
    max_retries: 2
    expires_in: 24h
    labels: { team: finance }
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("signoff.yaml"))
    }

    #[test]
    fn a_good_file_parses() {
        let config = parse(GOOD).unwrap();
        let workflow = &config.workflows["policy-update"].value;
        assert_eq!(workflow.draft_agent.value, "drafter");
        assert_eq!(workflow.max_retries, 2);
        assert_eq!(workflow.expires_in().seconds(), 86_400);
        assert_eq!(workflow.labels["team"], "finance");
        assert!(matches!(
            config.executors["apply"].value,
            ExecutorConfig::Mcp {
                arguments: McpArguments::Changes,
                ..
            }
        ));
        assert_eq!(timeout(Some("30s")), Duration::from_secs(30));
        assert_eq!(timeout(None), DEFAULT_TIMEOUT);
    }

    #[test]
    fn an_unknown_agent_is_named_with_its_line() {
        let text = GOOD.replace("draft_agent: drafter", "draft_agent: drafterr");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        let line = text
            .lines()
            .position(|l| l.contains("drafterr"))
            .map(|i| i as u64 + 1);
        assert_eq!(Some(error.problems[0].line), line, "{error}");
        let shown = error.to_string();
        assert!(shown.starts_with("signoff.yaml:"), "{shown}");
        assert!(
            shown.contains("draft_agent 'drafterr' is not declared"),
            "{shown}"
        );
        assert!(shown.contains("drafter, validator"), "{shown}");
    }

    #[test]
    fn every_problem_is_reported() {
        let text = GOOD
            .replace("executor: apply", "executor: nowhere")
            .replace("expires_in: 24h", "expires_in: soon")
            .replace("timeout: 30s", "timeout: fast");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.problems.len(), 3, "{error}");
        assert!(error.problems.windows(2).all(|w| w[0].line <= w[1].line));
    }

    #[test]
    fn syntax_and_type_errors_have_a_place() {
        let error = parse("agents:\n  a: [unclosed\n").unwrap_err();
        assert!(error.problems[0].line >= 2, "{error}");
        let error = parse(&GOOD.replace("max_retries: 2", "max_retries: lots")).unwrap_err();
        let line = GOOD
            .lines()
            .position(|l| l.contains("max_retries"))
            .unwrap() as u64
            + 1;
        assert_eq!(error.problems[0].line, line, "{error}");
        let error = parse(&GOOD.replace("kind: a2a", "kind: smoke-signal")).unwrap_err();
        assert!(error.problems[0].line > 0, "{error}");
        let error = parse(&GOOD.replace("    min_score: 70", "    min_scor: 70")).unwrap_err();
        assert!(error.to_string().contains("min_scor"), "{error}");
    }

    #[test]
    fn an_mcp_executor_needs_one_transport() {
        let text = GOOD.replace("    command: [policy-server]\n", "");
        let error = parse(&text).unwrap_err();
        assert!(
            error.to_string().contains("exactly one of command"),
            "{error}"
        );
    }
}

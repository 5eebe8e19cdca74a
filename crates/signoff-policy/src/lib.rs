//! Approval policies and the rules that choose them.
//!
//! A policy is a named list of stages (who may sign off, and how many must).
//! Rules, in the configuration file's order, are CEL conditions over the
//! request; the first that matches decides: it names a policy (plus stages
//! to add to it), or approves the request automatically. When none
//! matches, `default_policy` applies, or else one sign-off by any reviewer.
//!
//! ```yaml
//! policies:
//!   standard:
//!     stages:
//!       - { name: manager, groups: [managers] }
//!       - { name: finance, groups: [finance], quorum: 2 }
//! rules:
//!   - name: low-risk
//!     when: action.changes.max_amount_without_approval <= 1000
//!     auto_approve: true
//!   - name: large-limit
//!     when: action.changes.max_amount_without_approval > 10000
//!     policy: standard
//!     add_stages:
//!       - { name: cfo, users: [carol] }
//! default_policy: standard
//! ```
//!
//! A condition sees `action` (the proposed action), `labels`, `requester`
//! and `title`. A condition over a field the action does not have does not
//! match (write `has(action.x)` to make that explicit); any other error
//! (comparing a string to a number, a result that is not a boolean) refuses
//! the request, since a rule that cannot be read must not let it through.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::{Location, Spanned};
use signoff_core::{ApprovalPlan, ApprovalStage, DEFAULT_POLICY, Reminder};

/// One policy as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Its stages, decided in order.
    pub stages: Vec<Spanned<StageConfig>>,
    /// Remind reviewers of a request still pending at this fraction of its
    /// life (0.75: when three quarters of the time are gone).
    #[serde(default)]
    pub remind_at: Option<Spanned<f64>>,
    /// With the reminder, add this group to the current stage's reviewers.
    #[serde(default)]
    pub escalate_to: Option<Spanned<String>>,
}

/// Checks a policy's reminder settings.
fn reminder(problems: &mut Vec<Problem>, what: &str, policy: &PolicyConfig) -> Option<Reminder> {
    let escalate_to = match &policy.escalate_to {
        Some(group) if group.value.trim().is_empty() => {
            problems.push(Problem {
                at: group.referenced,
                message: format!("{what}: escalate_to names no group"),
            });
            None
        }
        Some(group) => Some(group.value.trim().to_owned()),
        None => None,
    };
    let Some(at) = &policy.remind_at else {
        if let Some(group) = &policy.escalate_to {
            problems.push(Problem {
                at: group.referenced,
                message: format!("{what}: escalate_to needs remind_at (when to escalate)"),
            });
        }
        return None;
    };
    if !(at.value > 0.0 && at.value < 1.0) {
        problems.push(Problem {
            at: at.referenced,
            message: format!(
                "{what}: remind_at is a fraction of the request's life, above 0 and below 1 (0.75: when three quarters are gone), not {}",
                at.value
            ),
        });
        return None;
    }
    // Within (0, 1), so the product is within (0, 1000).
    let at_permille = (at.value * 1000.0).round().clamp(1.0, 999.0) as u16;
    Some(Reminder {
        at_permille,
        escalate_to,
    })
}

/// One stage as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Unique in the policy.
    pub name: String,
    /// Users (token names) who may sign off.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups whose members may sign off.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Any reviewer may sign off (instead of users and groups).
    #[serde(default)]
    pub any_reviewer: bool,
    /// Distinct sign-offs needed (default 1).
    pub quorum: Option<u32>,
}

/// One rule as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in the request, the audit trail and `policy explain`.
    pub name: String,
    /// The CEL condition.
    pub when: Spanned<String>,
    /// The policy it chooses (default: `default_policy`).
    pub policy: Option<Spanned<String>>,
    /// Stages appended to that policy's.
    #[serde(default)]
    pub add_stages: Vec<Spanned<StageConfig>>,
    /// Approve without review, with the rule recorded as the approver.
    #[serde(default)]
    pub auto_approve: bool,
}

/// Something wrong in the policy sections, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file.
    pub at: Location,
    /// What is wrong.
    pub message: String,
}

/// A condition that could not be evaluated for a request: the request is
/// refused rather than routed past the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("approval rule '{rule}' could not be evaluated for this request: {message}")]
pub struct RuleError {
    /// The rule.
    pub rule: String,
    /// Why.
    pub message: String,
}

/// What a rule's condition said about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// True: this rule decides.
    Matched,
    /// False.
    NotMatched,
    /// It reads a field the request does not have, so it does not match.
    MissingField(String),
    /// An earlier rule matched first.
    NotEvaluated,
}

/// One rule in an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    /// The rule.
    pub rule: String,
    /// Its condition.
    pub when: String,
    /// What it said.
    pub verdict: Verdict,
}

/// Why a request gets the plan it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Every rule, in order, with what it said.
    pub rules: Vec<RuleCheck>,
    /// The plan chosen.
    pub plan: ApprovalPlan,
}

/// What a rule is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The proposed action.
    pub action: &'a Map<String, Value>,
    /// The request's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Who asks.
    pub requester: &'a str,
    /// The title.
    pub title: &'a str,
}

#[derive(Debug)]
enum Outcome {
    AutoApprove,
    Stages {
        policy: Option<String>,
        extra: Vec<ApprovalStage>,
    },
}

#[derive(Debug)]
struct Rule {
    name: String,
    when: String,
    program: cel::Program,
    outcome: Outcome,
}

/// The compiled policies and rules of a configuration; cheap to share.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    policies: BTreeMap<String, (Vec<ApprovalStage>, Option<Reminder>)>,
    rules: Vec<Rule>,
    default: Option<String>,
    /// CEL's standard library, built once when there are rules: building
    /// it per evaluation would cost more than the evaluation itself.
    env: Option<Arc<cel::Env>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("policies", &self.policies)
            .field("rules", &self.rules)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl Policies {
    /// Checks and compiles the policy sections of a configuration file.
    /// Every problem is reported, each with its place.
    pub fn compile(
        policies: &BTreeMap<String, Spanned<PolicyConfig>>,
        rules: &[Spanned<RuleConfig>],
        default: Option<&Spanned<String>>,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut compiled = BTreeMap::new();
        for (name, policy) in policies {
            let what = format!("policy '{name}'");
            if policy.value.stages.is_empty() {
                problems.push(Problem {
                    at: policy.referenced,
                    message: format!(
                        "{what} has no stages (to approve without review, use a rule with auto_approve: true)"
                    ),
                });
            }
            let stages = stages(&mut problems, &what, &policy.value.stages, &[]);
            let reminder = reminder(&mut problems, &what, &policy.value);
            compiled.insert(name.clone(), (stages, reminder));
        }
        let known = || {
            let names: Vec<&str> = policies.keys().map(String::as_str).collect();
            if names.is_empty() {
                "none are declared".to_owned()
            } else {
                format!("declared: {}", names.join(", "))
            }
        };
        if let Some(default) = default
            && !policies.contains_key(&default.value)
        {
            problems.push(Problem {
                at: default.referenced,
                message: format!(
                    "default_policy '{}' is not declared under policies ({})",
                    default.value,
                    known()
                ),
            });
        }
        let mut names = BTreeSet::new();
        let mut compiled_rules = Vec::new();
        for rule in rules {
            let at = rule.referenced;
            let rule = &rule.value;
            let what = format!("rule '{}'", rule.name);
            if rule.name.trim().is_empty() {
                problems.push(Problem {
                    at,
                    message: "a rule needs a name".into(),
                });
            } else if !names.insert(rule.name.clone()) {
                problems.push(Problem {
                    at,
                    message: format!("{what} is declared twice"),
                });
            }
            let program = match compile_condition(&rule.when.value) {
                Ok(program) => Some(program),
                Err(message) => {
                    problems.push(Problem {
                        at: rule.when.referenced,
                        message: format!("{what}: when: {message}"),
                    });
                    None
                }
            };
            let policy = rule.policy.as_ref().map(|p| p.value.clone());
            if let Some(named) = &rule.policy
                && !policies.contains_key(&named.value)
            {
                problems.push(Problem {
                    at: named.referenced,
                    message: format!(
                        "{what}: policy '{}' is not declared under policies ({})",
                        named.value,
                        known()
                    ),
                });
            }
            let outcome = if rule.auto_approve {
                if rule.policy.is_some() || !rule.add_stages.is_empty() {
                    problems.push(Problem {
                        at,
                        message: format!(
                            "{what}: auto_approve cannot be combined with policy or add_stages"
                        ),
                    });
                }
                Outcome::AutoApprove
            } else {
                if rule.policy.is_none() && rule.add_stages.is_empty() {
                    problems.push(Problem {
                        at,
                        message: format!(
                            "{what} does nothing: give it a policy, add_stages, or auto_approve: true"
                        ),
                    });
                }
                // Added stages must not clash with the stages they join.
                let base: Vec<String> = rule
                    .policy
                    .as_ref()
                    .and_then(|p| policies.get(&p.value))
                    .or_else(|| default.and_then(|d| policies.get(&d.value)))
                    .map(|p| {
                        p.value
                            .stages
                            .iter()
                            .map(|s| s.value.name.clone())
                            .collect()
                    })
                    .unwrap_or_else(|| vec!["review".to_owned()]);
                Outcome::Stages {
                    policy,
                    extra: stages(&mut problems, &what, &rule.add_stages, &base),
                }
            };
            if let Some(program) = program {
                compiled_rules.push(Rule {
                    name: rule.name.clone(),
                    when: rule.when.value.clone(),
                    program,
                    outcome,
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let env = (!compiled_rules.is_empty()).then(|| Arc::new(cel::Env::stdlib()));
        Ok(Self {
            inner: Arc::new(Inner {
                policies: compiled,
                rules: compiled_rules,
                default: default.map(|d| d.value.clone()),
                env,
            }),
        })
    }

    /// Whether there is anything beyond the built-in single sign-off.
    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty() && self.inner.default.is_none()
    }

    /// The plan for a request.
    pub fn plan(&self, facts: Facts<'_>) -> Result<ApprovalPlan, RuleError> {
        self.explain(facts).map(|e| e.plan)
    }

    /// The plan for a request, with what every rule said.
    pub fn explain(&self, facts: Facts<'_>) -> Result<Explanation, RuleError> {
        let mut checks = Vec::with_capacity(self.inner.rules.len());
        let mut chosen = None;
        if let Some(env) = &self.inner.env {
            let context = context(env, facts);
            for rule in &self.inner.rules {
                let verdict = if chosen.is_some() {
                    Verdict::NotEvaluated
                } else {
                    evaluate(rule, &context)?
                };
                if verdict == Verdict::Matched {
                    chosen = Some(rule);
                }
                checks.push(RuleCheck {
                    rule: rule.name.clone(),
                    when: rule.when.clone(),
                    verdict,
                });
            }
        }
        let plan = match chosen {
            None => self.base(None, None),
            Some(rule) => match &rule.outcome {
                Outcome::AutoApprove => ApprovalPlan {
                    policy: "auto-approve".into(),
                    rule: Some(rule.name.clone()),
                    stages: Vec::new(),
                    reminder: None,
                },
                Outcome::Stages { policy, extra } => {
                    let mut plan = self.base(policy.as_deref(), Some(&rule.name));
                    plan.stages.extend(extra.iter().cloned());
                    plan
                }
            },
        };
        Ok(Explanation {
            rules: checks,
            plan,
        })
    }

    /// `policy` (or the default policy, or the built-in one) as a plan.
    fn base(&self, policy: Option<&str>, rule: Option<&str>) -> ApprovalPlan {
        let name = policy.or(self.inner.default.as_deref());
        let mut plan = match name.and_then(|n| self.inner.policies.get(n).map(|s| (n, s))) {
            Some((name, (stages, reminder))) => ApprovalPlan {
                policy: name.to_owned(),
                rule: None,
                stages: stages.clone(),
                reminder: reminder.clone(),
            },
            None => ApprovalPlan {
                policy: DEFAULT_POLICY.to_owned(),
                ..ApprovalPlan::single()
            },
        };
        plan.rule = rule.map(str::to_owned);
        plan
    }
}

/// Checks stages and turns them into the domain's; `taken` are names the
/// stages must not reuse.
fn stages(
    problems: &mut Vec<Problem>,
    what: &str,
    configs: &[Spanned<StageConfig>],
    taken: &[String],
) -> Vec<ApprovalStage> {
    let mut names: BTreeSet<&str> = taken.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        let at = config.referenced;
        let stage = &config.value;
        let mut problem = |message: String| {
            problems.push(Problem {
                at,
                message: format!("{what}: {message}"),
            });
        };
        if stage.name.trim().is_empty() {
            problem("a stage needs a name".into());
        } else if !names.insert(stage.name.as_str()) {
            problem(format!("stage '{}' appears twice", stage.name));
        }
        let named = !stage.users.is_empty() || !stage.groups.is_empty();
        if stage.any_reviewer && named {
            problem(format!(
                "stage '{}' says any_reviewer and also names users or groups; choose one",
                stage.name
            ));
        } else if !stage.any_reviewer && !named {
            problem(format!(
                "stage '{}' names nobody: list users or groups, or say any_reviewer: true",
                stage.name
            ));
        }
        let quorum = stage.quorum.unwrap_or(1);
        if quorum == 0 {
            problem(format!("stage '{}': quorum must be at least 1", stage.name));
        } else if stage.groups.is_empty()
            && !stage.any_reviewer
            && usize::try_from(quorum).is_ok_and(|q| q > stage.users.len())
        {
            problem(format!(
                "stage '{}' needs {quorum} sign-offs but names only {} users",
                stage.name,
                stage.users.len()
            ));
        }
        out.push(ApprovalStage {
            name: stage.name.clone(),
            users: stage.users.clone(),
            groups: stage.groups.clone(),
            quorum: quorum.max(1),
        });
    }
    out
}

/// Compiles a condition, or says where it is wrong.
fn compile_condition(source: &str) -> Result<cel::Program, String> {
    if source.trim().is_empty() {
        return Err("the condition is empty".into());
    }
    cel::Program::compile(source).map_err(|errors| {
        match errors.errors.first() {
            Some(error) => {
                let (line, column) = error.pos;
                // CEL counts lines from 1 and columns from 0.
                format!(
                    "{} at line {line}, column {} of the expression",
                    error.msg,
                    column + 1
                )
            }
            None => "invalid expression".into(),
        }
    })
}

fn context(env: &Arc<cel::Env>, facts: Facts<'_>) -> cel::Context<'static, 'static> {
    let mut context = cel::Context::with_env(Arc::clone(env));
    context.add_variable_from_value("action", object(facts.action));
    let labels: HashMap<String, cel::Value> = facts
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), cel::Value::from(v.clone())))
        .collect();
    context.add_variable_from_value("labels", labels);
    context.add_variable_from_value("requester", facts.requester.to_owned());
    context.add_variable_from_value("title", facts.title.to_owned());
    context
}

fn evaluate(rule: &Rule, context: &cel::Context<'_, '_>) -> Result<Verdict, RuleError> {
    let error = |message: String| RuleError {
        rule: rule.name.clone(),
        message,
    };
    // The interpreter is not ours: a panic in it must not take down the
    // request that triggered it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rule.program.execute(context)
    }))
    .map_err(|_| error("the CEL interpreter failed".into()))?;
    match result {
        Ok(cel::Value::Bool(true)) => Ok(Verdict::Matched),
        Ok(cel::Value::Bool(false)) => Ok(Verdict::NotMatched),
        Ok(other) => Err(error(format!(
            "the condition gave {:?}, not true or false",
            other.type_of()
        ))),
        Err(cel::ExecutionError::NoSuchKey(key)) => Ok(Verdict::MissingField(key.to_string())),
        Err(other) => Err(error(other.to_string())),
    }
}

/// JSON as CEL sees it: integers as `int` (so `action.amount > 10000`
/// compares as written), other numbers as `double`.
fn json(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::from(s.clone()),
        Value::Array(items) => cel::Value::from(items.iter().map(json).collect::<Vec<_>>()),
        Value::Object(map) => object(map),
    }
}

fn object(map: &Map<String, Value>) -> cel::Value {
    let entries: HashMap<String, cel::Value> =
        map.iter().map(|(k, v)| (k.clone(), json(v))).collect();
    cel::Value::from(entries)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        policies: BTreeMap<String, Spanned<PolicyConfig>>,
        #[serde(default)]
        rules: Vec<Spanned<RuleConfig>>,
        default_policy: Option<Spanned<String>>,
    }

    const GOOD: &str = r#"
policies:
  standard:
    stages:
      - { name: manager, groups: [managers] }
      - { name: finance, groups: [finance], quorum: 2 }
rules:
  - name: low-risk
    when: 'action.changes.max_amount_without_approval <= 1000 && labels.env != "prod"'
    auto_approve: true
  - name: large-limit
    when: action.changes.max_amount_without_approval > 10000
    policy: standard
    add_stages:
      - { name: cfo, users: [carol] }
default_policy: standard
"#;

    fn compile(text: &str) -> Result<Policies, Vec<Problem>> {
        let file: File = serde_saphyr::from_str(text).unwrap();
        Policies::compile(&file.policies, &file.rules, file.default_policy.as_ref())
    }

    fn action(amount: i64) -> Map<String, Value> {
        serde_json::json!({"changes": {"max_amount_without_approval": amount}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn plan_for(policies: &Policies, action: &Map<String, Value>, env: &str) -> Explanation {
        let labels = BTreeMap::from([("env".to_owned(), env.to_owned())]);
        policies
            .explain(Facts {
                action,
                labels: &labels,
                requester: "agent",
                title: "t",
            })
            .unwrap()
    }

    #[test]
    fn the_first_matching_rule_chooses() {
        let policies = compile(GOOD).unwrap();
        let names = |plan: &ApprovalPlan| -> Vec<String> {
            plan.stages.iter().map(|s| s.name.clone()).collect()
        };

        let small = plan_for(&policies, &action(500), "dev");
        assert!(small.plan.approves_at_once());
        assert_eq!(small.plan.rule.as_deref(), Some("low-risk"));
        assert_eq!(small.rules[1].verdict, Verdict::NotEvaluated);

        let large = plan_for(&policies, &action(20_000), "prod");
        assert_eq!(names(&large.plan), ["manager", "finance", "cfo"]);
        assert_eq!(large.plan.rule.as_deref(), Some("large-limit"));
        assert_eq!(large.plan.stages[2].users, ["carol"]);

        // In prod a small change is not low-risk; no rule matches: default.
        let middle = plan_for(&policies, &action(500), "prod");
        assert_eq!(names(&middle.plan), ["manager", "finance"]);
        assert_eq!(middle.plan.rule, None);
        assert_eq!(middle.plan.policy, "standard");

        // No such field: the rules do not match.
        let other = serde_json::json!({"refund": 5})
            .as_object()
            .unwrap()
            .clone();
        let missing = plan_for(&policies, &other, "dev");
        assert!(matches!(missing.rules[0].verdict, Verdict::MissingField(_)));
        assert_eq!(names(&missing.plan), ["manager", "finance"]);
    }

    #[test]
    fn reminders_are_checked_and_carried_into_plans() {
        let policies = compile(
            "policies:\n  p:\n    stages: [{ name: s, any_reviewer: true }]\n    remind_at: 0.75\n    escalate_to: oncall\ndefault_policy: p\n",
        )
        .unwrap();
        let labels = BTreeMap::new();
        let plan = policies
            .plan(Facts {
                action: &Map::new(),
                labels: &labels,
                requester: "a",
                title: "t",
            })
            .unwrap();
        assert_eq!(
            plan.reminder,
            Some(Reminder {
                at_permille: 750,
                escalate_to: Some("oncall".into())
            })
        );
        let problems = compile(
            "policies:\n  p:\n    stages: [{ name: s, any_reviewer: true }]\n    remind_at: 1.5\n",
        )
        .unwrap_err();
        assert!(problems[0].message.contains("remind_at"), "{problems:?}");
        assert_eq!(problems[0].at.line(), 4);
        let problems = compile(
            "policies:\n  p:\n    stages: [{ name: s, any_reviewer: true }]\n    escalate_to: oncall\n",
        )
        .unwrap_err();
        assert!(
            problems[0].message.contains("needs remind_at"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_condition_that_cannot_be_read_refuses() {
        let policies = compile(GOOD).unwrap();
        let text = serde_json::json!({"changes": {"max_amount_without_approval": "lots"}});
        let labels = BTreeMap::from([("env".to_owned(), "dev".to_owned())]);
        let error = policies
            .plan(Facts {
                action: text.as_object().unwrap(),
                labels: &labels,
                requester: "a",
                title: "t",
            })
            .unwrap_err();
        assert_eq!(error.rule, "low-risk");
        assert!(
            error.to_string().contains("could not be evaluated"),
            "{error}"
        );
    }

    #[test]
    fn without_policies_one_reviewer_signs() {
        let policies = Policies::default();
        assert!(policies.is_empty());
        let labels = BTreeMap::new();
        let plan = policies
            .plan(Facts {
                action: &action(1),
                labels: &labels,
                requester: "a",
                title: "t",
            })
            .unwrap();
        assert!(plan.is_single());
    }

    #[test]
    fn a_bad_expression_is_refused_with_its_position() {
        let text = GOOD.replace(
            "when: action.changes.max_amount_without_approval > 10000",
            "when: action.changes.max_amount_without_approval >> 10000",
        );
        let problems = compile(&text).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let line = text.lines().position(|l| l.contains(">>")).unwrap() as u64 + 1;
        assert_eq!(problems[0].at.line(), line);
        assert!(
            problems[0].message.contains("rule 'large-limit': when:")
                && problems[0].message.contains("column"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn mistakes_in_policies_are_named() {
        let text = GOOD
            .replace("policy: standard", "policy: nonesuch")
            .replace("quorum: 2", "quorum: 0")
            .replace("{ name: cfo, users: [carol] }", "{ name: cfo }");
        let problems = compile(&text).unwrap_err();
        let all: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            all.iter().any(|m| m.contains("'nonesuch' is not declared")),
            "{all:?}"
        );
        assert!(
            all.iter().any(|m| m.contains("quorum must be at least 1")),
            "{all:?}"
        );
        assert!(all.iter().any(|m| m.contains("names nobody")), "{all:?}");
    }
}

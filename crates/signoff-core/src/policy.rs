//! What a request needs before it is approved: its approval plan.
//!
//! A plan is a list of stages decided in order (the guide's
//! `approval_chain: [manager, finance, cfo]`). Each stage names who may sign
//! off (users and groups; nobody named means any reviewer) and how many
//! distinct sign-offs it needs (its quorum). A request is approved when its
//! last stage reaches its quorum; one rejection at any stage rejects it. A
//! plan with no stages approves the request as it is created (a rule's
//! auto-approval). The plan is fixed when the request is created, so a later
//! change of configuration never changes what an open request needs.
//!
//! Rules that choose a plan live in `signoff-policy`; this module only knows
//! how a chosen plan is satisfied.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::Digest;

/// The policy name of [`ApprovalPlan::single`].
pub const DEFAULT_POLICY: &str = "default";

/// The name of the one stage of [`ApprovalPlan::single`].
const SINGLE_STAGE: &str = "review";

/// One stage of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalStage {
    /// Its name, unique in the plan (`manager`, `finance`).
    pub name: String,
    /// Users who may sign off here, by token name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Groups whose members may sign off here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Distinct sign-offs the stage needs (at least 1).
    pub quorum: u32,
}

impl ApprovalStage {
    /// A stage any reviewer may sign off alone.
    pub fn any_reviewer(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            users: Vec::new(),
            groups: Vec::new(),
            quorum: 1,
        }
    }

    /// Whether it names nobody, so that any reviewer is eligible.
    pub fn is_open(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// Whether `name`, a member of `groups`, may sign off at this stage.
    pub fn admits(&self, name: &str, groups: &[String]) -> bool {
        self.is_open()
            || self.users.iter().any(|u| u == name)
            || self.groups.iter().any(|g| groups.contains(g))
    }

    /// Who may sign off, as people read it: "users alice, bob; groups finance".
    pub fn eligible_text(&self) -> String {
        describe_eligible(self.is_open(), &self.users, &self.groups)
    }
}

/// "any reviewer", or "users alice, bob; groups finance".
pub fn describe_eligible(any_reviewer: bool, users: &[String], groups: &[String]) -> String {
    if any_reviewer {
        return "any reviewer".to_owned();
    }
    let mut parts = Vec::new();
    if !users.is_empty() {
        parts.push(format!("users {}", users.join(", ")));
    }
    if !groups.is_empty() {
        parts.push(format!("groups {}", groups.join(", ")));
    }
    parts.join("; ")
}

/// What a request needs: the policy it follows and the stages of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPlan {
    /// The policy's name ([`DEFAULT_POLICY`] when no rule chose one).
    pub policy: String,
    /// The rule that chose it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// In order; none: approved on creation.
    pub stages: Vec<ApprovalStage>,
    /// When to remind reviewers of a request still pending, and whom to
    /// add; `None` once the reminder was given (or when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<Reminder>,
}

/// A reminder: at a point of a pending request's life, reviewers are
/// notified again, and optionally a group joins the current stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// The point, in thousandths of the request's life (1 to 999): 750
    /// reminds when three quarters of the time are gone.
    pub at_permille: u16,
    /// The group added to the current stage's eligible reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
}

impl ApprovalPlan {
    /// The plan of a server without policies: one sign-off by any reviewer,
    /// as in the guide.
    pub fn single() -> Self {
        Self {
            policy: DEFAULT_POLICY.to_owned(),
            rule: None,
            stages: vec![ApprovalStage::any_reviewer(SINGLE_STAGE)],
            reminder: None,
        }
    }

    /// Whether this is [`ApprovalPlan::single`] (stored as nothing).
    pub fn is_single(&self) -> bool {
        // Field by field rather than against a new `single()`: this runs for
        // every request stored and read, and should not allocate.
        self.rule.is_none()
            && self.reminder.is_none()
            && self.policy == DEFAULT_POLICY
            && matches!(self.stages.as_slice(), [stage]
                if stage.name == SINGLE_STAGE && stage.is_open() && stage.quorum == 1)
    }

    /// Whether it approves a request as soon as it exists.
    pub fn approves_at_once(&self) -> bool {
        self.stages.is_empty()
    }

    /// The actor recorded for an approval nobody had to give: the rule, or
    /// else the policy.
    pub fn automatic_actor(&self) -> String {
        match &self.rule {
            Some(rule) => format!("rule:{rule}"),
            None => format!("policy:{}", self.policy),
        }
    }
}

impl Default for ApprovalPlan {
    fn default() -> Self {
        Self::single()
    }
}

/// One person's sign-off at one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The stage it counts for.
    pub stage: String,
    /// Who signed off.
    pub reviewer: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Their remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The hash of the action they approved.
    pub action_hash: Digest,
    /// The action as this reviewer edited it (only the first sign-off may
    /// edit: everyone after approves the edit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_action: Option<Map<String, Value>>,
}

/// Where a request stands against its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Index of the first stage short of its quorum; `None` when every
    /// stage has it.
    pub current: Option<usize>,
    /// Sign-offs still needed at the current stage.
    pub remaining: u32,
}

/// How many approvals count for `stage`.
pub fn count_at(approvals: &[Approval], stage: &str) -> u32 {
    let n = approvals.iter().filter(|a| a.stage == stage).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Where `approvals` leave `plan`.
pub fn progress(plan: &ApprovalPlan, approvals: &[Approval]) -> Progress {
    for (index, stage) in plan.stages.iter().enumerate() {
        let have = count_at(approvals, &stage.name);
        if have < stage.quorum {
            return Progress {
                current: Some(index),
                remaining: stage.quorum - have,
            };
        }
    }
    Progress {
        current: None,
        remaining: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, users: &[&str], groups: &[&str], quorum: u32) -> ApprovalStage {
        ApprovalStage {
            name: name.into(),
            users: users.iter().map(|s| (*s).to_owned()).collect(),
            groups: groups.iter().map(|s| (*s).to_owned()).collect(),
            quorum,
        }
    }

    fn approval(stage: &str, reviewer: &str) -> Approval {
        Approval {
            stage: stage.into(),
            reviewer: reviewer.into(),
            at: DateTime::UNIX_EPOCH,
            comment: None,
            action_hash: Digest::GENESIS,
            edited_action: None,
        }
    }

    #[test]
    fn eligibility_by_user_group_or_anyone() {
        let finance = stage("finance", &["carol"], &["finance"], 2);
        assert!(finance.admits("carol", &[]));
        assert!(finance.admits("dave", &["finance".into()]));
        assert!(!finance.admits("erin", &["sales".into()]));
        assert!(ApprovalStage::any_reviewer("review").admits("anyone", &[]));
        assert_eq!(finance.eligible_text(), "users carol; groups finance");
    }

    #[test]
    fn progress_walks_the_stages_in_order() {
        let plan = ApprovalPlan {
            policy: "chain".into(),
            rule: None,
            stages: vec![
                stage("manager", &[], &["managers"], 1),
                stage("finance", &[], &["finance"], 2),
            ],
            reminder: None,
        };
        assert_eq!(
            progress(&plan, &[]),
            Progress {
                current: Some(0),
                remaining: 1
            }
        );
        let one = [approval("manager", "m")];
        assert_eq!(progress(&plan, &one).current, Some(1));
        assert_eq!(progress(&plan, &one).remaining, 2);
        let all = [
            approval("manager", "m"),
            approval("finance", "f1"),
            approval("finance", "f2"),
        ];
        assert_eq!(progress(&plan, &all).current, None);
        assert!(ApprovalPlan::single().is_single());
        assert!(!plan.is_single());
        let changed: [fn(&mut ApprovalPlan); 6] = [
            |p| p.stages[0].name = "other".into(),
            |p| p.stages[0].quorum = 2,
            |p| p.stages[0].users.push("alice".into()),
            |p| p.stages[0].groups.push("finance".into()),
            |p| p.stages.push(ApprovalStage::any_reviewer("more")),
            |p| p.rule = Some("rule".into()),
        ];
        for change in changed {
            let mut other = ApprovalPlan::single();
            change(&mut other);
            assert!(!other.is_single(), "{other:?}");
        }
    }
}

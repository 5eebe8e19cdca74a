//! Agents: the drafter and the validator of a workflow.

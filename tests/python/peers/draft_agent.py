"""The guide's draft agent as an A2A agent (a2a-sdk): proposes the Expense
Approval Policy update; after a rejection it lowers the amount and echoes
the reviewer's reason in `saw_rejection`. A task whose policy_name is
"failing" fails the task."""

from a2a_peer import AgentFailure, serve


def answer(task: dict) -> dict:
    policy = task.get("policy_name", "Policy")
    if policy == "failing":
        raise AgentFailure("the drafting model is unavailable")
    rejection = task.get("previous_rejection")
    return {
        "title": f"Update {policy}",
        "description": task.get("requirements", ""),
        "type": "policy_update",
        "scope": "company_wide",
        "changes": {
            "max_amount_without_approval": 5000 if rejection is None else 4000,
            "approval_chain": ["manager", "finance", "cfo"],
        },
        "saw_rejection": rejection,
    }


if __name__ == "__main__":
    serve("draft_agent", "Drafts policy updates", answer)

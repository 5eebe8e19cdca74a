"""The guide's validator agent as an A2A agent (a2a-sdk): scores a draft.
Deterministic: a draft whose title contains "bad" is invalid."""

from a2a_peer import serve


def answer(task: dict) -> dict:
    draft = task.get("draft") or {}
    if task.get("validation_type") != "quality_check":
        return {"is_valid": False, "score": 0, "issues": ["unknown validation type"]}
    title = str(draft.get("title", ""))
    if "bad" in title.lower():
        return {"is_valid": False, "score": 20, "issues": ["the title says it is bad"]}
    if not isinstance(draft.get("changes"), dict):
        return {"is_valid": False, "score": 10, "issues": ["no changes"]}
    return {"is_valid": True, "score": 92, "issues": []}


if __name__ == "__main__":
    serve("validator_agent", "Checks the quality of drafts", answer)

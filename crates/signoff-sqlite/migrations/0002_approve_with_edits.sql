-- Approval with edits and the binding of an approval to the exact action.
-- edited_action: the action as the reviewer changed it (JSON object), NULL
-- when the proposed action was approved as it was. action_hash: hex SHA-256
-- of the canonical JSON of the approved action. original_action: on an
-- edited approval's audit entry, the action as proposed (canonical JSON).
ALTER TABLE requests ADD COLUMN edited_action TEXT;
ALTER TABLE requests ADD COLUMN action_hash TEXT;
ALTER TABLE audit_log ADD COLUMN original_action TEXT;

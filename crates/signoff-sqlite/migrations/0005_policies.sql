-- Approval policies: what each request needs, and every sign-off.
-- plan: JSON of the request's approval plan, NULL for the default plan (one
-- sign-off by any reviewer). approvals: JSON array of sign-offs so far, NULL
-- for none. stage: the plan stage of the final approval or rejection.
ALTER TABLE requests ADD COLUMN plan TEXT;
ALTER TABLE requests ADD COLUMN approvals TEXT;
ALTER TABLE requests ADD COLUMN stage TEXT;
-- The stage of an approval, endorsement or rejection entry.
ALTER TABLE audit_log ADD COLUMN stage TEXT;

-- A request's `created` entry is found through the request's own row
-- (`created_seq`, the entry's sequence number) instead of through
-- `audit_by_request`, which now holds only the later entries: a create
-- touches one b-tree fewer, and a commit of creates writes about 15%
-- fewer pages (docs/BENCHMARKS.md, eighth session).
ALTER TABLE requests ADD COLUMN created_seq INTEGER;
UPDATE requests SET created_seq = (
    SELECT min(seq) FROM audit_log
    WHERE audit_log.request_id = requests.id AND audit_log.event = 'created'
);
DROP INDEX audit_by_request;
CREATE INDEX audit_by_request ON audit_log (request_id, seq) WHERE event <> 'created';

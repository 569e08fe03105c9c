-- Every ops action (reassign, force offline, …): who did what to what, and when.
CREATE TABLE ops_audit (
    id     TEXT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX ops_audit_at ON ops_audit (at DESC, id);

-- First responses to state-changing requests sent with an Idempotency-Key (cancel, accept,
-- reject): a retry with the same key gets the same answer instead of acting twice.
CREATE TABLE idempotent_responses (
    subject      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (subject, key)
);

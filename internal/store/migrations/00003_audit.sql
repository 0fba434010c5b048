-- The audit trail: an append-only, hash-chained log of security-relevant
-- actions. Each row's hash covers the previous row's hash, so any edit or
-- deletion breaks the chain from that row on.

-- +goose Up
CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    time_us   BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_subject ON audit (subject, seq);

-- +goose Down
DROP TABLE audit;

-- Rate limits shared by every process (identity.Throttle): one row per key
-- (an account, a session, a network, a client, an address, a ceremony),
-- counting attempts with exponential back-off. And the attempts made on
-- each step-up ceremony, which is consumed after a few wrong codes.

-- +goose Up
CREATE TABLE throttles (
    key      TEXT PRIMARY KEY,
    n        BIGINT NOT NULL DEFAULT 0 CHECK (n >= 0),
    last_us  BIGINT NOT NULL,
    until_us BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX throttles_last ON throttles (last_us);

ALTER TABLE ceremonies ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE ceremonies DROP COLUMN attempts;
DROP TABLE throttles;

-- Step-up challenges issued to integrating brokerages (X-Kabuto-Step-Up),
-- each for one action and spent once; and the analyst console's sign-in
-- throttle per client.

-- +goose Up
CREATE TABLE step_up_challenges (
    id         TEXT PRIMARY KEY,       -- SHA-256 of the challenge; the challenge itself is not stored
    principal  TEXT NOT NULL,          -- the API key it was issued to
    account    TEXT NOT NULL,
    session    TEXT NOT NULL,
    binding    TEXT NOT NULL,          -- broker.Binding of the action
    factor     TEXT NOT NULL,          -- the factor asked for
    issued_us  BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    used_us    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX step_up_challenges_expires ON step_up_challenges (expires_us);

CREATE TABLE console_login_throttle (
    client        TEXT PRIMARY KEY,    -- IP address, or /64 prefix for IPv6; '*' for all clients together
    failures      BIGINT NOT NULL,     -- failures since window_us
    window_us     BIGINT NOT NULL,
    blocked_us    BIGINT NOT NULL      -- refused without checking a key until then
);

-- +goose Down
DROP TABLE console_login_throttle;
DROP TABLE step_up_challenges;

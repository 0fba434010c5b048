-- The guard's decisions, with everything that explains them, and the
-- watchtower's alerts.

-- +goose Up
CREATE TABLE decisions (
    event      TEXT PRIMARY KEY,
    time_us    BIGINT NOT NULL,
    account    TEXT NOT NULL,
    type       TEXT NOT NULL,
    action     TEXT NOT NULL,
    factor     TEXT NOT NULL,
    score      BIGINT NOT NULL,
    reasons    TEXT NOT NULL,
    policy     TEXT NOT NULL,
    rules      TEXT NOT NULL,
    features   TEXT NOT NULL,
    shadow     TEXT NOT NULL,
    record     TEXT NOT NULL
);
CREATE INDEX decisions_account ON decisions (account, time_us);
CREATE INDEX decisions_action ON decisions (action, time_us);

CREATE TABLE alerts (
    alert     TEXT PRIMARY KEY,
    time_us   BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    symbol    TEXT NOT NULL,
    score     BIGINT NOT NULL,
    action    TEXT NOT NULL,
    campaign  TEXT NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX alerts_time ON alerts (time_us);
CREATE INDEX alerts_symbol ON alerts (symbol, time_us);

-- +goose Down
DROP TABLE alerts;
DROP TABLE decisions;

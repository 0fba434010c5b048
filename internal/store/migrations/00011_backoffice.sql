-- The back office: analysts as people, cases, freezes and buy-halt history,
-- re-verifications, four-eyes approvals, incidents (the unauthorised
-- accesses and fills, the snapshot before the first access) and
-- compensation. One text for SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE analysts (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('analyst', 'supervisor', 'admin')),
    created_us  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    disabled_us BIGINT NOT NULL DEFAULT 0
);

-- cases: one per account (or instrument) under investigation; alerts,
-- held actions and customer reports join the open case of their account.
CREATE TABLE cases (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    account          TEXT NOT NULL DEFAULT '',
    symbol           TEXT NOT NULL DEFAULT '',
    campaign         TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    title            TEXT NOT NULL,
    severity         BIGINT NOT NULL DEFAULT 0,
    assignee         TEXT NOT NULL DEFAULT '',
    incident_from_us BIGINT NOT NULL DEFAULT 0,
    opened_us        BIGINT NOT NULL,
    updated_us       BIGINT NOT NULL,
    closed_us        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX cases_account ON cases (account, status);
CREATE INDEX cases_symbol ON cases (symbol, status);
CREATE INDEX cases_campaign ON cases (campaign);

-- case_events: what opened or joined a case, notes and decisions, in order.
CREATE TABLE case_events (
    id      TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    time_us BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    ref     TEXT NOT NULL DEFAULT '',
    actor   TEXT NOT NULL,
    text    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_events_case ON case_events (case_id, time_us);

-- freezes: an account is frozen while its row has lifted_us = 0.
CREATE TABLE freezes (
    account          TEXT PRIMARY KEY,
    case_id          TEXT NOT NULL,
    reason           TEXT NOT NULL,
    frozen_by        TEXT NOT NULL,
    frozen_us        BIGINT NOT NULL,
    lifted_us        BIGINT NOT NULL DEFAULT 0,
    lifted_by        TEXT NOT NULL DEFAULT '',
    fresh_passkey    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX freezes_active ON freezes (lifted_us);

-- halts: the history of buy halts (the state is instruments.buy_halted).
CREATE TABLE halts (
    id        TEXT PRIMARY KEY,
    symbol    TEXT NOT NULL,
    case_id   TEXT NOT NULL DEFAULT '',
    reason    TEXT NOT NULL,
    set_by    TEXT NOT NULL,
    set_us    BIGINT NOT NULL,
    lifted_by TEXT NOT NULL DEFAULT '',
    lifted_us BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX halts_symbol ON halts (symbol, lifted_us);

-- reverifications: the customer's identity checked again before reopening.
CREATE TABLE reverifications (
    id      TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    case_id TEXT NOT NULL,
    method  TEXT NOT NULL CHECK (method IN ('callback', 'document')),
    result  TEXT NOT NULL CHECK (result IN ('passed', 'failed')),
    done_by TEXT NOT NULL,
    done_us BIGINT NOT NULL,
    note    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reverifications_account ON reverifications (account, done_us);

-- approvals: four eyes. A proposal, and the decision of a second person.
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('reopen', 'compensation', 'lift_halt', 'release_proceeds')),
    subject     TEXT NOT NULL,
    case_id     TEXT NOT NULL DEFAULT '',
    proposed_by TEXT NOT NULL,
    proposed_us BIGINT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('proposed', 'approved', 'rejected')),
    decided_by  TEXT NOT NULL DEFAULT '',
    decided_us  BIGINT NOT NULL DEFAULT 0,
    note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approvals_subject ON approvals (kind, subject, status);

-- incident_accesses and incident_fills: what a case's incident was, for
-- compensation and the regulator's figures. A fill with fraudulent = 0 is
-- a later sale of the fraudster's buys (the price they were sold at).
CREATE TABLE incident_accesses (
    id      TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    account TEXT NOT NULL,
    time_us BIGINT NOT NULL,
    ip      TEXT NOT NULL DEFAULT '',
    ref     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incident_accesses_time ON incident_accesses (time_us);

CREATE TABLE incident_fills (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases(id),
    account    TEXT NOT NULL,
    time_us    BIGINT NOT NULL,
    symbol     TEXT NOT NULL,
    side       TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty        BIGINT NOT NULL CHECK (qty > 0),
    price      DOUBLE PRECISION NOT NULL CHECK (price > 0),
    fee_jpy    BIGINT NOT NULL DEFAULT 0 CHECK (fee_jpy >= 0),
    fraudulent BIGINT NOT NULL,
    ref        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incident_fills_case ON incident_fills (case_id);
CREATE INDEX incident_fills_time ON incident_fills (time_us);

-- incident_snapshots: cash (symbol '') and positions just before the
-- first unauthorised access.
CREATE TABLE incident_snapshots (
    case_id  TEXT NOT NULL REFERENCES cases(id),
    symbol   TEXT NOT NULL,
    qty      BIGINT NOT NULL,
    cash_jpy BIGINT NOT NULL,
    PRIMARY KEY (case_id, symbol)
);

CREATE TABLE compensations (
    id          TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL REFERENCES cases(id),
    account     TEXT NOT NULL,
    method      TEXT NOT NULL CHECK (method IN ('half', 'restore')),
    amount_jpy  BIGINT NOT NULL CHECK (amount_jpy >= 0),
    detail      TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('proposed', 'paid', 'rejected')),
    paid_us     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX compensations_case ON compensations (case_id);

-- +goose Down
DROP TABLE compensations;
DROP TABLE incident_snapshots;
DROP TABLE incident_fills;
DROP TABLE incident_accesses;
DROP TABLE approvals;
DROP TABLE reverifications;
DROP TABLE halts;
DROP TABLE freezes;
DROP TABLE case_events;
DROP TABLE cases;
DROP TABLE analysts;

-- The front door: credentials (password hashes, passkeys, TOTP secrets),
-- lockout counters, one-time codes, WebAuthn and step-up ceremonies (each
-- consumed once), server-side sessions, the sign-in history, self-service
-- locks and the notification outbox. One text for SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE identities (
    account        TEXT PRIMARY KEY,
    user_handle    TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL DEFAULT '',
    totp_secret    TEXT NOT NULL DEFAULT '',
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    email_otp      BIGINT NOT NULL DEFAULT 1,
    failed         BIGINT NOT NULL DEFAULT 0 CHECK (failed >= 0),
    locked_us      BIGINT NOT NULL DEFAULT 0,
    created_us     BIGINT NOT NULL
);

CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    account         TEXT NOT NULL,
    name            TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    attestation     TEXT NOT NULL DEFAULT '',
    aaguid          TEXT NOT NULL DEFAULT '',
    transports      TEXT NOT NULL DEFAULT '',
    sign_count      BIGINT NOT NULL DEFAULT 0,
    user_verified   BIGINT NOT NULL DEFAULT 0,
    backup_eligible BIGINT NOT NULL DEFAULT 0,
    backup_state    BIGINT NOT NULL DEFAULT 0,
    clone_warning   BIGINT NOT NULL DEFAULT 0,
    created_us      BIGINT NOT NULL,
    last_used_us    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_account ON passkeys (account);

CREATE TABLE otp_codes (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    expires_us BIGINT NOT NULL,
    used_us    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX otp_codes_account ON otp_codes (account, expires_us);

-- ceremonies: a WebAuthn challenge or a pending step-up, used at most once.
CREATE TABLE ceremonies (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    account    TEXT NOT NULL DEFAULT '',
    session    TEXT NOT NULL DEFAULT '',
    binding    TEXT NOT NULL DEFAULT '',
    data       TEXT NOT NULL,
    expires_us BIGINT NOT NULL,
    used_us    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    account      TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    seen_us      BIGINT NOT NULL,
    rotated_us   BIGINT NOT NULL,
    assurance    TEXT NOT NULL,
    proofs       TEXT NOT NULL,
    ip           TEXT NOT NULL,
    network      TEXT NOT NULL,
    asn          BIGINT NOT NULL,
    country      TEXT NOT NULL,
    ua           TEXT NOT NULL,
    device       TEXT NOT NULL,
    jumped_us    BIGINT NOT NULL DEFAULT 0,
    jump         TEXT NOT NULL DEFAULT '',
    revoked_us   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_account ON sessions (account, created_us);

CREATE TABLE login_history (
    id       TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    time_us  BIGINT NOT NULL,
    method   TEXT NOT NULL,
    factors  TEXT NOT NULL,
    ok       BIGINT NOT NULL,
    outcome  TEXT NOT NULL,
    ip       TEXT NOT NULL,
    asn      BIGINT NOT NULL,
    country  TEXT NOT NULL,
    ua       TEXT NOT NULL,
    device   TEXT NOT NULL,
    session  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX login_history_account ON login_history (account, time_us);

CREATE TABLE self_locks (
    account TEXT PRIMARY KEY,
    scope   BIGINT NOT NULL CHECK (scope BETWEEN 1 AND 5),
    set_us  BIGINT NOT NULL,
    set_by  TEXT NOT NULL
);

-- outbox: notifications written in the transaction of what they report.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    locale     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts   BIGINT NOT NULL DEFAULT 0,
    next_us    BIGINT NOT NULL,
    created_us BIGINT NOT NULL,
    sent_us    BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (status, next_us);
CREATE INDEX outbox_account ON outbox (account, created_us);

-- +goose Down
DROP TABLE outbox;
DROP TABLE self_locks;
DROP TABLE login_history;
DROP TABLE sessions;
DROP TABLE ceremonies;
DROP TABLE otp_codes;
DROP TABLE passkeys;
DROP TABLE identities;

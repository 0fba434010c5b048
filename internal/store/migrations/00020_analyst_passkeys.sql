-- Analysts' passkeys for the console, and the one-time enrolment codes
-- `kabuto analyst --create` prints (kept as SHA-256 hashes). One text for
-- SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE analyst_enrolments (
    code_hash  TEXT PRIMARY KEY,
    analyst    TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    used_us    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX analyst_enrolments_analyst ON analyst_enrolments (analyst);

CREATE TABLE analyst_passkeys (
    id           TEXT PRIMARY KEY,
    analyst      TEXT NOT NULL,
    user_handle  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    aaguid       TEXT NOT NULL DEFAULT '',
    sign_count   BIGINT NOT NULL DEFAULT 0,
    backup_eligible BIGINT NOT NULL DEFAULT 0,
    backup_state BIGINT NOT NULL DEFAULT 0,
    created_us   BIGINT NOT NULL,
    last_used_us BIGINT NOT NULL
);
CREATE INDEX analyst_passkeys_handle ON analyst_passkeys (user_handle);
CREATE INDEX analyst_passkeys_analyst ON analyst_passkeys (analyst);

-- +goose Down
DROP TABLE analyst_passkeys;
DROP TABLE analyst_enrolments;

-- 00009: "did we send this?" and the mail posture.
--
-- Every message Kabuto sends (email, SMS text, webhook) carries its own
-- reference code, stored with the outbox row so the public page can say
-- whether a code is genuine and what kind of message it was. mail_checks
-- keeps the results of the mail-domain checks the console shows. One text
-- for SQLite and PostgreSQL.

-- +goose Up
ALTER TABLE outbox ADD COLUMN ref TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX outbox_ref ON outbox (ref) WHERE ref <> '';

CREATE TABLE mail_checks (
    domain       TEXT NOT NULL,
    checked_us   BIGINT NOT NULL,
    sending      BIGINT NOT NULL,
    failed       BIGINT NOT NULL,
    dmarc_policy TEXT NOT NULL,
    report       TEXT NOT NULL,
    PRIMARY KEY (domain, checked_us)
);

-- +goose Down
DROP TABLE mail_checks;
DROP INDEX outbox_ref;
ALTER TABLE outbox DROP COLUMN ref;

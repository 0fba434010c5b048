-- The decision log, slimmer: a decision's feature values are stored
-- without their keys, which are kept once per set in feature_sets (the
-- row's feature_set names it; 0: features holds the whole object, as rows
-- written before this migration do). The index on (action, time_us),
-- which no query used, gives way to one on time_us, which the newest-first
-- listing and the warm start at boot read.

-- +goose Up
ALTER TABLE decisions ADD COLUMN feature_set BIGINT NOT NULL DEFAULT 0;
CREATE TABLE feature_sets (
    id    BIGINT PRIMARY KEY,
    keys  TEXT NOT NULL
);
DROP INDEX decisions_action;
CREATE INDEX decisions_time ON decisions (time_us);

-- +goose Down
-- (Like every Down here, this loses data: rows stored with a feature set
-- keep their values without keys.)
DROP INDEX decisions_time;
CREATE INDEX decisions_action ON decisions (action, time_us);
DROP TABLE feature_sets;
ALTER TABLE decisions DROP COLUMN feature_set;

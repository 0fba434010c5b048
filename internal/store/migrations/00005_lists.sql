-- The guard's lists (block, allow, watch, …) of IP addresses and prefixes,
-- ASNs, devices and instruments, kept across restarts.

-- +goose Up
CREATE TABLE list_entries (
    list       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    note       TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    added_us   BIGINT NOT NULL,
    PRIMARY KEY (list, kind, value)
);

-- +goose Down
DROP TABLE list_entries;

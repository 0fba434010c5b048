-- The reference brokerage: instruments, accounts, positions, orders, the
-- ledger every cash and position change is written to, withdrawals, the
-- emitted event stream and idempotency keys. One text for SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE instruments (
    symbol      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    market      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    lot         BIGINT NOT NULL CHECK (lot > 0),
    adv_shares  BIGINT NOT NULL CHECK (adv_shares >= 0),
    prev_close  DOUBLE PRECISION NOT NULL CHECK (prev_close > 0),
    large_cap   BIGINT NOT NULL DEFAULT 0,
    buy_halted  BIGINT NOT NULL DEFAULT 0,
    halt_reason TEXT NOT NULL DEFAULT ''
);

CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    locale          TEXT NOT NULL DEFAULT 'ja',
    email           TEXT NOT NULL,
    phone           TEXT NOT NULL,
    address         TEXT NOT NULL DEFAULT '',
    email_hash      TEXT NOT NULL,
    phone_hash      TEXT NOT NULL,
    address_hash    TEXT NOT NULL DEFAULT '',
    bank_label      TEXT NOT NULL,
    bank_hash       TEXT NOT NULL,
    opened          TEXT NOT NULL,
    cash_jpy        BIGINT NOT NULL CHECK (cash_jpy >= 0),
    reserved_jpy    BIGINT NOT NULL DEFAULT 0 CHECK (reserved_jpy >= 0),
    foreign_enabled BIGINT NOT NULL DEFAULT 0,
    margin_enabled  BIGINT NOT NULL DEFAULT 0,
    created_us      BIGINT NOT NULL,
    CHECK (reserved_jpy <= cash_jpy)
);

CREATE TABLE positions (
    account      TEXT NOT NULL REFERENCES accounts(id),
    symbol       TEXT NOT NULL REFERENCES instruments(symbol),
    kind         TEXT NOT NULL CHECK (kind IN ('cash', 'margin', 'nisa')),
    qty          BIGINT NOT NULL CHECK (qty >= 0),
    reserved_qty BIGINT NOT NULL DEFAULT 0 CHECK (reserved_qty >= 0),
    cost_jpy     BIGINT NOT NULL CHECK (cost_jpy >= 0),
    PRIMARY KEY (account, symbol, kind),
    CHECK (reserved_qty <= qty)
);

CREATE TABLE orders (
    id           TEXT PRIMARY KEY,
    account      TEXT NOT NULL REFERENCES accounts(id),
    symbol       TEXT NOT NULL REFERENCES instruments(symbol),
    side         TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty          BIGINT NOT NULL CHECK (qty > 0),
    price_type   TEXT NOT NULL CHECK (price_type IN ('market', 'limit')),
    limit_price  DOUBLE PRECISION NOT NULL DEFAULT 0,
    kind         TEXT NOT NULL CHECK (kind IN ('cash', 'margin', 'nisa')),
    status       TEXT NOT NULL CHECK (status IN ('open', 'filled', 'cancelled', 'held', 'rejected')),
    reserved_jpy BIGINT NOT NULL DEFAULT 0 CHECK (reserved_jpy >= 0),
    reserved_qty BIGINT NOT NULL DEFAULT 0 CHECK (reserved_qty >= 0),
    filled_qty   BIGINT NOT NULL DEFAULT 0,
    filled_jpy   BIGINT NOT NULL DEFAULT 0,
    value_jpy    BIGINT NOT NULL DEFAULT 0,
    event_id     TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    updated_us   BIGINT NOT NULL
);
CREATE INDEX orders_account ON orders (account, created_us);
CREATE INDEX orders_open ON orders (status, symbol);

-- ledger: every change of cash or a position, so balances can be proven.
CREATE TABLE ledger (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL REFERENCES accounts(id),
    time_us    BIGINT NOT NULL,
    entry      TEXT NOT NULL CHECK (entry IN ('opening', 'deposit', 'withdrawal', 'buy', 'sell')),
    symbol     TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL DEFAULT '',
    qty        BIGINT NOT NULL DEFAULT 0,
    price      DOUBLE PRECISION NOT NULL DEFAULT 0,
    cash_jpy   BIGINT NOT NULL DEFAULT 0,
    ref        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_account ON ledger (account, time_us);

CREATE TABLE withdrawals (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL REFERENCES accounts(id),
    amount_jpy BIGINT NOT NULL CHECK (amount_jpy > 0),
    bank_hash  TEXT NOT NULL,
    status     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE INDEX withdrawals_account ON withdrawals (account, created_us);

-- events: the spec records the brokerage emitted, in order.
CREATE TABLE events (
    id       TEXT PRIMARY KEY,
    time_us  BIGINT NOT NULL,
    type     TEXT NOT NULL,
    account  TEXT NOT NULL DEFAULT '',
    body     TEXT NOT NULL
);
CREATE INDEX events_time ON events (time_us);
CREATE INDEX events_account ON events (account, time_us);

-- idempotency: a retried mutating request returns the first response.
CREATE TABLE idempotency (
    principal    TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    response     TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    PRIMARY KEY (principal, idem_key)
);

-- settings: server-wide values that must survive restarts (e.g. the hash key).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- api_keys: callers of the API (the brokerage's own systems); only a hash is kept.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    revoked_us BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE settings;
DROP TABLE idempotency;
DROP TABLE events;
DROP TABLE withdrawals;
DROP TABLE ledger;
DROP TABLE orders;
DROP TABLE positions;
DROP TABLE accounts;
DROP TABLE instruments;

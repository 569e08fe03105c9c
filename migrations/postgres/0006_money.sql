-- The double-entry ledger: append-only, one row per posting, a transaction's postings sum to
-- zero. The primary key makes a transaction id count once however often it is written.
CREATE TABLE ledger_entries (
    txn_id       TEXT NOT NULL,
    line         BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    order_id     TEXT,
    account      TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    PRIMARY KEY (txn_id, line)
);
CREATE INDEX ledger_account_at ON ledger_entries (account, at);
CREATE INDEX ledger_order ON ledger_entries (order_id);

-- Every operation sent (or to be sent) to a payment gateway, by its idempotency key.
CREATE TABLE payment_ops (
    key          TEXT PRIMARY KEY,
    order_id     TEXT,
    kind         TEXT NOT NULL CHECK (kind IN ('authorize', 'capture', 'refund', 'void', 'transfer')),
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    gateway      TEXT,
    reference    TEXT,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'declined', 'unknown', 'voided')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    error        TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX payment_ops_order ON payment_ops (order_id);
CREATE INDEX payment_ops_status ON payment_ops (status);

-- One payout per account and period.
CREATE TABLE payouts (
    id               TEXT PRIMARY KEY,
    account          TEXT NOT NULL,
    period_start     BIGINT NOT NULL,
    period_end       BIGINT NOT NULL,
    deliveries       BIGINT NOT NULL,
    gross_cents      BIGINT NOT NULL,
    commission_cents BIGINT NOT NULL,
    refunds_cents    BIGINT NOT NULL,
    net_cents        BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    created_at       BIGINT NOT NULL,
    UNIQUE (account, period_start)
);

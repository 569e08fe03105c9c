-- Recurring orders: a schedule per customer that places an order on each of its days. The
-- body holds the whole schedule (JSON); the columns are what queries select by.
CREATE TABLE recurring_orders (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL,
    restaurant_id TEXT NOT NULL REFERENCES restaurants (id),
    paused        BOOLEAN NOT NULL,
    deleted       BOOLEAN NOT NULL,
    -- When the next occurrence is placed (Unix ms); null while paused, deleted or done.
    next_place_at BIGINT,
    version       BIGINT NOT NULL CHECK (version >= 1),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    body          TEXT NOT NULL,
    CHECK (NOT deleted OR next_place_at IS NULL)
);
CREATE INDEX recurring_orders_customer ON recurring_orders (customer_id, created_at);
CREATE INDEX recurring_orders_due ON recurring_orders (next_place_at) WHERE next_place_at IS NOT NULL;

-- What became of each date of a schedule: the primary key is the promise that one date is
-- placed at most once.
CREATE TABLE recurring_occurrences (
    recurring_id TEXT NOT NULL REFERENCES recurring_orders (id),
    date         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('placed', 'failed', 'skipped', 'missed')),
    order_id     TEXT,
    error        TEXT,
    at           BIGINT NOT NULL,
    PRIMARY KEY (recurring_id, date),
    CHECK ((status = 'placed') = (order_id IS NOT NULL))
);

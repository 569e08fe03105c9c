-- The core tables. Ids are UUID text, times are Unix milliseconds, so both dialects share shapes.
CREATE TABLE restaurants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    lat          DOUBLE PRECISION NOT NULL,
    lng          DOUBLE PRECISION NOT NULL,
    open         BOOLEAN NOT NULL DEFAULT TRUE,
    rating_sum   BIGINT NOT NULL DEFAULT 0,
    rating_count BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    phone      TEXT NOT NULL,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per rider: the dispatcher's snapshot. `rev` grows with every change and guards
-- against an older snapshot overwriting a newer one.
CREATE TABLE riders (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    lat              DOUBLE PRECISION,
    lng              DOUBLE PRECISION,
    offer_order_id   TEXT,
    offer_expires_at BIGINT,
    order_id         TEXT,
    rev              BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- Orders: indexed columns for the queries, the whole snapshot as JSON in `body`.
-- Partitioned by month of `placed_at` so retention drops whole partitions; the store creates
-- each month's partition before the first order of that month is written.
CREATE TABLE orders (
    id            TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    restaurant_id TEXT NOT NULL,
    rider_id      TEXT,
    stage         TEXT NOT NULL,
    terminal      BOOLEAN NOT NULL,
    placed_at     BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (id, placed_at)
) PARTITION BY RANGE (placed_at);
CREATE INDEX orders_customer_history ON orders (customer_id, placed_at DESC, id DESC);
CREATE INDEX orders_unfinished ON orders (placed_at) WHERE NOT terminal;

CREATE TABLE idempotency_keys (
    customer_id  TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (customer_id, key)
);

CREATE TABLE ratings (
    order_id      TEXT PRIMARY KEY,
    restaurant_id TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    stars         BIGINT NOT NULL,
    comment       TEXT,
    created_at    BIGINT NOT NULL
);

-- The transactional outbox: every order change appends its event in the same transaction as
-- the snapshot. `payload` is the wire message; the id columns say who receives it.
CREATE TABLE outbox (
    seq           BIGSERIAL PRIMARY KEY,
    event_id      TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    version       BIGINT NOT NULL,
    customer_id   TEXT NOT NULL,
    restaurant_id TEXT NOT NULL,
    rider_id      TEXT,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- How far each consumer of the outbox has got.
CREATE TABLE outbox_cursors (
    consumer TEXT PRIMARY KEY,
    seq      BIGINT NOT NULL
);

-- Orders looking for a rider: who was already offered it and when dispatch gives up.
-- The open offer itself lives on the rider's row.
CREATE TABLE dispatch_jobs (
    order_id   TEXT PRIMARY KEY,
    tried      TEXT NOT NULL,
    deadline   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What the data implies, enforced by the database too (see the PostgreSQL migration of the
-- same name). SQLite cannot add constraints to a table, so each table is rebuilt with them,
-- parents before children.
CREATE TABLE restaurants_new (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    lat          DOUBLE PRECISION NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng          DOUBLE PRECISION NOT NULL CHECK (lng BETWEEN -180 AND 180),
    open         BOOLEAN NOT NULL DEFAULT TRUE,
    rating_sum   BIGINT NOT NULL DEFAULT 0,
    rating_count BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    CHECK (rating_sum >= 0 AND rating_count >= 0 AND rating_sum BETWEEN rating_count AND 5 * rating_count)
);
INSERT INTO restaurants_new SELECT id, name, lat, lng, open, rating_sum, rating_count, created_at FROM restaurants;
DROP TABLE restaurants;
ALTER TABLE restaurants_new RENAME TO restaurants;

CREATE TABLE riders_new (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('offline', 'available', 'busy')),
    lat              DOUBLE PRECISION CHECK (lat BETWEEN -90 AND 90),
    lng              DOUBLE PRECISION CHECK (lng BETWEEN -180 AND 180),
    offer_order_id   TEXT,
    offer_expires_at BIGINT,
    order_id         TEXT,
    rev              BIGINT NOT NULL CHECK (rev >= 1),
    updated_at       BIGINT NOT NULL,
    CHECK ((lat IS NULL) = (lng IS NULL)),
    CHECK ((offer_order_id IS NULL) = (offer_expires_at IS NULL)),
    CHECK (offer_order_id IS NULL OR order_id IS NULL)
);
INSERT INTO riders_new SELECT id, name, status, lat, lng, offer_order_id, offer_expires_at, order_id, rev, updated_at FROM riders;
DROP TABLE riders;
ALTER TABLE riders_new RENAME TO riders;

CREATE TABLE orders_new (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL,
    restaurant_id TEXT NOT NULL REFERENCES restaurants (id),
    rider_id      TEXT,
    stage         TEXT NOT NULL CHECK (stage IN ('awaiting_restaurant', 'preparing', 'finding_rider',
        'rider_assigned', 'picked_up', 'delivered', 'cancelled', 'rejected_by_restaurant', 'no_rider_found')),
    terminal      BOOLEAN NOT NULL,
    placed_at     BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL CHECK (version >= 1),
    body          TEXT NOT NULL,
    CHECK (terminal = (stage IN ('delivered', 'cancelled', 'rejected_by_restaurant', 'no_rider_found')))
);
INSERT INTO orders_new SELECT id, customer_id, restaurant_id, rider_id, stage, terminal, placed_at, updated_at, version, body FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_customer_history ON orders (customer_id, placed_at DESC, id DESC);
CREATE INDEX orders_unfinished ON orders (placed_at) WHERE NOT terminal;

CREATE TABLE ratings_new (
    order_id      TEXT PRIMARY KEY,
    restaurant_id TEXT NOT NULL REFERENCES restaurants (id),
    customer_id   TEXT NOT NULL,
    stars         BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    comment       TEXT,
    created_at    BIGINT NOT NULL
);
INSERT INTO ratings_new SELECT order_id, restaurant_id, customer_id, stars, comment, created_at FROM ratings;
DROP TABLE ratings;
ALTER TABLE ratings_new RENAME TO ratings;

CREATE TABLE idempotent_responses_new (
    subject      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL CHECK (status BETWEEN 100 AND 599),
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (subject, key)
);
INSERT INTO idempotent_responses_new SELECT subject, key, request_hash, status, body, created_at FROM idempotent_responses;
DROP TABLE idempotent_responses;
ALTER TABLE idempotent_responses_new RENAME TO idempotent_responses;

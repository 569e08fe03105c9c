-- Orders wanted more than 45 minutes ahead wait as `scheduled` until their kitchen must start
-- (see the PostgreSQL migration of the same name). SQLite cannot change a CHECK, so the table
-- is rebuilt with the new stage, and its indexes with it.
CREATE TABLE orders_new (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL,
    restaurant_id TEXT NOT NULL REFERENCES restaurants (id),
    rider_id      TEXT,
    stage         TEXT NOT NULL CHECK (stage IN ('scheduled', 'awaiting_restaurant', 'preparing',
        'finding_rider', 'rider_assigned', 'picked_up', 'delivered', 'cancelled',
        'rejected_by_restaurant', 'no_rider_found')),
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
CREATE INDEX orders_restaurant_stage ON orders (restaurant_id, stage, placed_at);

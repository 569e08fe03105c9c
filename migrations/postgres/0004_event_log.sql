-- The outbox is the event log: sockets resuming with `since` read one audience's events
-- after a sequence, and an order's history is read by order.
CREATE INDEX outbox_customer_seq ON outbox (customer_id, seq);
CREATE INDEX outbox_restaurant_seq ON outbox (restaurant_id, seq);
CREATE INDEX outbox_rider_seq ON outbox (rider_id, seq) WHERE rider_id IS NOT NULL;
CREATE INDEX outbox_order_seq ON outbox (order_id, seq);

-- Events a consumer gave up on after its retries, with the last error; ops replay them.
CREATE TABLE dead_letters (
    id          TEXT PRIMARY KEY,
    consumer    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_seq   BIGINT NOT NULL,
    event       TEXT NOT NULL,
    error       TEXT NOT NULL,
    attempts    BIGINT NOT NULL CHECK (attempts >= 1),
    created_at  BIGINT NOT NULL,
    replayed_at BIGINT,
    UNIQUE (consumer, event_id)
);

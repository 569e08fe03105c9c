-- Fewer index entries per write, as in PostgreSQL's 0013: a restaurant's desk reads its orders
-- by time and filters the stage, and the audience indexes of the outbox hold only the
-- `order.updated` events that socket replay and order history read.
DROP INDEX orders_restaurant_stage;
CREATE INDEX orders_restaurant_placed ON orders (restaurant_id, placed_at);

DROP INDEX outbox_customer_seq;
DROP INDEX outbox_restaurant_seq;
DROP INDEX outbox_rider_seq;
DROP INDEX outbox_order_seq;
CREATE INDEX outbox_customer_seq ON outbox (customer_id, seq) WHERE kind = 'order.updated';
CREATE INDEX outbox_restaurant_seq ON outbox (restaurant_id, seq) WHERE kind = 'order.updated';
CREATE INDEX outbox_rider_seq ON outbox (rider_id, seq)
    WHERE kind = 'order.updated' AND rider_id IS NOT NULL;
CREATE INDEX outbox_order_seq ON outbox (order_id, seq) WHERE kind = 'order.updated';

-- How long the kitchen takes, set by the restaurant with its open flag.
ALTER TABLE restaurants ADD COLUMN prep_minutes BIGINT NOT NULL DEFAULT 15;
-- A restaurant's tablet lists its orders by stage.
CREATE INDEX orders_restaurant_stage ON orders (restaurant_id, stage, placed_at);

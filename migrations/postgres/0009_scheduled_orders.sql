-- Orders wanted more than 45 minutes ahead wait as `scheduled` until their kitchen must start.
ALTER TABLE orders DROP CONSTRAINT orders_stage;
ALTER TABLE orders
    ADD CONSTRAINT orders_stage CHECK (stage IN ('scheduled', 'awaiting_restaurant', 'preparing',
        'finding_rider', 'rider_assigned', 'picked_up', 'delivered', 'cancelled',
        'rejected_by_restaurant', 'no_rider_found'));

-- What the data implies, enforced by the database too: coordinates on the globe, known stages
-- and statuses, versions that start at 1, stars 1 to 5, orders and ratings of registered
-- restaurants. (Customers are not yet referenced: a token for an unregistered customer can
-- still order until the hardening issue refuses it at the API.)
ALTER TABLE restaurants
    ADD CONSTRAINT restaurants_lat CHECK (lat BETWEEN -90 AND 90),
    ADD CONSTRAINT restaurants_lng CHECK (lng BETWEEN -180 AND 180),
    ADD CONSTRAINT restaurants_ratings CHECK (rating_sum >= 0 AND rating_count >= 0
                                              AND rating_sum BETWEEN rating_count AND 5 * rating_count);

ALTER TABLE riders
    ADD CONSTRAINT riders_status CHECK (status IN ('offline', 'available', 'busy')),
    ADD CONSTRAINT riders_lat CHECK (lat BETWEEN -90 AND 90),
    ADD CONSTRAINT riders_lng CHECK (lng BETWEEN -180 AND 180),
    ADD CONSTRAINT riders_position CHECK ((lat IS NULL) = (lng IS NULL)),
    ADD CONSTRAINT riders_offer CHECK ((offer_order_id IS NULL) = (offer_expires_at IS NULL)),
    ADD CONSTRAINT riders_one_job CHECK (offer_order_id IS NULL OR order_id IS NULL),
    ADD CONSTRAINT riders_rev CHECK (rev >= 1);

ALTER TABLE orders
    ADD CONSTRAINT orders_stage CHECK (stage IN ('awaiting_restaurant', 'preparing', 'finding_rider',
        'rider_assigned', 'picked_up', 'delivered', 'cancelled', 'rejected_by_restaurant', 'no_rider_found')),
    ADD CONSTRAINT orders_terminal CHECK (terminal = (stage IN ('delivered', 'cancelled',
        'rejected_by_restaurant', 'no_rider_found'))),
    ADD CONSTRAINT orders_version CHECK (version >= 1),
    ADD CONSTRAINT orders_restaurant FOREIGN KEY (restaurant_id) REFERENCES restaurants (id);

ALTER TABLE ratings
    ADD CONSTRAINT ratings_stars CHECK (stars BETWEEN 1 AND 5),
    ADD CONSTRAINT ratings_restaurant FOREIGN KEY (restaurant_id) REFERENCES restaurants (id);

ALTER TABLE outbox ADD CONSTRAINT outbox_version CHECK (version >= 1);

ALTER TABLE idempotent_responses ADD CONSTRAINT idempotent_responses_status CHECK (status BETWEEN 100 AND 599);

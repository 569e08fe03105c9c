-- Every offer of an order to a rider and how it ended: the dispatch explanation.
CREATE TABLE dispatch_attempts (
    order_id   TEXT NOT NULL,
    n          BIGINT NOT NULL,
    rider_id   TEXT NOT NULL,
    distance_m DOUBLE PRECISION NOT NULL,
    offered_at BIGINT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('pending', 'accepted', 'rejected', 'timed_out', 'withdrawn')),
    PRIMARY KEY (order_id, n)
);

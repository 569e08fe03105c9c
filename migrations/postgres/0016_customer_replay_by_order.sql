-- A resuming customer's missed events are found through the customer's orders (the order
-- history index) and each order's events (`outbox_order_seq`), not through an index of the
-- outbox by customer: that index cost every order update an entry at a random place in a
-- B-tree keyed by customer (about five per order), for a read that happens only when a
-- customer's app reconnects. Measured under `dabba load` in BENCHMARKS.md (issue 9, sixth pass).
DROP INDEX outbox_customer_seq;

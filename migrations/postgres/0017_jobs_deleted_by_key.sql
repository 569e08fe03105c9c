-- A batch's finished dispatch jobs are deleted by primary-key probes. 0014 deleted them with
-- `order_id = ANY(dj_order)`, which under `dabba load` ran as a sequential scan per batch
-- through every dead row the table held (at 800 orders/s with autovacuum off: 4,254 scans in
-- 30 s over a table of ~100 live rows and 26,000 dead ones). A join with UNNEST under the
-- function's SET clause (no hash or merge joins) is a nested loop of index probes, as the
-- orders UPDATE is.
-- Measured in BENCHMARKS.md (issue 9, seventh pass). The rest of the function is unchanged.
CREATE OR REPLACE FUNCTION dabba_write_batch(
    -- new orders
    no_id TEXT[], no_customer TEXT[], no_restaurant TEXT[], no_rider TEXT[], no_stage TEXT[],
    no_terminal BOOL[], no_placed INT8[], no_updated INT8[], no_version INT8[], no_body TEXT[],
    -- saved orders (guarded by version)
    so_id TEXT[], so_rider TEXT[], so_stage TEXT[], so_terminal BOOL[], so_updated INT8[],
    so_version INT8[], so_body TEXT[], so_placed INT8[],
    -- rider snapshots (guarded by revision)
    r_id TEXT[], r_name TEXT[], r_status TEXT[], r_lat FLOAT8[], r_lng FLOAT8[], r_offer TEXT[],
    r_offer_expires INT8[], r_order TEXT[], r_rev INT8[], r_updated INT8[],
    -- dispatch jobs saved, then deleted
    j_order TEXT[], j_tried TEXT[], j_deadline INT8[], j_updated INT8[],
    dj_order TEXT[],
    -- dispatch attempts
    a_order TEXT[], a_n INT8[], a_rider TEXT[], a_distance FLOAT8[], a_offered INT8[],
    a_outcome TEXT[],
    -- ledger postings, one row per line
    l_txn TEXT[], l_line INT8[], l_kind TEXT[], l_order TEXT[], l_account TEXT[], l_amount INT8[],
    l_at INT8[],
    -- gateway operations, one per key
    p_key TEXT[], p_order TEXT[], p_kind TEXT[], p_amount INT8[], p_gateway TEXT[],
    p_reference TEXT[], p_status TEXT[], p_attempts INT8[], p_error TEXT[], p_at INT8[],
    -- outbox events, in commit order
    e_id TEXT[], e_kind TEXT[], e_order TEXT[], e_version INT8[], e_customer TEXT[],
    e_restaurant TEXT[], e_rider TEXT[], e_payload TEXT[], e_at INT8[]
) RETURNS INT8[] LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
DECLARE
    changed BIGINT;
    seqs INT8[];
BEGIN
    IF cardinality(no_id) > 0 THEN
        INSERT INTO orders (id, customer_id, restaurant_id, rider_id, stage, terminal, placed_at,
                            updated_at, version, body)
        SELECT * FROM UNNEST(no_id, no_customer, no_restaurant, no_rider, no_stage, no_terminal,
                             no_placed, no_updated, no_version, no_body);
    END IF;
    IF cardinality(so_id) > 0 THEN
        -- One statement for the batch's saved orders (the planner keeps one row per order).
        -- 0013 ran one statement per order: each started an executor, opened the partition
        -- and its indexes and re-read the table's CHECK constraints, a sixth of PostgreSQL's
        -- CPU under load. The function's SET clause keeps the cached generic plan a nested
        -- loop of primary-key probes, whatever the table's size was when it was planned.
        UPDATE orders o SET rider_id = x.rider, stage = x.stage, terminal = x.terminal,
                            updated_at = x.updated, version = x.version, body = x.body
        FROM UNNEST(so_id, so_rider, so_stage, so_terminal, so_updated, so_version, so_body,
                    so_placed) AS x(id, rider, stage, terminal, updated, version, body, placed)
        WHERE o.id = x.id AND o.placed_at = x.placed AND o.version < x.version;
        GET DIAGNOSTICS changed = ROW_COUNT;
        PERFORM dabba_guard('order', 'version', cardinality(so_id), changed);
    END IF;
    IF cardinality(r_id) > 0 THEN
        INSERT INTO riders (id, name, status, lat, lng, offer_order_id, offer_expires_at, order_id,
                            rev, updated_at)
        SELECT * FROM UNNEST(r_id, r_name, r_status, r_lat, r_lng, r_offer, r_offer_expires,
                             r_order, r_rev, r_updated)
        ON CONFLICT (id) DO UPDATE SET
            name = excluded.name, status = excluded.status, lat = excluded.lat,
            lng = excluded.lng, offer_order_id = excluded.offer_order_id,
            offer_expires_at = excluded.offer_expires_at, order_id = excluded.order_id,
            rev = excluded.rev, updated_at = excluded.updated_at
        WHERE riders.rev < excluded.rev;
        GET DIAGNOSTICS changed = ROW_COUNT;
        PERFORM dabba_guard('rider', 'revision', cardinality(r_id), changed);
    END IF;
    IF cardinality(j_order) > 0 THEN
        INSERT INTO dispatch_jobs (order_id, tried, deadline, updated_at)
        SELECT * FROM UNNEST(j_order, j_tried, j_deadline, j_updated)
        ON CONFLICT (order_id) DO UPDATE SET tried = excluded.tried,
            deadline = excluded.deadline, updated_at = excluded.updated_at;
    END IF;
    IF cardinality(dj_order) > 0 THEN
        DELETE FROM dispatch_jobs d USING UNNEST(dj_order) AS x(order_id)
        WHERE d.order_id = x.order_id;
    END IF;
    IF cardinality(l_txn) > 0 THEN
        INSERT INTO ledger_entries (txn_id, line, kind, order_id, account, amount_cents, at)
        SELECT * FROM UNNEST(l_txn, l_line, l_kind, l_order, l_account, l_amount, l_at)
        ON CONFLICT (txn_id, line) DO NOTHING;
    END IF;
    IF cardinality(p_key) > 0 THEN
        -- One row per key (the planner keeps the last write): ON CONFLICT DO UPDATE may not
        -- touch a row twice in one statement.
        INSERT INTO payment_ops (key, order_id, kind, amount_cents, gateway, reference, status,
                                 attempts, error, created_at, updated_at)
        SELECT k, o, kd, a, g, r, s, n, e, t, t
        FROM UNNEST(p_key, p_order, p_kind, p_amount, p_gateway, p_reference, p_status,
                    p_attempts, p_error, p_at) AS x(k, o, kd, a, g, r, s, n, e, t)
        ON CONFLICT (key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
            error = excluded.error,
            reference = COALESCE(excluded.reference, payment_ops.reference),
            gateway = COALESCE(excluded.gateway, payment_ops.gateway),
            updated_at = excluded.updated_at
        WHERE payment_ops.status NOT IN ('succeeded', 'voided', 'declined')
           OR excluded.status = 'voided';
    END IF;
    IF cardinality(a_order) > 0 THEN
        INSERT INTO dispatch_attempts (order_id, n, rider_id, distance_m, offered_at, outcome)
        SELECT * FROM UNNEST(a_order, a_n, a_rider, a_distance, a_offered, a_outcome)
        ON CONFLICT (order_id, n) DO UPDATE SET outcome = excluded.outcome;
    END IF;
    IF cardinality(e_id) > 0 THEN
        WITH added AS (
            INSERT INTO outbox (event_id, kind, order_id, version, customer_id, restaurant_id,
                                rider_id, payload, created_at)
            SELECT e, k, o, v, c, r, d, p, t
            FROM UNNEST(e_id, e_kind, e_order, e_version, e_customer, e_restaurant, e_rider,
                        e_payload, e_at) WITH ORDINALITY AS x(e, k, o, v, c, r, d, p, t, n)
            ORDER BY n
            RETURNING seq
        )
        SELECT array_agg(seq ORDER BY seq) INTO seqs FROM added;
    END IF;
    RETURN COALESCE(seqs, '{}');
END
$fn$;

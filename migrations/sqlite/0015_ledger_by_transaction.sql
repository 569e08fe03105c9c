-- An order's ledger lines are read by its transaction ids (each derived from the order id and
-- the transaction's kind, `domain::ledger::order_txn_ids`), on the primary key: the index by
-- order cost every posting an index entry (six per delivered card order) for a lookup the
-- primary key already serves.
DROP INDEX ledger_order;

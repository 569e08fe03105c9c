//! The batch planner: what a batch of units inserts, updates and deletes, decided without a
//! database. Snapshots are saved in bulk with the last write per row winning (versions and
//! revisions only rise), new orders before updates (an update of an order placed in the same
//! batch must find it), a job's last word (saved or deleted) wins, and writes with no bulk
//! form keep their order.

use std::collections::HashMap;

use super::batch::{Write, WriteUnit};
use super::records::{AttemptRecord, JobRecord, OutboxEvent, RiderRecord};
use crate::domain::ledger::LedgerTxn;
use crate::domain::payment::PaymentOp;
use crate::domain::{Order, OrderId, RiderId};

#[derive(Debug, Default)]
pub struct BatchPlan<'a> {
    pub new_orders: Vec<&'a Order>,
    pub saved_orders: Vec<&'a Order>,
    pub riders: Vec<&'a RiderRecord>,
    pub saved_jobs: Vec<&'a JobRecord>,
    pub deleted_jobs: Vec<OrderId>,
    /// Outbox events in commit order.
    pub events: Vec<&'a OutboxEvent>,
    /// Ledger transactions, once each (a repeat within the batch is the same transaction).
    pub ledger: Vec<&'a LedgerTxn>,
    /// Gateway operations, the last write per key.
    pub payment_ops: Vec<&'a PaymentOp>,
    /// Dispatch attempts, the last write per (order, n).
    pub attempts: Vec<&'a AttemptRecord>,
    /// Writes run one statement each, in order (registrations, ratings, cursors).
    pub singles: Vec<&'a Write>,
}

/// Plans the units whose claims held (`applies[i]`); a claim itself is left to the caller,
/// which ran it before planning to know whether its unit applies.
pub fn plan<'a>(units: &'a [WriteUnit], applies: &[bool]) -> BatchPlan<'a> {
    let mut p = BatchPlan::default();
    let mut saved_orders: HashMap<OrderId, &Order> = HashMap::new();
    let mut riders: HashMap<RiderId, &RiderRecord> = HashMap::new();
    let mut jobs: HashMap<OrderId, Option<&JobRecord>> = HashMap::new();
    let mut order_of_rows: Vec<OrderId> = Vec::new();
    let mut txn_ids = std::collections::HashSet::new();
    let mut ops: HashMap<&str, usize> = HashMap::new();
    let mut attempts: HashMap<(OrderId, u32), usize> = HashMap::new();
    for (unit, _) in units.iter().zip(applies).filter(|(_, a)| **a) {
        for write in &unit.writes {
            match write {
                Write::PlaceOrder { order, .. } => p.new_orders.push(order),
                Write::SaveOrder(order) => {
                    let slot = saved_orders.entry(order.id).or_insert(order);
                    if slot.version < order.version {
                        *slot = order;
                    }
                }
                Write::Event(e) => p.events.push(e),
                Write::Ledger(txn) => {
                    if txn_ids.insert(txn.id) {
                        p.ledger.push(txn);
                    }
                }
                Write::SaveAttempt(a) => match attempts.get(&(a.order_id, a.n)) {
                    Some(&i) => p.attempts[i] = a,
                    None => {
                        attempts.insert((a.order_id, a.n), p.attempts.len());
                        p.attempts.push(a);
                    }
                },
                Write::SavePaymentOp(op) => match ops.get(op.key.as_str()) {
                    Some(&i) => p.payment_ops[i] = op,
                    None => {
                        ops.insert(&op.key, p.payment_ops.len());
                        p.payment_ops.push(op);
                    }
                },
                Write::SaveRider(r) => {
                    let slot = riders.entry(r.id).or_insert(r);
                    if slot.rev < r.rev {
                        *slot = r;
                    }
                }
                Write::SaveJob(j) => {
                    if jobs.insert(j.order_id, Some(j)).is_none() {
                        order_of_rows.push(j.order_id);
                    }
                }
                Write::DeleteJob(id) => {
                    if jobs.insert(*id, None).is_none() {
                        order_of_rows.push(*id);
                    }
                }
                Write::AddRating(_) | Write::SaveResponse { .. } => {
                    // The claim already wrote the row; what else the rating changes is a single.
                    p.singles.push(write);
                }
                Write::SaveCursor { .. }
                | Write::ParkDeadLetter(_)
                | Write::DeadLetterReplayed { .. }
                | Write::AddRestaurant { .. }
                | Write::SetRestaurantStatus { .. }
                | Write::SaveMenu { .. }
                | Write::SavePayout(_)
                | Write::SaveRecurring(_)
                | Write::Audit(_)
                | Write::RecordOccurrence(_)
                | Write::AddCustomer { .. } => p.singles.push(write),
            }
        }
    }
    p.saved_orders = saved_orders.into_values().collect();
    p.riders = riders.into_values().collect();
    for id in order_of_rows {
        match jobs.get(&id) {
            Some(Some(job)) => p.saved_jobs.push(job),
            Some(None) => p.deleted_jobs.push(id),
            None => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RiderStatus;
    use chrono::Utc;
    use proptest::prelude::*;

    fn rider(id: RiderId, rev: i64) -> RiderRecord {
        RiderRecord {
            id,
            name: "r".into(),
            status: RiderStatus::Available,
            location: None,
            offer: None,
            order_id: None,
            rev,
            saved_at: Utc::now(),
        }
    }

    fn job(order_id: OrderId) -> JobRecord {
        JobRecord {
            order_id,
            tried: vec![],
            deadline: Utc::now(),
            saved_at: Utc::now(),
        }
    }

    proptest! {
        /// Whatever the interleaving, the plan keeps each rider's highest revision and each
        /// job's last word, once per row.
        #[test]
        fn last_write_per_row_wins(ops in prop::collection::vec((0usize..4, 1i64..50, any::<bool>()), 1..60)) {
            let riders: Vec<RiderId> = (0..4).map(|_| RiderId::new()).collect();
            let orders: Vec<OrderId> = (0..4).map(|_| OrderId::new()).collect();
            let units: Vec<WriteUnit> = ops
                .iter()
                .map(|&(i, rev, keep)| {
                    let j = if keep { Write::SaveJob(job(orders[i])) } else { Write::DeleteJob(orders[i]) };
                    WriteUnit::new(vec![Write::SaveRider(rider(riders[i], rev)), j])
                })
                .collect();
            let applies = vec![true; units.len()];
            let p = plan(&units, &applies);
            for (i, id) in riders.iter().enumerate() {
                let want = ops.iter().filter(|o| o.0 == i).map(|o| o.1).max();
                let got: Vec<i64> = p.riders.iter().filter(|r| r.id == *id).map(|r| r.rev).collect();
                prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
                let last = ops.iter().rev().find(|o| o.0 == i).map(|o| o.2);
                let saved = p.saved_jobs.iter().filter(|j| j.order_id == orders[i]).count();
                let deleted = p.deleted_jobs.iter().filter(|d| **d == orders[i]).count();
                match last {
                    Some(true) => prop_assert_eq!((saved, deleted), (1, 0)),
                    Some(false) => prop_assert_eq!((saved, deleted), (0, 1)),
                    None => prop_assert_eq!((saved, deleted), (0, 0)),
                }
            }
        }
    }

    #[test]
    fn money_is_planned_once_per_transaction_and_last_per_operation() {
        use crate::domain::ledger::{Account, TxnKind};
        use crate::domain::payment::{OpKind, OpStatus};
        use crate::domain::{Cents, CustomerId};
        let order = OrderId::new();
        let txn = LedgerTxn::new(
            order.0,
            TxnKind::Authorize,
            Some(order),
            Account::Outside,
            vec![(Account::Customer(CustomerId::new()), Cents(100))],
            Utc::now(),
        );
        let op = |status| PaymentOp {
            key: format!("capture-{order}"),
            order_id: Some(order),
            kind: OpKind::Capture,
            amount: Cents(100),
            gateway: Some("paycore".into()),
            reference: None,
            status,
            attempts: 0,
            error: None,
            at: Utc::now(),
        };
        let units = vec![
            WriteUnit::new(vec![
                Write::Ledger(txn.clone()),
                Write::SavePaymentOp(op(OpStatus::Pending)),
            ]),
            WriteUnit::new(vec![
                Write::Ledger(txn),
                Write::SavePaymentOp(op(OpStatus::Succeeded)),
            ]),
        ];
        let p = plan(&units, &[true, true]);
        assert_eq!(p.ledger.len(), 1);
        assert_eq!(p.payment_ops.len(), 1);
        assert_eq!(p.payment_ops[0].status, OpStatus::Succeeded);
    }

    /// The writer sends a batch as one committing statement when every write is a bulk row:
    /// the planner must agree, or a single statement would be skipped.
    #[test]
    fn bulk_rows_are_exactly_what_the_planner_writes_in_bulk() {
        let writes = [
            Write::SaveRider(rider(RiderId::new(), 2)),
            Write::SaveJob(job(OrderId::new())),
            Write::DeleteJob(OrderId::new()),
            Write::SaveCursor {
                consumer: "c",
                seq: 1,
            },
            Write::DeadLetterReplayed {
                id: uuid::Uuid::new_v4(),
                at: Utc::now(),
            },
        ];
        for write in writes {
            let units = [WriteUnit::one(write.clone())];
            let p = plan(&units, &[true]);
            assert_eq!(p.singles.is_empty(), write.is_bulk_row(), "{write:?}");
        }
    }

    #[test]
    fn a_unit_whose_claim_failed_writes_nothing() {
        let units = vec![
            WriteUnit::one(Write::SaveRider(rider(RiderId::new(), 2))),
            WriteUnit::one(Write::DeleteJob(OrderId::new())),
        ];
        let p = plan(&units, &[false, true]);
        assert!(p.riders.is_empty());
        assert_eq!(p.deleted_jobs.len(), 1);
    }
}

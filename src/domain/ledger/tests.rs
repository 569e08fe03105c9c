//! The ledger's invariants over any sequence of order events.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::order::{Command, Delivery, Item, NewOrder, new_order};
use crate::domain::payment::{OrderPayment, PaymentMethod};
use crate::domain::{LatLng, Policy};

/// A book that applies each transaction id at most once, as the store does, and checks that
/// every order transaction is one the store can find by the order.
#[derive(Default)]
struct Book {
    balances: HashMap<Account, i64>,
    applied: HashSet<Uuid>,
    entries: HashMap<Account, Vec<i64>>,
}

impl Book {
    fn apply(&mut self, txn: &LedgerTxn) {
        assert!(txn.is_balanced(), "{txn:?}");
        // The store finds an order's lines by these ids alone (it has no index by order).
        if let Some(order) = txn.order_id {
            assert!(order_txn_ids(order).contains(&txn.id), "{txn:?}");
        }
        if !self.applied.insert(txn.id) {
            return;
        }
        for p in &txn.postings {
            *self.balances.entry(p.account.clone()).or_default() += p.amount.0;
            self.entries
                .entry(p.account.clone())
                .or_default()
                .push(p.amount.0);
        }
    }
}

fn order(method: PaymentMethod, customer: CustomerId, price: i64) -> Order {
    let at = LatLng::parse(12.97, 77.59).expect("valid");
    let mut o = new_order(
        NewOrder {
            customer_id: customer,
            restaurant_id: RestaurantId(Uuid::from_u128(1)),
            restaurant_location: at,
            items: vec![Item {
                item_id: None,
                name: "thali".into(),
                quantity: 1,
                unit_price_cents: Cents(price),
            }],
            delivery: Delivery {
                location: at,
                address: "here".into(),
            },
            deliver_at: None,
            payment: None,
            prep_minutes: 15,
            recurring_id: None,
        },
        Utc::now(),
        &Policy::default(),
    )
    .expect("in radius");
    o.payment = Some(if method.is_online() {
        OrderPayment {
            method,
            gateway: Some("paycore".into()),
            reference: Some("auth".into()),
        }
    } else {
        OrderPayment::cash()
    });
    o
}

fn commands(rider: RiderId) -> Vec<Command> {
    vec![
        Command::AcceptByRestaurant,
        Command::RejectByRestaurant {
            reason: "busy".into(),
        },
        Command::BeginDispatch,
        Command::AssignRider(rider, 1, None),
        Command::Pickup(rider),
        Command::Deliver(rider),
        Command::Cancel,
        Command::GiveUpDispatch,
    ]
}

fn method() -> impl Strategy<Value = PaymentMethod> {
    prop_oneof![
        Just(PaymentMethod::Card),
        Just(PaymentMethod::Upi),
        Just(PaymentMethod::Wallet),
        Just(PaymentMethod::Cash),
    ]
}

proptest! {
    /// Whatever happens to whichever orders, with every movement derived (some twice, as a
    /// replay would), the trial balance is zero, each account's balance is the sum of its
    /// entries, nothing but the outside world goes negative, and a transaction id counts once.
    #[test]
    fn the_books_always_balance(
        orders in prop::collection::vec((method(), 0i64..50_000, 0u8..3), 1..6),
        steps in prop::collection::vec((0usize..6, 0usize..8, 0i64..900, any::<bool>(), any::<bool>()), 0..80),
        rules in (0u8..=100, 0i64..10_000),
    ) {
        let split_rules = Split { commission_percent: rules.0, rider_fee: Cents(rules.1) };
        let rider = RiderId(Uuid::from_u128(7));
        let customers: Vec<CustomerId> = (0..3).map(|i| CustomerId(Uuid::from_u128(100 + i))).collect();
        let mut live: Vec<Order> = orders
            .iter()
            .map(|(m, price, c)| order(*m, customers[usize::from(*c)], *price))
            .collect();
        let mut book = Book::default();
        for o in &live {
            if let Some(t) = authorization(o) {
                book.apply(&t);
                book.apply(&t);
            }
        }
        let commands = commands(rider);
        let policy = Policy::default();
        let mut now = Utc::now();
        for (i, c, dt, replay, settle) in steps {
            let Some(prev) = live.get(i % live.len().max(1)).cloned() else { break };
            now += Duration::seconds(dt);
            let cmd = commands[c % commands.len()].clone();
            if let Ok(next) = prev.apply(cmd, now, &policy) {
                for t in movements(&prev, &next, split_rules, now) {
                    book.apply(&t);
                    if replay {
                        book.apply(&t);
                    }
                    if settle && t.kind == TxnKind::Refund {
                        let amount = t.postings.iter().map(|p| p.amount.0).max().unwrap_or(0);
                        book.apply(&refund_settled(next.id, "paycore", Cents(amount), now));
                    }
                }
                let idx = i % live.len();
                live[idx] = next;
            }
        }
        let total: i64 = book.balances.values().sum();
        prop_assert_eq!(total, 0);
        for (account, balance) in &book.balances {
            let sum: i64 = book.entries[account].iter().sum();
            prop_assert_eq!(*balance, sum);
            if *account != Account::Outside {
                prop_assert!(*balance >= 0, "{:?} is {}", account, balance);
            }
        }
        // A finished order leaves nothing held for its customer.
        for c in &customers {
            let held: i64 = live
                .iter()
                .filter(|o| o.customer_id == *c && !o.stage.is_terminal() && o.payment.as_ref().is_some_and(|p| p.method.is_online()))
                .map(|o| o.total_cents.0)
                .sum();
            prop_assert_eq!(book.balances.get(&Account::Customer(*c)).copied().unwrap_or(0), held);
        }
    }

    #[test]
    fn a_split_adds_up_and_never_goes_negative(total in 0i64..10_000_000, pct in 0u8..=100, fee in 0i64..100_000) {
        let (r, d, p) = split(Cents(total), Split { commission_percent: pct, rider_fee: Cents(fee) });
        prop_assert_eq!(r.0 + d.0 + p.0, total);
        prop_assert!(r.0 >= 0 && d.0 >= 0 && p.0 >= 0);
    }
}

#[test]
fn the_default_split_of_a_500_rupee_order() {
    assert_eq!(
        split(Cents(50_000), Split::default()),
        (Cents(40_000), Cents(3_000), Cents(7_000))
    );
}

//! The store below the API, on both dialects: a snapshot that is not newer than the stored
//! one fails its write (never a silent 2xx), and the database itself refuses data the domain
//! never produces (stars outside 1–5, orders of unknown restaurants).

use chrono::Utc;
use dabba::domain::order::{NewOrder, new_order};
use dabba::domain::{
    CustomerId, Delivery, Item, LatLng, OrderId, Policy, Restaurant, RestaurantId, RiderId,
    RiderStatus,
};
use dabba::persistence::{RatingRecord, RiderRecord, Store, StoreError, Write, WriteUnit};

fn rider(id: RiderId, rev: i64) -> RiderRecord {
    RiderRecord {
        id,
        name: "Ravi".into(),
        status: RiderStatus::Available,
        location: None,
        offer: None,
        order_id: None,
        rev,
        saved_at: Utc::now(),
    }
}

async fn write(store: &Store, w: Write) -> Result<(), StoreError> {
    store.apply_batch(&[WriteUnit::one(w)]).await.map(|_| ())
}

#[actix_web::test]
async fn an_older_snapshot_fails_instead_of_vanishing() {
    let (store, _dir) = crate::helpers::bare_store().await;
    let id = RiderId::new();
    write(&store, Write::SaveRider(rider(id, 1))).await.unwrap();
    write(&store, Write::SaveRider(rider(id, 3))).await.unwrap();
    let stale = write(&store, Write::SaveRider(rider(id, 2))).await;
    assert!(
        matches!(stale, Err(StoreError::LostGuard(_))),
        "a stale snapshot must be an error, got {stale:?}"
    );
    let riders = store.riders().await.unwrap();
    assert_eq!(riders.iter().find(|r| r.id == id).map(|r| r.rev), Some(3));
}

/// A batch of plain rows is one committing statement on PostgreSQL: a lost guard anywhere in
/// it must leave none of it written.
#[actix_web::test]
async fn a_batch_with_a_lost_guard_writes_none_of_its_rows() {
    let (store, _dir) = crate::helpers::bare_store().await;
    let (old, new) = (RiderId::new(), RiderId::new());
    write(&store, Write::SaveRider(rider(old, 3)))
        .await
        .unwrap();
    let batch = [
        WriteUnit::one(Write::SaveRider(rider(new, 1))),
        WriteUnit::one(Write::SaveRider(rider(old, 2))),
    ];
    let failed = store.apply_batch(&batch).await;
    assert!(
        matches!(failed, Err(StoreError::LostGuard(_))),
        "the stale snapshot must fail the batch, got {:?}",
        failed.map(|o| o.units)
    );
    let riders = store.riders().await.unwrap();
    assert!(
        riders.iter().all(|r| r.id != new),
        "a row of the failed batch was committed"
    );
    assert_eq!(riders.iter().find(|r| r.id == old).map(|r| r.rev), Some(3));
}

#[actix_web::test]
async fn the_database_refuses_what_the_domain_never_writes() {
    let (store, _dir) = crate::helpers::bare_store().await;
    let at = LatLng::parse(12.9716, 77.5946).unwrap();
    let restaurant = Restaurant {
        id: RestaurantId::new(),
        name: "Vidyarthi Bhavan".into(),
        location: at,
        open: true,
        rating_sum: 0,
        rating_count: 0,
        prep_minutes: 15,
        menu: Default::default(),
    };
    let add = Write::AddRestaurant {
        restaurant: restaurant.clone(),
        at: Utc::now(),
    };
    write(&store, add).await.unwrap();
    let rating = |stars| {
        Write::AddRating(RatingRecord {
            order_id: OrderId::new(),
            restaurant_id: restaurant.id,
            customer_id: CustomerId::new(),
            stars,
            comment: None,
            at: Utc::now(),
        })
    };
    assert!(write(&store, rating(6)).await.is_err(), "six stars stored");
    assert!(write(&store, rating(0)).await.is_err(), "zero stars stored");
    write(&store, rating(5)).await.expect("five stars are fine");

    let order = |restaurant_id| {
        new_order(
            NewOrder {
                customer_id: CustomerId::new(),
                restaurant_id,
                restaurant_location: at,
                items: vec![Item {
                    item_id: None,
                    name: "Masala dosa".into(),
                    quantity: 1,
                    unit_price_cents: dabba::domain::Cents(9_000),
                }],
                delivery: Delivery {
                    location: at,
                    address: "12 Bull Temple Rd".into(),
                },
                deliver_at: None,
                payment: None,
                prep_minutes: 15,
                recurring_id: None,
            },
            Utc::now(),
            &Policy::default(),
        )
        .unwrap()
    };
    let place = |o| Write::PlaceOrder {
        order: o,
        idempotency: None,
    };
    write(&store, place(order(restaurant.id))).await.unwrap();
    let orphan = write(&store, place(order(RestaurantId::new()))).await;
    assert!(
        orphan.is_err(),
        "an order of an unknown restaurant was stored"
    );
}

/// A ledger transaction written twice (a retry, a replay after a crash) counts once, in
/// whichever batch it comes again; the books stay balanced.
#[actix_web::test]
async fn a_ledger_transaction_id_is_applied_at_most_once() {
    use dabba::domain::ledger::{Account, LedgerTxn, TxnKind};
    use dabba::domain::{Cents, CustomerId, OrderId};
    let (store, _dir) = crate::helpers::bare_store().await;
    let order = OrderId::new();
    let customer = CustomerId::new();
    let txn = LedgerTxn::new(
        order.0,
        TxnKind::Authorize,
        Some(order),
        Account::Outside,
        vec![(Account::Customer(customer), Cents(12_345))],
        Utc::now(),
    );
    for _ in 0..2 {
        store
            .apply_batch(&[
                WriteUnit::one(Write::Ledger(txn.clone())),
                WriteUnit::one(Write::Ledger(txn.clone())),
            ])
            .await
            .unwrap();
    }
    let balances = store.trial_balance().await.unwrap();
    assert_eq!(
        balances,
        vec![
            (Account::Customer(customer).key(), 12_345),
            ("outside".to_owned(), -12_345)
        ]
    );
}

//! Recurring orders through the API, with the test clock: a week with a pause, a skip and a
//! restart places exactly the expected occurrences, none twice; an occurrence that cannot be
//! placed is recorded, the customer told, and the schedule goes on.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, idli, south, spawn_app, spawn_app_with};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Kolkata;
const DAYS: [Weekday; 3] = [Weekday::Mon, Weekday::Wed, Weekday::Fri];

fn body(restaurant: &str) -> Value {
    json!({
        "restaurant_id": restaurant,
        "items": idli(2),
        "delivery": {"location": south(1_000.0), "address": "12 MG Road"},
        "payment": {"method": "cash"},
        "schedule": {"days": ["mon", "wed", "fri"], "time": "13:00", "timezone": "Asia/Kolkata"}
    })
}

/// `hour`:00 in Kolkata on `date`.
fn kolkata(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    ZONE.from_local_datetime(&date.and_hms_opt(hour, 0, 0).expect("valid"))
        .single()
        .expect("Kolkata has no clock changes")
        .with_timezone(&Utc)
}

/// 13:00 in Kolkata on `date`.
fn lunch(date: NaiveDate) -> DateTime<Utc> {
    kolkata(date, 13)
}

/// The first Sunday 20:00 in Kolkata after `t`.
fn sunday_evening_after(t: DateTime<Utc>) -> DateTime<Utc> {
    let today = t.with_timezone(&ZONE).date_naive();
    (0..8)
        .map(|i| today + Duration::days(i))
        .filter(|d| d.weekday() == Weekday::Sun)
        .map(|d| kolkata(d, 20))
        .find(|evening| *evening > t)
        .expect("a Sunday evening within 8 days")
}

fn at(v: &Value) -> DateTime<Utc> {
    serde_json::from_value(v.clone()).expect("a time")
}

/// The delivery times of the customer's orders placed by `recurring`, as a sorted list (a
/// date placed twice would show twice).
async fn placed(app: &TestApp, customer: &str, token: &str, recurring: &str) -> Vec<DateTime<Utc>> {
    let r = app
        .get(&format!("/v1/customers/{customer}/orders?limit=100"), token)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut times: Vec<DateTime<Utc>> = r.body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["recurring_id"] == recurring)
        .map(|o| at(&o["deliver_at"]))
        .collect();
    times.sort();
    times
}

#[actix_web::test]
async fn a_week_with_a_pause_a_skip_and_a_restart_places_each_date_once() {
    let (url, _dir) = crate::helpers::durable_store().await;
    let options = || Options {
        database_url: Some(url.clone()),
        ..Options::default()
    };
    let first = spawn_app_with(options()).await;
    let restaurant = first.restaurant().await;
    let (customer, c) = first.customer().await;
    // Start on a Sunday evening in Kolkata, whatever the wall clock says, so the week always
    // holds the same dates: Monday placed, Wednesday skipped (while paused), Friday placed.
    let started = first.advance(0).await;
    let created_at = first
        .advance((sunday_evening_after(started) - started).num_seconds())
        .await;
    let made = first
        .post("/v1/recurring-orders", &c, body(&restaurant.0))
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let id = made.body["id"].as_str().expect("id").to_owned();
    assert_eq!(made.body["paused"], false);
    // The first date is the first Mon/Wed/Fri lunch at least an hour away.
    let dates: Vec<NaiveDate> = (0..9)
        .map(|i| created_at.with_timezone(&ZONE).date_naive() + Duration::days(i))
        .filter(|d| DAYS.contains(&d.weekday()))
        .collect();
    let first_date = *dates
        .iter()
        .find(|d| lunch(**d) - Duration::hours(1) >= created_at)
        .expect("a date within 9 days");
    assert_eq!(at(&made.body["next_at"]), lunch(first_date));
    // Skip the second scheduled date.
    let skipped = *dates
        .iter()
        .find(|d| **d > first_date)
        .expect("a second date");
    let path = format!("/v1/recurring-orders/{id}");
    let s = first
        .post(&format!("{path}/skip"), &c, json!({"date": skipped}))
        .await;
    assert_eq!(s.status, 200, "{:?}", s.body);
    assert_eq!(s.body["skips"], json!([skipped]));

    // Day 0 to 2 running; paused from day 2 to day 4; then a restart; on to day 7.
    first.advance(2 * 86_400).await;
    let paused_at = first.advance(0).await;
    let p = first.patch(&path, &c, json!({"paused": true})).await;
    assert_eq!((p.status, p.body["paused"].as_bool()), (200, Some(true)));
    assert_eq!(p.body["next_at"], Value::Null);
    first.advance(2 * 86_400).await;
    let moved = (first.advance(0).await - started).num_seconds();
    drop(first);

    let second = spawn_app_with(options()).await;
    // The new process starts at the wall clock: catch up with what the first one moved.
    second.advance(moved).await;
    let resumed_at = second.advance(0).await;
    let r = second.patch(&path, &c, json!({"paused": false})).await;
    assert_eq!((r.status, r.body["paused"].as_bool()), (200, Some(false)));
    let end = created_at + Duration::days(7);
    let left = (end - second.advance(0).await).num_seconds();
    second.advance(left).await;

    let expected: Vec<DateTime<Utc>> = (0..8)
        .map(|i| created_at.with_timezone(&ZONE).date_naive() + Duration::days(i))
        .filter(|d| DAYS.contains(&d.weekday()) && *d != skipped)
        .map(lunch)
        .filter(|t| {
            let place_at = *t - Duration::hours(1);
            (place_at >= created_at && place_at < paused_at)
                || (place_at >= resumed_at && place_at <= end)
        })
        .collect();
    assert_eq!(expected.len(), 2, "Monday and Friday: {expected:?}");
    assert_eq!(placed(&second, &customer, &c, &id).await, expected);
    // Every placed order went through the normal path: a scheduled order for its lunch.
    let record = second.get(&path, &c).await;
    assert_eq!(record.status, 200, "{:?}", record.body);
    let occurrences = record.body["occurrences"].as_array().expect("occurrences");
    let statuses: BTreeSet<(String, String)> = occurrences
        .iter()
        .map(|o| {
            (
                o["date"].as_str().unwrap().to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&(skipped.to_string(), "skipped".to_owned())),
        "{statuses:?}"
    );
    assert_eq!(
        occurrences
            .iter()
            .filter(|o| o["status"] == "placed")
            .count(),
        expected.len()
    );
    // A placed date cannot be skipped after the fact.
    let done = occurrences
        .iter()
        .find(|o| o["status"] == "placed")
        .expect("a placed date");
    let late = second
        .post(&format!("{path}/skip"), &c, json!({"date": done["date"]}))
        .await;
    assert_eq!((late.status, late.code()), (409, "invalid_state"));
}

#[actix_web::test]
async fn an_occurrence_that_cannot_be_placed_is_recorded_and_the_schedule_goes_on() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (customer, c) = app.customer().await;
    let made = app
        .post("/v1/recurring-orders", &c, body(&restaurant.0))
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let id = made.body["id"].as_str().expect("id").to_owned();
    let first_at = at(&made.body["next_at"]);
    let mut ws = app.ws(&c).await;
    // Closed on the first date: the occurrence fails, and the customer hears why.
    let status = format!("/v1/restaurants/{}/status", restaurant.0);
    assert_eq!(
        app.put(&status, &restaurant.1, json!({"open": false}))
            .await
            .status,
        200
    );
    let now = app.advance(0).await;
    app.advance((first_at - now).num_seconds() - 1_800).await;
    let told = ws.until(|m| m["type"] == "recurring.occurrence").await;
    assert_eq!(told["occurrence"]["status"], "failed");
    assert_eq!(told["occurrence"]["error"], "restaurant_closed");
    assert_eq!(told["occurrence"]["recurring_id"], id.as_str());
    // Open again: the next date is placed as usual.
    assert_eq!(
        app.put(&status, &restaurant.1, json!({"open": true}))
            .await
            .status,
        200
    );
    let view = app.get(&format!("/v1/recurring-orders/{id}"), &c).await;
    let next_at = at(&view.body["next_at"]);
    assert!(next_at > first_at, "the schedule moved on: {next_at}");
    let now = app.advance(0).await;
    app.advance((next_at - now).num_seconds() - 1_800).await;
    assert_eq!(placed(&app, &customer, &c, &id).await, vec![next_at]);
    let order = ws
        .until(|m| m["type"] == "order.updated" && m["order"]["recurring_id"] == id.as_str())
        .await;
    assert_eq!(order["order"]["stage"], "scheduled");
}

#[actix_web::test]
async fn recurring_orders_are_their_customers_and_checked() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (customer, c) = app.customer().await;
    let (_, other) = app.customer().await;
    for (bad, field) in [
        (
            json!({"days": [], "time": "13:00", "timezone": "Asia/Kolkata"}),
            "days",
        ),
        (
            json!({"days": ["someday"], "time": "13:00", "timezone": "Asia/Kolkata"}),
            "someday",
        ),
        (
            json!({"days": ["mon"], "time": "1 pm", "timezone": "Asia/Kolkata"}),
            "time",
        ),
    ] {
        let mut b = body(&restaurant.0);
        b["schedule"] = bad;
        let r = app.post("/v1/recurring-orders", &c, b).await;
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{field}");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{:?}",
            r.body
        );
    }
    // Well-formed, but no such zone: 422.
    let mut b = body(&restaurant.0);
    b["schedule"]["timezone"] = json!("Asia/Atlantis");
    let r = app.post("/v1/recurring-orders", &c, b).await;
    assert_eq!((r.status, r.code()), (422, "invalid_schedule"));
    let mut far = body(&restaurant.0);
    far["delivery"]["location"] = south(6_000.0);
    let r = app.post("/v1/recurring-orders", &c, far).await;
    assert_eq!((r.status, r.code()), (422, "out_of_radius"));
    let made = app
        .post("/v1/recurring-orders", &c, body(&restaurant.0))
        .await;
    let id = made.body["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/recurring-orders/{id}");
    // Someone else's: not readable, not changeable.
    assert_eq!(app.get(&path, &other).await.status, 403);
    assert_eq!(
        app.patch(&path, &other, json!({"paused": true}))
            .await
            .status,
        403
    );
    assert_eq!(app.raw("DELETE", &path, &other, "").await.status, 403);
    let mine = app
        .get(&format!("/v1/customers/{customer}/recurring-orders"), &c)
        .await;
    assert_eq!(mine.body["recurring_orders"][0]["id"], id.as_str());
    let yesterday = (app.advance(0).await - Duration::days(1))
        .with_timezone(&ZONE)
        .date_naive();
    let r = app
        .post(&format!("{path}/skip"), &c, json!({"date": yesterday}))
        .await;
    assert_eq!((r.status, r.code()), (409, "invalid_state"));
    // A body that changes nothing changes nothing.
    let r = app.patch(&path, &c, json!({})).await;
    assert_eq!((r.status, &r.body["version"]), (200, &made.body["version"]));
    // Rescheduled to Sundays at 08:30.
    let r = app
        .patch(
            &path,
            &c,
            json!({"schedule": {"days": ["sun"], "time": "08:30", "timezone": "Asia/Kolkata"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let next = at(&r.body["next_at"]).with_timezone(&ZONE);
    assert_eq!(
        (next.weekday(), next.format("%H:%M").to_string()),
        (Weekday::Sun, "08:30".into())
    );
    // Deleted: gone, and never placed.
    assert_eq!(app.raw("DELETE", &path, &c, "").await.status, 204);
    assert_eq!(app.get(&path, &c).await.status, 404);
    app.advance(8 * 86_400).await;
    assert!(placed(&app, &customer, &c, &id).await.is_empty());
    assert_eq!(
        app.get(&format!("/v1/customers/{customer}/recurring-orders"), &c)
            .await
            .body["recurring_orders"],
        json!([])
    );
}

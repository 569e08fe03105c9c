//! Money through the API against the fake gateways: authorisation at placement, capture and
//! split on delivery, refunds by tier, declines, outages, fallback, unknown outcomes, payouts
//! and reconciliation. The ledger's trial balance is checked after every flow.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, north, south, spawn_app};

async fn switch(app: &TestApp, vendor: &str, mode: &str) {
    let url = format!("{}/_control/{vendor}", app.vendors);
    let res = reqwest::Client::new()
        .put(url)
        .json(&json!({"mode": mode, "delay_ms": 0}))
        .send()
        .await
        .expect("fake vendors answer");
    assert!(res.status().is_success());
}

async fn records(app: &TestApp, vendor: &str) -> Vec<Value> {
    let url = format!("{}/_records/{vendor}", app.vendors);
    let v: Value = reqwest::get(url)
        .await
        .expect("records")
        .json()
        .await
        .expect("json");
    v["records"].as_array().cloned().unwrap_or_default()
}

async fn payment(app: &TestApp, order: &str) -> Value {
    let r = app
        .get(&format!("/v1/orders/{order}/payment"), &app.ops)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn balanced(app: &TestApp) -> Value {
    let r = app.get("/v1/ops/ledger/trial-balance", &app.ops).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total_cents"], 0, "{:?}", r.body);
    for a in r.body["accounts"].as_array().unwrap() {
        if a["account"] != "outside" {
            assert!(a["balance_cents"].as_i64().unwrap() >= 0, "{a}");
        }
    }
    r.body
}

fn balance(tb: &Value, account: &str) -> i64 {
    tb["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == account)
        .map_or(0, |a| a["balance_cents"].as_i64().unwrap())
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..150 {
        if check().await {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Places, accepts, assigns, picks up and delivers; the order id and rider id.
async fn delivered(
    app: &TestApp,
    customer: &str,
    restaurant: &(String, String),
    body: Value,
) -> (String, String) {
    let (rider, rt) = app.available_rider_at(north(200.0)).await;
    let r = app.post("/v1/orders", customer, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.accept(restaurant, &order).await.status, 200);
    let a = app
        .post(
            &format!("/v1/riders/{rider}/offers/{order}/accept"),
            &rt,
            json!({}),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    for step in ["pickup", "deliver"] {
        let s = app
            .post(&format!("/v1/orders/{order}/{step}"), &rt, json!({}))
            .await;
        assert_eq!(s.status, 200, "{:?}", s.body);
    }
    (order, rider)
}

#[actix_web::test]
async fn a_card_order_is_authorised_captured_split_and_paid_out() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let body = app.order_body(&restaurant.0, south(1_000.0));
    let (order, rider) = delivered(&app, &c, &restaurant, body).await;
    let total = 22_000;
    eventually("the capture confirmed", async || {
        payment(&app, &order).await["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "capture" && e["status"] == "succeeded")
    })
    .await;
    // The payment events are on the log (ops' socket replays them from the start).
    let mut ops = app.ws_since(&app.ops, 0).await;
    let settled = ops
        .until(|m| m["type"] == "payment.settled" && m["op"]["kind"] == "capture")
        .await;
    assert_eq!(settled["op"]["status"], "succeeded");
    let p = payment(&app, &order).await;
    assert_eq!(
        (p["status"].as_str(), p["amount_cents"].as_i64()),
        (Some("captured"), Some(total))
    );
    assert_eq!(p["method"], "card");
    assert_eq!(p["events"][0]["kind"], "authorize");
    let tb = balanced(&app).await;
    // 20 % commission, of which the rider's 30 rupees.
    assert_eq!(
        balance(&tb, &format!("restaurant:{}", restaurant.0)),
        17_600
    );
    assert_eq!(balance(&tb, &format!("rider:{rider}")), 3_000);
    assert_eq!(balance(&tb, "platform"), 1_400);
    let earnings = app
        .get(&format!("/v1/riders/{rider}/earnings"), &app.ops)
        .await;
    assert_eq!(earnings.body["deliveries"], 1);
    assert_eq!(earnings.body["pending_cents"], 3_000);
    // A day later the period has ended: the restaurant and the rider are paid, once.
    app.advance(86_400).await;
    let run = app.post("/v1/ops/payouts/run", &app.ops, json!({})).await;
    assert_eq!(run.status, 200, "{:?}", run.body);
    assert_eq!(run.body["payouts"].as_array().unwrap().len(), 2);
    let again = app.post("/v1/ops/payouts/run", &app.ops, json!({})).await;
    assert_eq!(again.body["payouts"].as_array().unwrap().len(), 0);
    let payouts = app
        .get(
            &format!("/v1/restaurants/{}/payouts", restaurant.0),
            &restaurant.1,
        )
        .await;
    assert_eq!(payouts.body["pending_cents"], 0, "{:?}", payouts.body);
    let p0 = &payouts.body["payouts"][0];
    assert_eq!(
        (
            p0["gross_cents"].as_i64(),
            p0["commission_cents"].as_i64(),
            p0["net_cents"].as_i64()
        ),
        (Some(total), Some(4_400), Some(17_600))
    );
    assert_eq!(p0["status"], "paid");
    let earnings = app
        .get(&format!("/v1/riders/{rider}/earnings"), &app.ops)
        .await;
    assert_eq!(
        (
            earnings.body["paid_cents"].as_i64(),
            earnings.body["pending_cents"].as_i64()
        ),
        (Some(3_000), Some(0))
    );
    balanced(&app).await;
    let rec = app.get("/v1/ops/reconciliation", &app.ops).await;
    assert_eq!(rec.status, 200);
    assert!(rec.body["checked"].as_u64().unwrap() >= 4, "{:?}", rec.body);
    assert_eq!(rec.body["mismatches"], json!([]), "{:?}", rec.body);
}

#[actix_web::test]
async fn cancellations_refund_by_tier_and_rejections_in_full() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (cid, c) = app.customer().await;
    let order = app.place(&c, &restaurant.0).await;
    let r = app
        .post(&format!("/v1/orders/{order}/cancel"), &c, json!({}))
        .await;
    assert_eq!(r.body["refund"]["amount_cents"], 15_400);
    eventually("the refund confirmed", async || {
        payment(&app, &order).await["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "refund" && e["status"] == "succeeded")
    })
    .await;
    let p = payment(&app, &order).await;
    assert_eq!(
        (p["status"].as_str(), p["refunded_cents"].as_i64()),
        (Some("partially_refunded"), Some(15_400))
    );
    let refunds: Vec<Value> = records(&app, "paycore")
        .await
        .into_iter()
        .filter(|r| r["kind"] == "refund")
        .collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 15_400);

    let rejected = app.place(&c, &restaurant.0).await;
    let r = app
        .post(
            &format!("/v1/restaurants/{}/orders/{rejected}/reject", restaurant.0),
            &restaurant.1,
            json!({"reason": "closed"}),
        )
        .await;
    assert_eq!(r.status, 200);
    eventually("the full refund", async || {
        payment(&app, &rejected).await["status"] == "refunded"
    })
    .await;
    let tb = balanced(&app).await;
    assert_eq!(balance(&tb, &format!("customer:{cid}")), 0);
    assert_eq!(balance(&tb, "platform"), 22_000 - 15_400);
}

#[actix_web::test]
async fn a_decline_is_402_and_leaves_no_order_and_no_money() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (cid, c) = app.customer().await;
    let mut body = app.order_body(&r, south(500.0));
    body["payment"] = json!({"method": "card", "token": "tok_decline"});
    let res = app.post("/v1/orders", &c, body).await;
    assert_eq!((res.status, res.code()), (402, "payment_declined"));
    let history = app.get(&format!("/v1/customers/{cid}/orders"), &c).await;
    assert_eq!(history.body["orders"], json!([]));
    let tb = balanced(&app).await;
    assert_eq!(tb["accounts"], json!([]));
    // Reconciled: the late authorisation is voided there and recorded voided here.
    let rec = app.get("/v1/ops/reconciliation", &app.ops).await;
    assert_eq!(rec.body["mismatches"], json!([]), "{:?}", rec.body);
}

#[actix_web::test]
async fn gateways_fail_over_break_and_recover_and_cash_still_works() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, c) = app.customer().await;
    // The first gateway fails: the second takes the payment.
    switch(&app, "paycore", "fail").await;
    let placed = app
        .post("/v1/orders", &c, app.order_body(&r, south(500.0)))
        .await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    let p = payment(&app, placed.body["id"].as_str().unwrap()).await;
    assert_eq!(p["gateway"], "razorpe");
    // Both down: online payments are refused, nothing charged; cash still works.
    switch(&app, "razorpe", "fail").await;
    for _ in 0..3 {
        let res = app
            .post("/v1/orders", &c, app.order_body(&r, south(500.0)))
            .await;
        assert_eq!((res.status, res.code()), (503, "payment_unavailable"));
    }
    let metrics = app.call("GET", "/metrics", None, None).await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("dabba_gateway_breaker_open{gateway=\"paycore\"} 1")
    );
    let mut cash = app.order_body(&r, south(500.0));
    cash["payment"] = json!({"method": "cash"});
    let res = app.post("/v1/orders", &c, cash).await;
    assert_eq!(res.status, 201, "{:?}", res.body);
    assert_eq!(
        payment(&app, res.body["id"].as_str().unwrap()).await["status"],
        "cash_due"
    );
    // The gateways come back: after the breakers' cool-off, payments flow, no restart.
    switch(&app, "paycore", "ok").await;
    switch(&app, "razorpe", "ok").await;
    actix_web::rt::time::sleep(Duration::from_millis(1_200)).await;
    let res = app
        .post("/v1/orders", &c, app.order_body(&r, south(500.0)))
        .await;
    assert_eq!(res.status, 201, "{:?}", res.body);
    let metrics = app.call("GET", "/metrics", None, None).await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("dabba_gateway_breaker_open{gateway=\"paycore\"} 0")
    );
    balanced(&app).await;
}

#[actix_web::test]
async fn a_stalled_authorisation_is_503_and_its_late_success_is_voided() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (cid, c) = app.customer().await;
    let mut body = app.order_body(&r, south(500.0));
    body["payment"] = json!({"token": "tok_timeout"});
    let res = app.post("/v1/orders", &c, body).await;
    assert_eq!((res.status, res.code()), (503, "payment_unavailable"));
    assert!(res.retry_after.is_some());
    let history = app.get(&format!("/v1/customers/{cid}/orders"), &c).await;
    assert_eq!(history.body["orders"], json!([]));
    // The gateway approves it late; the resolver finds it and releases it.
    eventually("the late authorisation voided", async || {
        records(&app, "paycore")
            .await
            .iter()
            .any(|r| r["kind"] == "authorize" && r["status"] == "voided")
    })
    .await;
    let tb = balanced(&app).await;
    assert_eq!(tb["accounts"], json!([]));
    // Reconciled: the late authorisation is voided there and recorded voided here.
    let rec = app.get("/v1/ops/reconciliation", &app.ops).await;
    assert_eq!(rec.body["mismatches"], json!([]), "{:?}", rec.body);
}

#[actix_web::test]
async fn a_refund_the_gateway_keeps_failing_is_visible_then_replayed_once() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let order = app.place(&c, &restaurant.0).await;
    switch(&app, "paycore", "fail").await;
    let r = app
        .post(&format!("/v1/orders/{order}/cancel"), &c, json!({}))
        .await;
    assert_eq!(r.status, 200);
    // Retried, then marked failed for ops and parked as dead letters.
    eventually("the refund marked failed", async || {
        payment(&app, &order).await["status"] == "failed"
    })
    .await;
    let letters = async || {
        app.get("/v1/ops/dead-letters", &app.ops).await.body["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["consumer"] == "payments")
            .cloned()
            .collect::<Vec<Value>>()
    };
    eventually("both operations parked", async || {
        letters().await.len() == 2
    })
    .await;
    assert!(
        records(&app, "paycore")
            .await
            .iter()
            .all(|r| r["kind"] == "authorize")
    );
    // The gateway recovers; ops replay: the capture and the refund land once each.
    switch(&app, "paycore", "ok").await;
    actix_web::rt::time::sleep(Duration::from_millis(1_200)).await;
    for letter in letters().await {
        let id = letter["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/v1/ops/dead-letters/{id}/replay"),
                &app.ops,
                json!({}),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
    eventually("the refund after the replay", async || {
        payment(&app, &order).await["status"] == "partially_refunded"
    })
    .await;
    let kinds: Vec<String> = records(&app, "paycore")
        .await
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "refund").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "capture").count(),
        1,
        "{kinds:?}"
    );
    let tb = balanced(&app).await;
    assert_eq!(balance(&tb, "gateway:paycore"), 0);
}

#[actix_web::test]
async fn a_cash_order_splits_what_the_rider_collected() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let mut body = app.order_body(&restaurant.0, south(800.0));
    body["payment"] = json!({"method": "cash"});
    let (order, rider) = delivered(&app, &c, &restaurant, body).await;
    let p = payment(&app, &order).await;
    assert_eq!(
        (p["status"].as_str(), p["method"].as_str()),
        (Some("cash_due"), Some("cash"))
    );
    assert_eq!(p["events"], json!([]), "no gateway is involved");
    let e = app
        .get(&format!("/v1/riders/{rider}/earnings"), &app.ops)
        .await;
    assert_eq!(e.body["cash_collected_cents"], 22_000);
    assert_eq!(e.body["earned_cents"], 3_000);
    let tb = balanced(&app).await;
    assert_eq!(
        balance(&tb, &format!("restaurant:{}", restaurant.0)),
        17_600
    );
    assert!(records(&app, "paycore").await.is_empty());
}

#[actix_web::test]
async fn payouts_fall_back_to_the_next_gateway_and_reconcile() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let body = app.order_body(&restaurant.0, south(1_000.0));
    let (_, rider) = delivered(&app, &c, &restaurant, body).await;
    switch(&app, "paycore", "fail").await;
    app.advance(86_400).await;
    let run = app.post("/v1/ops/payouts/run", &app.ops, json!({})).await;
    assert_eq!(run.status, 200, "{:?}", run.body);
    assert!(
        run.body["payouts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "paid")
    );
    let transfers: Vec<Value> = records(&app, "razorpe")
        .await
        .into_iter()
        .filter(|r| r["kind"] == "transfer")
        .collect();
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    let e = app
        .get(&format!("/v1/riders/{rider}/earnings"), &app.ops)
        .await;
    assert_eq!(e.body["paid_cents"], 3_000);
    let tb = balanced(&app).await;
    assert_eq!(balance(&tb, "gateway:razorpe"), 0);
    switch(&app, "paycore", "ok").await;
    eventually("the capture settles once paycore is back", async || {
        app.get("/v1/ops/reconciliation", &app.ops).await.body["mismatches"] == json!([])
    })
    .await;
}

#[actix_web::test]
async fn a_repeated_placement_is_authorised_once() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, c) = app.customer().await;
    let body = app.order_body(&r, south(500.0));
    let mut ids = vec![];
    for _ in 0..2 {
        let res = app
            .client
            .call_with(
                "POST",
                "/v1/orders",
                Some(&c),
                Some(&body),
                &[("Idempotency-Key", "pay-once")],
            )
            .await
            .expect("request");
        assert!(res.ok(), "{:?}", res.body);
        ids.push(res.body["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let auths: Vec<Value> = records(&app, "paycore")
        .await
        .into_iter()
        .filter(|r| r["kind"] == "authorize")
        .collect();
    assert_eq!(auths.len(), 1, "{auths:?}");
    assert_eq!(auths[0]["calls"], 1);
}

//! `kill -9` while a capture or a refund is on its way to the gateway, then a restart on the
//! same database: exactly one capture / refund at the gateway and in the ledger.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{menu, north, south};
use crate::process::{Server, Setup, ops_token, start_with, token};
use dabba::api::auth::Role;

struct Vendors {
    base: String,
}

impl Vendors {
    fn start() -> Self {
        let (addr, server) = dabba::vendors::FakeVendors::default()
            .serve("127.0.0.1:0")
            .expect("fake vendors bind");
        actix_web::rt::spawn(server);
        Self {
            base: format!("http://{addr}"),
        }
    }

    async fn switch(&self, mode: &str, delay_ms: u64) {
        let res = reqwest::Client::new()
            .put(format!("{}/_control/paycore", self.base))
            .json(&json!({"mode": mode, "delay_ms": delay_ms}))
            .send()
            .await
            .expect("control");
        assert!(res.status().is_success());
    }

    async fn records(&self, kind: &str) -> Vec<Value> {
        let v: Value = reqwest::get(format!("{}/_records/paycore", self.base))
            .await
            .expect("records")
            .json()
            .await
            .expect("json");
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect()
    }
}

async fn serve(setup: &Setup, run: &str, vendors: &Vendors) -> Server {
    let spec = dabba::payments::fake_spec(&vendors.base);
    start_with(setup, run, |cmd| {
        cmd.env("DABBA_GATEWAYS", &spec)
            // Long enough that the stalled call is in flight when the process dies.
            .env("DABBA_GATEWAY_TIMEOUT_MS", "10000");
    })
    .await
}

async fn ok(s: &Server, method: &str, path: &str, tok: &str, body: Value) -> Value {
    let r = s
        .client
        .call(method, path, Some(tok), Some(&body))
        .await
        .expect("request");
    assert!(r.ok(), "{method} {path}: {} {}", r.status, r.body);
    r.body
}

async fn get(s: &Server, path: &str, tok: &str) -> Value {
    let r = s
        .client
        .call("GET", path, Some(tok), None)
        .await
        .expect("request");
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn balance(tb: &Value, account: &str) -> i64 {
    tb["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == account)
        .map_or(0, |a| a["balance_cents"].as_i64().unwrap())
}

/// An order placed, accepted and picked up by a rider; (order, restaurant, rider token).
async fn picked_up(s: &Server, ops: &str) -> (String, String, String) {
    let r = ok(
        s,
        "POST",
        "/v1/restaurants",
        ops,
        json!({"name": "R", "location": north(0.0)}),
    )
    .await;
    let rid = r["id"].as_str().unwrap().to_owned();
    ok(
        s,
        "PUT",
        &format!("/v1/restaurants/{rid}/menu"),
        ops,
        menu(),
    )
    .await;
    let c = ok(
        s,
        "POST",
        "/v1/customers",
        ops,
        json!({"name": "C", "phone": "+91 1", "email": "c@d.in"}),
    )
    .await;
    let ct = token(Role::Customer, c["id"].as_str().unwrap());
    let d = ok(s, "POST", "/v1/riders", ops, json!({"name": "D"})).await;
    let did = d["id"].as_str().unwrap().to_owned();
    let dt = token(Role::Rider, &did);
    ok(
        s,
        "PUT",
        &format!("/v1/riders/{did}/location"),
        &dt,
        north(100.0),
    )
    .await;
    ok(
        s,
        "PUT",
        &format!("/v1/riders/{did}/status"),
        &dt,
        json!({"status": "available"}),
    )
    .await;
    let body = json!({"restaurant_id": rid, "items": crate::helpers::idli(2),
                      "delivery": {"location": south(800.0), "address": "5 MG Road"}});
    let order = ok(s, "POST", "/v1/orders", &ct, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rt = token(Role::Restaurant, &rid);
    ok(
        s,
        "POST",
        &format!("/v1/restaurants/{rid}/orders/{order}/accept"),
        &rt,
        json!({}),
    )
    .await;
    ok(
        s,
        "POST",
        &format!("/v1/riders/{did}/offers/{order}/accept"),
        &dt,
        json!({}),
    )
    .await;
    ok(
        s,
        "POST",
        &format!("/v1/orders/{order}/pickup"),
        &dt,
        json!({}),
    )
    .await;
    (order, rid, dt)
}

#[actix_web::test]
async fn kill_9_during_a_capture_captures_once() {
    let setup = Setup::fresh("capture-crash").await;
    let vendors = Vendors::start();
    let ops = ops_token();
    let mut first = serve(&setup, "first", &vendors).await;
    let (order, restaurant, rider) = picked_up(&first, &ops).await;
    // The capture stalls at the gateway; the server dies while it waits.
    vendors.switch("stall", 3_000).await;
    ok(
        &first,
        "POST",
        &format!("/v1/orders/{order}/deliver"),
        &rider,
        json!({}),
    )
    .await;
    eventually("the capture in flight", async || {
        !vendors.records("capture").await.is_empty()
    })
    .await;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    vendors.switch("ok", 0).await;

    let second = serve(&setup, "second", &vendors).await;
    eventually("the capture confirmed after the restart", async || {
        get(&second, &format!("/v1/orders/{order}/payment"), &ops).await["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "capture" && e["status"] == "succeeded")
    })
    .await;
    let captures = vendors.records("capture").await;
    assert_eq!(captures.len(), 1, "{captures:?}");
    assert_eq!(captures[0]["amount"], 10_000);
    assert!(
        captures[0]["calls"].as_u64().unwrap() >= 2,
        "the restart resent it: {captures:?}"
    );
    let tb = get(&second, "/v1/ops/ledger/trial-balance", &ops).await;
    assert_eq!(tb["total_cents"], 0);
    assert_eq!(
        balance(&tb, &format!("restaurant:{restaurant}")),
        8_000,
        "split once"
    );
    let payment = get(&second, &format!("/v1/orders/{order}/payment"), &ops).await;
    assert_eq!(payment["status"], "captured");
}

#[actix_web::test]
async fn kill_9_during_a_refund_refunds_once() {
    let setup = Setup::fresh("refund-crash").await;
    let vendors = Vendors::start();
    let ops = ops_token();
    let mut first = serve(&setup, "first", &vendors).await;
    let (order, _, _) = picked_up(&first, &ops).await;
    let customer = get(&first, &format!("/v1/orders/{order}"), &ops).await["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ct = token(Role::Customer, &customer);
    vendors.switch("stall", 3_000).await;
    let cancelled = ok(
        &first,
        "POST",
        &format!("/v1/orders/{order}/cancel"),
        &ct,
        json!({}),
    )
    .await;
    assert_eq!(cancelled["refund"]["amount_cents"], 7_000);
    // The capture of the total goes first, then the refund of 70 %.
    eventually("the refund in flight", async || {
        !vendors.records("refund").await.is_empty()
    })
    .await;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    vendors.switch("ok", 0).await;

    let second = serve(&setup, "second", &vendors).await;
    eventually("the refund confirmed after the restart", async || {
        get(&second, &format!("/v1/orders/{order}/payment"), &ops).await["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "refund" && e["status"] == "succeeded")
    })
    .await;
    let refunds = vendors.records("refund").await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], 7_000);
    let tb = get(&second, "/v1/ops/ledger/trial-balance", &ops).await;
    assert_eq!(tb["total_cents"], 0);
    assert_eq!(
        balance(&tb, "gateway:paycore"),
        0,
        "the refund settled once"
    );
    assert_eq!(balance(&tb, &format!("customer:{customer}")), 0);
    assert_eq!(balance(&tb, "outside"), -10_000 + 7_000);
    let payment = get(&second, &format!("/v1/orders/{order}/payment"), &ops).await;
    assert_eq!(payment["status"], "partially_refunded");
}

/// `dabba fake-vendors` as its own process, and a server pointed at it over loopback.
#[actix_web::test]
async fn a_server_pays_through_the_fake_vendors_subcommand() {
    let setup = Setup::fresh("fake-vendors").await;
    let port = crate::process::free_port();
    let mut vendors = std::process::Command::new(env!("CARGO_BIN_EXE_dabba"))
        .args(["fake-vendors", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fake vendors start");
    let base = format!("http://127.0.0.1:{port}");
    let vendors_up = Vendors { base: base.clone() };
    eventually("the fake vendors listen", async || {
        reqwest::get(format!("{base}/_records/paycore"))
            .await
            .is_ok()
    })
    .await;
    let ops = ops_token();
    let server = serve(&setup, "only", &vendors_up).await;
    let r = ok(
        &server,
        "POST",
        "/v1/restaurants",
        &ops,
        json!({"name": "R", "location": north(0.0)}),
    )
    .await;
    let rid = r["id"].as_str().unwrap().to_owned();
    ok(
        &server,
        "PUT",
        &format!("/v1/restaurants/{rid}/menu"),
        &ops,
        menu(),
    )
    .await;
    let c = ok(
        &server,
        "POST",
        "/v1/customers",
        &ops,
        json!({"name": "C", "phone": "+91 1", "email": "c@d.in"}),
    )
    .await;
    let ct = token(Role::Customer, c["id"].as_str().unwrap());
    let body = |tok: &str| {
        json!({"restaurant_id": rid, "items": crate::helpers::idli(1), "payment": {"method": "upi", "token": tok},
               "delivery": {"location": south(300.0), "address": "1 MG Road"}})
    };
    let declined = server
        .client
        .call("POST", "/v1/orders", Some(&ct), Some(&body("tok_decline")))
        .await
        .unwrap();
    assert_eq!(
        (declined.status, declined.body["error"]["code"].as_str()),
        (402, Some("payment_declined"))
    );
    ok(&server, "POST", "/v1/orders", &ct, body("tok_visa")).await;
    let auths = vendors_up.records("authorize").await;
    assert_eq!(auths.len(), 2);
    assert_eq!(
        auths.iter().filter(|a| a["status"] == "approved").count(),
        1
    );
    let _ = vendors.kill();
    let _ = vendors.wait();
}

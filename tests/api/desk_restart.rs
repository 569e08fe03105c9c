//! A restaurant's desk survives a restart: an order waiting for its answer when the process
//! died still times out on time after the restart.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{menu, north, south};
use crate::process::{Server, Setup, ops_token, start_with, token};
use dabba::api::auth::Role;

async fn serve(setup: &Setup, run: &str) -> Server {
    start_with(setup, run, |cmd| {
        cmd.env("DABBA_RESTAURANT_TIMEOUT_SECS", "3");
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

#[actix_web::test]
async fn an_order_waiting_when_the_process_died_still_times_out() {
    let setup = Setup::fresh("desk-restart").await;
    let ops = ops_token();
    let mut first = serve(&setup, "first").await;
    let r = ok(
        &first,
        "POST",
        "/v1/restaurants",
        &ops,
        json!({"name": "R", "location": north(0.0)}),
    )
    .await;
    let rid = r["id"].as_str().unwrap().to_owned();
    ok(
        &first,
        "PUT",
        &format!("/v1/restaurants/{rid}/menu"),
        &ops,
        menu(),
    )
    .await;
    let c = ok(
        &first,
        "POST",
        "/v1/customers",
        &ops,
        json!({"name": "C", "phone": "+91 1", "email": "c@d.in"}),
    )
    .await;
    let ct = token(Role::Customer, c["id"].as_str().unwrap());
    let body = json!({"restaurant_id": rid, "items": crate::helpers::idli(1),
                      "delivery": {"location": south(300.0), "address": "1 MG Road"}});
    let order = ok(&first, "POST", "/v1/orders", &ct, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();

    let second = serve(&setup, "second").await;
    let path = format!("/v1/orders/{order}");
    for _ in 0..100 {
        let o = ok(&second, "GET", &path, &ops, Value::Null).await;
        if o["stage"] == "rejected_by_restaurant" {
            assert_eq!(o["reject_reason"], "restaurant_timeout");
            assert_eq!(o["refund"]["percent"], 100);
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the recovered order never timed out");
}

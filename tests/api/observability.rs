//! What operators read: JSON log lines that parse one by one and carry the request's id, the
//! id echoed to the caller, and per-route request metrics.

use serde_json::{Value, json};

use crate::helpers::{menu, north, south, spawn_app};
use crate::process::{Setup, ops_token, start_with, token};
use dabba::api::auth::Role;

#[actix_web::test]
async fn json_logs_parse_line_by_line_and_carry_the_request_id() {
    let setup = Setup::fresh("json-logs").await;
    let server = start_with(&setup, "json", |cmd| {
        cmd.env("DABBA_LOG_FORMAT", "json");
    })
    .await;
    let c = &server.client;
    let ops = ops_token();
    let call = async |method: &str, path: &str, tok: &str, body: Value, id: &str| {
        let r = c
            .call_with(
                method,
                path,
                Some(tok),
                Some(&body),
                &[("X-Request-Id", id)],
            )
            .await
            .expect("request");
        assert!(r.ok(), "{method} {path}: {} {}", r.status, r.body);
        r
    };
    let r = call(
        "POST",
        "/v1/restaurants",
        &ops,
        json!({"name": "R", "location": north(0.0)}),
        "setup-1",
    )
    .await;
    let rid = r.body["id"].as_str().unwrap().to_owned();
    call(
        "PUT",
        &format!("/v1/restaurants/{rid}/menu"),
        &ops,
        menu(),
        "setup-2",
    )
    .await;
    let cust = call(
        "POST",
        "/v1/customers",
        &ops,
        json!({"name": "C", "phone": "+91 1", "email": "c@d.in"}),
        "setup-3",
    )
    .await;
    let ct = token(Role::Customer, cust.body["id"].as_str().unwrap());
    let body = json!({"restaurant_id": rid, "items": crate::helpers::idli(1),
                      "delivery": {"location": south(500.0), "address": "a"}});
    let placed = call("POST", "/v1/orders", &ct, body, "place-7f3a").await;
    assert_eq!(
        placed.request_id.as_deref(),
        Some("place-7f3a"),
        "the id is echoed"
    );
    let order_id = placed.body["id"].as_str().unwrap().to_owned();
    // No id, or one unfit for a log line: the server makes one.
    let fresh = c
        .call("GET", "/healthz", None, None)
        .await
        .expect("healthz");
    assert_eq!(fresh.request_id.as_ref().map(String::len), Some(32));
    let odd = c
        .call_with("GET", "/healthz", None, None, &[("X-Request-Id", "a b\"c")])
        .await
        .expect("healthz");
    assert_ne!(odd.request_id.as_deref(), Some("a b\"c"));

    let log = std::fs::read_to_string(&server.log).expect("the server's log");
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "the server logged: {log}");
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    let placed_line = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "place-7f3a" && l["order_id"] == order_id.as_str())
        .unwrap_or_else(|| panic!("no line of the placement with its order id in {log}"));
    assert_eq!(placed_line["restaurant_id"], rid.as_str());
}

#[actix_web::test]
async fn requests_are_counted_and_timed_by_route_method_and_status() {
    let app = spawn_app().await;
    let (_, c) = app.customer().await;
    let missing = format!("/v1/orders/{}", uuid::Uuid::new_v4());
    assert_eq!(app.get(&missing, &c).await.status, 404);
    let metrics = app.get("/metrics", &app.ops).await;
    let text = metrics.body.as_str().map(str::to_owned).unwrap_or_default();
    let counted = text.lines().any(|l| {
        l.starts_with("dabba_http_requests_total{")
            && l.contains("route=\"/v1/orders/{id}\"")
            && l.contains("method=\"GET\"")
            && l.contains("status=\"404\"")
    });
    assert!(counted, "no per-route count in {text}");
    let timed = text.lines().any(|l| {
        l.starts_with("dabba_http_request_duration_seconds_bucket{")
            && l.contains("route=\"/v1/orders/{id}\"")
            && l.contains("le=\"0.005\"")
    });
    assert!(timed, "no per-route latency histogram in {text}");
}

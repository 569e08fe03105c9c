//! The contract's edges: methods a path lacks, bodies that are not JSON, odd query values,
//! dev routes absent from the document when off, malformed requests counted, not logged loud.

use tokio::io::AsyncWriteExt;

use crate::helpers::{Options, spawn_app, spawn_app_with};
use crate::raw;

#[actix_web::test]
async fn a_method_the_path_lacks_is_405_with_allow() {
    let app = spawn_app().await;
    for (method, path) in [
        ("TRACE", "/v1/orders"),
        ("DELETE", "/v1/orders/7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        ("PUT", "/healthz"),
    ] {
        let r = app.call(method, path, Some(&app.ops), None).await;
        assert_eq!(
            (r.status, r.code()),
            (405, "method_not_allowed"),
            "{method} {path}"
        );
    }
    let r = app.call("GET", "/v1/nowhere", Some(&app.ops), None).await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_415_and_odd_query_values_400() {
    let app = spawn_app().await;
    let r = app
        .client
        .call_with("POST", "/v1/riders", Some(&app.ops), None, &[])
        .await
        .unwrap();
    assert_eq!(r.status, 400, "an empty body is not a rider");
    let mut stream = raw::connect(app.client.base(), false).await;
    let form = format!(
        "POST /v1/riders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\n{{\"name\":\"x\"}}",
        app.ops
    );
    stream.write_all(form.as_bytes()).await.unwrap();
    let head = raw::read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 415"), "{head}");
    let (id, customer) = app.customer().await;
    let r = app
        .get(&format!("/v1/customers/{id}/orders?limit=true"), &customer)
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
}

#[actix_web::test]
async fn dev_routes_are_documented_only_when_on() {
    let off = spawn_app_with(Options {
        test_clock: false,
        faults: false,
        ..Options::default()
    })
    .await;
    let doc = off.call("GET", "/openapi.json", None, None).await;
    assert!(doc.body["paths"].get("/v1/test/clock").is_none());
    assert!(doc.body["paths"].get("/v1/ops/faults").is_none());
    assert!(
        doc.body["paths"]["/v1/orders"]["post"]["responses"]
            .get("401")
            .is_some()
    );
    let on = spawn_app().await;
    let doc = on.call("GET", "/openapi.json", None, None).await;
    assert!(doc.body["paths"].get("/v1/test/clock").is_some());
}

#[actix_web::test]
async fn malformed_requests_are_counted_not_logged_as_errors() {
    let setup = crate::process::Setup::fresh("malformed").await;
    let server = crate::process::start(&setup, "malformed").await;
    for _ in 0..5 {
        let mut stream = raw::connect(server.client.base(), false).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n")
            .await
            .unwrap();
        let head = raw::read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    }
    let ops = crate::process::ops_token();
    let counted = server
        .client
        .metric(&ops, "dabba_http_malformed_total")
        .await;
    assert!(counted.is_some_and(|n| n >= 5.0), "{counted:?}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        !log.contains("ERROR"),
        "malformed requests flooded the log: {log}"
    );
}

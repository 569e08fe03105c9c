//! Menus: the restaurant owns its prices and the server prices every order from them.

use serde_json::json;

use crate::helpers::{COFFEE, DOSA, IDLI, north, south, spawn_app};

#[actix_web::test]
async fn the_server_prices_orders_from_the_menu() {
    let app = spawn_app().await;
    let (r, rt) = app.restaurant().await;
    let (_, c) = app.customer().await;
    let menu = app.get(&format!("/v1/restaurants/{r}/menu"), &c).await;
    assert_eq!(menu.status, 200);
    assert_eq!(menu.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(menu.body["items"][0]["price_cents"], 9000);

    let placed = app
        .post("/v1/orders", &c, app.order_body(&r, south(1_000.0)))
        .await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    assert_eq!(placed.body["total_cents"], 2 * 9000 + 4000);
    assert_eq!(placed.body["items"][0]["name"], "Masala dosa");
    assert_eq!(placed.body["items"][0]["unit_price_cents"], 9000);
    assert_eq!(placed.body["items"][0]["item_id"], DOSA);

    // The restaurant raises the dosa's price: new orders pay it, the old one keeps its own.
    let raised = app
        .put(
            &format!("/v1/restaurants/{r}/menu"),
            &rt,
            json!({"items": [
                {"id": DOSA, "name": "Masala dosa", "price_cents": 9500, "available": true},
                {"id": COFFEE, "name": "Filter coffee", "price_cents": 4000, "available": false}
            ]}),
        )
        .await;
    assert_eq!(raised.status, 200, "{:?}", raised.body);
    assert_eq!(raised.body["items"][0]["id"], DOSA);
    let again = app
        .post(
            "/v1/orders",
            &c,
            json!({"restaurant_id": r, "items": [{"item_id": DOSA, "quantity": 1}],
                   "delivery": {"location": south(500.0), "address": "1 MG Road"}}),
        )
        .await;
    assert_eq!(again.body["total_cents"], 9500);
    let first = app.order(placed.body["id"].as_str().unwrap()).await;
    assert_eq!(first["total_cents"], 2 * 9000 + 4000);
}

#[actix_web::test]
async fn a_biryani_for_one_paisa_is_refused() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, c) = app.customer().await;
    let body = |items| {
        json!({"restaurant_id": r, "items": items,
               "delivery": {"location": north(100.0), "address": "2 MG Road"}})
    };
    // The shown price must still be the menu's.
    let cheap = app
        .post(
            "/v1/orders",
            &c,
            body(json!([{"item_id": DOSA, "quantity": 1, "unit_price_cents": 1}])),
        )
        .await;
    assert_eq!((cheap.status, cheap.code()), (409, "price_changed"));
    let shown = app
        .post(
            "/v1/orders",
            &c,
            body(json!([{"item_id": DOSA, "quantity": 1, "unit_price_cents": 9000}])),
        )
        .await;
    assert_eq!(shown.status, 201, "{:?}", shown.body);
    // The old free-text form names no menu item.
    let free = app
        .post(
            "/v1/orders",
            &c,
            body(json!([{"name": "Biryani", "quantity": 1, "unit_price_cents": 1}])),
        )
        .await;
    assert_eq!((free.status, free.code()), (400, "invalid_request"));
    // An id that is not on this menu.
    let unknown = app
        .post(
            "/v1/orders",
            &c,
            body(json!([{"item_id": "00000000-0000-4000-8000-000000000bad", "quantity": 1}])),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (422, "item_unavailable"));
}

#[actix_web::test]
async fn unavailable_items_and_bad_menus() {
    let app = spawn_app().await;
    let (r, rt) = app.restaurant().await;
    let (_, c) = app.customer().await;
    let off = app
        .put(
            &format!("/v1/restaurants/{r}/menu"),
            &rt,
            json!({"items": [{"id": IDLI, "name": "Idli", "price_cents": 5000, "available": false}]}),
        )
        .await;
    assert_eq!(off.status, 200);
    let refused = app
        .post("/v1/orders", &c, app.order_body(&r, south(100.0)))
        .await;
    assert_eq!((refused.status, refused.code()), (422, "item_unavailable"));
    let bad = [
        json!({"items": [{"name": "x", "price_cents": -1}]}),
        json!({"items": [{"name": "", "price_cents": 1}]}),
        json!({"items": [{"name": "x", "price_cents": 1.5}]}),
        json!({"items": [{"id": IDLI, "name": "a", "price_cents": 1}, {"id": IDLI, "name": "b", "price_cents": 1}]}),
        json!({"items": "none"}),
    ];
    for body in bad {
        let res = app
            .put(&format!("/v1/restaurants/{r}/menu"), &rt, body.clone())
            .await;
        assert_eq!((res.status, res.code()), (400, "invalid_request"), "{body}");
    }
    // Another restaurant may not touch this menu; a new item gets an id.
    let (_, other) = app.restaurant().await;
    let res = app
        .put(
            &format!("/v1/restaurants/{r}/menu"),
            &other,
            json!({"items": []}),
        )
        .await;
    assert_eq!(res.status, 403);
    let fresh = app
        .put(
            &format!("/v1/restaurants/{r}/menu"),
            &app.ops,
            json!({"items": [{"name": "Vada", "price_cents": 3000}]}),
        )
        .await;
    assert_eq!(fresh.status, 200);
    assert!(fresh.body["items"][0]["id"].as_str().unwrap().len() == 36);
    assert_eq!(fresh.body["items"][0]["available"], true);
}

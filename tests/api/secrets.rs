//! A default install is never open to forged tokens: no configured secret means a generated
//! one, shared with `dabba token` through the data directory; weak secrets stop the server.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Options, north, spawn_app, spawn_app_with};
use crate::process::{Setup, command, free_port, start_with};
use dabba::api::auth::{Claims, Keys, Role};

fn dabba_token(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dabba"))
        .arg("token")
        .args(args)
        .env("DABBA_DATA_DIR", data_dir)
        .env_remove("DABBA_JWT_SECRET")
        .output()
        .expect("dabba token runs")
}

#[actix_web::test]
async fn a_default_install_refuses_the_old_public_secret_and_dabba_token_just_works() {
    let setup = Setup::fresh("secret").await;
    let server = start_with(&setup, "default", |cmd| {
        cmd.env_remove("DABBA_JWT_SECRET");
    })
    .await;
    let restaurant = json!({"name": "Forged", "location": north(0.0)});
    for public in ["dabba-dev-secret", ""] {
        let forged = Keys::new(public).mint(Role::Ops, Uuid::new_v4(), chrono::Duration::hours(1));
        let r = server
            .client
            .call("POST", "/v1/restaurants", Some(&forged), Some(&restaurant))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthorized"),
            "secret {public:?}"
        );
    }
    let file = setup.dir.join("data").join(dabba::tokens::SECRET_FILE);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the secret file is owner-only");
    assert!(std::fs::read_to_string(&file).unwrap().trim().len() >= 32);

    let sub = Uuid::new_v4().to_string();
    let out = dabba_token(&setup.dir.join("data"), &["--role", "ops", "--sub", &sub]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let r = server
        .client
        .call(
            "POST",
            "/v1/restaurants",
            Some(token.trim()),
            Some(&restaurant),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    // An absurd lifetime is refused, not minted.
    let out = dabba_token(
        &setup.dir.join("data"),
        &["--role", "ops", "--sub", &sub, "--ttl-hours", "100000000"],
    );
    assert!(!out.status.success());
}

#[actix_web::test]
async fn a_short_or_empty_secret_stops_the_server_with_a_reason() {
    let setup = Setup::fresh("weak").await;
    for weak in ["", "dabba-dev-secret"] {
        let log = setup.dir.join("weak.log");
        let mut child = command(&setup, free_port(), &log)
            .env("DABBA_JWT_SECRET", weak)
            .spawn()
            .unwrap();
        let mut status = None;
        for _ in 0..200 {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let status = status.expect("the server must refuse to start on a weak secret");
        assert!(!status.success());
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(said.contains("at least 32"), "{weak:?}: {said}");
    }
}

fn claims(role: Role, sub: Uuid, iat: i64, nbf: i64, exp: i64) -> Claims {
    Claims {
        sub,
        role,
        iat,
        nbf,
        exp,
    }
}

#[actix_web::test]
async fn token_times_and_lifetimes_are_enforced() {
    let app = spawn_app().await;
    let keys = Keys::new(crate::helpers::SECRET);
    let now = chrono::Utc::now().timestamp();
    let ops = Uuid::new_v4();
    let body = json!({"name": "r", "location": north(0.0)});
    for (what, c) in [
        ("exp = i64::MAX", claims(Role::Ops, ops, now, now, i64::MAX)),
        (
            "ops for 13 h",
            claims(Role::Ops, ops, now, now, now + 13 * 3600),
        ),
        (
            "issued in an hour",
            claims(Role::Ops, ops, now + 3600, now, now + 7200),
        ),
        (
            "not before an hour",
            claims(Role::Ops, ops, now, now + 3600, now + 7200),
        ),
        (
            "expired",
            claims(Role::Ops, ops, now - 600, now - 600, now - 1),
        ),
    ] {
        let r = app
            .post("/v1/restaurants", &keys.sign(&c), body.clone())
            .await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "{what}");
    }
    let fine = keys.sign(&claims(Role::Ops, ops, now, now, now + 3600));
    assert_eq!(app.post("/v1/restaurants", &fine, body).await.status, 201);
}

#[actix_web::test]
async fn a_rotated_secret_keeps_old_tokens_valid_and_signs_new_ones() {
    const OLD: &str = "the-previous-secret-0123456789abcdef";
    let app = spawn_app_with(Options {
        previous_secret: Some(OLD.into()),
        ..Options::default()
    })
    .await;
    let body = json!({"name": "r", "location": north(0.0)});
    let old = Keys::new(OLD).mint(Role::Ops, Uuid::new_v4(), chrono::Duration::hours(1));
    assert_eq!(
        app.post("/v1/restaurants", &old, body.clone()).await.status,
        201
    );
    assert_eq!(
        app.post("/v1/restaurants", &app.ops, body.clone())
            .await
            .status,
        201
    );
    let stranger = Keys::new("some-other-secret-0123456789abcdef!").mint(
        Role::Ops,
        Uuid::new_v4(),
        chrono::Duration::hours(1),
    );
    assert_eq!(
        app.post("/v1/restaurants", &stranger, body).await.status,
        401
    );
}

#[actix_web::test]
async fn tokens_for_unregistered_customers_and_riders_are_refused() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let ghost = app.token(Role::Customer, &Uuid::new_v4().to_string());
    let r = app
        .post(
            "/v1/orders",
            &ghost,
            app.order_body(&restaurant.0, north(100.0)),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let ghost_rider = Uuid::new_v4().to_string();
    let t = app.token(Role::Rider, &ghost_rider);
    let r = app
        .put(
            &format!("/v1/riders/{ghost_rider}/location"),
            &t,
            north(1.0),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let ghost_restaurant = app.token(Role::Restaurant, &Uuid::new_v4().to_string());
    let r = app
        .get(
            &format!("/v1/restaurants/{}", restaurant.0),
            &ghost_restaurant,
        )
        .await;
    assert_eq!(r.status, 401);
    // Registered ones work, including after the server forgot them (store lookup).
    let (_, customer) = app.customer().await;
    let r = app
        .post(
            "/v1/orders",
            &customer,
            app.order_body(&restaurant.0, north(100.0)),
        )
        .await;
    assert_eq!(r.status, 201);
}

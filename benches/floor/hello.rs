//! The floor of one actix-web request on this machine: the framework dabba serves with, one
//! route, no middleware, a small JSON body, two workers (as `dabba serve` has on two cores).
//! Built and driven by `benches/floor.sh`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use actix_web::{App, HttpResponse, HttpServer, get};

#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18182);
    HttpServer::new(|| App::new().service(healthz))
        .workers(2)
        .bind(("127.0.0.1", port))?
        .run()
        .await
}

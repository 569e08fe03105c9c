//! The fake vendor server: stands in, over real HTTP, for the payment gateways dabba cannot
//! reach here. Two gateway dialects (`paycore`, JSON with an `Idempotency-Key` header, and
//! `razorpe`, the key in the body) share one book of operations. Switches per vendor
//! (`PUT /_control/{vendor}`) make it decline, fail, rate-limit, stall or answer slowly, and
//! recover; test tokens act like a real gateway's test cards (`tok_decline`, `tok_fail`,
//! `tok_timeout`).
//!
//! `dabba fake-vendors --bind ADDR` runs it alone; the embedded default runs it in process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, get, post, put, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::Cents;
use crate::payments::{GatewayRecord, OpKind};

/// How a vendor behaves until told otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Ok,
    /// Every call fails with a 5xx (nothing recorded).
    Fail,
    /// Every authorisation is declined.
    Decline,
    /// Every call answers 429.
    RateLimit,
    /// Every call waits `delay_ms`, then succeeds (a stalled call that lands late).
    Stall,
    /// Every call waits `delay_ms`, then succeeds (a slow vendor).
    Slow,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct Switch {
    pub mode: Mode,
    #[serde(default)]
    pub delay_ms: u64,
}

/// How long `tok_timeout` stalls an authorisation before it lands.
const TOKEN_STALL: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Book {
    /// (vendor, idempotency key) → the operation.
    ops: HashMap<(String, String), GatewayRecord>,
    switches: HashMap<String, Switch>,
}

#[derive(Clone, Default)]
pub struct FakeVendors {
    book: Arc<Mutex<Book>>,
}

/// A request after the dialect was decoded.
struct Request {
    vendor: &'static str,
    key: String,
    kind: OpKind,
    amount: Cents,
    token: Option<String>,
    reference: Option<String>,
}

/// What the book answered.
enum Answer {
    Done(GatewayRecord),
    Failed(u16),
}

impl FakeVendors {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn switch(&self, vendor: &str) -> Switch {
        self.book().switches.get(vendor).copied().unwrap_or(Switch {
            mode: Mode::Ok,
            delay_ms: 0,
        })
    }

    /// Runs one operation: a repeat of a key answers what the first call did.
    async fn handle(&self, r: Request) -> Answer {
        let id = (r.vendor.to_owned(), r.key.clone());
        if let Some(done) = self.book().ops.get_mut(&id) {
            // Every request with the key counts: a retry shows in `calls`, never as a new
            // operation.
            done.calls += 1;
            if done.status != "processing" {
                return Answer::Done(done.clone());
            }
        }
        let switch = self.switch(r.vendor);
        match switch.mode {
            Mode::Fail => return Answer::Failed(502),
            Mode::RateLimit => return Answer::Failed(429),
            _ => {}
        }
        let token = r.token.as_deref().unwrap_or_default();
        if r.kind == OpKind::Authorize && token == "tok_fail" {
            return Answer::Failed(500);
        }
        let mut delay = match switch.mode {
            Mode::Stall | Mode::Slow => Duration::from_millis(switch.delay_ms),
            _ => Duration::ZERO,
        };
        if r.kind == OpKind::Authorize && token == "tok_timeout" {
            delay = delay.max(TOKEN_STALL);
        }
        let declined =
            r.kind == OpKind::Authorize && (token == "tok_decline" || switch.mode == Mode::Decline);
        let mut record = GatewayRecord {
            key: r.key.clone(),
            kind: r.kind,
            amount: r.amount,
            status: "processing".into(),
            calls: 1,
            reference: Some(match (r.kind, &r.reference) {
                (OpKind::Authorize, _) | (_, None) => {
                    format!("pay_{}", uuid::Uuid::new_v4().simple())
                }
                (_, Some(reference)) => reference.clone(),
            }),
        };
        if !delay.is_zero() {
            self.book()
                .ops
                .entry(id.clone())
                .or_insert_with(|| record.clone());
            actix_web::rt::time::sleep(delay).await;
        }
        record.status = if declined { "declined" } else { "approved" }.into();
        let mut book = self.book();
        if r.kind == OpKind::Void
            && let Some(auth) = book.ops.values_mut().find(|o| {
                o.kind == OpKind::Authorize && o.reference == r.reference && o.status == "approved"
            })
        {
            auth.status = "voided".into();
        }
        let stored = book.ops.entry(id).or_insert_with(|| record.clone());
        if stored.status == "processing" {
            record.calls = stored.calls;
            *stored = record;
        }
        Answer::Done(stored.clone())
    }

    fn records(&self, vendor: &str) -> Vec<GatewayRecord> {
        let mut all: Vec<GatewayRecord> = self
            .book()
            .ops
            .iter()
            .filter(|((v, _), _)| v == vendor)
            .map(|(_, r)| r.clone())
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    fn lookup(&self, vendor: &str, key: &str) -> Option<GatewayRecord> {
        self.book()
            .ops
            .get(&(vendor.to_owned(), key.to_owned()))
            .cloned()
    }

    /// Serves on `bind` (port 0 for any); the bound address and the running server.
    pub fn serve(
        self,
        bind: &str,
    ) -> std::io::Result<(std::net::SocketAddr, actix_web::dev::Server)> {
        let state = web::Data::new(self);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .service(control)
                .service(records)
                .service(paycore_call)
                .service(paycore_lookup)
                .service(paycore_list)
                .service(razorpe_call)
                .service(razorpe_list)
        })
        .workers(1)
        .disable_signals()
        .bind(bind)?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("no address bound"))?;
        Ok((addr, server.run()))
    }
}

#[put("/_control/{vendor}")]
async fn control(
    state: web::Data<FakeVendors>,
    vendor: web::Path<String>,
    body: web::Json<Switch>,
) -> HttpResponse {
    state.book().switches.insert(vendor.into_inner(), body.0);
    HttpResponse::NoContent().finish()
}

#[get("/_records/{vendor}")]
async fn records(state: web::Data<FakeVendors>, vendor: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"records": state.records(&vendor)}))
}

// ---- paycore: JSON bodies, the key in a header, 402 for a decline -------------------------

#[derive(Deserialize)]
struct PaycoreBody {
    amount_cents: i64,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    reference: Option<String>,
}

#[post("/paycore/v1/{op}")]
async fn paycore_call(
    req: HttpRequest,
    state: web::Data<FakeVendors>,
    op: web::Path<String>,
    body: web::Json<PaycoreBody>,
) -> HttpResponse {
    let Some(kind) = OpKind::parse(&op) else {
        return HttpResponse::NotFound().finish();
    };
    let Some(key) = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
    else {
        return HttpResponse::BadRequest().json(json!({"error": "Idempotency-Key required"}));
    };
    let body = body.into_inner();
    let answer = state
        .handle(Request {
            vendor: "paycore",
            key: key.to_owned(),
            kind,
            amount: Cents(body.amount_cents),
            token: body.token,
            reference: body.reference,
        })
        .await;
    match answer {
        Answer::Done(r) if r.status == "declined" => HttpResponse::PaymentRequired().json(&r),
        Answer::Done(r) => HttpResponse::Ok().json(&r),
        Answer::Failed(status) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
        )
        .json(json!({"error": "gateway failure"})),
    }
}

#[get("/paycore/v1/operations/{key}")]
async fn paycore_lookup(state: web::Data<FakeVendors>, key: web::Path<String>) -> HttpResponse {
    match state.lookup("paycore", &key) {
        Some(r) => HttpResponse::Ok().json(&r),
        None => HttpResponse::NotFound().json(json!({"error": "no such operation"})),
    }
}

#[get("/paycore/v1/operations")]
async fn paycore_list(state: web::Data<FakeVendors>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"operations": state.records("paycore")}))
}

// ---- razorpe: the key in the body, amounts in paise, a decline is a 200 "rejected" --------

#[derive(Deserialize, Serialize)]
pub struct RazorpeBody {
    pub request_id: String,
    pub action: String,
    pub amount_paise: i64,
    #[serde(default)]
    pub card_token: Option<String>,
    #[serde(default)]
    pub payment_ref: Option<String>,
}

#[derive(Deserialize, Serialize)]
pub struct RazorpePayment {
    pub request_id: String,
    pub action: String,
    pub amount_paise: i64,
    /// `done`, `rejected`, `reversed` or `pending`.
    pub state: String,
    pub payment_ref: Option<String>,
}

impl From<GatewayRecord> for RazorpePayment {
    fn from(r: GatewayRecord) -> Self {
        let state = match r.status.as_str() {
            "approved" => "done",
            "declined" => "rejected",
            "voided" => "reversed",
            _ => "pending",
        };
        Self {
            request_id: r.key,
            action: r.kind.as_str().into(),
            amount_paise: r.amount.0,
            state: state.into(),
            payment_ref: r.reference,
        }
    }
}

#[post("/razorpe/payments")]
async fn razorpe_call(state: web::Data<FakeVendors>, body: web::Json<RazorpeBody>) -> HttpResponse {
    let body = body.into_inner();
    let Some(kind) = OpKind::parse(&body.action) else {
        return HttpResponse::BadRequest().json(json!({"error": "unknown action"}));
    };
    let answer = state
        .handle(Request {
            vendor: "razorpe",
            key: body.request_id,
            kind,
            amount: Cents(body.amount_paise),
            token: body.card_token,
            reference: body.payment_ref,
        })
        .await;
    match answer {
        Answer::Done(r) => HttpResponse::Ok().json(RazorpePayment::from(r)),
        Answer::Failed(429) => HttpResponse::TooManyRequests().finish(),
        Answer::Failed(_) => HttpResponse::ServiceUnavailable().json(json!({"error": "down"})),
    }
}

#[derive(Deserialize)]
struct RazorpeQuery {
    request_id: Option<String>,
}

#[get("/razorpe/payments")]
async fn razorpe_list(state: web::Data<FakeVendors>, q: web::Query<RazorpeQuery>) -> HttpResponse {
    let items: Vec<RazorpePayment> = state
        .records("razorpe")
        .into_iter()
        .filter(|r| q.request_id.as_ref().is_none_or(|k| *k == r.key))
        .map(RazorpePayment::from)
        .collect();
    HttpResponse::Ok().json(json!({"items": items}))
}

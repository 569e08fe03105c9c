//! The HTTP adapters: one per gateway dialect. Each maps its vendor's answers onto
//! [`Outcome`] and [`CallError`]: a timeout is unknown (look it up), a 5xx, a 429 or a refused
//! connection did not happen (retry or fall back), a decline is final.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::gateway::{
    CallError, GatewayCall, GatewayFuture, GatewayRecord, OpKind, Outcome, PaymentGateway,
};
use crate::domain::Cents;
use crate::vendors::fake::{RazorpeBody, RazorpePayment};

/// Each thread's HTTP client for calls with this timeout. A pooled connection is driven by a
/// task on the thread that opened it: with one client shared by every thread, a call made on
/// one HTTP worker would hand its request to whichever thread opened the connection and wait
/// to be woken back, two thread switches per call. Per thread, a call and its connection stay
/// on the thread that makes it.
#[derive(Clone, Copy)]
struct Http {
    timeout: Duration,
}

impl Http {
    fn client(self) -> reqwest::Client {
        thread_local! {
            static CLIENTS: RefCell<HashMap<Duration, reqwest::Client>> = RefCell::default();
        }
        CLIENTS.with(|clients| {
            clients
                .borrow_mut()
                .entry(self.timeout)
                .or_insert_with(|| {
                    reqwest::Client::builder()
                        .timeout(self.timeout)
                        .pool_max_idle_per_host(32)
                        .build()
                        .unwrap_or_default()
                })
                .clone()
        })
    }
}

fn transport(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::Timeout
    } else {
        CallError::Unavailable(e.to_string())
    }
}

fn unavailable(status: reqwest::StatusCode) -> CallError {
    CallError::Unavailable(format!("answered {status}"))
}

/// `paycore`: JSON, the key in an `Idempotency-Key` header, `402` for a decline.
pub struct Paycore {
    name: String,
    base: String,
    http: Http,
}

impl Paycore {
    pub fn new(name: &str, base: &str, timeout: Duration) -> Self {
        Self {
            name: name.into(),
            base: base.trim_end_matches('/').into(),
            http: Http { timeout },
        }
    }
}

impl PaymentGateway for Paycore {
    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a>(&'a self, call: &'a GatewayCall) -> GatewayFuture<'a, Outcome> {
        Box::pin(async move {
            let res = self
                .http
                .client()
                .post(format!("{}/v1/{}", self.base, call.kind.as_str()))
                .header("Idempotency-Key", &call.key)
                .json(&json!({"amount_cents": call.amount.0, "token": call.token, "reference": call.reference}))
                .send()
                .await
                .map_err(transport)?;
            let status = res.status();
            if status == reqwest::StatusCode::PAYMENT_REQUIRED {
                return Ok(Outcome::Declined {
                    reason: "declined by paycore".into(),
                });
            }
            if !status.is_success() {
                return Err(unavailable(status));
            }
            let record: GatewayRecord = res.json().await.map_err(transport)?;
            record
                .outcome()
                .ok_or_else(|| CallError::Unavailable("no final status".into()))
        })
    }

    fn lookup<'a>(&'a self, key: &'a str) -> GatewayFuture<'a, Option<GatewayRecord>> {
        Box::pin(async move {
            let res = self
                .http
                .client()
                .get(format!("{}/v1/operations/{key}", self.base))
                .send()
                .await
                .map_err(transport)?;
            match res.status() {
                reqwest::StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => res.json().await.map(Some).map_err(transport),
                s => Err(unavailable(s)),
            }
        })
    }

    fn records(&self) -> GatewayFuture<'_, Vec<GatewayRecord>> {
        Box::pin(async move {
            #[derive(Deserialize)]
            struct List {
                operations: Vec<GatewayRecord>,
            }
            let res = self
                .http
                .client()
                .get(format!("{}/v1/operations", self.base))
                .send()
                .await
                .map_err(transport)?;
            if !res.status().is_success() {
                return Err(unavailable(res.status()));
            }
            Ok(res.json::<List>().await.map_err(transport)?.operations)
        })
    }
}

/// `razorpe`: the key in the body as `request_id`, amounts in paise, a decline is a `200`
/// with `state: rejected`.
pub struct Razorpe {
    name: String,
    base: String,
    http: Http,
}

impl Razorpe {
    pub fn new(name: &str, base: &str, timeout: Duration) -> Self {
        Self {
            name: name.into(),
            base: base.trim_end_matches('/').into(),
            http: Http { timeout },
        }
    }

    async fn list(&self, key: Option<&str>) -> Result<Vec<GatewayRecord>, CallError> {
        #[derive(Deserialize)]
        struct Items {
            items: Vec<RazorpePayment>,
        }
        // Keys are ours (letters, digits, dashes): no escaping needed.
        let url = match key {
            Some(key) => format!("{}/payments?request_id={key}", self.base),
            None => format!("{}/payments", self.base),
        };
        let res = self
            .http
            .client()
            .get(url)
            .send()
            .await
            .map_err(transport)?;
        if !res.status().is_success() {
            return Err(unavailable(res.status()));
        }
        let items = res.json::<Items>().await.map_err(transport)?.items;
        Ok(items.into_iter().filter_map(record).collect())
    }
}

fn record(p: RazorpePayment) -> Option<GatewayRecord> {
    let status = match p.state.as_str() {
        "done" => "approved",
        "rejected" => "declined",
        "reversed" => "voided",
        _ => "processing",
    };
    Some(GatewayRecord {
        key: p.request_id,
        kind: OpKind::parse(&p.action)?,
        amount: Cents(p.amount_paise),
        status: status.into(),
        reference: p.payment_ref,
        calls: 0,
    })
}

impl PaymentGateway for Razorpe {
    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a>(&'a self, call: &'a GatewayCall) -> GatewayFuture<'a, Outcome> {
        Box::pin(async move {
            let body = RazorpeBody {
                request_id: call.key.clone(),
                action: call.kind.as_str().into(),
                amount_paise: call.amount.0,
                card_token: call.token.clone(),
                payment_ref: call.reference.clone(),
            };
            let res = self
                .http
                .client()
                .post(format!("{}/payments", self.base))
                .json(&body)
                .send()
                .await
                .map_err(transport)?;
            if !res.status().is_success() {
                return Err(unavailable(res.status()));
            }
            let payment: RazorpePayment = res.json().await.map_err(transport)?;
            record(payment)
                .and_then(|r| r.outcome())
                .ok_or_else(|| CallError::Unavailable("no final state".into()))
        })
    }

    fn lookup<'a>(&'a self, key: &'a str) -> GatewayFuture<'a, Option<GatewayRecord>> {
        Box::pin(async move { Ok(self.list(Some(key)).await?.into_iter().next()) })
    }

    fn records(&self) -> GatewayFuture<'_, Vec<GatewayRecord>> {
        Box::pin(self.list(None))
    }
}

//! Money over HTTP: an order's payment, restaurants' payouts, riders' earnings, and the ops
//! views of the ledger (trial balance, payout runs, reconciliation against the gateways).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::orders::load_visible;
use crate::actors::Engine;
use crate::actors::engine::{Mismatch, RiderEarnings};
use crate::domain::payment::{OpKind, OpStatus, PaymentMethod};
use crate::domain::{RestaurantId, RiderId, Stage};
use crate::persistence::money::PayoutRecord;

#[derive(Serialize, ToSchema)]
pub struct PaymentEvent {
    pub kind: OpKind,
    pub amount_cents: i64,
    pub gateway: Option<String>,
    pub at: DateTime<Utc>,
    pub status: OpStatus,
    pub attempts: u32,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    pub order_id: Uuid,
    pub method: PaymentMethod,
    /// `authorized`, `captured`, `refunded`, `partially_refunded`, `voided`, `cash_due` or `failed`.
    pub status: &'static str,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub gateway: Option<String>,
    pub events: Vec<PaymentEvent>,
}

#[utoipa::path(get, path = "/v1/orders/{id}/payment", tag = "money", params(("id" = Uuid, Path)),
    responses((status = 200, body = PaymentView), (status = 403), (status = 404)), security(("bearer" = [])))]
#[get("/v1/orders/{id}/payment")]
pub async fn payment(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    if !(caller.is(Role::Ops) || caller.is(Role::Customer)) {
        return Err(ApiError::forbidden());
    }
    let order = load_visible(&engine, &caller, *id).await?;
    let Some(payment) = order.payment.clone() else {
        return Err(ApiError::not_found("payment"));
    };
    let ops = engine.payment_ops(&order).await?;
    let refunded = engine.refunded(&order).await?;
    let failed = ops.iter().any(|o| o.status == OpStatus::Failed);
    let captured = ops.iter().any(|o| o.kind == OpKind::Capture) || order.stage == Stage::Delivered;
    let status = if !payment.method.is_online() {
        if order.stage.is_terminal() && order.stage != Stage::Delivered {
            "voided"
        } else {
            "cash_due"
        }
    } else if failed {
        "failed"
    } else if refunded.0 > 0 && refunded.0 >= order.total_cents.0 {
        "refunded"
    } else if refunded.0 > 0 {
        "partially_refunded"
    } else if captured {
        "captured"
    } else {
        "authorized"
    };
    Ok(HttpResponse::Ok().json(PaymentView {
        order_id: order.id.0,
        method: payment.method,
        status,
        amount_cents: order.total_cents.0,
        refunded_cents: refunded.0,
        gateway: payment.gateway.clone(),
        events: ops
            .into_iter()
            .map(|o| PaymentEvent {
                kind: o.kind,
                amount_cents: o.amount.0,
                gateway: o.gateway,
                at: o.at,
                status: o.status,
                attempts: o.attempts,
                error: o.error,
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Payouts {
    pub payouts: Vec<PayoutRecord>,
    /// Owed and not yet paid out.
    pub pending_cents: i64,
}

#[utoipa::path(get, path = "/v1/restaurants/{id}/payouts", tag = "money", params(("id" = Uuid, Path)),
    responses((status = 200, body = Payouts), (status = 403), (status = 404)), security(("bearer" = [])))]
#[get("/v1/restaurants/{id}/payouts")]
pub async fn restaurant_payouts(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = RestaurantId(*id);
    if !caller.is(Role::Ops) {
        caller.own_restaurant(id)?;
    }
    engine.restaurant(id)?;
    let (payouts, pending_cents) = engine.restaurant_payouts(id).await?;
    Ok(HttpResponse::Ok().json(Payouts {
        payouts,
        pending_cents,
    }))
}

#[utoipa::path(get, path = "/v1/riders/{id}/earnings", tag = "money", params(("id" = Uuid, Path)),
    responses((status = 200, body = RiderEarnings), (status = 403)), security(("bearer" = [])))]
#[get("/v1/riders/{id}/earnings")]
pub async fn rider_earnings(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    if !(caller.is(Role::Ops) || (caller.is(Role::Rider) && caller.sub == *id)) {
        return Err(ApiError::forbidden());
    }
    Ok(HttpResponse::Ok().json(engine.rider_earnings(RiderId(*id)).await?))
}

#[derive(Serialize, ToSchema)]
pub struct PayoutRun {
    pub payouts: Vec<PayoutRecord>,
}

#[utoipa::path(post, path = "/v1/ops/payouts/run", tag = "money",
    responses((status = 200, body = PayoutRun), (status = 403)), security(("bearer" = [])))]
#[post("/v1/ops/payouts/run")]
pub async fn run_payouts(engine: web::Data<Engine>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let payouts = engine.run_payouts().await?;
    Ok(HttpResponse::Ok().json(PayoutRun { payouts }))
}

#[derive(Serialize, ToSchema)]
pub struct AccountBalance {
    pub account: String,
    pub balance_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TrialBalance {
    pub accounts: Vec<AccountBalance>,
    /// Always zero: every transaction is balanced.
    pub total_cents: i64,
}

#[utoipa::path(get, path = "/v1/ops/ledger/trial-balance", tag = "money",
    responses((status = 200, body = TrialBalance), (status = 403)), security(("bearer" = [])))]
#[get("/v1/ops/ledger/trial-balance")]
pub async fn trial_balance(engine: web::Data<Engine>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let accounts: Vec<AccountBalance> = engine
        .trial_balance()
        .await?
        .into_iter()
        .map(|(account, balance_cents)| AccountBalance {
            account,
            balance_cents,
        })
        .collect();
    let total_cents = accounts.iter().map(|a| a.balance_cents).sum();
    Ok(HttpResponse::Ok().json(TrialBalance {
        accounts,
        total_cents,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Reconciliation {
    pub checked: usize,
    pub mismatches: Vec<Mismatch>,
}

#[utoipa::path(get, path = "/v1/ops/reconciliation", tag = "money",
    responses((status = 200, body = Reconciliation), (status = 403), (status = 503)), security(("bearer" = [])))]
#[get("/v1/ops/reconciliation")]
pub async fn reconciliation(engine: web::Data<Engine>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let (checked, mismatches) = engine.reconcile().await?;
    Ok(HttpResponse::Ok().json(Reconciliation {
        checked,
        mismatches,
    }))
}

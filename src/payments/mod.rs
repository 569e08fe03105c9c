//! Payments: gateway adapters behind [`PaymentGateway`], the pool that retries, breaks and
//! falls back ([`Gateways`]), and the jobs that settle, pay out and reconcile.

pub mod adapters;
pub mod gateway;
pub mod plan;
pub mod pool;
pub mod settle;

pub use gateway::{CallError, GatewayCall, GatewayRecord, OpKind, Outcome, PaymentGateway};
pub use pool::{Authorized, Gateways, PayError, PoolConfig};

use std::sync::Arc;
use std::time::Duration;

/// Gateways from `DABBA_GATEWAYS`: comma-separated `DIALECT=BASE_URL` in fallback order, the
/// dialect (`paycore` or `razorpe`) naming the gateway, e.g.
/// `paycore=http://10.0.0.5:7000/paycore,razorpe=http://10.0.0.6:7000/razorpe`.
pub fn from_spec(spec: &str, timeout: Duration, config: PoolConfig) -> anyhow::Result<Gateways> {
    let mut list: Vec<Arc<dyn PaymentGateway>> = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (dialect, url) = entry
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("gateway {entry:?} is not DIALECT=URL"))?;
        list.push(match dialect {
            "paycore" => Arc::new(adapters::Paycore::new(dialect, url, timeout)),
            "razorpe" => Arc::new(adapters::Razorpe::new(dialect, url, timeout)),
            other => anyhow::bail!("unknown gateway dialect {other:?} (paycore or razorpe)"),
        });
    }
    anyhow::ensure!(!list.is_empty(), "no gateways in {spec:?}");
    Ok(Gateways::new(list, config))
}

/// The spec of both gateways served by a fake vendor server at `base`.
pub fn fake_spec(base: &str) -> String {
    format!("paycore={base}/paycore,razorpe={base}/razorpe")
}

/// The embedded default: the fake vendor server in process, on a loopback port, and both
/// gateways pointed at it (still real HTTP). Must run inside an actix system.
pub fn in_process(timeout: Duration, config: PoolConfig) -> anyhow::Result<Gateways> {
    let (addr, server) = crate::vendors::FakeVendors::default().serve("127.0.0.1:0")?;
    actix_web::rt::spawn(server);
    tracing::info!(%addr, "fake payment gateways running in process");
    from_spec(&fake_spec(&format!("http://{addr}")), timeout, config)
}

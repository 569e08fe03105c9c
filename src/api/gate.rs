//! The gate every request passes before its handler: who is calling (a valid token whose
//! customer, rider or restaurant is registered), from where (the socket peer, or the client a
//! trusted proxy forwarded for), and whether that caller is over its rate.

use std::net::IpAddr;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError, web};

use super::auth::{Caller, Role, authenticate, remember};
use super::error::ApiError;
use super::limits::{Class, Key, RateLimiter, limited};
use crate::actors::Engine;

/// An address range, `10.0.0.0/8` or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
        };
        Ok(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let keep = |bits: u32, width: u32| -> u128 {
            if bits == 0 {
                0
            } else {
                !0u128 << (width - bits)
            }
        };
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = keep(u32::from(self.prefix), 32) as u32;
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = keep(u32::from(self.prefix), 128);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Proxies whose `X-Forwarded-For` is believed (`DABBA_TRUSTED_PROXIES`). Anyone else's is
/// ignored: the client is the socket peer, which cannot be forged.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<Net>);

impl TrustedProxies {
    /// Comma-separated addresses or CIDR ranges; empty trusts nobody.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Net::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client: the peer, unless the peer is a trusted proxy; then the right-most address
    /// in `X-Forwarded-For` that is not itself a trusted proxy (entries left of it were
    /// written by the client and prove nothing).
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let Some(list) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in list.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The client's address for `req` (unspecified when the transport has none, as in tests).
pub fn client_addr(req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    match req.app_data::<web::Data<TrustedProxies>>() {
        Some(proxies) => proxies.client(peer, forwarded),
        None => canonical(peer),
    }
}

/// The bucket a request draws from, by its path: only location routes end in `/location`.
/// (Not by the matched route pattern: asking for it resolves the whole router again, which
/// cost more than the rest of the limiter.)
fn classify(method: &Method, path: &str) -> Option<Class> {
    if matches!(
        path,
        "/v1/ws" | "/v1/test/clock" | "/metrics" | "/healthz" | "/readyz"
    ) {
        return None; // sockets are limited at the handshake; probes and tests are not limited
    }
    Some(match *method {
        Method::GET | Method::HEAD => Class::Reads,
        _ if path.ends_with("/location") => Class::Location,
        _ => Class::Writes,
    })
}

/// A token for a customer, rider or restaurant that is not registered is `401`: signed
/// tokens name subjects, and only registered ones may act.
async fn registered(req: &HttpRequest, caller: Caller) -> Result<Caller, ApiError> {
    let Some(engine) = req.app_data::<web::Data<Engine>>() else {
        return Ok(caller);
    };
    if engine.is_registered(caller.role, caller.sub).await? {
        Ok(caller)
    } else {
        Err(ApiError::unauthorized(format!(
            "the token's {} is not registered",
            role_name(caller.role)
        )))
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Rider => "rider",
        Role::Restaurant => "restaurant",
        Role::Ops => "operator",
    }
}

/// Middleware: authenticates once (handlers read the verdict), limits by the token's subject
/// (its signature proves it) or by client address without a valid token, and only then asks
/// whether the subject is registered. Ops tokens are not limited (operators and the load
/// generator act for many users).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let signed = authenticate(req.request());
    let key = match &signed {
        Ok(caller) if caller.role == Role::Ops => None,
        Ok(caller) => Some(Key::Subject(caller.sub)),
        Err(_) => Some(Key::Addr(client_addr(req.request()))),
    };
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    let class = classify(req.method(), req.path());
    if let (Some(limiter), Some(class), Some(key)) = (limiter, class, key) {
        let taken = limiter.take(class, key).await;
        decisions(class, taken.is_ok()).increment(1);
        if let Err(wait) = taken {
            metrics::counter!("dabba_rate_limited_total", "class" => class.as_str()).increment(1);
            let response = limited(wait).error_response();
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    let verdict = match signed {
        Ok(caller) => registered(req.request(), caller).await,
        Err(e) => Err(e),
    };
    remember(req.request(), verdict);
    Ok(next.call(req).await?.map_into_left_body())
}

/// `dabba_rate_limit_decisions_total` by class and decision, counted on every request.
fn decisions(class: Class, allowed: bool) -> &'static metrics::Counter {
    static HANDLES: std::sync::OnceLock<Vec<[metrics::Counter; 2]>> = std::sync::OnceLock::new();
    let handles = crate::telemetry::registered(&HANDLES, || {
        Class::ALL
            .iter()
            .map(|c| {
                ["allowed", "limited"].map(|decision| {
                    metrics::counter!("dabba_rate_limit_decisions_total",
                        "class" => c.as_str(), "decision" => decision)
                })
            })
            .collect()
    });
    // Class::ALL holds every class, so the position is always found.
    let row = Class::ALL.iter().position(|c| *c == class).unwrap_or(0);
    &handles[row][usize::from(!allowed)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9")
        );
        let lb = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        // From the load balancer: the right-most untrusted hop, not what the client wrote.
        assert_eq!(
            lb.client(ip("10.1.2.3"), Some("6.6.6.6, 198.51.100.7, 10.9.9.9")),
            ip("198.51.100.7")
        );
        assert_eq!(lb.client(ip("192.168.1.1"), None), ip("192.168.1.1"));
        assert_eq!(
            lb.client(ip("192.168.1.2"), Some("1.1.1.1")),
            ip("192.168.1.2")
        );
        assert_eq!(
            lb.client(ip("::ffff:10.0.0.1"), Some("7.7.7.7")),
            ip("7.7.7.7")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nonsense").is_err());
    }

    #[test]
    fn routes_draw_from_the_right_bucket() {
        let rider = "/v1/riders/5f0c4a4e-8b1e-4d43-9d0e-1d3c3f2b7a10";
        assert_eq!(
            classify(&Method::PUT, &format!("{rider}/location")),
            Some(Class::Location)
        );
        assert_eq!(
            classify(&Method::PUT, &format!("{rider}/status")),
            Some(Class::Writes)
        );
        assert_eq!(classify(&Method::POST, "/v1/orders"), Some(Class::Writes));
        assert_eq!(classify(&Method::GET, "/v1/orders/x"), Some(Class::Reads));
        assert_eq!(classify(&Method::GET, "/v1/ws"), None);
    }
}

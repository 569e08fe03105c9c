//! Bearer tokens: HS256 JWTs carrying a role and a subject id.
//!
//! HS256 is small enough to implement with `hmac` + `sha2` directly, which avoids pulling in a
//! JWT crate's RSA/EC stacks for a single algorithm. Signatures are compared in constant time.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::error::ApiError;
use crate::domain::{CustomerId, RestaurantId, RiderId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Rider,
    Restaurant,
    Ops,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// The server's signing key.
#[derive(Clone)]
pub struct Keys {
    secret: Vec<u8>,
}

impl Keys {
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("hmac takes any key length")
    }

    pub fn mint(&self, role: Role, sub: Uuid, ttl: chrono::Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub,
            role,
            iat: now,
            exp: now + ttl.num_seconds(),
        };
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Claims are plain data: serialising cannot fail.
        let payload = B64.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed token");
        };
        let header: serde_json::Value = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token header")?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err("unsupported token algorithm");
        }
        let sig = B64.decode(s).map_err(|_| "malformed token signature")?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig).map_err(|_| "bad token signature")?;
        let claims: Claims = B64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token claims")?;
        if claims.exp < chrono::Utc::now().timestamp() {
            return Err("token expired");
        }
        Ok(claims)
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub role: Role,
    pub sub: Uuid,
}

impl Caller {
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }

    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    pub fn customer(&self) -> Result<CustomerId, ApiError> {
        self.require(Role::Customer).map(|_| CustomerId(self.sub))
    }

    /// The rider itself, acting on its own id.
    pub fn own_rider(&self, id: RiderId) -> Result<RiderId, ApiError> {
        if self.role == Role::Rider && self.sub == id.0 {
            Ok(id)
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The restaurant itself, acting on its own id.
    pub fn own_restaurant(&self, id: RestaurantId) -> Result<RestaurantId, ApiError> {
        if self.role == Role::Restaurant && self.sub == id.0 {
            Ok(id)
        } else {
            Err(ApiError::forbidden())
        }
    }
}

/// Reads the bearer token, or `?token=` on the WebSocket endpoint where browsers cannot set
/// headers.
pub fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let keys = req
        .app_data::<web::Data<Keys>>()
        .ok_or_else(|| ApiError::unauthorized("authentication is not configured"))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let query_token = || {
        if req.path() != "/v1/ws" {
            return None;
        }
        web::Query::<TokenQuery>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.into_inner().token)
    };
    let token = match header {
        Some(t) => t.to_owned(),
        None => {
            query_token().ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?
        }
    };
    let claims = keys.verify(&token).map_err(ApiError::unauthorized)?;
    Ok(Caller {
        role: claims.role,
        sub: claims.sub,
    })
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_right_secret() {
        let keys = Keys::new("s3cret");
        let sub = Uuid::new_v4();
        let t = keys.mint(Role::Rider, sub, chrono::Duration::hours(1));
        let claims = keys.verify(&t).unwrap();
        assert_eq!((claims.role, claims.sub), (Role::Rider, sub));
        assert!(Keys::new("other").verify(&t).is_err());
        let expired = keys.mint(Role::Ops, sub, chrono::Duration::hours(-1));
        assert_eq!(keys.verify(&expired).unwrap_err(), "token expired");
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap() + 3, 'x');
        assert!(keys.verify(&tampered).is_err());
    }
}

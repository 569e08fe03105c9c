//! Who is calling: the bearer token's role and subject, checked once per request.
//!
//! The rate-limit middleware authenticates every request first (it keys buckets by subject)
//! and leaves the answer in the request's extensions, so handlers do not verify twice.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use serde::Deserialize;
use uuid::Uuid;

use super::error::ApiError;
use crate::domain::{CustomerId, Party, RestaurantId, RiderId};
pub use crate::tokens::{Claims, Keys, Role};

/// The authenticated caller of a request.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub role: Role,
    pub sub: Uuid,
}

impl Caller {
    /// The party the caller is to any order (what an order's actor checks it against).
    pub fn party(&self) -> Party {
        match self.role {
            Role::Customer => Party::Customer(CustomerId(self.sub)),
            Role::Restaurant => Party::Restaurant(RestaurantId(self.sub)),
            Role::Rider => Party::Rider(RiderId(self.sub)),
            Role::Ops => Party::Ops,
        }
    }

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

/// The middleware's verdict on a request's token, kept for the handler.
#[derive(Clone)]
pub struct Authenticated(pub Result<Caller, ApiError>);

/// The caller, as the middleware found it (or verified now where no middleware ran).
pub fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    match req.extensions().get::<Authenticated>() {
        Some(Authenticated(verdict)) => verdict.clone(),
        None => authenticate(req),
    }
}

/// Remembers the verdict for [`caller`].
pub fn remember(req: &HttpRequest, verdict: Result<Caller, ApiError>) {
    req.extensions_mut().insert(Authenticated(verdict));
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req))
    }
}

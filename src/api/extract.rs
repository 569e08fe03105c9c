//! Request parsing: JSON bodies whose errors name the offending field, and field validators.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::Deserialize as _;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The body size cap for every JSON request.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body; malformed JSON, wrong types and unknown enum values are `400 invalid_request`
/// with the path of the field (`items[0].quantity: ...`).
pub struct ValidJson<T>(pub T);

/// A JSON body that may be absent (empty); present but malformed is still `400`.
pub struct MaybeJson<T>(pub Option<T>);

/// How long a request body may take to arrive (`DABBA_BODY_TIMEOUT_SECS`).
#[derive(Clone, Copy, Debug)]
pub struct BodyTimeout(pub Duration);

impl Default for BodyTimeout {
    fn default() -> Self {
        Self(Duration::from_secs(10))
    }
}

/// Reads the body: JSON only (`415` otherwise), within the size cap (`413`) and the body
/// timeout (`408`: a body trickled a byte a second is cut, not waited for).
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> + use<> {
    let content_type = json_content_type(req);
    let timeout = req
        .app_data::<web::Data<BodyTimeout>>()
        .map_or_else(BodyTimeout::default, |t| *t.get_ref());
    let bytes = web::Bytes::from_request(req, payload);
    async move {
        let bytes = match tokio::time::timeout(timeout.0, bytes).await {
            Ok(read) => read,
            Err(_) => {
                metrics::counter!("dabba_body_timeouts_total").increment(1);
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!("the body did not arrive within {} s", timeout.0.as_secs()),
                ));
            }
        };
        let bytes = bytes.map_err(|e| match e.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => ApiError::too_large(MAX_BODY),
            _ if e.as_response_error().status_code()
                == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::too_large(MAX_BODY)
            }
            _ => ApiError::invalid(format!("could not read the body: {e}")),
        })?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            content_type?;
        }
        Ok(bytes)
    }
}

/// A body is JSON: `Content-Type: application/json` (or `+json`, any parameters), or none
/// at all (curl and older clients omit it). Anything else is `415`, never parsed as JSON.
fn json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ))
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(ValidJson) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for MaybeJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(MaybeJson(None));
            }
            parse_json(&bytes).map(|v| MaybeJson(Some(v)))
        })
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::invalid(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::invalid(format!("{path}: {inner}"))
        }
    })
}

/// Longest name (restaurant, rider, customer, menu item) accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest free-text reason (a restaurant's rejection) accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A string of at most `max` characters as sent, with no control characters but line
/// breaks and tabs, and something besides white space; stored trimmed. (`/openapi.json`
/// states the same rule as a pattern.) Text is stored as sent, not escaped: every client
/// that renders it must escape it for its medium.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    // NUL and other control characters are never meant (and PostgreSQL refuses NUL);
    // line breaks and tabs are, in addresses and comments.
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be empty")));
    }
    Ok(v.to_owned())
}

/// Accepts a JSON integer also when written with a zero fraction (`1.0`): JSON Schema calls
/// it an integer, and generated clients may send it so.
pub fn whole_number<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error as _;
    let n = serde_json::Number::deserialize(de)?;
    let whole = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => i,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        _ => return Err(D::Error::custom(format!("expected an integer, got {n}"))),
    };
    T::try_from(whole).map_err(|_| D::Error::custom(format!("{whole} is out of range")))
}

/// [`whole_number`] for an optional field (`null` or absent reads as `None`).
pub fn optional_whole_number<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error as _;
    match Option::<serde_json::Number>::deserialize(de)? {
        None => Ok(None),
        Some(n) => whole_number(n).map(Some).map_err(D::Error::custom),
    }
}

/// Like [`text`] but may be absent, empty or blank (all read as absent).
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.chars().all(char::is_whitespace) && v.chars().count() <= max => {
            if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(ApiError::invalid(format!(
                    "{field} must not contain control characters"
                )));
            }
            Ok(None)
        }
        Some(v) => text(field, v, max).map(Some),
    }
}

/// Path and query extraction failures are client errors with the contract's envelope.
pub fn configure_extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::invalid(format!("bad path: {e}")).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| ApiError::invalid(format!("bad query: {e}")).into()),
        )
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY)
                .error_handler(|e, _| match e {
                    actix_web::error::JsonPayloadError::Overflow { .. }
                    | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                        ApiError::too_large(MAX_BODY).into()
                    }
                    other => ApiError::invalid(other.to_string()).into(),
                }),
        );
}

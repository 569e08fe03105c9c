//! `/v1/customers`: registration (the history lives with orders).

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{MAX_NAME_CHARS, ValidJson, text};
use crate::actors::Engine;
use crate::domain::CustomerId;

#[derive(Deserialize, ToSchema)]
pub struct CreateCustomer {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[0-9+() -]*[0-9][0-9+() -]*$"
    )]
    pub phone: String,
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+\.[^@\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub email: String,
}

/// `user@host.tld`: one `@`, no white space, a dot inside the host (the schema's pattern).
fn plausible_email(email: &str) -> bool {
    let Some((user, host)) = email.split_once('@') else {
        return false;
    };
    let dot_inside = host
        .char_indices()
        .any(|(i, c)| c == '.' && i > 0 && i + 1 < host.len());
    !user.is_empty() && !host.contains('@') && !email.chars().any(char::is_whitespace) && dot_inside
}

#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    pub id: CustomerId,
    pub name: String,
    pub phone: String,
    pub email: String,
}

#[utoipa::path(post, path = "/v1/customers", tag = "registration", request_body = CreateCustomer,
    responses((status = 201, body = CustomerView), (status = 400), (status = 403)), security(("bearer" = [])))]
#[post("/v1/customers")]
pub async fn create(
    engine: web::Data<Engine>,
    caller: Caller,
    body: ValidJson<CreateCustomer>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let b = body.0;
    let name = text("name", &b.name, MAX_NAME_CHARS)?;
    let phone = text("phone", &b.phone, 32)?;
    if !phone
        .chars()
        .all(|c| c.is_ascii_digit() || "+-() ".contains(c))
        || !phone.chars().any(|c| c.is_ascii_digit())
    {
        return Err(ApiError::invalid(
            "phone must hold digits, spaces and + - ( ) only",
        ));
    }
    let email = text("email", &b.email, 254)?;
    if !plausible_email(&email) {
        return Err(ApiError::invalid("email must look like name@host.tld"));
    }
    let c = engine.add_customer(name, phone, email).await?;
    Ok(HttpResponse::Created().json(CustomerView {
        id: c.id,
        name: c.name,
        phone: c.phone,
        email: c.email,
    }))
}

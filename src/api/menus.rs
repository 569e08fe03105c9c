//! `/v1/restaurants/{id}/menu`: the restaurant's dishes and prices, which price every order.

use actix_web::{HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{MAX_NAME_CHARS, ValidJson, text};
use crate::actors::Engine;
use crate::domain::{Cents, ItemId, Menu, MenuItem, RestaurantId};

/// Bounds on a menu.
const MAX_MENU_ITEMS: usize = 500;
pub const MAX_PRICE_CENTS: i64 = 10_000_000;

#[derive(Deserialize, ToSchema)]
pub struct MenuItemInput {
    /// Keep an item's id to keep its history; omit it for a new item.
    #[serde(default)]
    pub id: Option<ItemId>,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(minimum = 0, maximum = 10_000_000)]
    #[serde(deserialize_with = "super::extract::whole_number")]
    pub price_cents: i64,
    #[serde(default = "available")]
    pub available: bool,
}

fn available() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
pub struct MenuInput {
    #[schema(max_items = 500)]
    pub items: Vec<MenuItemInput>,
}

#[derive(Serialize, ToSchema)]
pub struct MenuView {
    pub items: Vec<MenuItem>,
}

fn menu(input: MenuInput) -> ApiResult<Menu> {
    if input.items.len() > MAX_MENU_ITEMS {
        return Err(ApiError::invalid(format!(
            "a menu holds at most {MAX_MENU_ITEMS} items"
        )));
    }
    let items = input
        .items
        .into_iter()
        .enumerate()
        .map(|(i, it)| {
            if !(0..=MAX_PRICE_CENTS).contains(&it.price_cents) {
                return Err(ApiError::invalid(format!(
                    "items[{i}].price_cents must be 0 to {MAX_PRICE_CENTS}"
                )));
            }
            Ok(MenuItem {
                id: it.id.unwrap_or_default(),
                name: text(&format!("items[{i}].name"), &it.name, MAX_NAME_CHARS)?,
                price_cents: Cents(it.price_cents),
                available: it.available,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Menu::new(items).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Replaces the menu (the restaurant itself, or ops).
#[utoipa::path(put, path = "/v1/restaurants/{id}/menu", tag = "restaurants", request_body = MenuInput,
    params(("id" = Uuid, Path)), responses((status = 200, body = MenuView), (status = 400), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[put("/v1/restaurants/{id}/menu")]
pub async fn put_menu(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<MenuInput>,
) -> ApiResult<HttpResponse> {
    let id = RestaurantId(*id);
    if !caller.is(Role::Ops) {
        caller.own_restaurant(id)?;
    }
    let menu = engine.set_menu(id, menu(body.0)?).await?;
    Ok(HttpResponse::Ok().json(MenuView {
        items: menu.items.clone(),
    }))
}

#[utoipa::path(get, path = "/v1/restaurants/{id}/menu", tag = "restaurants",
    params(("id" = Uuid, Path)), responses((status = 200, body = MenuView), (status = 404)),
    security(("bearer" = [])))]
#[get("/v1/restaurants/{id}/menu")]
pub async fn get_menu(
    engine: web::Data<Engine>,
    _caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let r = engine.restaurant(RestaurantId(*id))?;
    Ok(HttpResponse::Ok().json(MenuView {
        items: r.menu.items.clone(),
    }))
}

//! Menus: the restaurant owns its prices and the server prices every order from them, so a
//! client can never name its own price.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ids::ItemId;
use super::money::Cents;
use super::order::Item;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MenuItem {
    pub id: ItemId,
    pub name: String,
    #[schema(value_type = i64)]
    pub price_cents: Cents,
    pub available: bool,
}

/// A restaurant's menu, in the order the restaurant listed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    pub items: Vec<MenuItem>,
}

/// One line of an order as the customer asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub item_id: ItemId,
    pub quantity: u32,
    /// The price the client showed, if it sent one: it must still be the menu's.
    pub shown_price: Option<Cents>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MenuError {
    #[error("item {0} is not on the menu or not available")]
    ItemUnavailable(ItemId),
    #[error("the price of {name} is now {price} paise")]
    PriceChanged { name: String, price: Cents },
    #[error("item {0} is listed twice in the menu")]
    DuplicateItem(ItemId),
}

impl Menu {
    /// A menu whose ids are unique.
    pub fn new(items: Vec<MenuItem>) -> Result<Self, MenuError> {
        let mut seen = HashMap::with_capacity(items.len());
        for item in &items {
            if seen.insert(item.id, ()).is_some() {
                return Err(MenuError::DuplicateItem(item.id));
            }
        }
        Ok(Self { items })
    }

    pub fn item(&self, id: ItemId) -> Option<&MenuItem> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Prices the lines from this menu: each becomes an order item with the menu's name and
    /// price. An unknown or unavailable item, or a shown price that is no longer the menu's,
    /// refuses the whole order.
    pub fn price(&self, lines: &[OrderLine]) -> Result<Vec<Item>, MenuError> {
        lines
            .iter()
            .map(|line| {
                let item = self
                    .item(line.item_id)
                    .filter(|i| i.available)
                    .ok_or(MenuError::ItemUnavailable(line.item_id))?;
                if let Some(shown) = line.shown_price
                    && shown != item.price_cents
                {
                    return Err(MenuError::PriceChanged {
                        name: item.name.clone(),
                        price: item.price_cents,
                    });
                }
                Ok(Item {
                    item_id: Some(item.id),
                    name: item.name.clone(),
                    quantity: line.quantity,
                    unit_price_cents: item.price_cents,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu() -> (Menu, ItemId, ItemId) {
        let dosa = ItemId::new();
        let vada = ItemId::new();
        let menu = Menu::new(vec![
            MenuItem {
                id: dosa,
                name: "Masala dosa".into(),
                price_cents: Cents(9_000),
                available: true,
            },
            MenuItem {
                id: vada,
                name: "Vada".into(),
                price_cents: Cents(3_000),
                available: false,
            },
        ])
        .expect("unique ids");
        (menu, dosa, vada)
    }

    fn line(item_id: ItemId, shown_price: Option<i64>) -> OrderLine {
        OrderLine {
            item_id,
            quantity: 2,
            shown_price: shown_price.map(Cents),
        }
    }

    #[test]
    fn the_menu_sets_the_price_whatever_the_client_hoped() {
        let (menu, dosa, _) = menu();
        let items = menu.price(&[line(dosa, None)]).expect("on the menu");
        assert_eq!(items[0].unit_price_cents, Cents(9_000));
        assert_eq!(items[0].name, "Masala dosa");
        assert_eq!(
            menu.price(&[line(dosa, Some(1))]),
            Err(MenuError::PriceChanged {
                name: "Masala dosa".into(),
                price: Cents(9_000)
            })
        );
        assert!(menu.price(&[line(dosa, Some(9_000))]).is_ok());
    }

    #[test]
    fn unknown_and_unavailable_items_are_refused() {
        let (menu, _, vada) = menu();
        assert_eq!(
            menu.price(&[line(vada, None)]),
            Err(MenuError::ItemUnavailable(vada))
        );
        let stranger = ItemId::new();
        assert_eq!(
            menu.price(&[line(stranger, None)]),
            Err(MenuError::ItemUnavailable(stranger))
        );
    }

    #[test]
    fn a_menu_lists_an_item_once() {
        let (menu, dosa, _) = menu();
        let mut items = menu.items.clone();
        items.push(items[0].clone());
        assert_eq!(Menu::new(items), Err(MenuError::DuplicateItem(dosa)));
    }
}

-- A restaurant's menu, the one source of prices: one row per restaurant, the items as JSON
-- (a menu is read and replaced whole; orders echo the name and price they were charged).
CREATE TABLE menus (
    restaurant_id TEXT PRIMARY KEY REFERENCES restaurants (id),
    items         TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

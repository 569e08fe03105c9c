//! Black-box tests through HTTP and WebSocket. Run against SQLite by default and against
//! PostgreSQL with `DABBA_TEST_STORE=postgres` (the test command runs both).

mod auth;
mod authz;
mod backbone;
mod cache;
mod contract;
mod crash;
mod desk_restart;
mod dispatch;
mod helpers;
mod idempotency;
mod instance;
mod kafka;
mod limits;
mod menus;
mod money;
mod money_crash;
mod observability;
mod orders;
mod outage;
mod outbox;
mod positions;
mod process;
mod quotes;
mod raw;
mod recurring;
mod registration;
mod restaurant_desk;
mod resume;
mod scheduled;
mod secrets;
mod sockets;
mod store;
mod streams;
mod supervision;
mod ws;

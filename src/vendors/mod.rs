//! Vendors dabba talks to but cannot reach here, faked over real HTTP (see [`fake`]).

pub mod fake;

pub use fake::{FakeVendors, Mode, Switch};

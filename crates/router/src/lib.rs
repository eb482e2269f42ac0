//! Swell's router: which revision serves a request. The gateway builds a [`RouteTable`] from the configured
//! routes, swaps it in whole when they change, and asks it for a [`Selected`] target per request. Everything
//! here is pure data and allocation-free on the request path, so it is tested with tables, not sockets.

mod error;
mod host;
mod path;
mod split;
mod table;

pub use error::RouteError;
pub use table::{RouteTable, Selected};

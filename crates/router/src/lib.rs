//! Swell's router: which revision serves a request. The gateway builds a [`RouteTable`] from the configured
//! routes, swaps it in whole when they change, and asks it for a [`Selected`] target per request, passing a
//! borrowed [`RequestView`] and its random [`Rolls`]. Everything here is pure data and allocation-free on the
//! request path, so it is tested with tables, not sockets.

mod error;
mod fallback;
mod header_match;
mod host;
mod mirror;
mod path;
mod request;
mod route;
mod selected;
mod split;
mod sticky;
mod table;
mod tag;

pub use error::RouteError;
pub use fallback::{Fallback, StaticReply};
pub use mirror::{DEFAULT_MIRROR_MAX_BODY_BYTES, Mirror};
pub use request::{RequestHeaders, RequestView, Rolls};
pub use selected::{Pick, Selected};
pub use table::RouteTable;
pub use tag::TAG_HEADER;

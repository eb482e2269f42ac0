//! `swell control`'s integration tests, one binary (each binary links the whole crate graph, so one
//! link instead of nine): the controllers and the actuator against a scripted API server, placement
//! plans, settings and placement reloads, leader election, the autoscale loop with its drains, and the
//! statistics endpoint's gateway token.

#[path = "../../../kube-api/tests/support/mod.rs"]
mod support;

mod actuator;
mod auth;
mod autoscale;
mod drain;
mod fixtures;
mod lease;
mod placement;
mod placement_reload;
mod reconcile_revision;
mod reconcile_route;
mod settings_reload;

//! The in-cluster gateway's integration tests, one binary: the sync step from watch caches, its own
//! readiness probe, the stats round with control and its drain orders, and stopping as a pod should.

#[path = "../../../kube-api/tests/support/mod.rs"]
mod support;

mod harness;
mod probe;
mod report;
mod shutdown;
mod sync;

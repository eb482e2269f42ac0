//! A concurrency slot on one replica: held from the moment a request is granted until the lease is dropped
//! (the gateway drops it when the response body ends), when the slot returns to the throttler, which hands
//! it straight to the oldest waiter if there is one.

use super::Throttler;
use crate::endpoint::Endpoint;
use std::sync::Arc;

/// A concurrency slot on one replica, held until dropped.
#[derive(Debug)]
pub struct Lease {
    slot: Option<(Arc<Throttler>, Arc<Endpoint>)>,
    /// Whether dropping this lease also ends the request's stay in the meter.
    counted: bool,
}

impl Lease {
    pub(super) fn new(throttler: &Arc<Throttler>, endpoint: Arc<Endpoint>, counted: bool) -> Self {
        Lease { slot: Some((throttler.clone(), endpoint)), counted }
    }

    pub fn endpoint(&self) -> &Endpoint {
        // Only `disarm` and `drop` take the slot, and both consume the lease.
        &self.slot.as_ref().expect("a live lease holds its slot").1
    }

    /// A waiter took this lease: it now accounts for the request's stay in the meter.
    pub(super) fn count(&mut self) {
        self.counted = true;
    }

    /// Take the slot out so dropping the lease does nothing (used while the throttler lock is held).
    pub(super) fn disarm(mut self) -> Arc<Endpoint> {
        let (_, endpoint) = self.slot.take().expect("a live lease holds its slot");
        endpoint
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((throttler, endpoint)) = self.slot.take() {
            throttler.release(endpoint, self.counted);
        }
    }
}

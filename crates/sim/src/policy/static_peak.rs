//! `static-peak`: a fixed fleet sized for the revision's peak, running from the first second to the last,
//! the way a team without an autoscaler provisions. The peak need is the busiest minute's offered load
//! (arrivals × mean service time / 60 s, Little's law) over a replica's capacity, rounded up, at least one.

use super::{Controller, Desired, FleetView, SecondLoad};

#[derive(Debug)]
pub struct StaticPeak {
    replicas: u32,
}

impl StaticPeak {
    pub fn new(peak_need: u32) -> Self {
        Self { replicas: peak_need.max(1) }
    }
}

impl Controller for StaticPeak {
    fn initial(&self) -> Desired {
        Desired::regular(self.replicas)
    }

    fn tick(&mut self, _now: u64, _load: SecondLoad, _fleet: FleetView) -> Desired {
        Desired::regular(self.replicas)
    }
}

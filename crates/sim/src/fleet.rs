//! One revision's replicas in the replay: when each was asked for and turns ready, its pool, how many
//! requests it serves, and the free slots that requests go to. Scale-down follows a ReplicaSet's order:
//! burst-pool replicas before regular ones, then starting before ready, idle before busy; a busy replica
//! drains (takes nothing new, finishes what it has) and is paid for until it is empty.

use crate::platform::Pool;

#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pub requested_at: f64,
    pub ready_at: f64,
    pub pool: Pool,
    pub busy: u32,
    pub ready: bool,
    pub leaving: bool,
    /// Bumped whenever the slot is reused, so stale queue entries are recognised.
    pub generation: u32,
    pub live: bool,
}

/// Replica-seconds paid per pool, and scale-up/down counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Usage {
    pub regular_seconds: f64,
    pub burst_seconds: f64,
}

#[derive(Debug)]
pub(crate) struct Fleet {
    pub replicas: Vec<Replica>,
    free_ids: Vec<usize>,
    /// (replica, generation) once per free slot of a ready replica (containerConcurrency > 0).
    free_slots: Vec<(usize, u32)>,
    /// Ready replicas, for unlimited concurrency (round-robin).
    next_unlimited: usize,
    container_concurrency: u32,
    /// Live replicas not leaving, kept as they change (asked on every queued arrival).
    active: u32,
    /// Of those, the ready ones, kept the same way (asked on every arrival).
    ready: u32,
    pub usage: Usage,
}

/// Counts the controller sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub ready: u32,
    pub total: u32,
    pub regular: u32,
    pub burst: u32,
    /// Live replicas, leaving ones included (what is paid for).
    pub paid: u32,
}

impl Fleet {
    pub fn new(container_concurrency: u32) -> Self {
        Self {
            replicas: Vec::new(),
            free_ids: Vec::new(),
            free_slots: Vec::new(),
            next_unlimited: 0,
            container_concurrency,
            active: 0,
            ready: 0,
            usage: Usage::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in self.replicas.iter().filter(|r| r.live) {
            c.paid += 1;
            if r.leaving {
                continue;
            }
            c.total += 1;
            c.ready += u32::from(r.ready);
            match r.pool {
                Pool::Regular => c.regular += 1,
                Pool::Burst => c.burst += 1,
            }
        }
        c
    }

    /// Whether some replica is ready and not leaving.
    pub fn any_ready(&self) -> bool {
        debug_assert_eq!(
            self.ready as usize,
            self.replicas.iter().filter(|r| r.live && r.ready && !r.leaving).count(),
            "the ready count follows the replicas"
        );
        self.ready > 0
    }

    /// Replicas asked for and not ready yet (not leaving).
    pub fn starting(&self) -> u32 {
        self.replicas.iter().filter(|r| r.live && !r.leaving && !r.ready).count() as u32
    }

    /// Replicas ready or starting, not leaving.
    pub fn active(&self) -> u32 {
        self.active
    }

    /// Ask for a replica; returns its id and generation (for its ready event).
    pub fn add(&mut self, pool: Pool, now: f64, ready_at: f64) -> (usize, u32) {
        self.active += 1;
        let replica = |generation| Replica {
            requested_at: now,
            ready_at,
            pool,
            busy: 0,
            ready: false,
            leaving: false,
            generation,
            live: true,
        };
        match self.free_ids.pop() {
            Some(id) => {
                let generation = self.replicas[id].generation.wrapping_add(1);
                self.replicas[id] = replica(generation);
                (id, generation)
            }
            None => {
                self.replicas.push(replica(0));
                (self.replicas.len() - 1, 0)
            }
        }
    }

    /// The ready event of `id`, if it is still the same replica and still wanted.
    pub fn mark_ready(&mut self, id: usize, generation: u32) -> bool {
        let Some(r) = self.replicas.get_mut(id) else { return false };
        if !r.live || r.generation != generation || r.ready {
            return false;
        }
        r.ready = true;
        self.ready += 1;
        for _ in 0..self.container_concurrency {
            self.free_slots.push((id, generation));
        }
        true
    }

    /// Take a free slot on a ready replica, if there is one.
    pub fn take_slot(&mut self) -> Option<usize> {
        if self.container_concurrency == 0 {
            return self.take_unlimited();
        }
        while let Some((id, generation)) = self.free_slots.pop() {
            let r = &mut self.replicas[id];
            if r.live && r.generation == generation && r.ready && !r.leaving {
                r.busy += 1;
                return Some(id);
            }
        }
        None
    }

    fn take_unlimited(&mut self) -> Option<usize> {
        let n = self.replicas.len();
        for step in 0..n {
            let id = (self.next_unlimited + step) % n;
            let r = &mut self.replicas[id];
            if r.live && r.ready && !r.leaving {
                r.busy += 1;
                self.next_unlimited = id + 1;
                return Some(id);
            }
        }
        None
    }

    /// A request on `id` finished at `now`.
    pub fn release(&mut self, id: usize, now: f64) {
        let r = &mut self.replicas[id];
        r.busy = r.busy.saturating_sub(1);
        if r.leaving {
            if r.busy == 0 {
                self.remove(id, now);
            }
        } else if self.container_concurrency > 0 {
            self.free_slots.push((id, r.generation));
        }
    }

    /// Scale `pool` to `wanted` replicas (not counting leaving ones); returns the new replicas to start.
    pub fn scale(&mut self, pool: Pool, wanted: u32, now: f64) -> u32 {
        let have = self.replicas.iter().filter(|r| r.live && !r.leaving && r.pool == pool).count() as u32;
        if wanted >= have {
            return wanted - have;
        }
        let mut excess = have - wanted;
        // ReplicaSet order: starting before ready, then idle before busy.
        for pass in 0..3 {
            for id in 0..self.replicas.len() {
                if excess == 0 {
                    return 0;
                }
                let r = &self.replicas[id];
                if !r.live || r.leaving || r.pool != pool {
                    continue;
                }
                let pick = match pass {
                    0 => !r.ready,
                    1 => r.ready && r.busy == 0,
                    _ => true,
                };
                if pick {
                    excess -= 1;
                    self.active -= 1;
                    self.ready -= u32::from(r.ready);
                    if r.busy == 0 {
                        self.remove(id, now);
                    } else {
                        self.replicas[id].leaving = true;
                    }
                }
            }
        }
        0
    }

    fn remove(&mut self, id: usize, now: f64) {
        let r = &mut self.replicas[id];
        let seconds = (now - r.requested_at).max(0.0);
        match r.pool {
            Pool::Regular => self.usage.regular_seconds += seconds,
            Pool::Burst => self.usage.burst_seconds += seconds,
        }
        r.live = false;
        self.free_ids.push(id);
        // Free-slot entries of this replica go stale through the generation check; compact when they pile up.
        if self.free_slots.len() > 64 + 4 * self.replicas.len() * self.container_concurrency as usize {
            let replicas = &self.replicas;
            self.free_slots.retain(|&(i, g)| replicas[i].live && replicas[i].generation == g);
        }
    }

    /// End of the replay: pay for every replica still there.
    pub fn close(&mut self, now: f64) {
        for id in 0..self.replicas.len() {
            if self.replicas[id].live {
                let r = &self.replicas[id];
                self.ready -= u32::from(r.ready && !r.leaving);
                self.remove(id, now);
            }
        }
    }
}

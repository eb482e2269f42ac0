//! Replica choice in the engine replay. Knative's activator (and `knative-kpa` here) sends a request to the
//! least loaded ready replica. Swell's gateway, for a revision with a scraped engine, balances by `engine`
//! (`swell_activator::balancer`, docs/llm-serving.md): the replay models that rule on the engines' own
//! state, with the same thresholds, so that `swell` is replayed with the gateway it has live.
//!
//! - A replica is *saturated* when more than [`QUEUE_LIMIT`] requests wait in its engine or its KV-cache
//!   use is above [`KV_LIMIT`]; only the best class present (healthy, else saturated) is considered.
//! - Its *load* is its requests (running + waiting) plus the waiting ones once more plus KV use ×
//!   [`KV_WEIGHT`].
//! - **Prefix hit**: the prompt's block hashes (at most [`MAX_CHUNKS`], as the gateway hashes at most
//!   that many 64-byte chunks, about 16 tokens each like an engine block) are looked up in order up to the
//!   first miss; the replica of the longest match in the class wins unless its load exceeds the least
//!   loaded's by more than [`HIT_SLACK`].
//! - **New prefix**: the first hash picks a replica by rendezvous hashing, taken unless its load exceeds the
//!   least loaded's by more than [`NEW_SLACK`].
//! - Otherwise the least loaded, lowest id on a tie.
//! - **Held for capacity on its way**: while replicas are starting and every candidate is saturated, no
//!   replica: the request waits at the gateway for a starting replica (or for an engine to drain) instead of
//!   joining a saturated engine's queue, which it would not leave when the new replicas are up; for at most
//!   [`HOLD_LIMIT_SECONDS`], counted from its arrival.
//!
//! As in the gateway, only a request placed on arrival carries its prefix key; one that waited goes where the
//! least-loaded rule sends it, keyless. Where the replay differs from the gateway: it reads each engine's state at the instant of the choice
//! (live, a scrape up to one interval old plus this gateway's own in-flight count), and its prefix index is
//! not bounded (live: 64k entries with CLOCK eviction, room for the few thousand prompts of a trace).

use std::collections::HashMap;

// The thresholds and weights of `swell_activator`'s `engine` policy, restated because the simulator does
// not link the data path; the test `engine_routing_uses_the_gateways_thresholds` (crates/sim/tests/engine.rs)
// keeps them equal.
/// More requests than this waiting inside the engine make a replica saturated.
pub const QUEUE_LIMIT: u32 = 5;
/// KV-cache use above this makes a replica saturated.
pub const KV_LIMIT: f64 = 0.8;
/// A full KV cache weighs as much load as this many requests.
pub const KV_WEIGHT: f64 = 4.0;
/// How much busier than the least loaded a replica with a cached prefix may be and still get it.
pub const HIT_SLACK: f64 = 8.0;
/// The same for the rendezvous replica of a new prefix.
pub const NEW_SLACK: f64 = 2.0;
/// Most prefix hashes looked at per prompt.
pub const MAX_CHUNKS: usize = 256;
/// The longest a request is held for starting replicas (`swell_activator::HOLD_LIMIT`), in seconds.
pub const HOLD_LIMIT_SECONDS: f64 = 60.0;

/// How a replay picks the replica for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Routing {
    /// The least loaded ready replica (Knative's activator; Swell's `least-request`).
    #[default]
    LeastLoaded,
    /// Swell's `engine` policy: engine saturation and prompt-prefix affinity.
    Engine,
}

/// One ready replica with room, as the choice sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub id: usize,
    pub generation: u32,
    /// Requests in its engine, running and waiting.
    pub requests: u32,
    pub waiting: u32,
    pub kv_cache_use: f64,
}

impl Candidate {
    fn saturated(&self) -> bool {
        self.waiting > QUEUE_LIMIT || self.kv_cache_use > KV_LIMIT
    }

    fn load(&self) -> f64 {
        f64::from(self.requests) + f64::from(self.waiting) + self.kv_cache_use * KV_WEIGHT
    }
}

/// Which replica last served each prefix hash: (replica id, its generation), so the entries of a replica
/// that left never resolve to a new one in its slot.
#[derive(Debug, Default)]
pub(crate) struct PrefixAffinity {
    served_by: HashMap<u64, (usize, u32)>,
}

impl PrefixAffinity {
    /// The replica for a prompt with block `hashes` among `candidates` (ready, with room); None when there
    /// are none, or when `replicas_starting` and every candidate is saturated (the request is held).
    pub fn choose(&self, hashes: &[u64], candidates: &[Candidate], replicas_starting: bool) -> Option<usize> {
        let healthy = candidates.iter().any(|c| !c.saturated());
        if replicas_starting && !healthy {
            return None;
        }
        let class = || candidates.iter().filter(move |c| !healthy || !c.saturated());
        let least = class().min_by(|a, b| a.load().total_cmp(&b.load()).then(a.id.cmp(&b.id)))?;
        let usable = |c: &Candidate, slack: f64| c.load() <= least.load() + slack;
        let hashes = &hashes[..hashes.len().min(MAX_CHUNKS)];
        // The longest match whose replica is in the class and not too busy.
        let mut hit: Option<usize> = None;
        for hash in hashes {
            let Some(&(id, generation)) = self.served_by.get(hash) else { break };
            if let Some(c) = class().find(|c| c.id == id && c.generation == generation && usable(c, HIT_SLACK)) {
                hit = Some(c.id);
            }
        }
        if hit.is_some() {
            return hit;
        }
        if let Some(&first) = hashes.first()
            && let Some(affine) = class().max_by_key(|c| rendezvous(first, c.id))
            && usable(affine, NEW_SLACK)
        {
            return Some(affine.id);
        }
        Some(least.id)
    }

    /// Remember that replica `id` (of `generation`) served a prompt with these hashes.
    pub fn record(&mut self, hashes: &[u64], id: usize, generation: u32) {
        for &hash in &hashes[..hashes.len().min(MAX_CHUNKS)] {
            self.served_by.insert(hash, (id, generation));
        }
    }
}

/// The rendezvous score of a replica for a prefix family.
fn rendezvous(first_hash: u64, id: usize) -> u64 {
    crate::trace::mix(first_hash, id as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: usize, requests: u32, waiting: u32, kv_cache_use: f64) -> Candidate {
        Candidate { id, generation: 0, requests, waiting, kv_cache_use }
    }

    #[test]
    fn a_family_sticks_to_its_replica_until_it_saturates() {
        let mut affinity = PrefixAffinity::default();
        let idle = [replica(0, 0, 0, 0.0), replica(1, 0, 0, 0.0), replica(2, 0, 0, 0.0)];
        let family = [11, 12, 13];
        let first = affinity.choose(&family, &idle, false).expect("a replica");
        affinity.record(&family, first, 0);
        // Busier than the others, but within the hit slack: the cached prefix wins.
        let mut busy = idle;
        busy[first] = replica(first, 4, 2, 0.3);
        assert_eq!(affinity.choose(&[11, 12, 13, 14], &busy, false), Some(first));
        // Saturated (more than 5 waiting): the family moves to the least loaded healthy replica.
        busy[first] = replica(first, 9, 7, 0.3);
        let moved = affinity.choose(&[11, 12, 13, 14], &busy, false).expect("a replica");
        assert_ne!(moved, first);
        // Every replica saturated: affinity applies among them again, unless replicas are starting: then
        // the request waits for them.
        let all_saturated = [replica(0, 9, 6, 0.9), replica(1, 9, 6, 0.9), replica(2, 9, 6, 0.9)];
        assert_eq!(affinity.choose(&family, &all_saturated, false), Some(first));
        assert_eq!(affinity.choose(&family, &all_saturated, true), None);
        assert!(affinity.choose(&family, &busy, true).is_some(), "one healthy replica: no hold");
        // A replica that left and came back in the same slot (a new generation) is not the family's: busier
        // than another by more than either slack, it is not chosen (as the family's it would be).
        let other = (first + 1) % 3;
        let reborn = [Candidate { generation: 1, ..replica(first, 5, 0, 0.0) }, replica(other, 0, 0, 0.0)];
        assert_eq!(affinity.choose(&family, &reborn, false), Some(other));
        // No key: the least loaded, lowest id on a tie.
        assert_eq!(
            affinity.choose(&[], &[replica(3, 2, 0, 0.0), replica(1, 1, 0, 0.0), replica(2, 1, 0, 0.0)], false),
            Some(1)
        );
        assert_eq!(affinity.choose(&[], &[], false), None);
    }

    #[test]
    fn a_new_family_goes_to_its_rendezvous_replica_unless_it_is_much_busier() {
        let affinity = PrefixAffinity::default();
        let idle: Vec<Candidate> = (0..4).map(|id| replica(id, 0, 0, 0.0)).collect();
        let chosen = affinity.choose(&[77], &idle, false).expect("a replica");
        assert_eq!(Some(chosen), (0..4).max_by_key(|&id| rendezvous(77, id)));
        let mut loaded = idle.clone();
        loaded[chosen] = replica(chosen, 3, 0, 0.0);
        assert_ne!(
            affinity.choose(&[77], &loaded, false),
            Some(chosen),
            "3 more requests than the least loaded is past the slack"
        );
    }
}

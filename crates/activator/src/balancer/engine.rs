//! `loadBalancing: engine`: replica choice by the engines' own signals and by prompt-prefix affinity,
//! "sticky until saturated" (llm-d's rule). Among the replicas with a free `containerConcurrency` slot:
//!
//! 1. **Sort by health.** A replica is *saturated* when its engine last reported more than
//!    [`QUEUE_LIMIT`] requests waiting or KV-cache use above [`KV_LIMIT`] (the defaults of llm-d's
//!    saturation detector); *stale* when its scrapes have been failing (it may be overloaded or gone, so
//!    it comes last, after the saturated ones); *healthy* otherwise, including a replica not scraped yet,
//!    which is judged by this gateway's in-flight count alone. Only the best class present is considered:
//!    when every replica is saturated, steps 3 and 4 still apply among them (a cached prefix saves the
//!    prefill that is the bottleneck, and spreading would only move the queue); when every replica is
//!    stale, the least loaded of them.
//! 2. **Load** of a replica, in requests: the larger of this gateway's in-flight count there and the
//!    engine's running + waiting (other gateways' traffic shows only in the latter, requests sent since
//!    the last scrape only in the former), plus the waiting queue once more (queued requests are what delay
//!    a new request's first token), plus KV use × [`KV_WEIGHT`] (a fuller cache has less room to batch).
//! 3. **Prefix hit.** The prompt's chunk hashes are looked up in the index, shortest prefix first, up to
//!    the first miss; the replica of the longest match that is healthy wins, unless its load exceeds the
//!    least loaded healthy replica's by more than [`HIT_SLACK`] (a hot prefix would otherwise pile onto
//!    one replica between two scrapes). A longest match on a saturated replica falls back to a shorter
//!    match on a healthy one: that is where stickiness ends.
//! 4. **New prefix.** With no usable hit, the first chunk's hash picks a replica by rendezvous hashing
//!    (highest `mix(chunk, replica address)`) among the healthy ones, so a new prefix family lands on the
//!    same replica every time and in every gateway that shares no state with this one; it is taken unless
//!    its load exceeds the least loaded's by more than [`NEW_SLACK`] (a new family is worth little yet).
//! 5. **Otherwise** (no key, or the affine replica is too busy) the least loaded healthy replica, ties
//!    broken by rotation.
//!
//! **Held for capacity on its way.** While the platform has replicas starting, a request that finds every
//! ready replica with a slot saturated gets none: it waits in the throttler's queue instead of joining a
//! saturated engine's queue, where it would stay even after the new replicas are up (an engine does not
//! hand queued requests back). It goes out when a replica turns ready, a scrape shows one unsaturated,
//! nothing is starting any more, or it has been held for the throttler's `HOLD_LIMIT`. For this rule a replica also counts as saturated when this gateway has
//! more than [`QUEUE_LIMIT`] requests on it beyond what its engine last reported running: that covers a
//! replica not scraped yet (a new one would otherwise take the whole queue before its first scrape) and
//! requests sent since the last scrape. A stale replica never causes a hold. Autoscaling's crediting of
//! starting replicas (`credit-starting-replicas`) counts on exactly this: the requests it credits wait for
//! the starting replicas instead of queueing inside the ready ones.
//!
//! After each pick with a key, every chunk hash of the key is recorded as served by the chosen replica,
//! so the family follows it. Replicas are named in the index by a member id that a replica gets when it
//! joins the ready set and loses when it leaves, so entries of a replica that left can never resolve,
//! not even to a new replica that later reuses its address.

use super::prefix::{INDEX_CAPACITY, PrefixIndex, PrefixKey, finish};
use crate::endpoint::{Endpoint, EngineReport, EngineSignals};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// More requests than this waiting inside the engine make a replica saturated.
pub const QUEUE_LIMIT: u32 = 5;
/// KV-cache use above this makes a replica saturated.
pub const KV_LIMIT: f64 = 0.8;
/// A full KV cache weighs as much load as this many requests.
pub const KV_WEIGHT: f64 = 4.0;
/// How much busier (in load) than the least loaded a replica with a cached prefix may be and still get
/// the request: the prefill it saves is worth a few requests' wait.
pub const HIT_SLACK: f64 = 8.0;
/// The same for the consistent-hash replica of a new prefix.
pub const NEW_SLACK: f64 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    Healthy,
    Saturated,
    Stale,
}

fn saturated(s: &EngineSignals) -> bool {
    s.waiting > QUEUE_LIMIT || s.kv_cache_use > KV_LIMIT
}

fn load(in_flight: u32, s: &EngineSignals) -> f64 {
    let on_replica = in_flight.max(s.running.saturating_add(s.waiting));
    f64::from(on_replica) + f64::from(s.waiting) + KV_WEIGHT * s.kv_cache_use
}

/// Saturated for the hold rule (module doc): by its last fresh report, or by what this gateway has sent
/// beyond the requests the engine reported running.
fn full_for_hold(endpoint: &Endpoint) -> bool {
    let beyond_running = |running: u32| endpoint.in_flight().saturating_sub(running) > QUEUE_LIMIT;
    match endpoint.engine() {
        EngineReport::Fresh(s) => saturated(&s) || beyond_running(s.running),
        EngineReport::Unknown => beyond_running(0),
        EngineReport::Stale(_) => false,
    }
}

fn assess(endpoint: &Endpoint) -> (Health, f64) {
    let in_flight = endpoint.in_flight();
    match endpoint.engine() {
        EngineReport::Unknown => (Health::Healthy, f64::from(in_flight)),
        EngineReport::Fresh(s) if saturated(&s) => (Health::Saturated, load(in_flight, &s)),
        EngineReport::Fresh(s) => (Health::Healthy, load(in_flight, &s)),
        EngineReport::Stale(s) => (Health::Stale, load(in_flight, &s)),
    }
}

/// A deterministic hash of a replica's address, the same in every gateway process.
fn address_hash(addr: SocketAddr) -> u64 {
    let bits = match addr.ip() {
        IpAddr::V4(ip) => u128::from(u32::from(ip)),
        IpAddr::V6(ip) => u128::from(ip),
    };
    finish(finish(bits as u64 ^ (bits >> 64) as u64 ^ 0x5357_454c_4c52_4550) ^ u64::from(addr.port()))
}

/// A replica of the ready set as the index names it.
#[derive(Debug, Clone, Copy)]
struct Member {
    addr: SocketAddr,
    id: u32,
    address_hash: u64,
}

#[derive(Debug)]
pub(crate) struct EnginePicker {
    /// Parallel to the throttler's ready list, same order.
    members: Vec<Member>,
    next_id: u32,
    index: PrefixIndex,
}

impl Default for EnginePicker {
    fn default() -> Self {
        Self::with_capacity(INDEX_CAPACITY)
    }
}

impl EnginePicker {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        EnginePicker { members: Vec::new(), next_id: 0, index: PrefixIndex::new(capacity) }
    }

    /// The ready set changed: replicas that stay keep their ids, new ones get fresh ids, and the ids of
    /// those gone are never handed out again (a u32 lasts four billion joins).
    pub(crate) fn sync(&mut self, endpoints: &[Arc<Endpoint>]) {
        let same = self.members.len() == endpoints.len()
            && self.members.iter().zip(endpoints).all(|(m, e)| m.addr == e.addr());
        if same {
            return;
        }
        let mut members = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let addr = endpoint.addr();
            let member = self.members.iter().find(|m| m.addr == addr).copied().unwrap_or_else(|| {
                self.next_id = self.next_id.wrapping_add(1);
                Member { addr, id: self.next_id, address_hash: address_hash(addr) }
            });
            members.push(member);
        }
        self.members = members;
    }

    /// Forget the prefix index (the revision no longer balances by engine).
    pub(crate) fn forget(&mut self) {
        self.index.clear();
    }

    #[cfg(test)]
    pub(crate) fn indexed(&self) -> usize {
        self.index.len()
    }

    /// The index into `endpoints` of the replica for the next request (see the module doc); with
    /// `replicas_starting`, None while every replica with a slot is saturated.
    pub(crate) fn pick(
        &mut self,
        endpoints: &[Arc<Endpoint>],
        container_concurrency: u32,
        cursor: &mut usize,
        key: Option<&PrefixKey>,
        replicas_starting: bool,
    ) -> Option<usize> {
        let n = endpoints.len();
        if n == 0 {
            return None;
        }
        // The throttler syncs on every change of its ready set; this only covers direct callers.
        self.sync(endpoints);
        let has_slot = |e: &Endpoint| container_concurrency == 0 || e.in_flight() < container_concurrency;
        // The least loaded of the healthiest class, scanning from the cursor so equal loads take turns.
        let mut least: Option<(usize, Health, f64)> = None;
        for step in 0..n {
            let i = (*cursor + step) % n;
            if !has_slot(&endpoints[i]) {
                continue;
            }
            let (health, load) = assess(&endpoints[i]);
            if least.is_none_or(|(_, h, l)| (health, load) < (h, l)) {
                least = Some((i, health, load));
            }
        }
        let (least, health, min_load) = least?;
        if replicas_starting && endpoints.iter().filter(|e| has_slot(e)).all(|e| full_for_hold(e)) {
            return None;
        }
        let key = key.filter(|k| !k.is_empty());
        let chosen = match key {
            // Among saturated replicas too: when all are saturated, a cached prefix saves the prefill that
            // is the bottleneck, while spreading would only move the queue. Stale replicas get no affinity.
            Some(key) if health != Health::Stale => {
                self.affine(endpoints, container_concurrency, key, health, min_load).unwrap_or(least)
            }
            _ => least,
        };
        *cursor = (chosen + 1) % n;
        if let Some(key) = key {
            let id = self.members[chosen].id;
            for &hash in key.hashes() {
                self.index.insert(hash, id);
            }
        }
        Some(chosen)
    }

    /// The replica prefix affinity asks for, if it is in the healthiest class present (`class`), has a slot
    /// and is not too busy: the longest indexed match, else the rendezvous-hash replica of the first chunk.
    fn affine(
        &self,
        endpoints: &[Arc<Endpoint>],
        cc: u32,
        key: &PrefixKey,
        class: Health,
        min_load: f64,
    ) -> Option<usize> {
        let usable = |i: usize, slack: f64| {
            let e = &endpoints[i];
            let (health, load) = assess(e);
            (cc == 0 || e.in_flight() < cc) && health == class && load <= min_load + slack
        };
        let mut best = None;
        // Consecutive chunks nearly always name the same replica: resolve each id once per run of it.
        let mut resolved: Option<(u32, Option<usize>)> = None;
        for &hash in key.hashes() {
            let Some(id) = self.index.get(hash) else { break };
            let at = match resolved {
                Some((last, at)) if last == id => at,
                _ => {
                    let at = self.members.iter().position(|m| m.id == id).filter(|&i| usable(i, HIT_SLACK));
                    resolved = Some((id, at));
                    at
                }
            };
            if at.is_some() {
                best = at;
            }
        }
        if best.is_some() {
            return best;
        }
        let first = key.hashes()[0];
        let mut winner: Option<(usize, u64)> = None;
        for (i, member) in self.members.iter().enumerate() {
            let e = &endpoints[i];
            if (cc != 0 && e.in_flight() >= cc) || assess(e).0 != class {
                continue;
            }
            let score = finish(first ^ member.address_hash);
            if winner.is_none_or(|(_, s)| score > s) {
                winner = Some((i, score));
            }
        }
        winner.map(|(i, _)| i).filter(|&i| usable(i, NEW_SLACK))
    }
}

#[cfg(test)]
mod tests;

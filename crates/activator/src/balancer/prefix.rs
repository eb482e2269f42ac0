//! Prompt-prefix affinity without a tokenizer, as GAIE's approximate prefix scorer does it: the prompt's
//! bytes are cut into fixed [`CHUNK_BYTES`] chunks and hashed as a chain, `h_i = mix(h_{i-1}, chunk_i)`, so
//! `h_i` stands for the whole prefix up to and including chunk `i` and two prompts share their first `k`
//! hashes exactly when they share their first `k` chunks. Bytes are hashed, not characters: a chunk may end
//! inside a multi-byte character, which changes nothing, as equal prefixes still give equal chunks. Only
//! whole chunks count: the trailing part is usually the request's own question and would only fill the
//! index with entries nobody shares.
//!
//! [`PrefixIndex`] remembers which replica last served each prefix hash: a fixed-capacity open-addressing
//! table (linear probing, deletion by backward shift, so no tombstones and no rehash) whose entries are
//! evicted by CLOCK (second chance), an LRU approximation that costs one bit per entry. It allocates once,
//! on first use, and never grows.

/// Bytes per chunk: GAIE's default of 64 characters, about 16 tokens of English text.
pub const CHUNK_BYTES: usize = 64;

/// Most chunks hashed per prompt (GAIE's `maxPrefixBlocksToMatch`): 16 KiB of text, about 4k tokens.
/// Longer prompts are told apart by their first 16 KiB only.
pub const MAX_CHUNKS: usize = 256;

/// Index entries per throttler. In a table kept at most half full, at 16 bytes a slot, this is 2 MiB per
/// revision that balances by `engine` (nothing for the other policies, nor before its first prompt): room
/// for 256 prompts of the full 4k-token depth (a million tokens: about what a few replicas' KV caches
/// hold), or far more shorter ones.
pub const INDEX_CAPACITY: usize = 64 * 1024;

const SEED: u64 = 0x5357_454c_4c50_4658; // "SWELLPFX"
const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// The chained hashes of a prompt's leading chunks, held inline (no allocation to build or pass one).
#[derive(Clone, PartialEq, Eq)]
pub struct PrefixKey {
    len: u16,
    hashes: [u64; MAX_CHUNKS],
}

impl std::fmt::Debug for PrefixKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixKey").field("chunks", &self.len).field("first", &self.hashes().first()).finish()
    }
}

impl PrefixKey {
    /// The key of a prompt's text (for chat requests, the messages as the gateway serialises them): one
    /// hash per whole [`CHUNK_BYTES`] chunk, at most [`MAX_CHUNKS`]. A prompt shorter than one chunk has
    /// an empty key and gets no affinity.
    pub fn from_prompt(text: &str) -> Self {
        Self::from_chunks(text.as_bytes().chunks_exact(CHUNK_BYTES))
    }

    /// The key of arbitrary chunks, hashed in order as the chain above (the first [`MAX_CHUNKS`] count).
    /// For tests and for callers that already have blocks, such as a trace's block ids.
    pub fn from_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut key = PrefixKey { len: 0, hashes: [0; MAX_CHUNKS] };
        let mut previous = SEED;
        for (slot, chunk) in key.hashes.iter_mut().zip(chunks) {
            previous = chain(previous, chunk);
            *slot = previous;
            key.len += 1;
        }
        key
    }

    /// The chained hashes, one per chunk.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One link of the chain: the previous hash and a chunk's bytes to a new hash. Four independent lanes
/// take a word each in turn (so the multiplies overlap instead of waiting on each other), then fold with
/// the length and a finaliser that spreads every input bit over the whole result.
pub(crate) fn chain(previous: u64, chunk: &[u8]) -> u64 {
    let mut lanes = [previous ^ K1, previous.rotate_left(17) ^ K2, previous.rotate_left(31), !previous];
    let mut blocks = chunk.chunks_exact(32);
    for block in blocks.by_ref() {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = absorb(*lane, word_at(word));
        }
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for (lane, word) in lanes.iter_mut().zip(words.by_ref()) {
        *lane = absorb(*lane, word_at(word));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        lanes[3] = absorb(lanes[3], u64::from_le_bytes(tail));
    }
    let folded = lanes[0] ^ lanes[1].rotate_left(13) ^ lanes[2].rotate_left(29) ^ lanes[3].rotate_left(43);
    // The length keeps a chunk and the same chunk with zero bytes appended apart.
    finish(folded ^ (chunk.len() as u64).wrapping_mul(K2))
}

fn word_at(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("chunks_exact(8) yields eight bytes"))
}

fn absorb(lane: u64, word: u64) -> u64 {
    (lane ^ word.wrapping_mul(K2)).rotate_left(31).wrapping_mul(K1)
}

/// A 64-bit finaliser (SplitMix64's constants): a bijection in which each input bit flips about half
/// of the output bits.
pub(crate) fn finish(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A table slot: empty, or a prefix hash and the replica that last served it.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    hash: u64,
    replica: u32,
    used: bool,
    /// CLOCK's second-chance bit: set on every insertion or update, cleared as the hand passes.
    referenced: bool,
}

/// Which replica (by the balancer's member id) last served each prefix hash, bounded to `capacity`
/// entries; the least recently used (approximately) goes first. The slots are the entries themselves, so
/// a lookup touches one cache line per probe.
#[derive(Debug)]
pub(crate) struct PrefixIndex {
    capacity: usize,
    len: usize,
    /// Open addressing, twice the capacity rounded up to a power of two, so at most half full and probe
    /// runs stay short. Empty until first use.
    table: Vec<Slot>,
    /// CLOCK's hand sweeps the table itself, skipping empty slots.
    hand: usize,
}

impl PrefixIndex {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0 && capacity <= 1 << 30, "prefix index capacity {capacity} out of range");
        PrefixIndex { capacity, len: 0, table: Vec::new(), hand: 0 }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Forget everything and give the memory back (the revision stopped balancing by prefix).
    pub(crate) fn clear(&mut self) {
        *self = PrefixIndex::new(self.capacity);
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    fn home(&self, hash: u64) -> usize {
        // The high bits: the low ones feed the rendezvous hash, keep the two independent.
        (hash >> 32) as usize & self.mask()
    }

    /// The table slot holding `hash`, or the empty slot that ends its probe run.
    fn probe(&self, hash: u64) -> Result<usize, usize> {
        let mut pos = self.home(hash);
        loop {
            let slot = &self.table[pos];
            if !slot.used {
                return Err(pos);
            }
            if slot.hash == hash {
                return Ok(pos);
            }
            pos = (pos + 1) & self.mask();
        }
    }

    /// The replica that last served the prefix `hash`.
    pub(crate) fn get(&self, hash: u64) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        self.probe(hash).ok().map(|pos| self.table[pos].replica)
    }

    /// Remember that `replica` served the prefix `hash`.
    pub(crate) fn insert(&mut self, hash: u64, replica: u32) {
        if self.table.is_empty() {
            // The one allocation, on first use: revisions that never see a prompt cost nothing.
            self.table = vec![Slot::default(); (self.capacity * 2).next_power_of_two()];
        }
        let new = Slot { hash, replica, used: true, referenced: true };
        match self.probe(hash) {
            Ok(pos) => self.table[pos] = new,
            Err(mut pos) => {
                if self.len == self.capacity {
                    self.evict();
                    // The eviction may have shifted this probe run: look for the end again.
                    pos = self.probe(hash).expect_err("hash was absent");
                } else {
                    self.len += 1;
                }
                self.table[pos] = new;
            }
        }
    }

    /// CLOCK: sweep from the hand, giving referenced entries a second chance, and remove the first that
    /// has had it.
    fn evict(&mut self) {
        loop {
            let pos = self.hand;
            self.hand = (self.hand + 1) & self.mask();
            let slot = &mut self.table[pos];
            if !slot.used {
                continue;
            }
            if std::mem::take(&mut slot.referenced) {
                continue;
            }
            // An entry shifted back into this slot is skipped until the hand comes round again: harmless.
            self.remove_slot(pos);
            return;
        }
    }

    /// Empty a table slot and shift later members of its probe run back, so lookups never need tombstones.
    fn remove_slot(&mut self, pos: usize) {
        let mask = self.mask();
        self.table[pos].used = false;
        let mut hole = pos;
        let mut next = pos;
        loop {
            next = (next + 1) & mask;
            let slot = self.table[next];
            if !slot.used {
                return;
            }
            let home = self.home(slot.hash);
            // The entry may move back into the hole only if the hole lies between its home and where it
            // sits (cyclically); otherwise a lookup starting at its home would stop at the hole.
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.table[hole] = slot;
                self.table[next].used = false;
                hole = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_prefixes_share_leading_hashes() {
        let system = "You are a helpful assistant. ".repeat(10); // 290 bytes: four whole chunks
        let first = format!("{system}What is the capital of France? Answer in one word.");
        let a = PrefixKey::from_prompt(&first);
        let b = PrefixKey::from_prompt(&format!("{system}Summarise this text for me in three sentences, please."));
        assert_eq!(a.hashes().len(), 5);
        assert_eq!(b.hashes().len(), 5);
        assert_eq!(a.hashes()[..4], b.hashes()[..4]);
        assert_ne!(a.hashes()[4], b.hashes()[4]);
        assert_eq!(a, PrefixKey::from_prompt(&first));
        // A difference in the first chunk changes every later hash: the chain stands for the whole prefix.
        let c = PrefixKey::from_prompt(&format!("X{}", &first[1..]));
        assert_eq!(c.hashes().len(), 5);
        assert!(a.hashes().iter().zip(c.hashes()).all(|(x, y)| x != y));
    }

    #[test]
    fn short_prompts_have_no_key_and_long_ones_are_bounded() {
        assert!(PrefixKey::from_prompt("").is_empty());
        assert!(PrefixKey::from_prompt(&"x".repeat(CHUNK_BYTES - 1)).is_empty());
        assert_eq!(PrefixKey::from_prompt(&"x".repeat(CHUNK_BYTES)).hashes().len(), 1);
        assert_eq!(PrefixKey::from_prompt(&"x".repeat(CHUNK_BYTES * MAX_CHUNKS * 3)).hashes().len(), MAX_CHUNKS);
        // Chunks cut through multi-byte characters without trouble.
        assert_eq!(PrefixKey::from_prompt(&"é".repeat(CHUNK_BYTES)).hashes().len(), 2);
    }

    #[test]
    fn hashes_are_fixed_across_runs_and_platforms() {
        // Pinned values: gateways that share no state still agree on a prompt's key (and so on its
        // consistent-hash replica), and a change to the function shows here.
        let key = PrefixKey::from_prompt(&"The quick brown fox jumps over the lazy dog. ".repeat(3));
        assert_eq!(key.hashes(), [0x66b9_e5e4_a9a3_e163, 0xfc8e_45d6_0230_79e4]);
        let chunks = PrefixKey::from_chunks([b"a".as_slice(), b"bc".as_slice()]);
        assert_eq!(chunks.hashes(), [0xe159_d987_5337_0536, 0xc07f_47a4_360b_40af]);
        assert_eq!(PrefixKey::from_chunks([b"a".as_slice()]).hashes()[0], chunks.hashes()[0]);
    }

    #[test]
    fn hash_spreads_single_bit_changes() {
        let base = [7u8; CHUNK_BYTES];
        let h = chain(SEED, &base);
        for byte in 0..CHUNK_BYTES {
            let mut flipped = base;
            flipped[byte] ^= 1;
            let diff = (chain(SEED, &flipped) ^ h).count_ones();
            assert!((12..=52).contains(&diff), "flipping byte {byte} changed {diff} bits");
        }
    }

    #[test]
    fn index_finds_updates_and_stays_bounded() {
        let mut index = PrefixIndex::new(1000);
        assert_eq!(index.get(1), None);
        index.insert(1, 7);
        index.insert(2, 8);
        assert_eq!((index.get(1), index.get(2)), (Some(7), Some(8)));
        index.insert(1, 9);
        assert_eq!(index.get(1), Some(9));
        assert_eq!(index.len(), 2);
        for i in 0..100_000u64 {
            index.insert(finish(i), (i % 5) as u32);
            assert!(index.len() <= 1000);
        }
        assert_eq!(index.len(), 1000);
        // Every entry is still reachable from its home after all the shifting, with its own replica.
        for slot in index.table.iter().filter(|slot| slot.used) {
            assert_eq!(index.get(slot.hash), Some(slot.replica));
        }
        // CLOCK keeps mostly recent entries (an entry outlives at least one pass of the hand after its
        // insertion, so not strictly the last 1000: 855 with these inputs) and none of the oldest.
        let recent = (99_000..100_000u64).filter(|&i| index.get(finish(i)) == Some((i % 5) as u32)).count();
        assert!(recent >= 700, "only {recent} of the last 1000 insertions kept");
        assert!((0..1000u64).all(|i| index.get(finish(i)).is_none()));
        assert_eq!(index.table.iter().filter(|slot| slot.used).count(), 1000);
    }

    #[test]
    fn clock_keeps_entries_in_use() {
        let mut index = PrefixIndex::new(4);
        for h in 1..=4 {
            index.insert(finish(h), 0);
        }
        // The first eviction finds every entry referenced: the hand clears all four and takes one of them.
        index.insert(finish(5), 0);
        let survivors: Vec<u64> = (1..=4).filter(|&h| index.get(finish(h)).is_some()).collect();
        assert_eq!(survivors.len(), 3);
        // Using one survivor again gives it a second chance: the next two evictions take the other two.
        let kept = survivors[1];
        index.insert(finish(kept), 9);
        index.insert(finish(6), 0);
        index.insert(finish(7), 0);
        let left: Vec<u64> = (1..=7).filter(|&h| index.get(finish(h)).is_some()).collect();
        assert_eq!(left, {
            let mut expected = vec![kept, 5, 6, 7];
            expected.sort();
            expected
        });
        assert_eq!(index.get(finish(kept)), Some(9));
    }
}

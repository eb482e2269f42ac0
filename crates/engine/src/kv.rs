//! The KV cache as vLLM's block manager sees it: a fixed number of blocks, each either free, held by running
//! sequences, or cached (a full prompt block that no sequence holds, kept under its chained hash so a later prompt
//! with the same prefix skips its prefill). Cached blocks count as free for admission and usage, and are evicted
//! least-recently-released first when a fresh block is needed.
//!
//! Only counts and hashes are kept (no block ids): the timing model needs how many blocks are in use and which
//! prefixes are cached, nothing else.

use std::collections::{BTreeMap, HashMap};

/// A block held by a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// A full prompt block registered under its hash; other sequences may hold it too.
    Cached(u64),
    /// A block only this sequence can use: partial, generated tokens, or a duplicate of a cached prefix.
    Private,
}

#[derive(Debug)]
struct Entry {
    /// Sequences holding the block; 0 means it sits in the LRU.
    refs: u32,
    /// Its key in `lru` while `refs` is 0.
    stamp: u64,
}

#[derive(Debug)]
pub(crate) struct Kv {
    total: u32,
    /// Blocks held by at least one sequence.
    used: u32,
    /// Every hashed block, held or cached. Only looked up, never iterated, so its order cannot leak into results.
    entries: HashMap<u64, Entry>,
    /// Cached (unheld) blocks by release stamp, oldest first.
    lru: BTreeMap<u64, u64>,
    next_stamp: u64,
}

impl Kv {
    pub(crate) fn new(total: u32) -> Self {
        Self { total, used: 0, entries: HashMap::new(), lru: BTreeMap::new(), next_stamp: 0 }
    }

    pub(crate) fn total(&self) -> u32 {
        self.total
    }

    pub(crate) fn used(&self) -> u32 {
        self.used
    }

    /// Blocks that can still be given to sequences: free ones plus cached ones (which would be evicted).
    pub(crate) fn available(&self) -> u32 {
        self.total - self.used
    }

    /// How many of `hashes`, from the start, are held or cached.
    pub(crate) fn longest_hit(&self, hashes: &[u64]) -> usize {
        hashes.iter().take_while(|hash| self.entries.contains_key(hash)).count()
    }

    /// Whether taking `hash` (which must be present) costs an available block, i.e. it is cached, not held.
    pub(crate) fn is_unheld(&self, hash: u64) -> bool {
        self.entries.get(&hash).is_some_and(|entry| entry.refs == 0)
    }

    /// Holds a present hashed block for one more sequence.
    pub(crate) fn take(&mut self, hash: u64) {
        if let Some(entry) = self.entries.get_mut(&hash) {
            if entry.refs == 0 {
                self.lru.remove(&entry.stamp);
                self.used += 1;
            }
            entry.refs += 1;
        }
    }

    /// A fresh private block, evicting the least recently released cached block when no block is free.
    /// `false` when every block is held.
    pub(crate) fn allocate(&mut self) -> bool {
        if self.used == self.total {
            return false;
        }
        if self.used + u32::try_from(self.lru.len()).unwrap_or(u32::MAX) >= self.total
            && let Some((_, hash)) = self.lru.pop_first()
        {
            self.entries.remove(&hash);
        }
        self.used += 1;
        true
    }

    /// Turns a just-filled private prompt block into a cached one under `hash`. `false` (the block stays
    /// private) when another sequence already registered that hash: two copies cannot share a key.
    pub(crate) fn register(&mut self, hash: u64) -> bool {
        if self.entries.contains_key(&hash) {
            return false;
        }
        self.entries.insert(hash, Entry { refs: 1, stamp: 0 });
        true
    }

    /// Releases a sequence's blocks, last block first, so that a prompt's tail is evicted before its head
    /// (the head is the part other prompts are likeliest to share), as vLLM does.
    pub(crate) fn release(&mut self, blocks: &[Block]) {
        for block in blocks.iter().rev() {
            match *block {
                Block::Private => self.used -= 1,
                Block::Cached(hash) => {
                    if let Some(entry) = self.entries.get_mut(&hash) {
                        entry.refs -= 1;
                        if entry.refs == 0 {
                            self.used -= 1;
                            entry.stamp = self.next_stamp;
                            self.lru.insert(self.next_stamp, hash);
                            self.next_stamp += 1;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_blocks_are_available_and_evicted_oldest_first() {
        let mut kv = Kv::new(3);
        assert!(kv.allocate() && kv.allocate());
        assert!(kv.register(10) && kv.register(20));
        assert!(!kv.register(10), "a hash is registered once");
        kv.release(&[Block::Cached(10), Block::Cached(20)]);
        assert_eq!((kv.used(), kv.available()), (0, 3));
        assert_eq!(kv.longest_hit(&[10, 20, 30]), 2);
        // One free block first, then the tail (20, released first) is evicted before the head.
        assert!(kv.allocate() && kv.allocate());
        assert_eq!(kv.longest_hit(&[10, 20]), 1);
        kv.take(10);
        assert_eq!(kv.available(), 0);
        assert!(!kv.allocate());
    }
}

//! Chained block hashes of a token sequence, the prefix-cache key. Two prompts that share their first `n` whole
//! blocks share their first `n` hashes, and nothing else does (up to 64-bit collisions). The hash is FNV-1a,
//! written here rather than taken from `std`'s `DefaultHasher`, whose output may change between Rust releases:
//! the simulator and a live server must agree on it, and so must two builds.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// Separates tokens inside a block, so `["ab", "c"]` and `["a", "bc"]` hash differently. Not valid UTF-8, so
/// it cannot occur inside a token's text.
const TOKEN_SEPARATOR: u8 = 0xff;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The chained hashes of the whole blocks of `tokens`: `h[i] = fnv1a(h[i-1] ‖ block i)`, `h[-1]` the FNV offset
/// basis. A trailing partial block has no hash (it cannot be shared in a block-granular cache, as in vLLM).
/// `block_size` 0 yields no hashes.
pub fn block_hashes<T: AsRef<[u8]>>(tokens: &[T], block_size: usize) -> Vec<u64> {
    if block_size == 0 {
        return Vec::new();
    }
    let mut previous = FNV_OFFSET;
    tokens
        .chunks_exact(block_size)
        .map(|block| {
            let mut hash = fnv1a(FNV_OFFSET, &previous.to_le_bytes());
            for token in block {
                hash = fnv1a(hash, token.as_ref());
                hash = fnv1a(hash, &[TOKEN_SEPARATOR]);
            }
            previous = hash;
            hash
        })
        .collect()
}

/// FNV-1a of one byte string, for callers that need a stable seed (e.g. a deterministic generated text).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    fnv1a(FNV_OFFSET, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    #[test]
    fn equal_prefixes_share_leading_hashes_only() {
        let a = block_hashes(&words("a b c d e f g"), 2);
        let b = block_hashes(&words("a b c d x y z"), 2);
        assert_eq!(a.len(), 3);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        // The chain: the same block after a different prefix hashes differently.
        let c = block_hashes(&words("x y c d"), 2);
        assert_ne!(a[1], c[1]);
    }

    #[test]
    fn token_boundaries_matter_and_partial_blocks_are_skipped() {
        assert_ne!(block_hashes(&["ab", "c"], 2), block_hashes(&["a", "bc"], 2));
        assert!(block_hashes(&words("a b c"), 4).is_empty());
        assert!(block_hashes(&words("a b c"), 0).is_empty());
    }

    #[test]
    fn values_are_stable_across_builds() {
        // Pinned so a change to the hash (which would split live and simulated caches) shows up here.
        assert_eq!(stable_hash(b""), FNV_OFFSET);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        let pinned = block_hashes(&words("the quick brown fox"), 2);
        assert_eq!(pinned, [0xafaf_d4eb_e408_7e88, 0xe719_4bd9_7da3_7ed1]);
        assert_eq!(pinned, block_hashes(&words("the quick brown fox jumps"), 2));
    }
}

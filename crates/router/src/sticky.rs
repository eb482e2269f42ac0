//! Sticky split: a header value is hashed into one of the split's 100 buckets, so the same value always lands
//! on the same target while the weights hold. When weights change, only the buckets whose owner changes move:
//! going from 90/10 to 80/20 moves buckets 80–89 (10% of values) from the first target to the second, and
//! nobody else.
//!
//! The hash is FNV-1a (64-bit) followed by a 64-bit finaliser (Stafford's Mix13, as in SplitMix64): FNV alone
//! is stable and fast but its low bits are poorly mixed for values that differ only in their last bytes
//! (`user-1`, `user-2`), which `% 100` would expose. It is unseeded and not keyed by route on purpose: a value's
//! bucket is the same in every process, release and route, so a user who is in the canary cohort of one
//! route is in it everywhere, and operators can compute a value's bucket offline. Changing this function
//! reshuffles every sticky client, so it is part of the contract.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The split bucket, `0..100`, that a sticky header value falls into.
pub(crate) fn bucket(value: &[u8]) -> u32 {
    let hash = mix(fnv1a(value));
    // `% 100` of a well-mixed 64-bit value: the bias is below 1e-17.
    (hash % 100) as u32
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite (isthe.com/chongo/tech/comp/fnv).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn buckets_are_pinned() {
        // A change here reshuffles every sticky client in production: only on purpose, and in the release notes.
        let got: Vec<u32> = ["", "alice", "bob", "user-1", "user-2"].iter().map(|v| bucket(v.as_bytes())).collect();
        assert_eq!(got, [3, 72, 64, 24, 95]);
    }

    #[test]
    fn buckets_spread_evenly() {
        let mut counts = [0u32; 100];
        for i in 0..100_000 {
            counts[bucket(format!("user-{i}").as_bytes()) as usize] += 1;
        }
        // 1,000 expected per bucket; ±20% is over six standard deviations.
        assert!(counts.iter().all(|&count| (800..1200).contains(&count)), "{counts:?}");
    }
}

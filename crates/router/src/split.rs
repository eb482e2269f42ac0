//! Percent split. The cumulative percents are computed once per table, so picking a target is a binary search
//! over a handful of integers, with no allocation and no floating point.

/// The traffic split of one route: target `i` owns rolls `cumulative[i-1]..cumulative[i]`, so a 90/10 split
/// sends rolls 0–89 to the first target and 90–99 to the second. A 0% target owns an empty range: it is never
/// picked by the split, but stays reachable by its tag.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    cumulative: Box<[u32]>,
}

impl Split {
    /// Builds the split, or returns the actual sum when the percents do not add up to 100.
    pub(crate) fn new(percents: impl IntoIterator<Item = u32>) -> Result<Self, u64> {
        let mut sum = 0u64;
        let cumulative = percents
            .into_iter()
            .map(|percent| {
                sum += u64::from(percent);
                // Saturating keeps the (refused anyway) overflow case from wrapping into a valid-looking table.
                u32::try_from(sum).unwrap_or(u32::MAX)
            })
            .collect();
        if sum == 100 { Ok(Self { cumulative }) } else { Err(sum) }
    }

    /// The index of the target that owns `roll`; rolls of 100 and above wrap, so any random `u32` works.
    pub(crate) fn pick(&self, roll: u32) -> usize {
        let roll = roll % 100;
        // The last entry is 100 > roll, so the result is always a valid index.
        self.cumulative.partition_point(|&upper| upper <= roll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_sums_other_than_100() {
        assert_eq!(Split::new([90, 20]).err(), Some(110));
        assert_eq!(Split::new([50]).err(), Some(50));
        assert_eq!(Split::new([]).err(), Some(0));
        assert_eq!(Split::new([u32::MAX, 1]).err(), Some(u64::from(u32::MAX) + 1));
    }

    #[test]
    fn ninety_ten() {
        let split = Split::new([90, 10]).unwrap();
        for roll in 0..90 {
            assert_eq!(split.pick(roll), 0, "roll {roll}");
        }
        for roll in 90..100 {
            assert_eq!(split.pick(roll), 1, "roll {roll}");
        }
    }

    #[test]
    fn zero_percent_targets_are_never_picked() {
        let split = Split::new([0, 50, 0, 50, 0]).unwrap();
        let picked: Vec<usize> = (0..100).map(|roll| split.pick(roll)).collect();
        assert!(picked[..50].iter().all(|&i| i == 1));
        assert!(picked[50..].iter().all(|&i| i == 3));
    }

    #[test]
    fn rolls_wrap_at_100() {
        let split = Split::new([1, 99]).unwrap();
        assert_eq!(split.pick(100), 0);
        assert_eq!(split.pick(101), 1);
        assert_eq!(split.pick(u32::MAX), split.pick(u32::MAX % 100));
    }
}

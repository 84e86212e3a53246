//! Values by consecutive log index: how the raft log is laid out in memory (the newest
//! entries in `log_store`, where each entry sits in the files in `wal`).

use std::collections::VecDeque;

/// Values for the indexes `start..start + len`, changed as raft changes its log.
#[derive(Debug)]
pub(crate) struct Consecutive<T> {
    start: u64,
    items: VecDeque<T>,
}

impl<T> Consecutive<T> {
    /// Empty, the next value expected at `start`.
    pub(crate) fn new(start: u64) -> Consecutive<T> {
        Consecutive {
            start,
            items: VecDeque::new(),
        }
    }

    /// The index of the first value (of the next one when empty).
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// One past the index of the last value.
    pub(crate) fn end(&self) -> u64 {
        self.start.saturating_add(self.items.len() as u64)
    }

    pub(crate) fn get(&self, index: u64) -> Option<&T> {
        let offset = index.checked_sub(self.start)?;
        self.items.get(usize::try_from(offset).ok()?)
    }

    /// The values for the indexes in `from..to` that are here, in order.
    pub(crate) fn range(&self, from: u64, to: u64) -> impl Iterator<Item = &T> {
        let skip = from.saturating_sub(self.start);
        let take = to.min(self.end()).saturating_sub(self.start.max(from));
        self.items
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(take).unwrap_or(usize::MAX))
    }

    /// Set the value of `index`, dropping every value after it (raft appends right
    /// after its last entry, or overwrites a suffix). An index that does not adjoin the
    /// values here starts them again at `index`.
    pub(crate) fn put(&mut self, index: u64, value: T) {
        if index < self.start || index > self.end() {
            self.items.clear();
            self.start = index;
        } else {
            self.truncate(index);
        }
        self.items.push_back(value);
    }

    /// Drop the values from `index` on; before the first value, all of them, and the
    /// next value is then expected at `index`.
    pub(crate) fn truncate(&mut self, index: u64) {
        match index.checked_sub(self.start) {
            Some(keep) => self
                .items
                .truncate(usize::try_from(keep).unwrap_or(usize::MAX)),
            None => {
                self.items.clear();
                self.start = index;
            }
        }
    }

    /// Drop the values up to and including `upto`.
    pub(crate) fn purge(&mut self, upto: u64) {
        self.drop_front_while(upto.saturating_add(1), |_| true);
        if self.items.is_empty() && self.start <= upto {
            self.start = upto.saturating_add(1);
        }
    }

    /// Drop values from the front while `drop` says so and their index is below `below`.
    pub(crate) fn drop_front_while(&mut self, below: u64, mut drop: impl FnMut(&T) -> bool) {
        while self.start < below && self.items.front().is_some_and(&mut drop) {
            self.items.pop_front();
            self.start = self.start.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Consecutive;

    fn values(c: &Consecutive<u64>) -> Vec<u64> {
        c.range(0, u64::MAX).copied().collect()
    }

    #[test]
    fn put_appends_overwrites_a_suffix_or_starts_again() {
        let mut c = Consecutive::new(5);
        for i in 5..10 {
            c.put(i, i * 10);
        }
        assert_eq!((c.start(), c.end()), (5, 10));
        c.put(7, 700);
        assert_eq!(values(&c), [50, 60, 700]);
        c.put(20, 200);
        assert_eq!((c.start(), values(&c)), (20, vec![200]));
        c.put(3, 30);
        assert_eq!((c.start(), values(&c)), (3, vec![30]));
    }

    #[test]
    fn truncate_and_purge_keep_the_indexes_right() {
        let mut c = Consecutive::new(1);
        for i in 1..=6 {
            c.put(i, i);
        }
        c.truncate(5);
        assert_eq!(values(&c), [1, 2, 3, 4]);
        c.purge(2);
        assert_eq!((c.start(), values(&c)), (3, vec![3, 4]));
        assert_eq!(c.get(4), Some(&4));
        assert_eq!(c.get(2), None);
        assert_eq!(c.range(4, 100).copied().collect::<Vec<_>>(), [4]);
        assert_eq!(c.range(0, 4).copied().collect::<Vec<_>>(), [3]);
        c.purge(10);
        assert_eq!((c.start(), c.end()), (11, 11));
        c.truncate(8);
        assert_eq!((c.start(), c.end()), (8, 8));
    }
}

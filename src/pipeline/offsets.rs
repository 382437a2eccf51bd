//! Source positions: a small id per (topic, partition), the next offset to read in each,
//! and the offset below which every event is safe to commit.

/// The partitions a pipeline has read from.
#[derive(Debug, Default)]
pub struct PartitionTable {
    partitions: Vec<(String, i32)>,
    /// Per partition id, one past the highest offset read (-1: none yet).
    next: Vec<i64>,
    /// Per partition id, the newest event time taken from it while held (any model's):
    /// how far the partition has come, for spread models' windows.
    newest: Vec<Option<i64>>,
}

impl PartitionTable {
    /// The id of a partition, made on first sight.
    pub fn id(&mut self, topic: &str, partition: i32) -> u32 {
        // A consumer holds a handful of partitions: a scan beats hashing an owned key.
        if let Some(id) = self.find(topic, partition) {
            return id;
        }
        self.partitions.push((topic.to_string(), partition));
        self.next.push(-1);
        self.newest.push(None);
        (self.partitions.len() - 1) as u32
    }

    /// The id of a partition seen before.
    pub fn find(&self, topic: &str, partition: i32) -> Option<u32> {
        self.partitions.iter().position(|(t, p)| *p == partition && t == topic).map(|i| i as u32)
    }

    /// The topic and partition of an id.
    pub fn name(&self, pid: u32) -> Option<(&str, i32)> {
        self.partitions.get(pid as usize).map(|(t, p)| (t.as_str(), *p))
    }

    /// Notes that `offset` of partition `pid` was read; true when it had been read
    /// before (the partition read again from an older offset after a rebalance).
    pub fn read(&mut self, pid: u32, offset: i64) -> bool {
        let next = &mut self.next[pid as usize];
        let again = offset < *next;
        *next = (*next).max(offset + 1);
        again
    }

    /// An event at `ts` was taken from partition `pid`.
    pub fn saw(&mut self, pid: u32, ts: i64) {
        let n = &mut self.newest[pid as usize];
        *n = Some(n.map_or(ts, |m| m.max(ts)));
    }

    /// The newest event time taken from partition `pid` while held.
    pub fn newest(&self, pid: u32) -> Option<i64> {
        self.newest.get(pid as usize).copied().flatten()
    }

    /// The partitions held that gave an event: (id, topic, partition, newest event time).
    pub fn held(&self) -> impl Iterator<Item = (u32, &str, i32, i64)> + '_ {
        self.partitions
            .iter()
            .zip(&self.newest)
            .enumerate()
            .filter_map(|(pid, ((t, p), n))| n.map(|n| (pid as u32, t.as_str(), *p, n)))
    }

    /// The partition was taken away: how far it had come is the next owner's to say.
    pub fn forget(&mut self, pid: u32) {
        self.newest[pid as usize] = None;
    }

    /// Per partition read from, the offset to commit: the next one to read, or the lowest
    /// offset still in an open window (`open_min`) when that is lower. Everything below
    /// it was reported, or bad, or late.
    pub fn safe(&self, open_min: impl Fn(u32) -> Option<i64>) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .zip(&self.next)
            .enumerate()
            .filter(|(_, (_, next))| **next >= 0)
            .map(|(pid, ((topic, partition), next))| {
                let safe = open_min(pid as u32).map_or(*next, |o| o.min(*next));
                (topic.clone(), *partition, safe)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_safe_offset_stops_at_the_oldest_open_event() {
        let mut t = PartitionTable::default();
        let (a, b) = (t.id("logs", 0), t.id("logs", 1));
        assert_eq!(t.id("logs", 0), a, "one id per partition");
        assert_ne!(a, b);
        assert!(!t.read(a, 10) && !t.read(a, 11));
        assert!(t.read(a, 5), "read before"); // a re-read after a rebalance does not move it back
        assert_eq!(t.safe(|_| None), [("logs".to_string(), 0, 12)], "b read nothing: nothing to commit");
        t.read(b, 3);
        let safe = t.safe(|pid| (pid == a).then_some(7));
        assert_eq!(safe, [("logs".to_string(), 0, 7), ("logs".to_string(), 1, 4)]);
        assert_eq!(t.find("other", 0), None);
    }
}

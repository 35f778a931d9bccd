//! Deduplication: which signals of each sender were recorded, without an index over every
//! signal, so that a resent signal is acknowledged and never applied twice.
//!
//! Agents number their signals per (host, store epoch) and deliver them oldest first, so a
//! sender's recorded seqs are summed up by the highest one and a bitmap of the
//! [`WINDOW`] below it (the technique of IPsec's anti-replay window). A retry of any signal is caught, and
//! so is a new one that arrives up to [`WINDOW`] places out of order. Checking a key is a map
//! lookup, and a commit rewrites one small row per sender instead of one B-tree leaf per
//! signal's key (the unique index this replaces cost a dirty page per sender per commit).

use std::collections::HashMap;

/// Seqs below a sender's highest that are told apart from retries.
pub const WINDOW: u64 = 64;

/// One sender's recorded seqs: `high`, and bit `i` of `seen` for `high - 1 - i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The highest seq recorded.
    pub high: u64,
    /// Bit `i`: seq `high - 1 - i` was recorded.
    pub seen: u64,
}

/// What a seq is to its sender's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not recorded before: record it.
    New,
    /// Recorded before.
    Again,
    /// More than [`WINDOW`] below the highest: too old to tell, treated as recorded.
    TooOld,
}

impl Window {
    /// A window whose only recorded seq is `seq`.
    pub fn first(seq: u64) -> Window {
        Window { high: seq, seen: 0 }
    }

    /// The window after `seq` arrives at a sender whose window was `before` (`None`: nothing
    /// recorded yet), and what `seq` was to it.
    pub fn after(before: Option<Window>, seq: u64) -> (Window, Seen) {
        match before {
            Some(mut w) => {
                let seen = w.record(seq);
                (w, seen)
            }
            None => (Window::first(seq), Seen::New),
        }
    }

    /// Classifies `seq` and, when new, records it.
    pub fn record(&mut self, seq: u64) -> Seen {
        if seq > self.high {
            // The bitmap slides by the jump, and the old highest lands at bit `shift - 1`;
            // whatever slides past bit 63 is out of the window.
            let shift = u32::try_from(seq - self.high).unwrap_or(u32::MAX);
            self.seen = self.seen.checked_shl(shift).unwrap_or(0)
                | 1u64.checked_shl(shift - 1).unwrap_or(0);
            self.high = seq;
            return Seen::New;
        }
        if seq == self.high {
            return Seen::Again;
        }
        let below = self.high - seq;
        if below > WINDOW {
            return Seen::TooOld;
        }
        let bit = 1u64 << (below - 1);
        if self.seen & bit != 0 {
            Seen::Again
        } else {
            self.seen |= bit;
            Seen::New
        }
    }
}

/// Every sender's window, by host then epoch (a host has one or two live epochs).
#[derive(Debug, Default)]
pub struct Senders {
    by_host: HashMap<String, Vec<(String, Window)>>,
}

impl Senders {
    /// The window of (`host`, `epoch`), if it recorded anything.
    pub fn get(&self, host: &str, epoch: &str) -> Option<Window> {
        self.by_host
            .get(host)?
            .iter()
            .find(|(e, _)| e == epoch)
            .map(|&(_, w)| w)
    }

    /// Sets the window of (`host`, `epoch`).
    pub fn set(&mut self, host: &str, epoch: &str, window: Window) {
        let epochs = match self.by_host.get_mut(host) {
            Some(v) => v,
            None => self.by_host.entry(host.to_owned()).or_default(),
        };
        match epochs.iter_mut().find(|(e, _)| e == epoch) {
            Some((_, w)) => *w = window,
            None => epochs.push((epoch.to_owned(), window)),
        }
    }

    /// Forgets (`host`, `epoch`).
    pub fn remove(&mut self, host: &str, epoch: &str) {
        if let Some(epochs) = self.by_host.get_mut(host) {
            epochs.retain(|(e, _)| e != epoch);
            if epochs.is_empty() {
                self.by_host.remove(host);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_retries_and_reordering() {
        let mut w = Window::first(5);
        assert_eq!(w.record(5), Seen::Again);
        assert_eq!(w.record(6), Seen::New);
        assert_eq!(w.record(9), Seen::New);
        // 7 and 8 arrive late, once each; 5, 6 and 9 again are retries.
        assert_eq!(w.record(8), Seen::New);
        assert_eq!(w.record(7), Seen::New);
        for seq in 5..=9 {
            assert_eq!(w.record(seq), Seen::Again, "{seq}");
        }
        assert_eq!(w.record(4), Seen::New);
        assert_eq!(w.record(4), Seen::Again);
    }

    #[test]
    fn a_jump_of_exactly_the_window_keeps_the_old_highest() {
        let mut w = Window::first(1);
        assert_eq!(w.record(1 + WINDOW), Seen::New);
        assert_eq!(w.record(1), Seen::Again);
        assert_eq!(w.record(2), Seen::New);
        let mut w = Window::first(1);
        assert_eq!(w.record(2 + WINDOW), Seen::New);
        assert_eq!(w.record(1), Seen::TooOld);
        assert_eq!(w.record(u64::MAX), Seen::New);
        assert_eq!(w.record(u64::MAX - 1), Seen::New);
    }

    #[test]
    fn the_window_slides_and_old_seqs_are_too_old() {
        let mut w = Window::first(1);
        for seq in 2..=200 {
            assert_eq!(w.record(seq), Seen::New);
        }
        assert_eq!(w.record(200 - WINDOW), Seen::Again);
        assert_eq!(w.record(200 - WINDOW - 1), Seen::TooOld);
        // A jump past the window forgets the bitmap but not the order.
        assert_eq!(w.record(1_000), Seen::New);
        assert_eq!(w.record(999), Seen::New);
        assert_eq!(w.record(200), Seen::TooOld);
    }

    #[test]
    fn equals_a_set_of_seen_seqs_within_the_window() {
        // Every arrival order of a shuffled block of 0..40 with retries mixed in.
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let mut order: Vec<u64> = (1..=40).chain(1..=40).collect();
            for i in (1..order.len()).rev() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                order.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let mut w: Option<Window> = None;
            let mut set = std::collections::HashSet::new();
            for seq in order {
                let (next, seen) = Window::after(w, seq);
                w = Some(next);
                assert_eq!(seen == Seen::New, set.insert(seq), "seq {seq}");
            }
        }
    }

    #[test]
    fn senders_by_host_and_epoch() {
        let mut s = Senders::default();
        s.set("h", "e1", Window::first(3));
        s.set("h", "e2", Window::first(7));
        assert_eq!(s.get("h", "e1").map(|w| w.high), Some(3));
        assert_eq!(s.get("h", "e2").map(|w| w.high), Some(7));
        assert_eq!(s.get("x", "e1"), None);
        s.remove("h", "e1");
        assert_eq!(s.get("h", "e1"), None);
        assert!(s.get("h", "e2").is_some());
    }
}

//! Previous counters per device (disk or interface), in a table sized once at start-up so that
//! looking a device up on each tick allocates nothing.

use crate::sample::ShortName;

/// How many devices a table remembers; devices beyond it are reported without rates.
pub(crate) const TABLE_SIZE: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Entry<C> {
    name: ShortName,
    counters: C,
    /// Per-device verdict computed once (e.g. "is a whole disk").
    keep: bool,
    /// Seen in the current read; entries not seen are dropped after it.
    seen: bool,
    used: bool,
}

/// Fixed-capacity map from device name to its last counters.
#[derive(Debug)]
pub(crate) struct DeviceTable<C: Copy + Default> {
    entries: Vec<Entry<C>>,
    /// High-water mark: entries at or past it were never used, so scans stop there.
    len: usize,
}

impl<C: Copy + Default> DeviceTable<C> {
    pub(crate) fn new() -> Self {
        let empty = Entry {
            name: ShortName::default(),
            counters: C::default(),
            keep: false,
            seen: false,
            used: false,
        };
        DeviceTable {
            entries: vec![empty; TABLE_SIZE],
            len: 0,
        }
    }

    /// Starts a read: every entry is unseen until `update` touches it.
    pub(crate) fn begin(&mut self) {
        for e in &mut self.entries[..self.len] {
            e.seen = false;
        }
    }

    /// Forgets devices that were not in the last read (unplugged), so a device that comes
    /// back starts afresh instead of yielding a bogus delta.
    pub(crate) fn end(&mut self) {
        for e in &mut self.entries[..self.len] {
            if !e.seen {
                e.used = false;
            }
        }
    }

    /// Whether a device is known, and its verdict.
    pub(crate) fn verdict(&self, name: &str) -> Option<bool> {
        let key = ShortName::new(name);
        self.entries[..self.len]
            .iter()
            .find(|e| e.used && e.name == key)
            .map(|e| e.keep)
    }

    /// Stores `counters` for `name` and returns the previous ones (`None` for a new device).
    /// `keep` is stored for a new device; a full table stores nothing.
    pub(crate) fn update(&mut self, name: &str, keep: bool, counters: C) -> Option<C> {
        let key = ShortName::new(name);
        let used = &mut self.entries[..self.len];
        if let Some(e) = used.iter_mut().find(|e| e.used && e.name == key) {
            e.seen = true;
            return Some(std::mem::replace(&mut e.counters, counters));
        }
        let entry = Entry {
            name: key,
            counters,
            keep,
            seen: true,
            used: true,
        };
        if let Some(e) = used.iter_mut().find(|e| !e.used) {
            *e = entry;
        } else if let Some(e) = self.entries.get_mut(self.len) {
            *e = entry;
            self.len += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_forgets_and_reuses() {
        let mut t = DeviceTable::<u64>::new();
        t.begin();
        assert_eq!(t.update("sda", true, 1), None);
        assert_eq!(t.update("loop0", false, 5), None);
        t.end();
        t.begin();
        assert_eq!(t.update("sda", true, 2), Some(1));
        assert_eq!(t.verdict("loop0"), Some(false));
        t.end();
        // loop0 was not seen: forgotten, and its slot is reused.
        assert_eq!(t.verdict("loop0"), None);
        t.begin();
        assert_eq!(t.update("sdb", true, 9), None);
        t.update("sda", true, 3);
        t.end();
        assert_eq!(t.len, 2);
        // A full table stores nothing more and never panics.
        t.begin();
        for i in 0..TABLE_SIZE + 10 {
            t.update(&format!("d{i}"), true, 0);
        }
        t.end();
        assert_eq!(t.len, TABLE_SIZE);
    }
}

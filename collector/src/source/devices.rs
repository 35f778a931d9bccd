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
        }
    }

    /// Starts a read: every entry is unseen until `update` touches it.
    pub(crate) fn begin(&mut self) {
        for e in &mut self.entries {
            e.seen = false;
        }
    }

    /// Forgets devices that were not in the last read (unplugged), so a device that comes
    /// back starts afresh instead of yielding a bogus delta.
    pub(crate) fn end(&mut self) {
        for e in &mut self.entries {
            if !e.seen {
                e.used = false;
            }
        }
    }

    /// Whether a device is known, and its verdict.
    pub(crate) fn verdict(&self, name: &str) -> Option<bool> {
        let key = ShortName::new(name);
        self.entries
            .iter()
            .find(|e| e.used && e.name == key)
            .map(|e| e.keep)
    }

    /// Stores `counters` for `name` and returns the previous ones (`None` for a new device).
    /// `keep` is stored for a new device; a full table stores nothing.
    pub(crate) fn update(&mut self, name: &str, keep: bool, counters: C) -> Option<C> {
        let key = ShortName::new(name);
        if let Some(e) = self.entries.iter_mut().find(|e| e.used && e.name == key) {
            e.seen = true;
            return Some(std::mem::replace(&mut e.counters, counters));
        }
        if let Some(e) = self.entries.iter_mut().find(|e| !e.used) {
            *e = Entry {
                name: key,
                counters,
                keep,
                seen: true,
                used: true,
            };
        }
        None
    }
}

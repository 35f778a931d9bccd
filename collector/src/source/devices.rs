//! Previous counters per device (disk or interface), in a table sized once at start-up so that
//! looking a device up on each tick allocates nothing, and the rates between two reads.

use std::time::Instant;

use super::{SourceError, seconds};
use crate::sample::{MAX_DEVICES, ShortName};

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

/// Per-device rates from successive reads of a counters file: the previous counters of each
/// device, which devices are kept, and when the last read was.
#[derive(Debug)]
pub(crate) struct DeviceRates<C: Copy + Default> {
    table: DeviceTable<C>,
    prev_at: Option<Instant>,
}

impl<C: Copy + Default> DeviceRates<C> {
    pub(crate) fn new() -> Self {
        DeviceRates {
            table: DeviceTable::new(),
            prev_at: None,
        }
    }

    /// Forgets every device: the next read only sets the baseline.
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    /// One read at `now`: `read` passes every device's counters to the callback it is given;
    /// `keep` decides once per device whether it is reported; `rates` turns two counters
    /// `dt` seconds apart into the device's figures (`None` on a counter reset). Fills `out`
    /// with up to [`MAX_DEVICES`] devices and `Ok(true)` once rates exist. A failed read
    /// leaves the previous counters as they were.
    pub(crate) fn read<S>(
        &mut self,
        now: Instant,
        out: &mut [S; MAX_DEVICES],
        count: &mut u8,
        read: impl FnOnce(&mut dyn FnMut(&str, C)) -> Result<(), SourceError>,
        mut keep: impl FnMut(&str) -> bool,
        rates: impl Fn(&str, &C, &C, f64) -> Option<S>,
    ) -> Result<bool, SourceError> {
        let dt = self.prev_at.map(|t| seconds(t, now));
        let table = &mut self.table;
        let mut n = 0usize;
        table.begin();
        read(&mut |name, c| {
            let kept = table.verdict(name).unwrap_or_else(|| keep(name));
            let prev = table.update(name, kept, c);
            if let (true, Some(p), Some(dt)) = (kept, prev, dt)
                && n < MAX_DEVICES
                && let Some(r) = rates(name, &p, &c, dt)
            {
                out[n] = r;
                n += 1;
            }
        })?;
        table.end();
        *count = n as u8;
        self.prev_at = Some(now);
        Ok(dt.is_some())
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

    #[test]
    fn rates_between_reads_of_kept_devices() {
        let mut r = DeviceRates::<u64>::new();
        let mut out = [0.0f64; MAX_DEVICES];
        let mut count = 0u8;
        let t0 = Instant::now();
        let devices = [("sda", 100u64), ("loop0", 7)];
        let read = |add: u64| {
            move |each: &mut dyn FnMut(&str, u64)| {
                for (name, c) in devices {
                    each(name, c + add);
                }
                Ok(())
            }
        };
        let keep = |name: &str| !name.starts_with("loop");
        let per_s = |_: &str, p: &u64, c: &u64, dt: f64| c.checked_sub(*p).map(|d| d as f64 / dt);
        // The first read only sets the baseline.
        assert!(
            !r.read(t0, &mut out, &mut count, read(0), keep, per_s)
                .unwrap()
        );
        assert_eq!(count, 0);
        let t1 = t0 + std::time::Duration::from_secs(2);
        assert!(
            r.read(t1, &mut out, &mut count, read(10), keep, per_s)
                .unwrap()
        );
        assert_eq!((count, out[0]), (1, 5.0));
        // A failed read changes nothing: the next rate spans both intervals.
        let failed = |_: &mut dyn FnMut(&str, u64)| {
            Err(SourceError::Parse {
                path: "diskstats".into(),
                what: "short line",
            })
        };
        let t2 = t1 + std::time::Duration::from_secs(2);
        assert!(
            r.read(t2, &mut out, &mut count, failed, keep, per_s)
                .is_err()
        );
        let t3 = t2 + std::time::Duration::from_secs(2);
        assert!(
            r.read(t3, &mut out, &mut count, read(30), keep, per_s)
                .unwrap()
        );
        assert_eq!((count, out[0]), (1, 5.0));
        r.reset();
        assert!(
            !r.read(t3, &mut out, &mut count, read(40), keep, per_s)
                .unwrap()
        );
    }
}

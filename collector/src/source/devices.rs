//! Previous counters per device (disk or interface), and the rates between two reads.
//!
//! The table holds every device a read lists, those not reported (loop devices, partitions)
//! too: their verdict is costly (a `/sys` lookup), so it is taken once. It starts with room for
//! [`TABLE_START`] devices and grows only when a device it has no room for appears, up to
//! [`TABLE_MAX`]; looking a known device up allocates nothing, so a tick in steady state does
//! not. Past [`TABLE_MAX`] a new device is reported without rates (bounded memory whatever a
//! host lists).

use std::time::Instant;

use super::{SourceError, seconds};
use crate::sample::{MAX_DEVICES, ShortName};

/// How many devices a table has room for at start.
pub(crate) const TABLE_START: usize = 256;
/// The most devices a table remembers; devices beyond it are reported without rates.
pub(crate) const TABLE_MAX: usize = 8192;

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

/// Bounded map from device name to its last counters.
#[derive(Debug)]
pub(crate) struct DeviceTable<C: Copy> {
    /// Every device seen, slots of unplugged ones reused; room for [`TABLE_START`] reserved.
    entries: Vec<Entry<C>>,
    /// Just after the entry found last: where the next lookup starts.
    cursor: usize,
}

impl<C: Copy> DeviceTable<C> {
    pub(crate) fn new() -> Self {
        DeviceTable {
            entries: Vec::with_capacity(TABLE_START),
            cursor: 0,
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

    /// Where `name` is, looking from just after the device found last: a read lists devices
    /// in the same order every time, so each is found at once, whatever the table's size.
    fn find(&mut self, name: &ShortName) -> Option<usize> {
        let len = self.entries.len();
        let start = self.cursor.min(len);
        let at = (start..len)
            .chain(0..start)
            .find(|&i| self.entries[i].used && self.entries[i].name == *name)?;
        self.cursor = at + 1;
        Some(at)
    }

    /// Whether a device is known, and its verdict.
    #[cfg(test)]
    fn verdict(&mut self, name: &str) -> Option<bool> {
        let key = ShortName::new(name);
        self.find(&key).map(|i| self.entries[i].keep)
    }

    /// Stores `counters` for `name` and returns the previous ones (`None` for a new device),
    /// with the device's verdict: the stored one, or for a new device `keep()`'s, stored.
    /// A table at its most stores nothing more.
    pub(crate) fn update(
        &mut self,
        name: &str,
        keep: impl FnOnce() -> bool,
        counters: C,
    ) -> (bool, Option<C>) {
        let key = ShortName::new(name);
        if let Some(i) = self.find(&key) {
            let e = &mut self.entries[i];
            e.seen = true;
            return (e.keep, Some(std::mem::replace(&mut e.counters, counters)));
        }
        let keep = keep();
        let entry = Entry {
            name: key,
            counters,
            keep,
            seen: true,
            used: true,
        };
        if let Some(e) = self.entries.iter_mut().find(|e| !e.used) {
            *e = entry;
        } else if self.entries.len() < TABLE_MAX {
            // Past the room reserved, a device that appears costs an allocation, amortised.
            self.entries.push(entry);
        }
        (keep, None)
    }
}

/// Per-device rates from successive reads of a counters file: the previous counters of each
/// device, which devices are kept, and when the last read was.
#[derive(Debug)]
pub(crate) struct DeviceRates<C: Copy> {
    table: DeviceTable<C>,
    prev_at: Option<Instant>,
}

impl<C: Copy> DeviceRates<C> {
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
            let (kept, prev) = table.update(name, || keep(name), c);
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
        assert_eq!(t.update("sda", || true, 1), (true, None));
        assert_eq!(t.update("loop0", || false, 5), (false, None));
        t.end();
        t.begin();
        assert_eq!(t.update("sda", || unreachable!(), 2), (true, Some(1)));
        assert_eq!(t.verdict("loop0"), Some(false));
        t.end();
        // loop0 was not seen: forgotten, and its slot is reused.
        assert_eq!(t.verdict("loop0"), None);
        t.begin();
        assert_eq!(t.update("sdb", || true, 9), (true, None));
        t.update("sda", || true, 3);
        t.end();
        assert_eq!(t.entries.len(), 2);
        // Room for more grows up to the most; past it nothing more is stored, and nothing
        // panics.
        t.begin();
        for i in 0..TABLE_MAX + 10 {
            t.update(&format!("d{i}"), || true, 0);
        }
        t.end();
        assert_eq!(t.entries.len(), TABLE_MAX);
    }

    /// More devices than the table starts with, most of them not reported (300 loop devices
    /// before the one disk, as /proc/diskstats lists them): the disk still gets its rates.
    #[test]
    fn a_disk_listed_after_many_skipped_devices_gets_rates() {
        let mut r = DeviceRates::<u64>::new();
        let mut out = [0.0f64; MAX_DEVICES];
        let mut count = 0u8;
        let names: Vec<String> = (0..300)
            .map(|i| format!("loop{i}"))
            .chain(["vda".to_string()])
            .collect();
        let read = |add: u64| {
            let names = &names;
            move |each: &mut dyn FnMut(&str, u64)| {
                for name in names {
                    each(name, 100 + add);
                }
                Ok(())
            }
        };
        let keep = |name: &str| !name.starts_with("loop");
        let per_s = |_: &str, p: &u64, c: &u64, dt: f64| c.checked_sub(*p).map(|d| d as f64 / dt);
        let t0 = Instant::now();
        r.read(t0, &mut out, &mut count, read(0), keep, per_s)
            .unwrap();
        let t1 = t0 + std::time::Duration::from_secs(1);
        r.read(t1, &mut out, &mut count, read(7), keep, per_s)
            .unwrap();
        assert_eq!((count, out[0]), (1, 7.0));
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

//! Rollups: every sample's values folded into the open 10-second and 1-minute buckets (mean,
//! max, last, count), closed when a sample falls past their end. Metric names are written into
//! one reused key, so a tick allocates only for a metric seen for the first time. At a start
//! the 1-minute buckets go on from what a kill left of the minute ([`Buckets::resumed`]).

use std::collections::HashMap;

use headroom_collector::{MetricName, Sample};

use crate::store::Rollup;

/// Running rollup of one metric in one bucket.
#[derive(Debug, Clone, Copy)]
struct Acc {
    sum: f64,
    max: f64,
    last: f64,
    n: u32,
}

/// The open buckets of one resolution.
pub(super) struct Buckets {
    width: i64,
    start: Option<i64>,
    accs: HashMap<String, Acc>,
}

impl Buckets {
    pub(super) fn new(width: i64) -> Self {
        Buckets {
            width,
            start: None,
            accs: HashMap::new(),
        }
    }

    /// Buckets that go on from `open`, the rollups of one bucket a previous run left open (see
    /// [`crate::store::Reader::unrolled_minute`]): samples of that bucket add to them, and the
    /// first sample past it closes it with them.
    pub(super) fn resumed(width: i64, open: Vec<Rollup>) -> Self {
        let mut b = Buckets::new(width);
        b.start = open.first().map(|r| r.ts.div_euclid(width) * width);
        b.accs = open
            .into_iter()
            .filter(|r| r.n > 0 && Some(r.ts) == b.start)
            .map(|r| {
                let acc = Acc {
                    sum: r.mean * f64::from(r.n),
                    max: r.max,
                    last: r.last,
                    n: r.n,
                };
                (r.metric, acc)
            })
            .collect();
        b
    }

    /// Adds one sample; returns the rollups of the bucket it closed, if any.
    pub(super) fn add(&mut self, s: &Sample, key: &mut String, out: &mut Vec<Rollup>) -> bool {
        let bucket = (s.wall_unix.floor() as i64).div_euclid(self.width) * self.width;
        let mut closed = false;
        if self.start.is_some_and(|st| st != bucket) {
            self.flush(out);
            closed = true;
        }
        self.start = Some(bucket);
        s.visit(|name, v| {
            if !v.is_finite() {
                return;
            }
            metric_key(name, key);
            match self.accs.get_mut(key.as_str()) {
                Some(a) => {
                    a.sum += v;
                    a.max = a.max.max(v);
                    a.last = v;
                    a.n += 1;
                }
                None => {
                    self.accs.insert(
                        key.clone(),
                        Acc {
                            sum: v,
                            max: v,
                            last: v,
                            n: 1,
                        },
                    );
                }
            }
        });
        closed
    }

    /// Closes the open bucket, part-full (at a stop): its rollups go to `out`.
    pub(super) fn flush(&mut self, out: &mut Vec<Rollup>) {
        let Some(ts) = self.start else { return };
        for (metric, a) in self.accs.drain() {
            if a.n > 0 {
                out.push(Rollup {
                    metric,
                    ts,
                    mean: a.sum / a.n as f64,
                    max: a.max,
                    last: a.last,
                    n: a.n,
                });
            }
        }
    }
}

/// Writes the stored name of a metric (`family` or `family.instance`) into `key`.
fn metric_key(name: MetricName<'_>, key: &mut String) {
    key.clear();
    key.push_str(name.family);
    if !name.instance.is_empty() {
        key.push('.');
        key.push_str(name.instance);
    }
}

/// Whether `name` is the metric called `wanted`, without allocating.
fn is_metric(name: MetricName<'_>, wanted: &str) -> bool {
    match wanted.strip_prefix(name.family) {
        Some("") => name.instance.is_empty(),
        Some(rest) => rest.strip_prefix('.') == Some(name.instance) && !name.instance.is_empty(),
        None => false,
    }
}

/// The demand value in a sample, if the sample carries it.
pub fn demand_of(s: &Sample, metric: &str) -> Option<f64> {
    let mut found = None;
    s.visit(|name, v| {
        if found.is_none() && is_metric(name, metric) {
            found = Some(v);
        }
    });
    // Load is finite and never below zero (an application gauge may be either): a value that
    // is not reads as none, and one below zero as zero, so decisions and signals stay valid.
    found.filter(|v| v.is_finite()).map(|v| v.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_match_without_allocating() {
        let n = MetricName {
            family: "cpu.busy_cores",
            instance: "",
        };
        assert!(is_metric(n, "cpu.busy_cores"));
        assert!(!is_metric(n, "cpu.busy"));
        let n = MetricName {
            family: "app",
            instance: "http_requests_in_flight",
        };
        assert!(is_metric(n, "app.http_requests_in_flight"));
        assert!(!is_metric(n, "app"));
        assert!(!is_metric(n, "app.http"));
        let mut k = String::new();
        metric_key(n, &mut k);
        assert_eq!(k, "app.http_requests_in_flight");
    }

    #[test]
    fn demand_is_finite_and_never_below_zero() {
        let mut s = Sample {
            valid: 1, // cpu
            ..Sample::default()
        };
        for (v, want) in [
            (f64::NAN, None),
            (f64::INFINITY, None),
            (-2.0, Some(0.0)),
            (1.5, Some(1.5)),
        ] {
            s.cpu.busy_cores = v;
            assert_eq!(demand_of(&s, "cpu.busy_cores"), want, "{v}");
        }
    }

    #[test]
    fn buckets_roll_up_and_close_on_boundaries() {
        let mut b = Buckets::new(10);
        let mut key = String::new();
        let mut out = Vec::new();
        let mut s = Sample {
            valid: 1, // cpu
            ..Sample::default()
        };
        for (t, v) in [(100.0, 1.0), (105.0, 3.0), (109.9, 2.0)] {
            s.wall_unix = t;
            s.cpu.busy_cores = v;
            assert!(!b.add(&s, &mut key, &mut out));
        }
        s.wall_unix = 110.0;
        assert!(b.add(&s, &mut key, &mut out));
        let r = out.iter().find(|r| r.metric == "cpu.busy_cores").unwrap();
        assert_eq!((r.ts, r.mean, r.max, r.last, r.n), (100, 2.0, 3.0, 2.0, 3));
    }

    #[test]
    fn resumed_buckets_go_on_from_what_the_last_run_left_open() {
        let open = vec![Rollup {
            metric: "cpu.busy_cores".into(),
            ts: 120,
            mean: 2.0,
            max: 4.0,
            last: 1.0,
            n: 20,
        }];
        let mut key = String::new();
        let mut s = Sample {
            valid: 1, // cpu
            ..Sample::default()
        };
        // Back within the same minute: the samples add to it.
        let mut b = Buckets::resumed(60, open.clone());
        let mut out = Vec::new();
        s.wall_unix = 170.0;
        s.cpu.busy_cores = 7.0;
        assert!(!b.add(&s, &mut key, &mut out));
        s.wall_unix = 180.0;
        assert!(b.add(&s, &mut key, &mut out));
        let r = out.iter().find(|r| r.metric == "cpu.busy_cores").unwrap();
        assert_eq!((r.ts, r.max, r.last, r.n), (120, 7.0, 7.0, 21));
        assert!((r.mean - 47.0 / 21.0).abs() < 1e-12, "{}", r.mean);
        // Back later: the first sample closes it as it was left.
        let mut b = Buckets::resumed(60, open);
        let mut out = Vec::new();
        s.wall_unix = 600.0;
        assert!(b.add(&s, &mut key, &mut out));
        let r = out.iter().find(|r| r.metric == "cpu.busy_cores").unwrap();
        assert_eq!((r.ts, r.mean, r.max, r.last, r.n), (120, 2.0, 4.0, 1.0, 20));
    }
}

//! Thinning a long series to what a canvas can show, without losing what it shows.
//!
//! Invariant (M4 decimation): the points are grouped by the pixel column they fall in, and each
//! column keeps its first, lowest, highest and last point, in time order. A line through the
//! kept points covers, in every column, exactly the pixels a line through all of them would: a
//! single-sample spike is drawn to its full height, and the line leaves each column where the
//! full series does. At most four points per column survive, whatever the series' length.

/// Keeps each column's first, lowest, highest and last point of `points` (x increasing);
/// `column` maps an x to its pixel column. Points with a non-finite coordinate are dropped.
pub(super) fn m4(points: &[(f64, f64)], column: impl Fn(f64) -> i64) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < finite.len() {
        let col = column(finite[start].0);
        let mut end = start + 1;
        while end < finite.len() && column(finite[end].0) == col {
            end += 1;
        }
        let run = &finite[start..end];
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in run.iter().enumerate() {
            if p.1 < run[lo].1 {
                lo = i;
            }
            if p.1 > run[hi].1 {
                hi = i;
            }
        }
        let mut keep = [0, lo, hi, run.len() - 1];
        keep.sort_unstable();
        let mut last = None;
        for i in keep {
            if last != Some(i) {
                out.push(run[i]);
                last = Some(i);
            }
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_columns_extremes_in_time_order() {
        // 100,000 points into 1,000 columns; one spike up and one down.
        let mut pts: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 10.0)).collect();
        pts[54_321].1 = 1e6;
        pts[54_329].1 = -5.0;
        let kept = m4(&pts, |x| (x / 100.0).floor() as i64);
        assert!(kept.len() <= 4 * 1000);
        assert!(
            kept.windows(2).all(|w| w[0].0 < w[1].0),
            "time order, no repeats"
        );
        assert!(kept.contains(&(54_321.0, 1e6)) && kept.contains(&(54_329.0, -5.0)));
        assert_eq!(kept.first(), pts.first());
        assert_eq!(kept.last(), pts.last());
    }

    #[test]
    fn short_series_pass_through_and_non_finite_points_go() {
        let pts = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)];
        assert_eq!(m4(&pts, |x| x as i64), [(0.0, 1.0), (2.0, 3.0)]);
    }
}

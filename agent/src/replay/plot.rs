//! Minimal SVG line charts for `--plot` (hand-written: a few polylines and a filled band do
//! not justify a plotting crate and its font/rendering dependencies).

use std::fmt::Write;

/// Width and height of the drawing area, pixels.
const W: f64 = 1200.0;
const H: f64 = 420.0;
const PAD: f64 = 50.0;
/// Most points drawn per series (longer series are bucketed, keeping each bucket's extremes).
const MAX_POINTS: usize = 3000;

/// One polyline.
pub(crate) struct Line<'a> {
    /// Legend label.
    pub label: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// (x, y) points, x increasing.
    pub points: Vec<(f64, f64)>,
    /// Draw as a step function (capacity).
    pub steps: bool,
}

/// A shaded band between two series sharing x.
pub(crate) struct Band<'a> {
    /// Legend label.
    pub label: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// (x, low, high).
    pub points: Vec<(f64, f64, f64)>,
}

/// Renders a chart with a title, optional band and lines; x is unix seconds.
pub(crate) fn render(title: &str, band: Option<&Band>, lines: &[Line]) -> String {
    let mut xs = f64::INFINITY..f64::NEG_INFINITY;
    let mut ys = f64::INFINITY..f64::NEG_INFINITY;
    let mut see = |x: f64, y: f64| {
        if x.is_finite() && y.is_finite() {
            xs = xs.start.min(x)..xs.end.max(x);
            ys = ys.start.min(y)..ys.end.max(y);
        }
    };
    if let Some(b) = band {
        b.points.iter().for_each(|&(x, lo, hi)| {
            see(x, lo);
            see(x, hi);
        });
    }
    lines
        .iter()
        .flat_map(|l| &l.points)
        .for_each(|&(x, y)| see(x, y));
    if xs.start > xs.end {
        xs = 0.0..1.0;
        ys = 0.0..1.0;
    }
    let (x0, x1) = (
        xs.start,
        if xs.end > xs.start {
            xs.end
        } else {
            xs.start + 1.0
        },
    );
    let (y0, y1) = (
        ys.start.min(0.0),
        if ys.end > ys.start {
            ys.end
        } else {
            ys.start + 1.0
        },
    );
    let px = |x: f64| PAD + (x - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let py = |y: f64| H - PAD - (y - y0) / (y1 - y0) * (H - 2.0 * PAD);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{PAD}" y="20" font-size="14">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        s,
        r#"<path d="M{PAD} {PAD} V{} H{}" fill="none" stroke="black"/>"#,
        H - PAD,
        W - PAD
    );
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<text x="4" y="{:.1}">{}</text><path d="M{PAD} {:.1} H{}" stroke="#ddd"/>"##,
            py(y) + 4.0,
            short(y),
            py(y),
            W - PAD
        );
    }
    for i in 0..=4 {
        let x = x0 + (x1 - x0) * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}">{}</text>"#,
            px(x) - 30.0,
            H - PAD + 18.0,
            when(x)
        );
    }
    let mut legend = Vec::new();
    if let Some(b) = band {
        let pts = thin(&b.points);
        let mut d = String::new();
        for (i, &(x, _, hi)) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1} ",
                if i == 0 { "M" } else { "L" },
                px(x),
                py(hi)
            );
        }
        for &(x, lo, _) in pts.iter().rev() {
            let _ = write!(d, "L{:.1} {:.1} ", px(x), py(lo));
        }
        let _ = writeln!(
            s,
            r#"<path d="{d}Z" fill="{}" fill-opacity="0.3" stroke="none"/>"#,
            b.color
        );
        legend.push((b.label, b.color));
    }
    for l in lines {
        let pts = thin(&l.points.iter().map(|&(x, y)| (x, y, y)).collect::<Vec<_>>());
        let mut d = String::new();
        let mut prev: Option<f64> = None;
        for (i, &(x, y, _)) in pts.iter().enumerate() {
            if l.steps
                && let Some(py_prev) = prev
            {
                let _ = write!(d, "L{:.1} {:.1} ", px(x), py_prev);
            }
            let _ = write!(
                d,
                "{}{:.1} {:.1} ",
                if i == 0 { "M" } else { "L" },
                px(x),
                py(y)
            );
            prev = Some(py(y));
        }
        let _ = writeln!(
            s,
            r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1"/>"#,
            l.color
        );
        legend.push((l.label, l.color));
    }
    for (i, (label, color)) in legend.iter().enumerate() {
        let x = W - PAD - 180.0;
        let y = 20.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="8" fill="{color}"/><text x="{}" y="{y}">{}</text>"#,
            y - 8.0,
            x + 16.0,
            escape(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Buckets long series, keeping each bucket's lowest low and highest high.
fn thin(points: &[(f64, f64, f64)]) -> Vec<(f64, f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(MAX_POINTS / 2);
    points
        .chunks(per)
        .flat_map(|c| {
            let lo = c.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = c.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
            let (a, b) = (c[0].0, c[c.len() - 1].0);
            [(a, lo, hi), (b, lo, hi)]
        })
        .collect()
}

fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.2}")
    }
}

fn when(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0).map_or_else(
        || format!("{t:.0}"),
        |d| d.format("%Y-%m-%d %H:%M").to_string(),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_band_and_lines() {
        let svg = render(
            "t <1>",
            Some(&Band {
                label: "P50–P90",
                color: "#9cf",
                points: vec![(0.0, 1.0, 2.0), (60.0, 1.5, 3.0)],
            }),
            &[Line {
                label: "actual",
                color: "black",
                points: vec![(0.0, 1.0), (60.0, 2.0)],
                steps: false,
            }],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("actual"));
    }

    #[test]
    fn thins_long_series() {
        let pts: Vec<_> = (0..100_000).map(|i| (i as f64, 0.0, i as f64)).collect();
        let t = thin(&pts);
        assert!(t.len() <= MAX_POINTS + 2);
        assert_eq!(t.last().map(|p| p.2), Some(99_999.0));
    }
}

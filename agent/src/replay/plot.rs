//! SVG charts for `--plot`: lines (plain or as steps), a shaded band, shaded time spans.
//!
//! Hand-written rather than drawn with a plotting crate: a few paths and rectangles are all a
//! chart needs, and what makes one truthful here (keeping every pixel column's extremes, nice
//! ticks, the spans) would be ours to write with a crate too; a crate would add its code to the
//! agent binary that every VM runs, and ours is built for size.
//!
//! Invariants:
//! - the y axis runs from 0 (or the data's minimum, if below) to the first nice tick at or above
//!   the data's maximum (see [`axis`]), so every value drawn is inside the plot and the top is
//!   less than one tick step above the largest value;
//! - every series is thinned per pixel column keeping each column's first, lowest, highest and
//!   last point ([`decimate`]), so each column shows the series' full range (spikes included);
//! - spans are shaded behind the band and the lines, per pixel column, clipped to the data's x
//!   range: a column is the deeper the more of its time is covered, and any covered time shows
//!   (faintly: a five-minute span in a column of hours is not painted as the whole column);
//! - all text stays inside the canvas: y labels end left of the plot, the first time label
//!   starts at the plot's left edge and the last ends at its right edge, the legend's entries
//!   run in rows under the title, wrapped by a generous estimate of their width.

mod axis;
mod decimate;
#[cfg(test)]
pub(crate) mod read;

use std::fmt::Write;

use axis::Ticks;

/// Canvas width and height, pixels.
const W: f64 = 1200.0;
const H: f64 = 420.0;
/// The plot area's left and right edges and bottom (its top is below the legend's rows).
const LEFT: f64 = 64.0;
const RIGHT: f64 = W - 30.0;
const BOTTOM: f64 = H - 40.0;
/// Baseline of the legend's first row, and the distance between rows.
const LEGEND_Y: f64 = 42.0;
const ROW: f64 = 18.0;
/// A generous width of one character at the 12 px font (sans-serif digits and lower case are
/// narrower), to lay the legend out without measuring text.
const CHAR_W: f64 = 7.0;
/// About this many y ticks.
const Y_TICKS: usize = 5;
/// Exactly this many time labels, evenly spaced, first and last at the plot's edges.
const X_LABELS: usize = 5;
/// Opacity of a pixel column of spans: this much for any covered time, up to `SPAN_FULL` for a
/// column covered all through.
const SPAN_FAINT: f64 = 0.12;
const SPAN_FULL: f64 = 0.4;

/// One series drawn as a line.
pub(crate) struct Line<'a> {
    /// Legend label.
    pub label: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// (x, y) points, x increasing.
    pub points: Vec<(f64, f64)>,
    /// Draw as a step function: each value holds until the next point's x (capacity).
    pub steps: bool,
}

/// A shaded band between two series sharing x.
pub(crate) struct Band<'a> {
    /// Legend label.
    pub label: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// (x, low, high), x increasing.
    pub points: Vec<(f64, f64, f64)>,
}

/// Time spans shaded over the plot's whole height, behind everything else.
pub(crate) struct Spans<'a> {
    /// Legend label.
    pub label: &'a str,
    /// CSS colour (drawn translucent).
    pub color: &'a str,
    /// (from, to) in x, increasing.
    pub spans: Vec<(f64, f64)>,
}

/// A chart; x is unix seconds.
pub(crate) struct Chart<'a> {
    /// Title, top left.
    pub title: &'a str,
    /// Shaded spans, if any.
    pub spans: Option<Spans<'a>>,
    /// A band, if any.
    pub band: Option<Band<'a>>,
    /// Lines, drawn in order (the last on top).
    pub lines: Vec<Line<'a>>,
}

/// Where data goes on the canvas.
struct Frame {
    x0: f64,
    x1: f64,
    ticks: Ticks,
    /// Top of the plot area, pixels.
    top: f64,
}

impl Frame {
    /// The frame that holds every point of `chart`'s band and lines, below `legend_rows`.
    fn of(chart: &Chart, legend_rows: usize) -> Frame {
        let mut xs = (f64::INFINITY, f64::NEG_INFINITY);
        let mut ys = (0.0_f64, f64::NEG_INFINITY);
        let mut see = |x: f64, y: f64| {
            if x.is_finite() && y.is_finite() {
                xs = (xs.0.min(x), xs.1.max(x));
                ys = (ys.0.min(y), ys.1.max(y));
            }
        };
        for &(x, lo, hi) in chart.band.iter().flat_map(|b| &b.points) {
            see(x, lo);
            see(x, hi);
        }
        for &(x, y) in chart.lines.iter().flat_map(|l| &l.points) {
            see(x, y);
        }
        let (x0, x1) = match xs {
            (a, b) if a < b => (a, b),
            (a, _) if a.is_finite() => (a, a + 1.0),
            _ => (0.0, 1.0),
        };
        Frame {
            x0,
            x1,
            ticks: Ticks::nice(ys.0, ys.1, Y_TICKS),
            top: LEGEND_Y + ROW * legend_rows as f64,
        }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (RIGHT - LEFT)
    }

    fn py(&self, y: f64) -> f64 {
        let t = &self.ticks;
        BOTTOM - (y - t.lo) / (t.hi - t.lo) * (BOTTOM - self.top)
    }

    /// The pixel column of `x`.
    fn column(&self, x: f64) -> i64 {
        self.px(x).floor() as i64
    }
}

/// How a legend entry is marked.
enum Swatch {
    /// A filled square at this opacity.
    Area(f64),
    /// A short line.
    Line,
}

/// `chart`'s legend entries, each with its position: left to right in rows under the title,
/// a new row when the next entry would pass the canvas's right edge.
fn legend<'a>(chart: &Chart<'a>) -> Vec<Entry<'a>> {
    let mut entries = Vec::new();
    if let Some(sp) = &chart.spans {
        entries.push((sp.label, sp.color, Swatch::Area(SPAN_FULL)));
    }
    if let Some(b) = &chart.band {
        entries.push((b.label, b.color, Swatch::Area(0.3)));
    }
    for l in &chart.lines {
        entries.push((l.label, l.color, Swatch::Line));
    }
    let (mut x, mut y) = (LEFT, LEGEND_Y);
    let mut out = Vec::new();
    for (label, color, swatch) in entries {
        let width = 20.0 + CHAR_W * label.chars().count() as f64;
        if x > LEFT && x + width > W - 8.0 {
            (x, y) = (LEFT, y + ROW);
        }
        out.push((label, color, swatch, x, y));
        x += width + 18.0;
    }
    out
}

/// Type of a placed legend entry: label, colour, swatch, x, baseline y.
type Entry<'a> = (&'a str, &'a str, Swatch, f64, f64);

/// `chart`'s legend and the frame below it.
fn layout<'a>(chart: &Chart<'a>) -> (Vec<Entry<'a>>, Frame) {
    let legend = legend(chart);
    let rows = legend
        .last()
        .map_or(0, |e| ((e.4 - LEGEND_Y) / ROW).round() as usize + 1);
    let frame = Frame::of(chart, rows);
    (legend, frame)
}

/// Renders `chart` as a standalone SVG document.
pub(crate) fn render(chart: &Chart) -> String {
    let (legend, f) = layout(chart);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="14">{}</text>"#,
        escape(chart.title)
    );
    for (label, color, swatch, x, y) in &legend {
        let _ = match swatch {
            Swatch::Area(opacity) => write!(
                s,
                r#"<rect x="{x}" y="{}" width="14" height="10" fill="{color}" fill-opacity="{opacity}"/>"#,
                y - 9.0
            ),
            Swatch::Line => write!(
                s,
                r#"<path d="M{x} {} h14" stroke="{color}" stroke-width="2"/>"#,
                y - 4.0
            ),
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{y}">{}</text>"#,
            x + 20.0,
            escape(label)
        );
    }
    for (v, label) in f.ticks.values().into_iter().zip(f.ticks.labels()) {
        let y = f.py(v);
        let _ = writeln!(
            s,
            r##"<path d="M{LEFT} {y:.1} H{RIGHT}" stroke="#ddd"/><text class="ytick" x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 6.0,
            y + 4.0,
            escape(&label)
        );
    }
    for i in 0..X_LABELS {
        let share = i as f64 / (X_LABELS - 1) as f64;
        let x = LEFT + share * (RIGHT - LEFT);
        let anchor = match i {
            0 => "start",
            i if i + 1 == X_LABELS => "end",
            _ => "middle",
        };
        let _ = writeln!(
            s,
            r#"<path d="M{x:.1} {BOTTOM} v5" stroke="black"/><text class="xtick" x="{x:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
            BOTTOM + 18.0,
            axis::when(f.x0 + share * (f.x1 - f.x0))
        );
    }
    if let Some(sp) = &chart.spans {
        for (x, width, opacity) in span_shades(&f, &sp.spans) {
            let _ = writeln!(
                s,
                r#"<rect class="span" x="{x}" y="{:.1}" width="{width}" height="{:.1}" fill="{}" fill-opacity="{opacity:.2}"/>"#,
                f.top,
                BOTTOM - f.top,
                sp.color
            );
        }
    }
    if let Some(b) = &chart.band {
        let hi: Vec<_> = b.points.iter().map(|&(x, _, hi)| (x, hi)).collect();
        let lo: Vec<_> = b.points.iter().map(|&(x, lo, _)| (x, lo)).collect();
        let column = |x| f.column(x);
        let mut d = path(&f, &decimate::m4(&hi, column), false);
        for &(x, y) in decimate::m4(&lo, column).iter().rev() {
            let _ = write!(d, "L{:.1} {:.1} ", f.px(x), f.py(y));
        }
        let _ = writeln!(
            s,
            r#"<path d="{d}Z" fill="{}" fill-opacity="0.3" stroke="none"/>"#,
            b.color
        );
    }
    for l in &chart.lines {
        let d = path(&f, &decimate::m4(&l.points, |x| f.column(x)), l.steps);
        let _ = writeln!(
            s,
            r#"<path class="line" data-label="{}" d="{d}" fill="none" stroke="{}" stroke-width="1"/>"#,
            escape(l.label),
            l.color
        );
    }
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT} {:.1} V{BOTTOM} H{RIGHT}" fill="none" stroke="black"/>"#,
        f.top
    );
    s.push_str("</svg>\n");
    s
}

/// An SVG path through `points` ("M x y L x y ..."), as steps if `steps`.
fn path(f: &Frame, points: &[(f64, f64)], steps: bool) -> String {
    let mut d = String::new();
    let mut prev: Option<f64> = None;
    for &(x, y) in points {
        let (px, py) = (f.px(x), f.py(y));
        match prev {
            None => {
                let _ = write!(d, "M{px:.1} {py:.1} ");
            }
            Some(before) => {
                if steps {
                    let _ = write!(d, "L{px:.1} {before:.1} ");
                }
                let _ = write!(d, "L{px:.1} {py:.1} ");
            }
        }
        prev = Some(py);
    }
    d
}

/// `spans` (clipped to the data's x range) as shaded pixel columns: (x, width, opacity), the
/// opacity from [`SPAN_FAINT`] for a sliver of covered time to [`SPAN_FULL`] for a whole column,
/// neighbouring columns of one shade merged.
fn span_shades(f: &Frame, spans: &[(f64, f64)]) -> Vec<(f64, f64, f64)> {
    let columns = (RIGHT - LEFT).ceil() as usize;
    let mut covered = vec![0.0_f64; columns];
    for &(a, b) in spans {
        let (a, b) = (a.max(f.x0), b.min(f.x1));
        if !(a.is_finite() && b.is_finite() && b > a) {
            continue;
        }
        let (pa, pb) = (f.px(a) - LEFT, f.px(b) - LEFT);
        let first = pa.floor().max(0.0) as usize;
        let last = (pb.ceil() as usize).min(columns);
        for (c, share) in covered.iter_mut().enumerate().take(last).skip(first) {
            *share += (pb.min(c as f64 + 1.0) - pa.max(c as f64)).max(0.0);
        }
    }
    let mut out: Vec<(f64, f64, f64)> = Vec::new();
    for (c, &share) in covered.iter().enumerate() {
        if share <= 0.0 {
            continue;
        }
        let opacity = SPAN_FAINT + (SPAN_FULL - SPAN_FAINT) * share.min(1.0);
        let opacity = (opacity * 100.0).round() / 100.0;
        let x = LEFT + c as f64;
        match out.last_mut() {
            Some(last) if last.0 + last.1 == x && last.2 == opacity => last.1 += 1.0,
            _ => out.push((x, 1.0, opacity)),
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;

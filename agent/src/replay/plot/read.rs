//! Reading a rendered chart back, for tests: its lines' points, its shaded spans and its axes,
//! in pixels and in data units. Invariant: it reads only what [`super::render`] writes (`class`
//! attributes mark the lines, the spans and the tick labels) and panics on anything else, as a
//! test should.

/// The value of a y tick label ("1500", "2.5k", "-5", "0").
pub(crate) fn label_value(label: &str) -> f64 {
    let (num, unit) = match label.char_indices().last() {
        Some((i, 'k')) => (&label[..i], 1e3),
        Some((i, 'M')) => (&label[..i], 1e6),
        Some((i, 'G')) => (&label[..i], 1e9),
        Some((i, 'T')) => (&label[..i], 1e12),
        _ => (label, 1.0),
    };
    num.parse::<f64>().expect("a number") * unit
}

/// The value of attribute `name` in the tag `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let at = tag.find(&key).expect("attribute") + key.len();
    let len = tag[at..].find('"').expect("closing quote");
    &tag[at..at + len]
}

/// Each line's legend label and the points of its path, in pixels.
pub(crate) fn lines(svg: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    svg.lines()
        .filter(|l| l.starts_with(r#"<path class="line""#))
        .map(|l| {
            let nums: Vec<f64> = attr(l, "d")
                .split(|c: char| c == 'M' || c == 'L' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(|t| t.parse().expect("a coordinate"))
                .collect();
            let points = nums.chunks(2).map(|c| (c[0], c[1])).collect();
            (attr(l, "data-label").to_string(), points)
        })
        .collect()
}

/// The y ticks, bottom to top: (pixel y of the grid line, label).
pub(crate) fn y_ticks(svg: &str) -> Vec<(f64, String)> {
    svg.lines()
        .filter_map(|l| {
            let at = l.find(r#"<text class="ytick""#)?;
            let tag = &l[at..];
            let y: f64 = attr(tag, "y").parse().expect("a y");
            let text = &tag[tag.find('>')? + 1..tag.find("</text>")?];
            Some((y - 4.0, text.to_string()))
        })
        .collect()
}

/// The data value at pixel row `py`, from the y axis's labels.
pub(crate) fn value_at(svg: &str, py: f64) -> f64 {
    let ticks = y_ticks(svg);
    let (b, t) = (&ticks[0], &ticks[ticks.len() - 1]);
    let (vb, vt) = (label_value(&b.1), label_value(&t.1));
    vb + (py - b.0) / (t.0 - b.0) * (vt - vb)
}

/// The shaded spans, as pixel ranges (from, to).
pub(crate) fn spans(svg: &str) -> Vec<(f64, f64)> {
    svg.lines()
        .filter(|l| l.starts_with(r#"<rect class="span""#))
        .map(|l| {
            let x: f64 = attr(l, "x").parse().expect("an x");
            let w: f64 = attr(l, "width").parse().expect("a width");
            (x, x + w)
        })
        .collect()
}

/// The pixel x of the first and the last time label (the data's first and last time).
pub(crate) fn x_edges(svg: &str) -> (f64, f64) {
    let xs: Vec<f64> = svg
        .lines()
        .filter_map(|l| {
            let at = l.find(r#"<text class="xtick""#)?;
            Some(attr(&l[at..], "x").parse().expect("an x"))
        })
        .collect();
    (xs[0], xs[xs.len() - 1])
}

//! The chart's promises, checked on its SVG: spikes are drawn to their height, the axis is nice
//! and fits the data, labels stay on the canvas, spans sit behind the lines.

use super::*;

fn line(label: &'static str, points: Vec<(f64, f64)>, steps: bool) -> Line<'static> {
    Line {
        label,
        color: "black",
        points,
        steps,
    }
}

#[test]
fn renders_a_band_spans_and_lines() {
    let svg = render(&Chart {
        title: "t <1>",
        spans: Some(Spans {
            label: "short",
            color: "red",
            spans: vec![(10.0, 20.0)],
        }),
        band: Some(Band {
            label: "P50..P90",
            color: "#9cf",
            points: vec![(0.0, 1.0, 2.0), (60.0, 1.5, 3.0)],
        }),
        lines: vec![line("actual", vec![(0.0, 1.0), (60.0, 2.0)], false)],
    });
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("t &lt;1&gt;") && svg.contains(">actual<") && svg.contains(">short<"));
    let (span, first_line) = (svg.find(r#"class="span""#), svg.find(r#"class="line""#));
    assert!(
        span.is_some() && span < first_line,
        "spans are drawn behind the lines"
    );
}

#[test]
fn a_single_sample_spike_is_drawn_to_its_height() {
    for steps in [false, true] {
        let mut pts: Vec<(f64, f64)> = (0..16_000)
            .map(|i| (1.4e9 + 300.0 * i as f64, 20.0 + (i % 7) as f64))
            .collect();
        pts[9_876].1 = 1673.0;
        let chart = Chart {
            title: "spike",
            spans: None,
            band: None,
            lines: vec![line("demand", pts, steps)],
        };
        let want = format!("{:.1}", layout(&chart).1.py(1673.0));
        let svg = render(&chart);
        let drawn = &read::lines(&svg)[0].1;
        assert!(
            drawn.len() <= 2 * 4 * (RIGHT - LEFT + 1.0) as usize,
            "thinned"
        );
        let top = drawn.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        assert_eq!(format!("{top:.1}"), want, "steps: {steps}");
        let peak = read::value_at(&svg, top);
        assert!((peak - 1673.0).abs() < 1.0, "read back {peak}");
    }
}

#[test]
fn the_axis_is_nice_and_its_labels_share_one_format() {
    let svg = render(&Chart {
        title: "axis",
        spans: None,
        band: None,
        lines: vec![line("plan", vec![(0.0, 0.0), (60.0, 2400.0)], true)],
    });
    let labels: Vec<String> = read::y_ticks(&svg).into_iter().map(|t| t.1).collect();
    assert_eq!(labels, ["0", "500", "1000", "1500", "2000", "2500"]);
}

#[test]
fn every_label_fits_the_canvas() {
    let svg = render(&Chart {
        title: "labels",
        spans: None,
        band: None,
        lines: vec![line("x", vec![(1.4e9, 1.0), (1.4e9 + 4.7e6, 2.0)], false)],
    });
    let ticks: Vec<&str> = svg
        .lines()
        .filter(|l| l.contains(r#"class="xtick""#))
        .collect();
    assert_eq!(ticks.len(), X_LABELS);
    assert!(ticks[0].contains(&format!(r#"x="{LEFT:.1}""#)) && ticks[0].contains("\"start\""));
    let last = ticks[X_LABELS - 1];
    assert!(last.contains(&format!(r#"x="{RIGHT:.1}""#)) && last.contains("\"end\""));
}

#[test]
fn spans_are_clipped_and_shaded_by_the_time_they_cover() {
    let chart = Chart {
        title: "spans",
        spans: None,
        band: None,
        lines: vec![line("x", vec![(0.0, 1.0), (RIGHT - LEFT, 1.0)], false)],
    };
    // One unit of x is one pixel column.
    let f = layout(&chart).1;
    let shades = span_shades(
        &f,
        &[
            (-50.0, 10.0),
            (500.0, 500.1),
            (600.0, 603.0),
            (1100.0, 2000.0),
        ],
    );
    let x = |px: f64| LEFT + px;
    assert_eq!(
        shades,
        [
            (x(0.0), 10.0, SPAN_FULL),
            (x(500.0), 1.0, 0.15),
            (x(600.0), 3.0, SPAN_FULL),
            (x(1100.0), RIGHT - LEFT - 1100.0, SPAN_FULL),
        ]
    );
}

#[test]
fn a_long_legend_wraps_inside_the_canvas() {
    let labels = ["a long legend label that takes a lot of room"; 6];
    let chart = Chart {
        title: "legend",
        spans: None,
        band: None,
        lines: labels
            .iter()
            .map(|l| line(l, vec![(0.0, 1.0), (1.0, 2.0)], false))
            .collect(),
    };
    let (legend, f) = layout(&chart);
    assert!(
        legend
            .iter()
            .all(|e| e.3 + 20.0 + CHAR_W * e.0.len() as f64 <= W)
    );
    let rows = legend.last().map(|e| e.4);
    assert!(rows > Some(LEGEND_Y) && f.top > rows.unwrap_or(0.0));
}

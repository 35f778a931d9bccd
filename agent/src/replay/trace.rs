//! Reading `timestamp,value` traces and parsing timestamps (unix seconds or ISO 8601).

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Why a trace could not be read; every variant names the file and, where it applies, the line.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {error}")]
    Io {
        /// The trace file.
        file: String,
        /// What the OS said (in the message, not a source: said once).
        error: std::io::Error,
    },
    /// The file holds no header.
    #[error("{file}: empty file (expected a header `timestamp,value`)")]
    Empty {
        /// The trace file.
        file: String,
    },
    /// The header is not `timestamp,value`.
    #[error("{file}: line 1: header is {found:?}, expected `timestamp,value`")]
    Header {
        /// The trace file.
        file: String,
        /// The header it has.
        found: String,
    },
    /// A row is malformed.
    #[error("{file}: line {line}: {reason}")]
    Row {
        /// The trace file.
        file: String,
        /// The row's line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No data rows.
    #[error("{file}: no data rows after the header")]
    NoRows {
        /// The trace file.
        file: String,
    },
}

/// A series read from a trace file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Unix seconds, strictly increasing.
    pub times: Vec<f64>,
    /// Values, finite.
    pub values: Vec<f64>,
}

/// How messages name standard input.
pub const STANDARD_INPUT: &str = "standard input";

/// Whether `path` is `-`, which stands for standard input or output, as in most Unix tools.
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// What a trace's values may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Any finite number (`backtest` forecasts any series).
    Any,
    /// Demand, a load, never below zero (`simulate` plans capacity for it).
    Demand,
}

/// Reads a `timestamp,value` CSV from a file, or from standard input for `-`.
pub fn read(path: &Path, values: Values) -> Result<Trace, TraceError> {
    let (file, text) = if is_stdio(path) {
        let mut text = Vec::new();
        let read = std::io::stdin().lock().read_to_end(&mut text);
        (STANDARD_INPUT.to_string(), read.map(|_| text))
    } else {
        (path.display().to_string(), std::fs::read(path))
    };
    let text = text.map_err(|error| TraceError::Io {
        file: file.clone(),
        error,
    })?;
    let text = String::from_utf8_lossy(&text);
    parse(&text, &file, values)
}

/// Parses the text of a `timestamp,value` CSV whose values are `values`; `file` names it in
/// errors.
pub fn parse(text: &str, file: &str, values: Values) -> Result<Trace, TraceError> {
    let mut lines = text.lines().enumerate();
    let header = loop {
        match lines.next() {
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((_, l)) => break l.trim_start_matches('\u{feff}').trim(),
            None => return Err(TraceError::Empty { file: file.into() }),
        }
    };
    let cols: Vec<String> = header
        .split(',')
        .map(|c| unquote(c).to_ascii_lowercase())
        .collect();
    if cols != ["timestamp", "value"] {
        return Err(TraceError::Header {
            file: file.into(),
            found: header.into(),
        });
    }
    let mut trace = Trace::default();
    let row_err = |line: usize, reason: String| TraceError::Row {
        file: file.into(),
        line,
        reason,
    };
    for (idx, raw) in lines {
        let line = idx + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let mut parts = l.split(',');
        let (Some(ts), Some(val), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(row_err(
                line,
                format!("expected 2 fields `timestamp,value`, got {l:?}"),
            ));
        };
        let t = parse_time(unquote(ts)).map_err(|e| row_err(line, e))?;
        let v_text = unquote(val);
        let v: f64 = v_text
            .parse()
            .map_err(|_| row_err(line, format!("value {v_text:?} is not a number")))?;
        if !v.is_finite() {
            return Err(row_err(line, format!("value {v_text:?} is not finite")));
        }
        // The bound a signal's figures have: sums and spreads of larger values leave the
        // range of a float (a plan of 1e308 is no plan).
        if v.abs() > headroom_common::signal::MAX_FIGURE {
            return Err(row_err(
                line,
                format!("value {v_text:?} is beyond ±1e15, the largest demand headroom plans for"),
            ));
        }
        if values == Values::Demand && v < 0.0 {
            return Err(row_err(
                line,
                format!("value {v_text:?} is below zero: demand is a load, never negative"),
            ));
        }
        if let Some(&prev) = trace.times.last()
            && t <= prev
        {
            return Err(row_err(
                line,
                format!(
                    "timestamp {} is not after the previous row's ({prev})",
                    unquote(ts)
                ),
            ));
        }
        trace.times.push(t);
        trace.values.push(v);
    }
    if trace.times.is_empty() {
        return Err(TraceError::NoRows { file: file.into() });
    }
    Ok(trace)
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
        .trim()
}

/// Unix seconds from which a timestamp is taken for milliseconds (the year 5138).
const MILLISECONDS_FROM: f64 = 1e11;

/// Parses unix seconds (integer or decimal) or ISO 8601 / RFC 3339 (no offset = UTC).
pub fn parse_time(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty timestamp".into());
    }
    if let Ok(x) = s.parse::<f64>() {
        return if !x.is_finite() {
            Err(format!("timestamp {s:?} is not finite"))
        } else if x <= -MILLISECONDS_FROM {
            Err(format!(
                "timestamp {s:?} is over 3,000 years before 1970: give unix seconds"
            ))
        } else if x >= MILLISECONDS_FROM {
            // As seconds, past the year 5000: milliseconds (or finer) since the epoch, whose
            // replay would run for thousands of hours at the wrong cadence.
            Err(format!(
                "timestamp {s:?} is after the year 5000 as seconds: give unix seconds, not \
                 milliseconds"
            ))
        } else {
            Ok(x)
        };
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(secs(dt.timestamp(), dt.timestamp_subsec_nanos()));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Ok(secs(dt.timestamp(), dt.timestamp_subsec_nanos()));
        }
    }
    let naive = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix('z'))
        .unwrap_or(s);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, fmt) {
            let u = dt.and_utc();
            return Ok(secs(u.timestamp(), u.timestamp_subsec_nanos()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(naive, "%Y-%m-%d")
        && let Some(dt) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(dt.and_utc().timestamp() as f64);
    }
    Err(format!(
        "timestamp {s:?} is neither unix seconds nor ISO 8601 (e.g. 2024-05-01T12:00:00Z)"
    ))
}

fn secs(s: i64, nanos: u32) -> f64 {
    s as f64 + nanos as f64 * 1e-9
}

/// Formats unix seconds for output: integers without a decimal point.
pub fn format_time(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 9.0e15 {
        format!("{}", t as i64)
    } else {
        format!("{t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000.0));
        assert_eq!(parse_time("1700000000.25"), Ok(1_700_000_000.25));
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Ok(60.0));
        assert_eq!(parse_time("1970-01-01T00:01:00"), Ok(60.0));
        assert_eq!(parse_time("1970-01-01 00:01:00.5"), Ok(60.5));
        assert_eq!(parse_time("1970-01-01T01:01:00+01:00"), Ok(60.0));
        assert_eq!(parse_time("1970-01-02"), Ok(86_400.0));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("inf").is_err());
        let e = parse_time("1700000000000").unwrap_err();
        assert!(e.contains("not milliseconds"), "{e}");
    }

    #[test]
    fn reports_line_and_reason() {
        let e = parse("timestamp,value\n1,2\n2,abc\n", "x.csv", Values::Any)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.csv: line 3: value \"abc\" is not a number");
        let e = parse("timestamp,value\n5,2\n4,1\n", "x.csv", Values::Any)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.csv: line 3: timestamp 4 is not after"),
            "{e}"
        );
        let e = parse("time,v\n", "x.csv", Values::Any)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: header"), "{e}");
        assert!(parse("", "x.csv", Values::Any).is_err());
        assert!(parse("timestamp,value\n", "x.csv", Values::Any).is_err());
        assert!(parse("timestamp,value\n1,2,3\n", "x.csv", Values::Any).is_err());
        let e = parse("timestamp,value\n1,2\n2,-1e308\n", "x.csv", Values::Any)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.csv: line 3: value \"-1e308\" is beyond"),
            "{e}"
        );
        assert!(parse("timestamp,value\n1,1e15\n", "x.csv", Values::Any).is_ok());
        // Demand is never negative; another series may be.
        let e = parse("timestamp,value\n1,2\n2,-5\n", "x.csv", Values::Demand)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "x.csv: line 3: value \"-5\" is below zero: demand is a load, never negative"
        );
        assert!(parse("timestamp,value\n1,2\n2,-5\n", "x.csv", Values::Any).is_ok());
        let e = parse(
            "timestamp,value\n-100000000000000,1\n",
            "x.csv",
            Values::Any,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("before 1970"), "{e}");
    }

    #[test]
    fn accepts_quotes_bom_and_blank_lines() {
        let t = parse(
            "\u{feff}\"timestamp\",\"value\"\n\n\"1\",\"2.5\"\r\n3,4\n",
            "x",
            Values::Any,
        )
        .expect("ok");
        assert_eq!(t.times, vec![1.0, 3.0]);
        assert_eq!(t.values, vec![2.5, 4.0]);
    }

    proptest::proptest! {
        /// Any CSV text is a trace or an error naming the file, never a panic.
        #[test]
        fn arbitrary_csv_never_panics(
            text in "(timestamp,value\n)?([-+0-9.eE:TZ, a-z]{0,30}\n){0,20}",
            raw in "\\PC{0,200}",
        ) {
            for t in [&text, &raw] {
                for values in [Values::Any, Values::Demand] {
                    let _ = parse(t, "p.csv", values);
                }
                for field in t.split([',', '\n']) {
                    let _ = parse_time(field);
                }
            }
        }
    }
}

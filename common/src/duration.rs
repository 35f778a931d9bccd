//! The one duration syntax of headroom's configuration files and flags: a number with its
//! unit, as operators write them (`250ms`, `10s`, `5m`, `1h 30m`, `14d`).
//!
//! A bare number is refused with a message that says how to write it: seconds or
//! milliseconds would be a guess, and a guess in a scaling window or a timeout is a bug found
//! in production. Use [`parse`] for flags and `#[serde(with = "headroom_common::duration")]`
//! for configuration fields (it writes durations back in the same syntax).
//!
//! One exception, [`parse_seconds`]: the replay flags (`simulate --warmup` and the like) took a
//! number of seconds before they took durations, and scripts pass them so. There a bare number
//! is no guess: it is what those flags have always said they read.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Parses a duration such as `10s` or `5m`; the error says what one looks like.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 10s or 5m: {e}"))
}

/// Parses a replay flag's time: a duration as [`parse`] reads it (`5m`), or a bare number of
/// seconds (`300`), the form those flags took first. Gives seconds; a bare number is returned
/// as written, so a negative or zero one reaches the range checks that name the flag.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) => Ok(s),
        Err(_) => parse(text).map(|d| d.as_secs_f64()).map_err(|_| {
            format!("{text:?} is not a duration like 5m or 90s, nor seconds like 300")
        }),
    }
}

/// Formats a duration in the syntax [`parse`] reads (`1h 30m`, `250ms`).
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serialises a duration as [`format()`] writes it.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// Deserialises a duration written as [`parse`] reads it; a bare number is an error naming
/// the unit to add.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl DurationVisitor {
    fn bare<E: de::Error>(n: impl fmt::Display) -> E {
        E::custom(format!(
            "{n} is not a duration: write it with its unit, e.g. \"{n}s\" or \"{n}ms\""
        ))
    }
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"10s\" or \"5m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(Self::bare(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(Self::bare(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(Self::bare(v))
    }
}

/// `#[serde(default, deserialize_with = "headroom_common::duration::optional")]`: an optional
/// duration, absent when the key is.
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Holder {
        #[serde(with = "super")]
        d: Duration,
    }

    fn holder(text: &str) -> Result<Holder, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_units_and_writes_them_back() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(format(Duration::from_secs(5400)), "1h 30m");
        let h = holder("d = \"14d\"").unwrap();
        assert_eq!(h.d, Duration::from_secs(14 * 86_400));
        let back = toml::to_string(&h).unwrap();
        assert_eq!(holder(&back).unwrap(), h);
    }

    #[test]
    fn a_replay_flag_reads_a_duration_or_seconds() {
        assert_eq!(parse_seconds("5m"), Ok(300.0));
        assert_eq!(parse_seconds("1m 30s"), Ok(90.0));
        assert_eq!(parse_seconds("300"), Ok(300.0));
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert_eq!(parse_seconds("-5"), Ok(-5.0));
        let e = parse_seconds("soon").unwrap_err();
        assert!(e.contains("\"soon\" is not a duration like 5m"), "{e}");
    }

    #[test]
    fn a_bare_number_or_a_word_says_how_to_write_it() {
        let e = holder("d = 5").unwrap_err();
        assert!(
            e.contains("5 is not a duration: write it with its unit"),
            "{e}"
        );
        let e = holder("d = 0.5").unwrap_err();
        assert!(e.contains("0.5 is not a duration"), "{e}");
        let e = parse("soon").unwrap_err();
        assert!(e.contains("\"soon\" is not a duration like 10s"), "{e}");
    }
}

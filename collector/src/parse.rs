//! Byte-level scanning shared by the hand-written parsers.
//!
//! Every helper works on borrowed byte slices and returns `None` instead of panicking, so a parser
//! built from them allocates nothing and cannot be crashed by its input.

/// The lines of `buf`, without their `\n`.
pub(crate) fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == b'\n')
}

/// The whitespace-separated fields of `line`.
pub(crate) fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

/// A decimal unsigned integer; `None` on anything else or on overflow.
pub(crate) fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A decimal unsigned integer that must fit in `u32`.
pub(crate) fn parse_u32(field: &[u8]) -> Option<u32> {
    parse_u64(field).and_then(|v| u32::try_from(v).ok())
}

/// A hexadecimal unsigned integer (no prefix) that must fit in `u32`.
pub(crate) fn parse_hex_u32(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in field {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u32::from(d);
    }
    Some(v)
}

/// A plain decimal number such as `2.37`, `-1`, `0.5` or `1e3` (as Prometheus and the kernel
/// print them). Uses the standard float parser on the borrowed bytes: no allocation.
pub(crate) fn parse_f64(field: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(field).ok()?;
    s.parse::<f64>().ok()
}

/// The value of `key=` within `line` (e.g. `avg10=` in a PSI line).
pub(crate) fn key_value<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    fields(line).find_map(|f| {
        let rest = f.strip_prefix(key)?;
        rest.strip_prefix(b"=")
    })
}

/// `cur - prev` for a kernel counter; a decrease is a counter reset and yields `None` so that the
/// interval reports nothing rather than a huge or negative rate.
pub(crate) fn counter_delta(prev: u64, cur: u64) -> Option<u64> {
    cur.checked_sub(prev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_hex_u32(b"07E8"), Some(2024));
        assert_eq!(parse_hex_u32(b"0A"), Some(10));
        assert_eq!(parse_hex_u32(b"123456789"), None);
        assert_eq!(parse_hex_u32(b"zz"), None);
    }

    #[test]
    fn floats_and_keys() {
        assert_eq!(parse_f64(b"2.37"), Some(2.37));
        assert_eq!(
            key_value(b"some avg10=2.37 total=81", b"total"),
            Some(&b"81"[..])
        );
        assert_eq!(key_value(b"some avg10=2.37", b"avg60"), None);
        assert_eq!(counter_delta(5, 3), None);
        assert_eq!(counter_delta(3, 5), Some(2));
    }

    proptest! {
        #[test]
        fn helpers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_u64(&data);
            let _ = parse_hex_u32(&data);
            let _ = parse_f64(&data);
            let _ = key_value(&data, b"avg10");
            for l in lines(&data) {
                let _ = fields(l).count();
            }
        }
    }
}

//! Arbitrary text as a `backtest`/`simulate` input CSV (`timestamp,value`, unix seconds or
//! ISO 8601).
#![no_main]

use headroom::replay::trace;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for values in [trace::Values::Any, trace::Values::Demand] {
            let _ = trace::parse(text, "fuzz.csv", values);
        }
        for field in text.split([',', '\n']).take(8) {
            let _ = trace::parse_time(field);
        }
    }
});

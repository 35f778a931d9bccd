//! Arbitrary text as the agent's TOML configuration (`Config::parse`, which also validates).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = headroom::config::Config::parse(std::path::Path::new("fuzz.toml"), text);
    }
});

//! Arbitrary text as the agent's TOML configuration (`Config::parse`, which also validates).
//! The agent is a binary crate, so its self-contained `config` module is compiled in by path.
#![no_main]
#![allow(dead_code)]

#[path = "../../agent/src/config.rs"]
mod config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = config::Config::parse(std::path::Path::new("fuzz.toml"), text);
    }
});

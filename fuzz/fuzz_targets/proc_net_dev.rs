//! Arbitrary bytes into the collector's `net_dev` parser: it must return, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| headroom_collector::fuzz::net_dev(data));

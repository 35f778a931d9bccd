//! Arbitrary bytes into the collector's `proc_tcp` parser: it must return, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| headroom_collector::fuzz::proc_tcp(data));

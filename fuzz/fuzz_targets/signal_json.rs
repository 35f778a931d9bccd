//! Arbitrary bytes as a `POST /v1/signals` body: one signal or an array, then validation, the
//! way the coordinator reads it. The agent is a binary crate, so its self-contained `signal`
//! module is compiled in here by path.
#![no_main]
#![allow(dead_code)]

#[path = "../../agent/src/signal.rs"]
mod signal;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let signals = if data.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<signal::Signal>>(data)
    } else {
        serde_json::from_slice::<signal::Signal>(data).map(|s| vec![s])
    };
    for s in signals.into_iter().flatten() {
        let _ = s.validate();
        let _ = serde_json::to_string(&s);
    }
});

//! Arbitrary bytes as a `POST /v1/signals` body: one signal or an array, then validation, the
//! way the coordinator reads it.
#![no_main]

use headroom_common::signal::Signal;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let signals = if data.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<Signal>>(data)
    } else {
        serde_json::from_slice::<Signal>(data).map(|s| vec![s])
    };
    for s in signals.into_iter().flatten() {
        let _ = s.validate();
        let _ = serde_json::to_string(&s);
    }
});

//! Shared helpers for the benches (trace loading).

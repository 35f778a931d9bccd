//! No library: the criterion benches are in `benches/`, the whole-process harnesses in
//! `overhead/` and `reaction/` (see README.md).

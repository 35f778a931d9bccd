//! No library: this package is the end-to-end tests of both binaries, in `e2e/` (`cargo test
//! --test e2e`).

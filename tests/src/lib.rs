//! Holder crate for the end-to-end tests in `tests/tests/`; they drive the built `swell` binary.

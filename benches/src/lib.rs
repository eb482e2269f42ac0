//! Holder crate for the workspace benches in `benches/benches/`; see `benches/README.md`.

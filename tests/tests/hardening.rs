//! The hardening suite (issue: "a gateway you can put in front of real clients"): every fault found by
//! trying Swell as an attacker or a careless operator would, as an end-to-end test against the real `swell`
//! binary on 127.0.0.1. Timeouts are shortened through the config where a default would make a test slow.
//! One test binary with a module per concern, so the suite links once.

#[path = "support/mod.rs"]
mod support;

// A test target's root looks for `mod x;` beside itself (tests/tests/x.rs), so each module names its file.
#[path = "hardening/config.rs"]
mod config;
#[path = "hardening/data_path.rs"]
mod data_path;
#[path = "hardening/lifecycle.rs"]
mod lifecycle;

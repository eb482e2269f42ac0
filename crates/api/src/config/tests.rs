//! Loading and validating the local config: defaults, ranges, and that every error names the key (by
//! revision or route name, not list position), the value, and what is allowed. Split by topic: the
//! `gateway:` and `admin:` sections, revision and route entries, the file as a whole (and reloads of it),
//! and the program check.

use super::*;

fn gateway(keys: &str) -> Result<GatewayConfig, ConfigError> {
    LocalConfig::parse(&format!("gateway: {{{keys}}}")).map(|config| config.gateway)
}

/// The error message for `text`, which must be refused.
fn error(text: &str) -> String {
    match LocalConfig::parse(text) {
        Ok(config) => panic!("accepted: {text:?} as {config:?}"),
        Err(error) => error.to_string(),
    }
}

const REVISION: &str = "revisions:\n  - name: a\n    endpoints: [\"127.0.0.1:9\"]\n";

/// A scratch directory for program checks and reloaded files, removed on drop.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("swell-api-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        Dir(dir)
    }

    /// A file at `relative` with permission bits `mode`.
    fn file(&self, relative: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(relative);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

mod entries;
mod file;
mod gateway;
mod programs;

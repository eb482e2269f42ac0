//! The limits each listener runs with, from the `gateway:` and `admin:` config (or `swell gateway`'s
//! flags, which fill the same struct) and the process's open-files limit. Both `swell serve` and
//! `swell gateway` use these, so the two read a config the same way.
//!
//! Connection budgets: `gateway.maxConnections: 0` (the default) caps client connections at half of what
//! the open-files limit leaves after a reserve (each proxied connection can hold a replica connection
//! too). The reserve keeps descriptors for the admin listener's own budget, the replica processes' pipes,
//! config reads and logs, so a flood of client connections never stops `/healthz` from answering. The
//! budget is split evenly over the gateway's worker threads, each accepting on its own (nginx's
//! `worker_connections` is per worker in the same way).

use swell_api::config::{AdminConfig, GatewayConfig};
use swell_gateway::{ServerLimits, connection_cap};

/// Descriptors kept out of the gateway's automatic budget, besides the admin listener's own.
const RESERVED_FILES: u64 = 256;

/// The gateway's limits for each of its `threads` listeners.
pub(crate) fn gateway(config: &GatewayConfig, admin: &AdminConfig, open_files: u64, threads: usize) -> ServerLimits {
    let total = match config.max_connections {
        0 => connection_cap(open_files, RESERVED_FILES + admin.max_connections),
        cap => usize::try_from(cap).unwrap_or(usize::MAX),
    };
    ServerLimits {
        max_header_bytes: config.max_header_bytes,
        fast_path: config.fast_path,
        header_read_timeout: config.header_read_timeout,
        body_read_timeout: config.body_read_timeout,
        idle_timeout: config.idle_timeout,
        send_timeout: config.send_timeout,
        max_connections: total.div_ceil(threads.max(1)).max(1),
    }
}

/// The admin listener's limits: its own connection budget, and the gateway's timeouts.
pub(crate) fn admin(config: &GatewayConfig, admin: &AdminConfig) -> ServerLimits {
    ServerLimits {
        fast_path: false,
        max_connections: usize::try_from(admin.max_connections).unwrap_or(usize::MAX).max(1),
        header_read_timeout: config.header_read_timeout,
        body_read_timeout: config.body_read_timeout,
        idle_timeout: config.idle_timeout,
        send_timeout: config.send_timeout,
        ..ServerLimits::default()
    }
}

/// Every held request is an open socket: raise the soft open-files limit to the hard one, as servers do,
/// so a burst of waiting clients is not cut off at the common default of 1024. Returns the soft limit in
/// force afterwards.
pub(crate) fn raise_open_files_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(error) => {
                tracing::warn!(%error, soft, hard, "cannot raise the open-files limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-files limit; assuming 1024");
            1024
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_budget_stays_under_the_open_files_limit_and_is_split_over_threads() {
        let (config, admin) = (GatewayConfig::default(), AdminConfig::default());
        let limits = gateway(&config, &admin, 20_000, 2);
        // (20000 - 256 - 64) / 2 = 9840 connections, 4920 a thread: with a replica connection each, 19680
        // descriptors at most, under the 20000 allowed.
        assert_eq!(limits.max_connections, 4920);
        assert_eq!(gateway(&config, &admin, 100, 1).max_connections, 1, "never 0, which would mean no cap");
        let explicit = GatewayConfig { max_connections: 1001, ..GatewayConfig::default() };
        assert_eq!(gateway(&explicit, &admin, 20_000, 2).max_connections, 501);
        assert_eq!(self::admin(&config, &admin).max_connections, 64);
        assert_eq!(limits.idle_timeout, config.idle_timeout);
    }
}

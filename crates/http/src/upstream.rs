//! Constants of the gateway's connections to replicas, one value for both of its HTTP paths (the fast
//! path's own pool and hyper's client).

use std::time::Duration;

/// Connections idle longer are closed rather than reused: replicas come and go, and servers time idle
/// keep-alive connections out themselves (nginx after 75 s), so ours must go first.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle keep-alive connections kept per replica (nginx's `keepalive`). A burst of thousands of concurrent
/// requests opens as many connections; keeping them all idle afterwards would hold their buffers for the
/// idle timeout.
pub const POOL_MAX_IDLE_PER_REPLICA: usize = 256;
/// A replica that takes longer to accept a connection is treated as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

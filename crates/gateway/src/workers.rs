//! The gateway's thread model, used by `swell serve` and `swell gateway` alike: worker threads, each
//! running its own single-threaded runtime and its own upstream connection pool, the way nginx runs worker
//! processes: a request lives on one thread from accept to response, with no work stealing and no
//! cross-thread wake-ups on the hot path. Throttlers, routes and metrics are shared.
//!
//! The listening socket is bound once, without SO_REUSEPORT, and every worker gets a duplicate of that one
//! socket's descriptor, registered with its own reactor. Earlier each worker bound its own SO_REUSEPORT
//! socket, but then a second `swell serve` on the same address joined the first and the kernel silently
//! split the clients between the two. A socket without SO_REUSEPORT lets no other socket bind the address,
//! so a second process fails start-up with "address in use". The trade-off: the workers now share one accept
//! queue, and every new connection wakes each idle worker's reactor, one of which wins the `accept` (the
//! others see `WouldBlock`). The kernel no longer hashes connections evenly across workers; a busy worker
//! simply reaches `accept` later, so the idle ones take more, which suits a proxy whose work per connection
//! varies. The extra wake-ups cost little next to a proxied request.

use crate::{Gateway, ServerLimits};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::net::{TcpListener, TcpSocket};

/// Accept-queue length of the listening socket.
const BACKLOG: u32 = 4096;

/// A non-blocking listening socket on `addr`, without SO_REUSEPORT so no other socket can join it, as a std
/// listener the workers' runtimes can adopt. Called on the control-plane runtime: the socket registers with
/// its reactor when it starts listening, and converting it back to std detaches it again.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // SO_REUSEADDR only allows binding over connections lingering in TIME_WAIT after a restart; on Linux it
    // never lets two sockets listen on one address.
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(BACKLOG)?;
    listener.into_std()
}

/// Start `threads` workers, each serving a duplicate of `listener` until its `stop` future resolves.
pub fn start(
    listener: std::net::TcpListener,
    threads: usize,
    gateway: Arc<Gateway>,
    limits: ServerLimits,
    stop: impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let mut sockets = Vec::with_capacity(threads.max(1));
    for _ in 1..threads.max(1) {
        sockets.push(listener.try_clone()?);
    }
    sockets.push(listener);
    let mut workers = Vec::with_capacity(sockets.len());
    for (index, socket) in sockets.into_iter().enumerate() {
        let (gateway, stopped) = (gateway.clone(), stop());
        let worker = std::thread::Builder::new().name(format!("swell-gateway-{index}")).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, worker = index, "cannot start a gateway worker");
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(socket) {
                    Ok(listener) => crate::serve_gateway(listener, gateway, limits, stopped).await,
                    Err(error) => tracing::error!(%error, worker = index, "cannot listen"),
                }
            });
        })?;
        workers.push(worker);
    }
    Ok(workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_socket_cannot_join_the_address() {
        let first = bind("127.0.0.1:0".parse().expect("an address")).expect("bind a free port");
        let addr = first.local_addr().expect("bound");
        let error = bind(addr).expect_err("a second listener on the same address");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        // Not even a socket that asks for SO_REUSEPORT, as the workers of an older swell did.
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseport(true).expect("SO_REUSEPORT");
        assert_eq!(socket.bind(addr).expect_err("joined").kind(), io::ErrorKind::AddrInUse);
    }
}

//! Listening sockets and connection slots, shared by every role that accepts connections
//! (the policy host, the REST API, the DNS server's TCP side).
//!
//! An IPv6 socket is IPv6-only, so that `0.0.0.0:P` and `[::]:P` can both be configured;
//! addresses are reusable at once after a restart; every socket is non-blocking for tokio.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A non-blocking socket for `addr` (IPv6-only when `addr` is IPv6), not yet bound.
pub(crate) fn socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A TCP listener on `addr` with a listen queue of `backlog` connections.
pub(crate) fn tcp(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let socket = socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// Waits up to `grace` for all `max` connection slots of `slots` to be free again (every
/// connection done); whether they were.
pub(crate) async fn drained(slots: &Semaphore, max: usize, grace: Duration) -> bool {
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_ok()
}

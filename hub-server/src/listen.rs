//! The hub's listening sockets (clients and the server API), set up the same way.

use tokio::net::TcpListener;

/// Binds the hub's listening socket. Accepted sockets inherit its options on Linux: TCP_NODELAY,
/// so that a small frame leaves at once instead of waiting for the peer's delayed ACK (Nagle adds
/// up to 40 ms to every reply otherwise; warp offers no hook to set it per connection).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    // A deep backlog absorbs connect storms (every client reconnecting after a hub restart).
    socket.listen(4096)
}

//! Raw TCP clients that misbehave on purpose: half-sent bodies, sockets that never read,
//! WebSocket frames with lying headers.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `host:port` of a `http://host:port` base.
pub fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// A connection whose receive buffer is as small as the kernel allows, so a client that
/// never reads stops the server's writes quickly.
pub async fn connect(base: &str, small_receive_buffer: bool) -> TcpStream {
    let target: std::net::SocketAddr = addr(base).parse().expect("socket address");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if small_receive_buffer {
        socket.set_recv_buffer_size(4096).unwrap();
    }
    socket.connect(&target.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    TcpStream::from_std(std::net::TcpStream::from(socket)).unwrap()
}

/// Sends a WebSocket upgrade for `path` and returns the response head.
pub async fn upgrade(stream: &mut TcpStream, path: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_head(stream).await
}

/// Reads up to the end of an HTTP response head.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A masked client frame header declaring `len` payload bytes.
pub fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xffff => {
            h.push(0x80 | 126);
            h.extend((len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend(len.to_be_bytes());
        }
    }
    h.extend([0x11, 0x22, 0x33, 0x44]);
    h
}

/// Whether the server ends the connection (EOF or reset) within `limit`; whatever arrives
/// meanwhile is read and dropped.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut sink = vec![0u8; 64 * 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

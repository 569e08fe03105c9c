//! What one client may hold: sockets per subject and per address, and the means to cut a
//! socket the server gave up on (too slow, stuck, silent) at the TCP level, with its queued
//! bytes discarded, instead of waiting politely for a peer that does not read.

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use uuid::Uuid;

use crate::api::error::ApiError;

/// Limits and timings of WebSocket sessions.
#[derive(Clone, Copy, Debug)]
pub struct SocketRules {
    pub max_per_subject: u32,
    pub max_per_ip: u32,
    /// Between pings; pongs missing for two of these close the socket.
    pub heartbeat: Duration,
    /// Longest one push may wait to be written.
    pub write_timeout: Duration,
}

impl Default for SocketRules {
    fn default() -> Self {
        Self {
            max_per_subject: 16,
            max_per_ip: 1_024,
            heartbeat: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Default)]
struct Open {
    by_subject: HashMap<Uuid, u32>,
    by_ip: HashMap<IpAddr, u32>,
}

/// Counts open sockets; shared by every HTTP worker.
pub struct Sockets {
    pub rules: SocketRules,
    open: Mutex<Open>,
}

impl Sockets {
    pub fn new(rules: SocketRules) -> Self {
        Self {
            rules,
            open: Mutex::default(),
        }
    }

    /// A place for one more socket of `subject` from `ip`, or `429 too_many_sockets`.
    pub fn admit(
        sockets: &web::Data<Sockets>,
        subject: Uuid,
        ip: IpAddr,
    ) -> Result<Permit, ApiError> {
        let rules = sockets.rules;
        let mut open = sockets.lock();
        let by_subject = open.by_subject.get(&subject).copied().unwrap_or(0);
        let by_ip = open.by_ip.get(&ip).copied().unwrap_or(0);
        if by_subject >= rules.max_per_subject || by_ip >= rules.max_per_ip {
            metrics::counter!("dabba_ws_refused_total", "reason" => "too_many").increment(1);
            let whose = if by_subject >= rules.max_per_subject {
                format!("this token already holds {by_subject} sockets")
            } else {
                format!("this address already holds {by_ip} sockets")
            };
            return Err(
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_sockets", whose)
                    .retry_after(5),
            );
        }
        *open.by_subject.entry(subject).or_default() += 1;
        *open.by_ip.entry(ip).or_default() += 1;
        Ok(Permit {
            sockets: sockets.clone(),
            subject,
            ip,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Counters hold no invariant a panicking holder could break halfway.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One admitted socket; gives its place back when dropped.
pub struct Permit {
    sockets: web::Data<Sockets>,
    subject: Uuid,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.sockets.lock();
        release(&mut open.by_subject, self.subject);
        release(&mut open.by_ip, self.ip);
    }
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// The descriptor of a connection, recorded when it is accepted.
#[derive(Clone, Copy)]
struct ConnFd(RawFd);

/// `HttpServer::on_connect` hook: remembers each TCP connection's descriptor.
pub fn remember_socket(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        ext.insert(ConnFd(tcp.as_raw_fd()));
    }
}

/// Kernel send buffer of an upgraded socket (the kernel doubles it for bookkeeping): pushes
/// are small, so this holds thousands of them for a slow but live phone.
const SEND_BUFFER: usize = 128 * 1024;

/// A second handle on an upgraded connection's socket, to cut it.
pub struct Cutter(Option<OwnedFd>);

impl Cutter {
    /// Duplicates the request's connection descriptor (none in in-memory tests), and caps
    /// the kernel's send queue of the socket: a client that stops reading then holds at most
    /// this much of the server's memory in the kernel (autotuning grew it to megabytes).
    pub fn of(req: &HttpRequest) -> Self {
        let fd = req.conn_data::<ConnFd>().and_then(|ConnFd(raw)| {
            // SAFETY: the connection that owns `raw` is serving this very request, so the
            // descriptor is open for the whole call; the duplicate is ours to close.
            let borrowed = unsafe { BorrowedFd::borrow_raw(*raw) };
            borrowed.try_clone_to_owned().ok()
        });
        if let Some(fd) = &fd {
            let _ = socket2::SockRef::from(fd).set_send_buffer_size(SEND_BUFFER);
        }
        Self(fd)
    }

    /// Resets the connection: queued bytes are discarded (linger 0) and both directions shut,
    /// so the server's side sees the end at once and the kernel frees the send queue.
    pub fn cut(&mut self) {
        if let Some(fd) = self.0.take() {
            let sock = socket2::SockRef::from(&fd);
            let _ = sock.set_linger(Some(Duration::ZERO));
            let _ = sock.shutdown(std::net::Shutdown::Both);
        }
    }
}

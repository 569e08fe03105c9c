//! Refuses a WebSocket frame by the length its header declares, before any of it is buffered.
//!
//! actix-http's frame parser waits for a whole frame before comparing it with the size limit,
//! so a header declaring 2^30 bytes made the server buffer whatever followed. This guard sits
//! between the connection and the parser, follows frame boundaries (headers only, payloads
//! are passed through untouched) and fails the stream the moment a header declares more than
//! the limit. What the server then buffers per connection is bounded by the limit plus
//! actix's own read buffer.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// Where the guard is within the client's byte stream.
enum At {
    /// Collecting a frame header (2 to 14 bytes).
    Header { bytes: [u8; 14], have: usize },
    /// Inside a payload: this many bytes to pass before the next header.
    Payload { left: u64 },
}

pub struct FrameGuard<S> {
    inner: S,
    max: u64,
    at: At,
    failed: bool,
}

const HEADER_START: At = At::Header {
    bytes: [0; 14],
    have: 0,
};

impl<S> FrameGuard<S> {
    pub fn new(inner: S, max_frame: usize) -> Self {
        Self {
            inner,
            max: max_frame as u64,
            at: HEADER_START,
            failed: false,
        }
    }

    /// Follows `chunk`; `Err` when a header declares a frame over the limit.
    fn follow(&mut self, mut chunk: &[u8]) -> Result<(), u64> {
        while !chunk.is_empty() {
            match &mut self.at {
                At::Payload { left } => {
                    let n = (*left).min(chunk.len() as u64);
                    *left -= n;
                    chunk = &chunk[n as usize..];
                    if *left == 0 {
                        self.at = HEADER_START;
                    }
                }
                At::Header { bytes, have } => {
                    bytes[*have] = chunk[0];
                    *have += 1;
                    chunk = &chunk[1..];
                    if let Some(declared) = declared_length(&bytes[..*have]) {
                        if declared > self.max {
                            return Err(declared);
                        }
                        self.at = if declared == 0 {
                            HEADER_START
                        } else {
                            At::Payload { left: declared }
                        };
                    }
                }
            }
        }
        Ok(())
    }
}

/// The payload length a complete header declares; `None` while the header is incomplete.
fn declared_length(h: &[u8]) -> Option<u64> {
    if h.len() < 2 {
        return None;
    }
    let masked = h[1] & 0x80 != 0;
    let short = h[1] & 0x7f;
    let ext = match short {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let need = 2 + ext + if masked { 4 } else { 0 };
    if h.len() < need {
        return None;
    }
    Some(match short {
        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
        n => u64::from(n),
    })
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.follow(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(declared) => {
                    this.failed = true;
                    metrics::counter!("dabba_ws_oversized_frames_total").increment(1);
                    tracing::debug!(declared, "websocket frame refused by its declared length");
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u64, masked: bool) -> Vec<u8> {
        let mask = if masked { 0x80 } else { 0 };
        let mut h = vec![0x81];
        match len {
            0..=125 => h.push(mask | len as u8),
            126..=0xffff => {
                h.push(mask | 126);
                h.extend((len as u16).to_be_bytes());
            }
            _ => {
                h.push(mask | 127);
                h.extend(len.to_be_bytes());
            }
        }
        if masked {
            h.extend([1, 2, 3, 4]);
        }
        h
    }

    #[test]
    fn frames_within_the_limit_pass_split_anywhere() {
        let mut bytes = Vec::new();
        for len in [0u64, 5, 125, 126, 1000, 16 * 1024] {
            bytes.extend(header(len, true));
            bytes.extend(std::iter::repeat_n(b'x', len as usize));
        }
        for split in [1, 2, 3, 7, 100, 4096] {
            let mut g = FrameGuard::new((), 16 * 1024);
            for chunk in bytes.chunks(split) {
                assert!(g.follow(chunk).is_ok(), "split {split}");
            }
            assert!(matches!(g.at, At::Header { have: 0, .. }));
        }
    }

    #[test]
    fn an_oversized_header_is_refused_before_its_payload() {
        for (len, masked) in [(16 * 1024 + 1, true), (1 << 30, true), (u64::MAX, false)] {
            let mut g = FrameGuard::new((), 16 * 1024);
            let mut bytes = header(5, true);
            bytes.extend(b"hello");
            bytes.extend(header(len, masked));
            assert_eq!(g.follow(&bytes), Err(len));
        }
    }
}

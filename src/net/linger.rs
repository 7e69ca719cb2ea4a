//! Lingering close: the IO wrapper every HTTP connection is served through, so that an answer
//! given before the request body was read (an IPP error decided from the attribute section)
//! reaches the client instead of being destroyed by a TCP reset.
//!
//! Why: when hyper has answered a request whose body it did not read, it stops reading, shuts the
//! connection down (`poll_shutdown`) and the connection is dropped. Closing a socket whose receive
//! buffer still holds bytes, or that receives more afterwards, makes the kernel send RST instead of
//! a normal close (RFC 1122 §4.2.2.13, RFC 9293 §3.6), and a client that is still sending the
//! body loses the response that sits unread in its own receive buffer ("0 bytes in response").
//! Like Apache's lingering close and cupsd, [`LingeringClose::poll_shutdown`] first shuts down the
//! write side (a FIN; over TLS the TLS layer sends close_notify before it) and then reads and
//! discards what the client still sends, until it closes its side or a time and byte bound is
//! reached (RFC 9112 §9.6: a server closes in stages so the client can read the response).
//! Nothing read here is kept: the buffer is one fixed array.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a closing connection keeps reading what the client still sends (Apache's default
/// lingering time is 2 s between reads; this is the whole budget).
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// How many bytes a closing connection reads and discards at most; a client that sends more
/// before it looks at the answer is reset.
pub const LINGER_BYTES: u64 = 16 << 20;

/// Reads per poll before yielding to other tasks (a fast sender must not starve them).
const READS_PER_POLL: usize = 32;

/// Where a connection is in its close.
enum Linger {
    /// Serving: reads and writes pass through.
    Open,
    /// Our side is shut down; discarding what the client still sends.
    Draining {
        deadline: Pin<Box<tokio::time::Sleep>>,
        discarded: u64,
    },
    /// Closed: further shutdowns return at once.
    Done,
}

/// An IO stream whose shutdown lingers (see the module documentation). Reads and writes are the
/// inner stream's.
pub struct LingeringClose<I> {
    inner: I,
    state: Linger,
    time: Duration,
    bytes: u64,
}

impl<I> LingeringClose<I> {
    /// Wraps `inner` with the default bounds ([`LINGER_TIME`], [`LINGER_BYTES`]).
    pub fn new(inner: I) -> Self {
        Self::with_bounds(inner, LINGER_TIME, LINGER_BYTES)
    }

    pub fn with_bounds(inner: I, time: Duration, bytes: u64) -> Self {
        LingeringClose {
            inner,
            state: Linger::Open,
            time,
            bytes,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for LingeringClose<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LingeringClose<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                Linger::Open => {
                    // TLS: close_notify, then the TCP FIN; plain: the FIN. The response is out.
                    if let Err(e) = std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx)) {
                        this.state = Linger::Done;
                        return Poll::Ready(Err(e));
                    }
                    this.state = Linger::Draining {
                        deadline: Box::pin(tokio::time::sleep(this.time)),
                        discarded: 0,
                    };
                }
                Linger::Draining {
                    deadline,
                    discarded,
                } => {
                    let mut scratch = [0u8; 8192];
                    for _ in 0..READS_PER_POLL {
                        if deadline.as_mut().poll(cx).is_ready() {
                            tracing::debug!(discarded = *discarded, "lingering close timed out");
                            this.state = Linger::Done;
                            return Poll::Ready(Ok(()));
                        }
                        let mut buf = ReadBuf::new(&mut scratch);
                        match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                                tracing::trace!(discarded = *discarded, "client closed its side");
                                this.state = Linger::Done;
                                return Poll::Ready(Ok(()));
                            }
                            Poll::Ready(Ok(())) => {
                                *discarded += buf.filled().len() as u64;
                                if *discarded >= this.bytes {
                                    tracing::debug!(
                                        discarded = *discarded,
                                        "lingering close read its byte bound"
                                    );
                                    this.state = Linger::Done;
                                    return Poll::Ready(Ok(()));
                                }
                            }
                            // Reset or TLS error: nothing more will arrive; the close is done.
                            Poll::Ready(Err(_)) => {
                                this.state = Linger::Done;
                                return Poll::Ready(Ok(()));
                            }
                        }
                    }
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Linger::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn shutdown_sends_eof_then_discards_until_the_peer_closes() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut server = LingeringClose::new(server);
        server.write_all(b"answer").await.unwrap();
        let closing = tokio::spawn(async move {
            server.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        // The answer and then EOF arrive while the client is still sending.
        let mut buf = [0u8; 16];
        loop {
            client.write_all(&[7u8; 48]).await.unwrap();
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"answer");
        // More than the pipe holds: only a draining server lets these writes complete.
        client.write_all(&[7u8; 4096]).await.unwrap();
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .expect("shutdown ends when the client closes")
            .unwrap();
    }

    #[tokio::test]
    async fn a_client_that_never_stops_sending_is_cut_off_by_time() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = LingeringClose::with_bounds(server, Duration::from_millis(200), u64::MAX);
        let feeding = tokio::spawn(async move {
            while client.write_all(&[1u8; 512]).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        // Without the time bound this would wait for ever (the feeder never stops); the outer
        // timeout only keeps a broken build from hanging.
        tokio::time::timeout(Duration::from_secs(60), server.shutdown())
            .await
            .expect("the lingering close ends by itself")
            .unwrap();
        drop(server);
        feeding.await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_never_stops_sending_is_cut_off_by_bytes() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut server = LingeringClose::with_bounds(server, Duration::from_secs(3600), 1 << 20);
        let feeding = tokio::spawn(async move {
            let mut sent = 0u64;
            while client.write_all(&[1u8; 4096]).await.is_ok() {
                sent += 4096;
            }
            sent
        });
        server.shutdown().await.unwrap();
        drop(server);
        let sent = feeding.await.unwrap();
        assert!(
            ((1 << 20)..(1 << 20) + (1 << 17)).contains(&sent),
            "sent {sent}"
        );
        // Once done, shutting down again returns at once.
    }
}

//! Request lines too long for hyper, refused with the JSON error shape. hyper answers a URI
//! over 65,534 bytes with a bare 414 before any service sees the request, so the connection's
//! first request line is watched as it is read: one longer than [`REQUEST_LINE_BYTES_MAX`]
//! is answered here (414, JSON) and the connection closed. Shorter long URIs reach the router,
//! where [`refuse_long_uri`] gives them the same answer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::error::ApiError;

/// Longest URI (path and query) answered, in bytes: ids are at most 64 bytes, so no route
/// needs more than a few hundred.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// Longest request line read (method, URI, version): past this the line is refused before
/// hyper, whose own limit (65,534 bytes of URI) answers without the JSON shape.
pub const REQUEST_LINE_BYTES_MAX: usize = URI_BYTES_MAX + 64;
/// What is still read (and dropped) of a refused request after the answer, so that closing
/// with unread bytes does not reset the connection before the client reads the answer.
pub const REFUSED_DRAIN_BYTES_MAX: usize = 1024 * 1024;

fn too_long() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        "uri_too_long",
        format!("the URI is over the limit of {URI_BYTES_MAX} bytes"),
    )
}

/// Middleware: a URI over [`URI_BYTES_MAX`] is a JSON 414.
pub async fn refuse_long_uri(req: Request, next: Next) -> Response {
    if req.uri().to_string().len() > URI_BYTES_MAX {
        return too_long().into_response();
    }
    next.run(req).await
}

/// The HTTP listener: TCP connections whose first request line is watched.
pub struct Guarded(pub TcpListener);

impl axum::serve::Listener for Guarded {
    type Io = GuardedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (GuardedStream::new(stream), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The client's address of a connection on [`Guarded`], as `ConnectInfo` hands it to handlers.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Guarded>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Guarded>) -> Self {
        Peer(*stream.remote_addr())
    }
}

enum State {
    /// Bytes of the first request line read so far, no line end yet.
    FirstLine {
        read: usize,
    },
    Passing,
    /// The answer to a line too long, and how much of it is written.
    Refusing {
        answer: Vec<u8>,
        written: usize,
    },
    /// Answered; the rest of the request is read and dropped until the client closes.
    Draining {
        left: usize,
    },
    Closed,
}

/// A connection (plain TCP, or TLS over it) whose first request line is watched.
pub struct GuardedStream<S = TcpStream> {
    inner: S,
    state: State,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            state: State::FirstLine { read: 0 },
        }
    }
}

/// The whole HTTP/1.1 answer to a request line too long.
fn refusal() -> Vec<u8> {
    let body = serde_json::to_vec(&too_long().body()).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            match &mut me.state {
                State::Passing => return Pin::new(&mut me.inner).poll_read(cx, buf),
                State::Closed => return Poll::Ready(Ok(())),
                State::Refusing { answer, written } => {
                    while *written < answer.len() {
                        let n = std::task::ready!(
                            Pin::new(&mut me.inner).poll_write(cx, &answer[*written..])
                        )?;
                        if n == 0 {
                            break;
                        }
                        *written += n;
                    }
                    let _ = std::task::ready!(Pin::new(&mut me.inner).poll_shutdown(cx));
                    me.state = State::Draining {
                        left: REFUSED_DRAIN_BYTES_MAX,
                    };
                }
                State::Draining { left } => {
                    let mut scratch = [0u8; 8192];
                    let mut dropped = ReadBuf::new(&mut scratch);
                    match std::task::ready!(Pin::new(&mut me.inner).poll_read(cx, &mut dropped)) {
                        Ok(()) if !dropped.filled().is_empty() && *left > 0 => {
                            *left = left.saturating_sub(dropped.filled().len());
                        }
                        _ => me.state = State::Closed,
                    }
                }
                State::FirstLine { read } => {
                    let before = buf.filled().len();
                    std::task::ready!(Pin::new(&mut me.inner).poll_read(cx, buf))?;
                    let new = &buf.filled()[before..];
                    if let Some(end) = new.iter().position(|b| *b == b'\n') {
                        if *read + end <= REQUEST_LINE_BYTES_MAX {
                            me.state = State::Passing;
                            return Poll::Ready(Ok(()));
                        }
                    } else if *read + new.len() <= REQUEST_LINE_BYTES_MAX {
                        *read += new.len();
                        return Poll::Ready(Ok(()));
                    }
                    // hyper never sees the rest of the line: it reads the end of the stream.
                    buf.set_filled(before);
                    tracing::info!(
                        bytes_max = REQUEST_LINE_BYTES_MAX,
                        "request line too long refused"
                    );
                    me.state = State::Refusing {
                        answer: refusal(),
                        written: 0,
                    };
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

//! Frames over a QUIC stream, for both ends of the link.

use modori_shared::wire::{frame_body_len, WireError, FRAME_HEADER_BYTES};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("read: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("wire: {0}")]
    Wire(#[from] WireError),
    #[error("refused by the coordinator: {0}")]
    Refused(String),
    #[error("peer closed the stream")]
    Closed,
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("database: {0}")]
    Db(#[from] crate::sqlite::DbError),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// Reads one frame body. The length is checked against the frame limit before the body buffer
/// is allocated. `Ok(None)` at a clean end of stream between frames.
pub async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Option<Vec<u8>>, LinkError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = frame_body_len(header)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(Some(body))
}

pub async fn write_frame(send: &mut quinn::SendStream, frame: &[u8]) -> Result<(), LinkError> {
    send.write_all(frame).await?;
    Ok(())
}

/// Frames decoded by a reader task and not yet handled, per connection.
pub const INCOMING_QUEUE_DEPTH: usize = 16;

/// Reads and decodes frames in their own task, because a read in the middle of a frame cannot
/// be cancelled by `select!` without losing bytes. The stream of results ends after the first
/// error; [`LinkError::Closed`] means the peer finished the stream cleanly.
pub fn spawn_reader(
    mut recv: quinn::RecvStream,
    version: u16,
) -> (
    tokio::sync::mpsc::Receiver<Result<modori_shared::wire::messages::Message, LinkError>>,
    AbortOnDrop,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(INCOMING_QUEUE_DEPTH);
    let task = tokio::spawn(async move {
        loop {
            let frame = match read_frame(&mut recv).await {
                Ok(Some(body)) => modori_shared::wire::messages::Message::decode(version, &body)
                    .map_err(LinkError::from),
                Ok(None) => Err(LinkError::Closed),
                Err(e) => Err(e),
            };
            let stop = frame.is_err();
            if tx.send(frame).await.is_err() || stop {
                break;
            }
        }
    });
    (rx, AbortOnDrop(task))
}

/// Aborts a helper task when its owner goes away.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sleeps until `deadline`, or for ever when there is none (a disabled `select!` arm).
pub async fn sleep_until_opt(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

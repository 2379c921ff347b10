//! The demo's mailbox: a small SMTP server on loopback that takes every message the
//! coordinator sends its customers and writes it as a `.eml` file (the message as received,
//! headers and MIME body), for a person to open in a mail program or read as text. It relays
//! nothing and asks no login: plain SMTP (RFC 5321's commands a client needs), on loopback only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Largest message taken, in bytes; a larger one is refused (552) and nothing is written.
pub const MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Longest command or text line read, in bytes (RFC 5321 allows 1,000 with its CRLF).
pub const LINE_BYTES_MAX: usize = 1000;
/// Connections served at once; more wait in the kernel's backlog.
pub const CONNECTIONS_MAX: usize = 16;
/// A client silent this long is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The running sink: where it listens and the folder its messages go to.
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Listens on a free loopback port; messages go to `dir` (made if missing).
    pub async fn start(dir: &Path, mut stop: watch::Receiver<bool>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let dir = dir.to_owned();
        let out = dir.clone();
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
            let counter = Arc::new(AtomicU64::new(0));
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stop.changed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "mail sink accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (out, counter) = (out.clone(), counter.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = session(stream, &out, &counter).await {
                        debug!(peer = %peer, error = %e, "mail sink session ended");
                    }
                });
            }
        });
        Ok(Self { addr, dir, task })
    }

    /// Waits for the sink to stop (after its stop signal).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// What the client has said so far in the current mail transaction.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

async fn session(stream: TcpStream, dir: &Path, counter: &AtomicU64) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 modori-demo mail sink ready\r\n")
        .await?;
    let mut envelope = Envelope::default();
    loop {
        let Some(line) = read_line(&mut read).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-modori-demo\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n"
        } else if upper.starts_with("HELO") {
            b"250 modori-demo\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            envelope = Envelope {
                from: Some(line[10..].trim().to_owned()),
                to: Vec::new(),
            };
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            if envelope.from.is_none() {
                b"503 MAIL first\r\n"
            } else {
                envelope.to.push(line[8..].trim().to_owned());
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            if envelope.to.is_empty() {
                b"503 RCPT first\r\n"
            } else {
                write.write_all(b"354 End with <CRLF>.<CRLF>\r\n").await?;
                let reply = match read_data(&mut read).await? {
                    Some(message) => {
                        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                        let path = dir.join(format!("{}-{n:05}.eml", clock_ms()));
                        std::fs::write(&path, &message)?;
                        debug!(path = %path.display(), to = ?envelope.to, "mail kept");
                        &b"250 OK: kept\r\n"[..]
                    }
                    None => &b"552 message over the size limit\r\n"[..],
                };
                envelope = Envelope::default();
                reply
            }
        } else if upper == "RSET" {
            envelope = Envelope::default();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn clock_ms() -> i64 {
    modori_runtime::clock::now_ms()
}

/// One line without its CRLF; none when the client closed. A line over the limit ends the
/// session.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut limited = tokio::io::AsyncReadExt::take(&mut *read, LINE_BYTES_MAX as u64 + 2);
    let n = tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client idle"))??;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line over the limit",
        ));
    }
    Ok(Some(
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
    ))
}

/// The message up to the lone `.` line, dot-unstuffed; none when it grew past the limit (the
/// rest is still read, so the client gets its answer).
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut over = false;
    loop {
        let mut line = Vec::new();
        let n = tokio::time::timeout(IDLE_TIMEOUT, read.read_until(b'\n', &mut line))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client idle"))??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed in DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!over).then_some(message));
        }
        let text = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + text.len() > MESSAGE_BYTES_MAX {
            over = true;
            message.clear();
        }
        if !over {
            message.extend_from_slice(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn expect<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R, code: &str) {
        loop {
            let line = read_line(read).await.unwrap().unwrap();
            assert!(line.starts_with(code), "{line}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_message_is_kept_as_sent_with_its_dots_unstuffed() {
        let dir = tempfile::tempdir().unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let sink = SmtpSink::start(dir.path(), stop).await.unwrap();
        let stream = TcpStream::connect(sink.addr).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        expect(&mut read, "220").await;
        for (say, code) in [
            ("EHLO test\r\n", "250"),
            ("MAIL FROM:<shop@example.jp>\r\n", "250"),
            ("RCPT TO:<hanako@example.jp>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: hi\r\n\r\nline one\r\n..dot line\r\n.\r\n", "250"),
            ("QUIT\r\n", "221"),
        ] {
            write.write_all(say.as_bytes()).await.unwrap();
            expect(&mut read, code).await;
        }
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert!(files[0].extension().is_some_and(|e| e == "eml"));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(text, "Subject: hi\r\n\r\nline one\r\n.dot line\r\n");
    }
}

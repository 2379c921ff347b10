//! The baseline: the same ops as JSON batches over plain HTTP/1.1, applied through the same
//! `store::apply_op_batch` into a coordinator store of the same kind (SQLite, WAL, fsync per
//! commit). The difference to the QUIC run is what QUIC + bincode buy.
//!
//! One keep-alive connection per site with one request in flight (HTTP/1.1 has no
//! multiplexing; pipelining is not used by real clients), batches cut like the agent's. No TLS
//! and no authentication: the site comes from the URL. It prices transport and encoding and
//! nothing else; it is not a design for an API. The server stores bincode, as the coordinator
//! does, so it turns each JSON op back into the domain op and encodes it (the bytes, and so the
//! payload hash, equal the agent's).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use modori_agent::store::{self as agent_store, OutboxStream};
use modori_coordinator::store;
use modori_runtime::clock;
use modori_runtime::sqlite::{Db, DbError};
use modori_shared::domain::{DomainError, Epoch, Lpn, RmaId, SiteId, Sku};
use modori_shared::op::{OpBody, OpRecord};
use modori_shared::station::ReceiptKind;
use modori_shared::sync::{cut_batch, BATCH_BYTES_MAX_DEFAULT, BATCH_OPS_MAX_DEFAULT};
use modori_shared::wire::messages::Sequenced;
use modori_shared::wire::payload::{decode_op, encode_op};
use modori_shared::wire::WireError;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Largest request body the baseline server reads. A full batch (512 receipts) is about
/// 150 KB of JSON; this leaves room for longer fields without accepting anything unbounded.
pub const REQUEST_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest response body the client reads (an ack is a few bytes).
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// Ops per request: the agent's default batch, so both runs cut the same batches.
pub const BATCH_OPS: usize = BATCH_OPS_MAX_DEFAULT;

#[derive(Debug, Error)]
pub enum BaselineError {
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("HTTP request: {0}")]
    Request(#[from] axum::http::Error),
    #[error("HTTP body: {0}")]
    Body(#[from] axum::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("reading the outbox: {0}")]
    AgentStore(#[from] agent_store::StoreError),
    #[error("applying: {0}")]
    Store(#[from] store::StoreError),
    #[error("outbox of {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the baseline carries receipts only, not {0}")]
    NotAReceipt(&'static str),
    #[error("unknown receipt kind {0:?}")]
    ReceiptKind(String),
    #[error("server answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("{0}")]
    Unexpected(String),
    #[error("a blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl IntoResponse for BaselineError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Json(_)
            | Self::Wire(_)
            | Self::Domain(_)
            | Self::NotAReceipt(_)
            | Self::ReceiptKind(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, self.to_string()).into_response()
    }
}

/// One request: a run of consecutive ops of one site and epoch.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonBatch {
    pub ops: Vec<JsonOp>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonOp {
    pub seq: u64,
    pub site: String,
    pub at_ms: i64,
    pub operator: String,
    pub station: String,
    pub body: JsonBody,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JsonBody {
    UnitReceived {
        lpn: String,
        rma: Option<String>,
        sku: String,
        receipt: String,
        parcel_ref: Option<String>,
    },
}

/// The answer: the highest seq durably applied (a cumulative ack).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonAck {
    pub applied_seq: u64,
}

impl JsonOp {
    fn from_record(seq: u64, op: OpRecord) -> Result<Self, BaselineError> {
        let OpBody::UnitReceived {
            lpn,
            rma,
            sku,
            receipt,
            parcel_ref,
        } = op.body
        else {
            return Err(BaselineError::NotAReceipt(op.body.kind()));
        };
        Ok(Self {
            seq,
            site: op.site.to_string(),
            at_ms: op.at_ms,
            operator: op.operator,
            station: op.station,
            body: JsonBody::UnitReceived {
                lpn: lpn.to_string(),
                rma: rma.map(|r| r.to_string()),
                sku: sku.to_string(),
                receipt: receipt.as_str().to_owned(),
                parcel_ref,
            },
        })
    }

    /// The domain op the agent recorded, encoded as the coordinator stores it.
    pub fn into_sequenced(self) -> Result<Sequenced, BaselineError> {
        let JsonBody::UnitReceived {
            lpn,
            rma,
            sku,
            receipt,
            parcel_ref,
        } = self.body;
        let op = OpRecord {
            site: SiteId::new(self.site)?,
            at_ms: self.at_ms,
            operator: self.operator,
            station: self.station,
            body: OpBody::UnitReceived {
                lpn: Lpn::new(lpn)?,
                rma: rma.map(RmaId::new).transpose()?,
                sku: Sku::new(sku)?,
                receipt: receipt_kind(&receipt)?,
                parcel_ref,
            },
        };
        Ok(Sequenced {
            seq: self.seq,
            payload: encode_op(&op)?,
        })
    }
}

fn receipt_kind(name: &str) -> Result<ReceiptKind, BaselineError> {
    [
        ReceiptKind::Matched,
        ReceiptKind::Over,
        ReceiptKind::WrongItem,
        ReceiptKind::Unidentified,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
    .ok_or_else(|| BaselineError::ReceiptKind(name.to_owned()))
}

/// The baseline's HTTP server and its store.
pub struct Server {
    pub addr: SocketAddr,
    db: Db,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// Opens (creating) a coordinator store at `db_path` and serves it on a loopback port.
    pub async fn start(db_path: &std::path::Path) -> Result<Self, BaselineError> {
        let db = Db::open(db_path, &store::migrations())?;
        db.call(store::init).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = Router::new()
            .route("/v1/ops/{site}/{epoch}", post(apply))
            .layer(DefaultBodyLimit::max(REQUEST_BYTES_MAX))
            .with_state(db.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "baseline HTTP server failed");
            }
        });
        Ok(Self {
            addr,
            db,
            shutdown,
            task,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

async fn apply(
    State(db): State<Db>,
    UrlPath((site, epoch)): UrlPath<(String, u64)>,
    Json(batch): Json<JsonBatch>,
) -> Result<Json<JsonAck>, BaselineError> {
    let site = SiteId::new(site)?;
    let ops = batch
        .ops
        .into_iter()
        .map(JsonOp::into_sequenced)
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = db
        .call(move |c| store::apply_op_batch(c, &site, Epoch(epoch), &ops, clock::now_ms()))
        .await?;
    Ok(Json(JsonAck {
        applied_seq: outcome.applied_seq,
    }))
}

/// What one site's client pushed, and when the first and last batch were acknowledged.
#[derive(Clone, Copy, Debug)]
pub struct Pushed {
    pub n_ops: u64,
    pub first_ack: Option<Instant>,
    pub last_ack: Option<Instant>,
}

/// Pushes ops `after_seq + 1 ..= up_to_seq` of the site whose database is `agent_db` (read
/// through the agent's own `store::load_ops`) to the baseline server at `addr`.
pub async fn push(
    addr: SocketAddr,
    agent_db: PathBuf,
    site: SiteId,
    after_seq: u64,
    up_to_seq: u64,
) -> Result<Pushed, BaselineError> {
    let path = agent_db.clone();
    let (mut conn, epoch) = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(|source| BaselineError::Open {
            path: path.clone(),
            source,
        })?;
        let epoch = agent_store::snapshot(&conn)?.op_epoch;
        Ok::<_, BaselineError>((conn, epoch))
    })
    .await??;
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let uri = format!("/v1/ops/{site}/{}", epoch.0);
    let mut pushed = Pushed {
        n_ops: 0,
        first_ack: None,
        last_ack: None,
    };
    let mut next = after_seq + 1;
    while next <= up_to_seq {
        let want = usize::try_from(up_to_seq - next + 1)
            .unwrap_or(usize::MAX)
            .min(BATCH_OPS);
        let (back, body, last, n) = tokio::task::spawn_blocking(move || {
            let ops = agent_store::load_ops(&conn, OutboxStream::Current, next, want)?;
            let ops = cut_batch(ops, BATCH_BYTES_MAX_DEFAULT);
            let last = ops.last().map(|o| o.seq);
            let n = ops.len() as u64;
            let batch = JsonBatch {
                ops: ops
                    .into_iter()
                    .map(|o| JsonOp::from_record(o.seq, decode_op(&o.payload)?))
                    .collect::<Result<_, _>>()?,
            };
            Ok::<_, BaselineError>((conn, serde_json::to_vec(&batch)?, last, n))
        })
        .await??;
        conn = back;
        let last = last.ok_or_else(|| {
            BaselineError::Unexpected(format!("{site}: no op at seq {next} in the outbox"))
        })?;
        let request = axum::http::Request::post(&uri)
            .header(axum::http::header::HOST, addr.to_string())
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(
            axum::body::Body::new(response.into_body()),
            RESPONSE_BYTES_MAX,
        )
        .await?;
        if !status.is_success() {
            return Err(BaselineError::Status {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        let ack: JsonAck = serde_json::from_slice(&bytes)?;
        if ack.applied_seq != last {
            return Err(BaselineError::Unexpected(format!(
                "{site}: sent up to seq {last}, the server applied up to {}",
                ack.applied_seq
            )));
        }
        let now = Instant::now();
        pushed.first_ack.get_or_insert(now);
        pushed.last_ack = Some(now);
        pushed.n_ops += n;
        next = last + 1;
    }
    drop(sender);
    let _ = driver.await;
    Ok(pushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_survives_json_byte_for_byte() {
        let op = OpRecord {
            site: SiteId::new("osaka").unwrap(),
            at_ms: 1_764_000_000_123,
            operator: "B-1".into(),
            station: "ctl".into(),
            body: OpBody::UnitReceived {
                lpn: Lpn::new("LPN-OSAKA-0001-0000042K").unwrap(),
                rma: None,
                sku: Sku::new("TEE-WHT-M").unwrap(),
                receipt: ReceiptKind::Unidentified,
                parcel_ref: Some("tracking 1234".into()),
            },
        };
        let bytes = encode_op(&op).unwrap();
        let json =
            serde_json::to_string(&JsonOp::from_record(7, decode_op(&bytes).unwrap()).unwrap())
                .unwrap();
        let back: JsonOp = serde_json::from_str(&json).unwrap();
        let seq = back.into_sequenced().unwrap();
        assert_eq!((seq.seq, seq.payload), (7, bytes));
    }
}

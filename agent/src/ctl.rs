//! `modori-agent ctl`: a Unix socket on which the running agent answers supervisors.
//!
//! One JSON request per line (`{"command":"status"}`), one JSON answer per line. Only the
//! service's user can reach the socket (0600), so it needs no further authentication.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tracing::warn;

use modori_shared::domain::{Disposition, Grade, Lpn, RmaId, Sku};
use modori_shared::station::Effect;
use modori_shared::wire::payload::{OPERATOR_LEN_MAX, PARCEL_REF_LEN_MAX};

use crate::devices::zpl;
use crate::work::{self, Actor, LabelData};
use crate::AgentHandle;

/// Longest request line accepted, in bytes.
pub const REQUEST_LINE_BYTES_MAX: usize = 4096;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum CtlRequest {
    Status,
    /// A supervisor records a receipt by hand (a scanner is broken, a label is unreadable):
    /// the same transaction as a scan at a receiving station.
    Receive {
        sku: String,
        #[serde(default)]
        rma: Option<String>,
        operator: String,
        /// For a parcel that matches nothing: what was found with it (an order number written
        /// on paper, a name), kept with the unit in quarantine to match it later.
        #[serde(default)]
        reference: Option<String>,
    },
    Grade {
        lpn: String,
        grade: String,
        operator: String,
    },
    Dispose {
        lpn: String,
        disposition: String,
        operator: String,
    },
    /// Units received as unidentified, waiting for the coordinator to match them.
    Quarantine,
    /// Sellable stock by SKU.
    Inventory {
        #[serde(default)]
        sku: Option<String>,
    },
    /// Print a unit's label again (on the named printer, or the first one).
    Reprint {
        lpn: String,
        #[serde(default)]
        printer: Option<String>,
        operator: String,
    },
    /// Who did what to a unit, when, at which station.
    Audit {
        lpn: String,
    },
}

pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    // A socket left by a process killed with -9 would make bind fail; nothing else owns it.
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    agent: AgentHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let agent = agent.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, agent).await {
                            warn!(error = %e, "ctl request failed");
                        }
                    });
                }
                Err(e) => warn!(error = %e, "ctl accept failed"),
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn answer(stream: UnixStream, agent: AgentHandle) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(REQUEST_LINE_BYTES_MAX as u64));
    reader.read_line(&mut line).await?;
    let reply = match serde_json::from_str::<CtlRequest>(line.trim()) {
        Ok(request) => match execute(request, &agent).await {
            Ok(value) => value,
            Err(e) => serde_json::json!({ "error": e }),
        },
        Err(e) => serde_json::json!({"error": format!("bad request: {e}")}),
    };
    write.write_all(format!("{reply}\n").as_bytes()).await?;
    write.shutdown().await
}

async fn execute(request: CtlRequest, agent: &AgentHandle) -> Result<serde_json::Value, String> {
    match request {
        CtlRequest::Status => {
            let status = agent.status().await.map_err(|e| e.to_string())?;
            serde_json::to_value(status).map_err(|e| e.to_string())
        }
        CtlRequest::Receive {
            sku,
            rma,
            operator,
            reference,
        } => {
            let sku = Sku::new(sku).map_err(|e| e.to_string())?;
            let rma = rma.map(RmaId::new).transpose().map_err(|e| e.to_string())?;
            check_operator(&operator)?;
            if reference
                .as_ref()
                .is_some_and(|r| r.len() > PARCEL_REF_LEN_MAX)
            {
                return Err(format!(
                    "reference must be at most {PARCEL_REF_LEN_MAX} bytes"
                ));
            }
            let receipt = agent
                .receive_unit_with_reference(rma, sku, &operator, reference)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({
                "lpn": receipt.lpn.as_str(),
                "seq": receipt.seq,
                "receipt": receipt.receipt.as_str(),
            }))
        }
        CtlRequest::Reprint {
            lpn,
            printer,
            operator,
        } => {
            let lpn = Lpn::new(lpn).map_err(|e| e.to_string())?;
            reprint(agent, lpn, printer, operator).await
        }
        CtlRequest::Grade {
            lpn,
            grade,
            operator,
        } => {
            let lpn = Lpn::new(lpn).map_err(|e| e.to_string())?;
            let grade = Grade::parse(&grade).map_err(|e| e.to_string())?;
            check_operator(&operator)?;
            let seq = agent
                .grade_unit(lpn.clone(), grade, &operator)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"lpn": lpn.as_str(), "grade": grade.as_str(), "seq": seq}))
        }
        CtlRequest::Dispose {
            lpn,
            disposition,
            operator,
        } => {
            let lpn = Lpn::new(lpn).map_err(|e| e.to_string())?;
            let disposition = Disposition::parse(&disposition).map_err(|e| e.to_string())?;
            check_operator(&operator)?;
            let seq = agent
                .dispose_unit(lpn.clone(), disposition, &operator)
                .await
                .map_err(|e| e.to_string())?;
            Ok(
                serde_json::json!({"lpn": lpn.as_str(), "disposition": disposition.as_str(), "seq": seq}),
            )
        }
        CtlRequest::Quarantine => {
            let rows = agent
                .db()
                .call(work::quarantine)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(rows).map_err(|e| e.to_string())
        }
        CtlRequest::Inventory { sku } => {
            let sku = sku.map(Sku::new).transpose().map_err(|e| e.to_string())?;
            let rows = agent
                .db()
                .call(move |c| work::inventory(c, sku.as_ref()))
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(rows).map_err(|e| e.to_string())
        }
        CtlRequest::Audit { lpn } => {
            let lpn = Lpn::new(lpn).map_err(|e| e.to_string())?;
            let rows = agent
                .db()
                .call(move |c| work::audit(c, &lpn))
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(rows).map_err(|e| e.to_string())
        }
    }
}

fn check_operator(operator: &str) -> Result<(), String> {
    if operator.is_empty() || operator.len() > OPERATOR_LEN_MAX {
        return Err(format!(
            "operator badge must be 1..={OPERATOR_LEN_MAX} bytes"
        ));
    }
    Ok(())
}

async fn reprint(
    agent: &AgentHandle,
    lpn: Lpn,
    printer: Option<String>,
    operator: String,
) -> Result<serde_json::Value, String> {
    let Some(handle) = agent.printer(printer.as_deref()) else {
        return Err(match printer {
            Some(p) => format!("no printer named {p:?}"),
            None => "this site has no printer".to_owned(),
        });
    };
    let who = Actor::new(operator, crate::CTL_STATION);
    let recorded = agent
        .record(Effect::Reprint { lpn }, who)
        .await
        .map_err(|e| e.to_string())?;
    let Some(LabelData::Unit { lpn, sku, grade }) = recorded.label else {
        return Err("the unit has no label to print".into());
    };
    let zpl = zpl::lpn_label(&lpn, &sku, grade, agent.site()).map_err(|e| e.to_string())?;
    let ticket = handle.print(zpl).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({"lpn": lpn.as_str(), "printer": handle.name(), "job": ticket.id().0}))
}

/// Client side: sends one request to a running agent and returns its answer.
pub async fn request(path: &Path, request: &str) -> std::io::Result<serde_json::Value> {
    let stream = UnixStream::connect(path).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(format!("{request}\n").as_bytes()).await?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

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

use modori_shared::barcode;
use modori_shared::domain::{Bin, Departure, Disposition, Grade, Lpn, RmaId, SiteId, Sku};
use modori_shared::station::{way_out, Effect, Lookup};
use modori_shared::wire::payload::{OPERATOR_LEN_MAX, PARCEL_REF_LEN_MAX};

use crate::stations::render_label;
use crate::store::StoreError;
use crate::work::{self, Actor, LabelData, SiteLookup};
use crate::AgentHandle;

/// Longest request line accepted, in bytes.
pub const REQUEST_LINE_BYTES_MAX: usize = 4096;

/// One request, as the command line takes it (`modori-agent ctl …`) and as it travels on the
/// socket (JSON, tagged by `command`).
#[derive(Debug, Deserialize, serde::Serialize, clap::Subcommand)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum CtlRequest {
    /// Sync position, devices and stations.
    Status,
    /// Record a receipt by hand, as a receiving station would (a scanner is broken, a label is
    /// unreadable): the same transaction as a scan.
    Receive {
        #[arg(long)]
        sku: String,
        #[serde(default)]
        #[arg(long)]
        rma: Option<String>,
        /// Badge of the person recording it.
        #[arg(long)]
        operator: String,
        /// For a parcel that matches nothing: what was found with it (an order number written
        /// on paper, a name), kept with the unit in quarantine to match it later.
        #[serde(default)]
        #[arg(long)]
        reference: Option<String>,
    },
    /// Record a function test's result (electronics need a pass before grade A).
    Test {
        lpn: String,
        /// `pass` or `fail`.
        result: String,
        #[arg(long)]
        operator: String,
    },
    /// Grade a unit (A, B, C, D, X); again, to correct a grade.
    Grade {
        lpn: String,
        grade: String,
        #[arg(long)]
        operator: String,
    },
    /// Set a graded unit's disposition (restock, resale, refurbish, recycle, dispose,
    /// return_to_vendor).
    Dispose {
        lpn: String,
        disposition: String,
        #[arg(long)]
        operator: String,
    },
    /// Put a disposed unit into a bin (or move it to another bin).
    Putaway {
        lpn: String,
        /// The bin code as on its label (`A0103`).
        bin: String,
        #[arg(long)]
        operator: String,
    },
    /// A disposed unit leaves the site: to another site with `--to`, otherwise back to its
    /// customer when a ship-back is ordered, to the site a transfer order names, or to the
    /// vendor, recycler or disposal its disposition names.
    Ship {
        lpn: String,
        #[serde(default)]
        #[arg(long)]
        to: Option<String>,
        /// The carrier's tracking number of the parcel.
        #[serde(default)]
        #[arg(long)]
        tracking: Option<String>,
        #[arg(long)]
        operator: String,
    },
    /// Ship a unit from stock as the replacement an exchange asks for.
    Exchange {
        rma: String,
        lpn: String,
        #[serde(default)]
        #[arg(long)]
        tracking: Option<String>,
        #[arg(long)]
        operator: String,
    },
    /// Units waiting to be matched (received as unidentified, final sale, a wrong item or
    /// late), by the same definition as the centre's.
    Quarantine,
    /// Match a quarantined unit to its return (an order number found with it, looked up).
    Match {
        lpn: String,
        rma: String,
        #[arg(long)]
        operator: String,
    },
    /// What is in the bins, by SKU and bin.
    Inventory {
        #[serde(default)]
        #[arg(long)]
        sku: Option<String>,
        #[serde(default)]
        #[arg(long)]
        bin: Option<String>,
    },
    /// Print a unit's label again (on the named printer, or the first one).
    Reprint {
        lpn: String,
        /// Printer name (default: the first printer).
        #[serde(default)]
        #[arg(long)]
        printer: Option<String>,
        #[arg(long)]
        operator: String,
    },
    /// Who did what to a unit, when, at which station.
    Audit { lpn: String },
    /// Let a quarantined unit go on without a match (a supervisor's decision, with the reason
    /// kept in the audit trail and sent to the centre).
    Release {
        lpn: String,
        /// Why it may go on unmatched (e.g. "no order found after 30 days").
        #[arg(long)]
        reason: String,
        /// Badge of the supervisor deciding it.
        #[arg(long)]
        operator: String,
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
        CtlRequest::Test {
            lpn,
            result,
            operator,
        } => {
            let lpn = Lpn::new(lpn).map_err(|e| e.to_string())?;
            let passed = match result.as_str() {
                "pass" => true,
                "fail" => false,
                other => return Err(format!("test result {other:?}: expected pass or fail")),
            };
            let effect = Effect::Test { lpn, passed };
            record(agent, effect, operator).await
        }
        CtlRequest::Putaway { lpn, bin, operator } => {
            let lpn = Lpn::new(lpn).map_err(|e| e.to_string())?;
            barcode::bin_encode(&bin).map_err(|e| e.to_string())?;
            let bin = Bin::new(bin).map_err(|e| e.to_string())?;
            record(agent, Effect::PutAway { lpn, bin }, operator).await
        }
        CtlRequest::Ship {
            lpn,
            to,
            tracking,
            operator,
        } => {
            let lpn = Lpn::new(lpn).map_err(|e| e.to_string())?;
            let departure = match to {
                Some(to) => Departure::Transfer {
                    to: SiteId::new(to).map_err(|e| e.to_string())?,
                },
                None => {
                    let (unit, way) = agent
                        .db()
                        .call({
                            let lpn = lpn.clone();
                            move |c| {
                                let site = SiteLookup(c);
                                let unit = site.unit(&lpn);
                                let way = unit.as_ref().and_then(|u| way_out(&site, u));
                                Ok::<_, StoreError>((unit, way))
                            }
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    let unit = unit.ok_or_else(|| format!("unknown unit {lpn}"))?;
                    way.ok_or_else(|| {
                            format!(
                                "{lpn} ({}) stays at the site: put it away, or ship it --to another site",
                                unit.state.encode()
                            )
                        })?
                }
            };
            let effect = Effect::Depart {
                lpn,
                departure,
                tracking,
            };
            record(agent, effect, operator).await
        }
        CtlRequest::Exchange {
            rma,
            lpn,
            tracking,
            operator,
        } => {
            let effect = Effect::Depart {
                lpn: Lpn::new(lpn).map_err(|e| e.to_string())?,
                departure: Departure::Exchange {
                    rma: RmaId::new(rma).map_err(|e| e.to_string())?,
                },
                tracking,
            };
            record(agent, effect, operator).await
        }
        CtlRequest::Match { lpn, rma, operator } => {
            let effect = Effect::MatchQuarantined {
                lpn: Lpn::new(lpn).map_err(|e| e.to_string())?,
                rma: RmaId::new(rma).map_err(|e| e.to_string())?,
            };
            record(agent, effect, operator).await
        }
        CtlRequest::Release {
            lpn,
            reason,
            operator,
        } => {
            let effect = Effect::ReleaseQuarantined {
                lpn: Lpn::new(lpn).map_err(|e| e.to_string())?,
                reason,
            };
            record(agent, effect, operator).await
        }
        CtlRequest::Quarantine => {
            let rows = agent
                .db()
                .call(work::quarantine)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(rows).map_err(|e| e.to_string())
        }
        CtlRequest::Inventory { sku, bin } => {
            let sku = sku.map(Sku::new).transpose().map_err(|e| e.to_string())?;
            let bin = bin.map(Bin::new).transpose().map_err(|e| e.to_string())?;
            let rows = agent
                .db()
                .call(move |c| work::inventory(c, sku.as_ref(), bin.as_ref()))
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

/// Records a supervisor's effect and prints its label, if it has one, on the first printer.
async fn record(
    agent: &AgentHandle,
    effect: Effect,
    operator: String,
) -> Result<serde_json::Value, String> {
    check_operator(&operator)?;
    let who = Actor::new(operator, crate::CTL_STATION);
    let recorded = agent.record(effect, who).await.map_err(|e| e.to_string())?;
    let printed = match (&recorded.label, agent.printer(None)) {
        (Some(label), Some(printer)) => {
            let zpl =
                render_label(label, agent.site(), printer.media()).map_err(|e| e.to_string())?;
            let ticket = printer.print(zpl).map_err(|e| e.to_string())?;
            Some(serde_json::json!({"printer": printer.name(), "job": ticket.id().0}))
        }
        _ => None,
    };
    Ok(serde_json::json!({
        "lpn": recorded.lpn.as_ref().map(Lpn::as_str),
        "seq": recorded.seq,
        "label": printed,
    }))
}

fn check_operator(operator: &str) -> Result<(), String> {
    if operator.is_empty() || operator.len() > OPERATOR_LEN_MAX {
        return Err(format!(
            "operator badge must be 1..={OPERATOR_LEN_MAX} bytes"
        ));
    }
    // Typed from a badge label, it carries the label's check character, which catches a typo
    // that would otherwise sign the action with a colleague's badge.
    if operator.starts_with(barcode::BADGE_PREFIX) {
        barcode::parse(operator)
            .map_err(|e| format!("operator {operator:?} is not a valid badge: {e}"))?;
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
        .record(Effect::Reprint { lpn: lpn.clone() }, who)
        .await
        .map_err(|e| e.to_string())?;
    let Some(label @ LabelData::Unit { .. }) = recorded.label else {
        return Err("the unit has no label to print".into());
    };
    let zpl = render_label(&label, agent.site(), handle.media()).map_err(|e| e.to_string())?;
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

//! Every label a site or the coordinator prints, judged by outside tools: laid out for 4 × 2
//! and 4 × 6 in stock at 203 and 300 dpi, with the longest ids the domain accepts, typical ids
//! and Japanese names, rendered by zplkit and decoded by zbarimg. Each label must render
//! without a warning and hold exactly one barcode that decodes to its id.

use std::collections::BTreeMap;

use modori_shared::domain::{Disposition, Grade, Lpn, RmaId, SiteId, Sku};
use modori_shared::label::zpl::{
    disposition_label, exchange_label, lpn_label, return_label, ship_back_label, tote_label,
    transfer_label, unit_transfer_label, LabelMedia, WorstCase, LABEL_KINDS,
};
use modori_tests::labels::LabelTools;

/// One label to print and the barcode it must scan as (`None`: it has none).
struct Case {
    kind: &'static str,
    media: LabelMedia,
    zpl: String,
    barcode: Option<String>,
}

fn media() -> [LabelMedia; 4] {
    [
        LabelMedia::inches(4.0, 2.0, 203),
        LabelMedia::inches(4.0, 2.0, 300),
        LabelMedia::inches(4.0, 6.0, 203),
        LabelMedia::inches(4.0, 6.0, 300),
    ]
}

fn worst_cases(media: LabelMedia) -> Vec<Case> {
    let w = WorstCase::new();
    let barcodes = [
        Some(w.lpn.to_string()),
        Some(w.lpn.to_string()),
        Some(w.lpn.to_string()),
        Some(w.rma.to_string()),
        Some(w.rma.to_string()),
        Some(w.rma.to_string()),
        Some(w.tote.clone()),
        None,
    ];
    w.labels(media)
        .into_iter()
        .zip(LABEL_KINDS)
        .zip(barcodes)
        .map(|((zpl, kind), barcode)| Case {
            kind,
            media,
            zpl: zpl.unwrap_or_else(|e| panic!("{kind} on {media}: {e}")),
            barcode,
        })
        .collect()
}

/// Ids as the system makes them, the one from the defect report, and Japanese names.
fn typical_cases(media: LabelMedia) -> anyhow::Result<Vec<Case>> {
    let lpn = Lpn::new("LPN-CHIBA-256E-0000001M")?;
    let sku = Sku::new("TEE-WHT-M")?;
    let rma = RmaId::new("RMA-20261204-0000123-CHIBA")?;
    let site = SiteId::new("chiba")?;
    let to = SiteId::new("yokohama")?;
    let name = "千葉返品センター（市川）";
    let store = "ファミリーマート 横浜鶴見駅前店 (Yokohama returns centre, Tsurumi-ku)";
    let tote = "TOTE-0123456789-K";
    let case = |kind, zpl: Result<String, _>, barcode: Option<&str>| -> anyhow::Result<Case> {
        Ok(Case {
            kind,
            media,
            zpl: zpl.map_err(|e| anyhow::anyhow!("{kind} on {media}: {e}"))?,
            barcode: barcode.map(str::to_owned),
        })
    };
    Ok(vec![
        case(
            "lpn",
            lpn_label(media, &lpn, &sku, Some(Grade::A), &site),
            Some(lpn.as_str()),
        )?,
        case(
            "disposition",
            disposition_label(media, &lpn, Disposition::Restock, "A-01 返品棚", &site),
            Some(lpn.as_str()),
        )?,
        case(
            "unit transfer",
            unit_transfer_label(media, &lpn, &sku, &site, &to),
            Some(lpn.as_str()),
        )?,
        case(
            "exchange",
            exchange_label(media, &lpn, &sku, &rma, &site),
            Some(rma.as_str()),
        )?,
        case(
            "ship-back",
            ship_back_label(media, &lpn, &sku, &rma, &site),
            Some(rma.as_str()),
        )?,
        case(
            "return",
            return_label(media, &rma, &site, name, store, Some("123456789013")),
            Some(rma.as_str()),
        )?,
        case(
            "tote",
            tote_label(media, tote, &site, name, store, 12),
            Some(tote),
        )?,
        case("transfer", transfer_label(media, &site, &to, 12), None)?,
    ])
}

#[test]
fn every_label_kind_renders_and_scans_on_every_media_with_the_longest_ids() -> anyhow::Result<()> {
    let Some(tools) = LabelTools::find()? else {
        return Ok(());
    };
    // Kept to look at, as the browser tests keep their screenshots.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("test-artifacts")
        .join("labels");
    std::fs::create_dir_all(&dir)?;
    let mut cases = Vec::new();
    for m in media() {
        cases.extend(worst_cases(m));
        cases.extend(typical_cases(m)?);
    }
    let mut jobs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let path = dir.join(format!(
            "{i:03}-{}-{}dpi.zpl",
            case.kind.replace(' ', "-"),
            case.media.resolution_dpi
        ));
        std::fs::write(&path, &case.zpl)?;
        jobs.push((path, case.media.resolution_dpi));
    }
    let pngs = tools.render(&jobs)?;
    // (kind, dpi) -> (rendered, decoded)
    let mut tally: BTreeMap<(&str, u32), (u32, u32)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (case, png) in cases.iter().zip(&pngs) {
        let decoded = tools.decode(png)?;
        let want: Vec<String> = case.barcode.iter().cloned().collect();
        let entry = tally
            .entry((case.kind, case.media.resolution_dpi))
            .or_default();
        entry.0 += 1;
        if decoded == want {
            entry.1 += 1;
        } else {
            failures.push(format!(
                "{} on {}: decoded {decoded:?}, want {want:?} ({})",
                case.kind,
                case.media,
                png.display()
            ));
        }
    }
    for ((kind, dpi), (n_rendered, n_decoded)) in &tally {
        eprintln!("{kind:>14} {dpi} dpi: {n_rendered} rendered, {n_decoded} as printed");
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} of {} labels wrong (images in {}):\n{}",
            failures.len(),
            cases.len(),
            dir.display(),
            failures.join("\n")
        );
    }
    Ok(())
}

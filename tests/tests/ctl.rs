//! `modori-agent ctl` as a supervisor uses it against the running agent: text by default,
//! JSON with `--json`, and a clear refusal for bad input that records nothing.

use modori_tests::procs::{Binaries, ProcFleet};

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_work_through_ctl_while_the_site_is_offline() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_agent(0, None)?;
    f.status(0).await?;
    let ctl = |args: &[&str]| -> anyhow::Result<String> {
        let mut all = vec!["ctl"];
        all.extend_from_slice(args);
        let (ok, text) = f.agent_cli(0, &all)?;
        anyhow::ensure!(ok, "ctl {args:?} failed: {text}");
        Ok(text)
    };

    let received = ctl(&[
        "receive",
        "--sku",
        "TEE-WHT-M",
        "--operator",
        "B-9",
        "--reference",
        "order 8841 on paper",
    ])?;
    assert!(received.contains("receipt: unidentified"), "{received}");
    let lpn = received
        .lines()
        .find_map(|l| l.strip_prefix("lpn: "))
        .expect("an LPN")
        .to_owned();
    let listed = ctl(&["quarantine"])?;
    assert!(
        listed.contains(&lpn) && listed.contains("order 8841 on paper"),
        "{listed}"
    );

    // The order number on paper leads a supervisor to its return: the unit leaves quarantine.
    ctl(&["match", &lpn, "RMA-8841", "--operator", "B-9"])?;
    let listed = ctl(&["quarantine"])?;
    assert!(!listed.contains(&lpn), "{listed}");
    let (ok, text) = f.agent_cli(0, &["ctl", "match", &lpn, "RMA-8841", "--operator", "B-9"])?;
    assert!(!ok && text.contains("not in quarantine"), "{text}");

    ctl(&["grade", &lpn, "A", "--operator", "B-9"])?;
    ctl(&["dispose", &lpn, "restock", "--operator", "B-9"])?;
    let (ok, text) = f.agent_cli(0, &["ctl", "putaway", &lpn, "a-01", "--operator", "B-9"])?;
    assert!(!ok && text.contains("bin"), "a bin code is A-Z 0-9: {text}");
    ctl(&["putaway", &lpn, "A0103", "--operator", "B-9"])?;
    let stock = ctl(&["inventory", "--bin", "A0103"])?;
    assert!(
        stock
            .lines()
            .any(|l| l.contains("TEE-WHT-M") && l.contains("A0103") && l.contains("restock")),
        "{stock}"
    );
    let (ok, text) = f.agent_cli(0, &["ctl", "ship", &lpn, "--operator", "B-9"])?;
    assert!(
        !ok && text.contains("stays"),
        "restock stays unless transferred: {text}"
    );
    let trail = ctl(&["audit", &lpn])?;
    for action in [
        "unit_received",
        "unit_graded",
        "disposition_set",
        "unit_put_away",
    ] {
        assert!(trail.contains(action), "{trail}");
    }

    let (ok, json) = f.agent_cli(0, &["ctl", "--json", "status"])?;
    assert!(ok, "{json}");
    let status: serde_json::Value = serde_json::from_str(&json)?;
    assert_eq!(status["connected"], false, "no coordinator yet");
    assert_eq!(
        status["outbox_pending"], 6,
        "receipt, match, grade, disposition, put-away, inventory delta"
    );

    // Bad input is refused with the reason, and nothing is recorded.
    let (ok, text) = f.agent_cli(0, &["ctl", "grade", &lpn, "Q", "--operator", "B-9"])?;
    assert!(
        !ok && text.contains("\"Q\"") && text.contains("grade"),
        "{text}"
    );
    let (ok, text) = f.agent_cli(0, &["ctl", "dispose", &lpn, "resale", "--operator", "B-9"])?;
    assert!(!ok && text.contains("not allowed"), "{text}");
    let (ok, text) = f.agent_cli(
        0,
        &["ctl", "receive", "--sku", "bad sku", "--operator", "B-9"],
    )?;
    assert!(!ok && text.contains("sku"), "{text}");
    assert_eq!(f.status(0).await?["outbox_head_seq"], 6);

    // The coordinator comes up: the work done offline arrives.
    f.start_coordinator(None).await?;
    modori_tests::wait_for(
        "offline work synced",
        std::time::Duration::from_secs(60),
        || async { Ok(f.status(0).await?["outbox_pending"] == 0) },
    )
    .await?;
    assert_eq!(
        f.coordinator_count("SELECT COUNT(*) FROM ops WHERE site = ?1", 0)?,
        6
    );
    assert_eq!(
        f.coordinator_count(
            "SELECT COUNT(*) FROM units WHERE site = ?1 AND rma = 'RMA-8841' AND quarantine = 0",
            0
        )?,
        1,
        "the match reached the centre"
    );
    assert_eq!(
        f.coordinator_count("SELECT COUNT(*) FROM anomalies WHERE site = ?1", 0)?,
        0
    );
    Ok(())
}

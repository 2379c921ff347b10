//! Small trust gaps a site technician can hit from the command line, with the real binaries:
//! a `site.id` that is not the certificate's name, a mistyped badge, and the fingerprint that
//! `pki issue-site` prints for a later revocation (checked against `openssl`).

use std::path::Path;
use std::process::Command;

use modori_coordinator::pki::PkiPaths;
use modori_coordinator::revocation::Revoked;
use modori_shared::barcode::badge_encode;
use modori_shared::domain::SiteId;
use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::real_fleet;

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};

/// Runs a binary: (success, stdout and stderr).
fn run(bin: &str, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new(bin)
        .args(args)
        .env_remove("FAILPOINTS")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn check_config_and_run_refuse_a_site_id_that_is_not_the_certificates_name() -> anyhow::Result<()> {
    let sites = real_fleet().sites[..2].to_vec();
    let f = ProcFleet::with_sites(BINS, sites, Vec::new())?;
    let (ours, other) = (&f.sites[0].id, &f.sites[1].id);
    let (ok, out) = f.agent_cli(0, &["check-config"])?;
    assert!(ok, "the fleet's own config: {out}");

    // Site 0's config with site 1's certificate, as a copied config left unedited would have.
    let good = f.dir.path().join(format!("agent-{ours}.toml"));
    let mut config: toml::Value = toml::from_str(&std::fs::read_to_string(&good)?)?;
    let tls = config
        .get_mut("tls")
        .and_then(toml::Value::as_table_mut)
        .expect("a [tls] table");
    tls.insert("cert".into(), path_str(&f.pki().site_cert(other)).into());
    tls.insert("key".into(), path_str(&f.pki().site_key(other)).into());
    let bad = f.dir.path().join("mismatched.toml");
    std::fs::write(&bad, toml::to_string(&config)?)?;

    for command in ["check-config", "run"] {
        let (ok, out) = run(BINS.agent, &["--config", path_str(&bad), command])?;
        assert!(
            !ok,
            "{command} accepted site {ours} with the certificate of {other}: {out}"
        );
        assert!(
            out.contains(&format!("site.id is {:?}", ours.as_str()))
                && out.contains(&format!("issued to {:?}", other.as_str())),
            "{command} must name both: {out}"
        );
    }
    let db = f.agent_db_path(0);
    assert!(
        !db.exists(),
        "a refused run must not create {}",
        db.display()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badge_with_a_wrong_check_character_is_refused_by_ctl() -> anyhow::Result<()> {
    let mut f = ProcFleet::with_sites(BINS, real_fleet().sites[..1].to_vec(), Vec::new())?;
    f.start_agent(0, None)?;
    f.status(0).await?;
    let badge = badge_encode("0042")?;
    let check = badge.chars().last().expect("a check character");
    let wrong = format!(
        "{}{}",
        &badge[..badge.len() - 1],
        if check == 'X' { 'Y' } else { 'X' }
    );

    let receive = |operator: &str| {
        f.agent_cli(
            0,
            &[
                "ctl",
                "receive",
                "--sku",
                "TEE-WHT-M",
                "--operator",
                operator,
            ],
        )
    };
    let (ok, out) = receive(&wrong)?;
    assert!(!ok, "{wrong} accepted: {out}");
    assert!(
        out.contains(&wrong) && out.contains(&format!("check character should be {check}")),
        "the refusal must name the badge and its check: {out}"
    );
    let (ok, out) = receive(&badge)?;
    assert!(ok, "{badge} refused: {out}");
    // A typed person id without a label check stays accepted, as before.
    let (ok, out) = receive("B-0042")?;
    assert!(ok, "B-0042 refused: {out}");
    assert_eq!(
        f.agent_count(0, "SELECT COUNT(*) FROM outbox WHERE ?1 = ?1")?,
        2
    );
    Ok(())
}

#[test]
fn issue_site_prints_the_fingerprint_revocation_takes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = path_str(dir.path());
    let (ok, out) = run(BINS.coordinator, &["pki", "init", "--dir", pki])?;
    assert!(ok, "{out}");
    let site = real_fleet().sites[0].id.clone();
    let (ok, out) = run(
        BINS.coordinator,
        &["pki", "issue-site", site.as_str(), "--dir", pki],
    )?;
    assert!(ok, "{out}");
    let printed = out
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint (SHA-256): "))
        .unwrap_or_else(|| panic!("no fingerprint line: {out}"))
        .trim()
        .to_owned();

    let cert = PkiPaths::new(dir.path()).site_cert(&SiteId::new(site.as_str())?);
    let (ok, openssl) = run(
        "openssl",
        &[
            "x509",
            "-in",
            path_str(&cert),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    )?;
    assert!(ok, "openssl: {openssl}");
    let expected: String = openssl
        .trim()
        .rsplit('=')
        .next()
        .expect("openssl prints name=value")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_lowercase();
    assert_eq!(printed, expected);
    let revoked = Revoked::parse(&[], std::slice::from_ref(&printed))?;
    assert_eq!(revoked.fingerprints.len(), 1);
    Ok(())
}

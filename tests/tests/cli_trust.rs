//! Small trust gaps a site technician can hit from the command line, with the real binaries:
//! a `site.id` that is not the certificate's name.

use std::path::Path;
use std::process::Command;

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

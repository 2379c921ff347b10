//! The coordinator serving HTTPS itself, as a browser meets it: a real TLS client (rustls,
//! trusting only the fleet's CA) gets the configured certificate, HSTS and `Secure` cookies;
//! the certificate replaced on disk and SIGHUP sent, a new connection gets the new one from
//! the same listener. With an ops listener, the public one answers 404 for the ops pages,
//! which the ops one serves. In plain HTTP neither HSTS nor `Secure`, unless a trusted proxy
//! says the client came over HTTPS; anyone else saying so is ignored.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use modori_coordinator::config::CoordinatorConfig;
use modori_coordinator::pki;
use modori_coordinator::webhooks::MerchantEntry;
use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::{http_raw, small_fleet, wait_for, TestFleet};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};
const TIMEOUT: Duration = Duration::from_secs(30);

/// One answer over HTTPS, and the certificate the server showed.
struct Answer {
    status: u16,
    head: String,
    cert: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// `GET path` on a new TLS connection that trusts only `ca`.
async fn get_tls(addr: SocketAddr, ca: &Path, path: &str) -> anyhow::Result<Answer> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1")?, tcp)
        .await?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Answer { status, head, cert })
}

fn first_cert(path: &Path) -> anyhow::Result<Vec<u8>> {
    let cert = CertificateDer::pem_file_iter(path)?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no certificate in {}", path.display()))??;
    Ok(cert.as_ref().to_vec())
}

/// A new server certificate from the fleet's CA, copied to the HTTPS files.
fn issue_https_cert(f: &ProcFleet) -> anyhow::Result<Vec<u8>> {
    let names = ["127.0.0.1".to_owned(), "localhost".to_owned()];
    pki::issue_server(f.pki(), &names)?;
    let (cert, key) = (
        f.dir.path().join("https.crt"),
        f.dir.path().join("https.key"),
    );
    // Written beside and renamed, as an operator's tooling would, so no reader sees half.
    std::fs::copy(f.pki().server_cert(), cert.with_extension("new"))?;
    std::fs::copy(f.pki().server_key(), key.with_extension("newkey"))?;
    std::fs::rename(key.with_extension("newkey"), &key)?;
    std::fs::rename(cert.with_extension("new"), &cert)?;
    first_cert(&cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_hsts_and_secure_cookies_a_separate_ops_listener_and_a_certificate_reloaded_on_sighup(
) -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    let first = issue_https_cert(&f)?;
    let ops = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (cert, key) = (
        f.dir.path().join("https.crt"),
        f.dir.path().join("https.key"),
    );
    f.edit_coordinator_config(|c| {
        c.http.tls_cert = Some(cert.clone());
        c.http.tls_key = Some(key.clone());
        c.http.ops_listen = Some(ops);
        c.merchants.push(MerchantEntry {
            id: "brand-a".into(),
            ..MerchantEntry::default()
        });
    })?;
    f.spawn_coordinator(None)?;
    let (http, ca) = (f.http, f.pki().ca_cert());
    wait_for("the coordinator's HTTPS", TIMEOUT, || {
        let ca = ca.clone();
        async move {
            Ok(get_tls(http, &ca, "/healthz")
                .await
                .is_ok_and(|a| a.status == 200))
        }
    })
    .await?;

    // The portal over HTTPS: the configured certificate, HSTS, a Secure cookie.
    let portal = get_tls(http, &ca, "/r/brand-a").await?;
    assert_eq!(portal.status, 200, "{}", portal.head);
    assert_eq!(portal.cert, first);
    assert_eq!(
        portal.header("strict-transport-security"),
        vec!["max-age=31536000; includeSubDomains"]
    );
    let cookies = portal.header("set-cookie");
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.ends_with("; Secure")),
        "{cookies:?}"
    );

    // The ops pages: 404 on the public listener, served on the ops one (over TLS too).
    for path in ["/", "/login", "/store", "/metrics", "/api/v1/keys"] {
        let public = get_tls(http, &ca, path).await?;
        assert_eq!(public.status, 404, "{path}: {}", public.head);
        assert_eq!(
            public.header("strict-transport-security").len(),
            1,
            "{path}"
        );
    }
    let login = get_tls(ops, &ca, "/login").await?;
    assert_eq!(login.status, 200, "{}", login.head);
    assert_eq!(login.header("strict-transport-security").len(), 1);
    assert_eq!(get_tls(ops, &ca, "/r/brand-a").await?.status, 200);

    // A new certificate on disk, SIGHUP: the next connection to the same listener gets it.
    let second = issue_https_cert(&f)?;
    assert_ne!(first, second);
    f.sighup_coordinator()?;
    wait_for("the new certificate served", TIMEOUT, || {
        let (ca, second) = (ca.clone(), second.clone());
        async move { Ok(get_tls(http, &ca, "/healthz").await?.cert == second) }
    })
    .await?;
    assert_eq!(get_tls(ops, &ca, "/healthz").await?.cert, second);

    // A broken key file is refused; the certificate in force stays.
    std::fs::write(&key, "not a key")?;
    f.sighup_coordinator()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = get_tls(http, &ca, "/healthz").await?;
    assert_eq!((after.status, after.cert), (200, second));
    f.terminate_coordinator(TIMEOUT).await?;
    Ok(())
}

fn trusting_loopback(config: &mut CoordinatorConfig) {
    config.http.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
}

fn trusting_another(config: &mut CoordinatorConfig) {
    config.http.trusted_proxies = vec!["192.0.2.1".parse().expect("an address")];
}

/// The portal's form over plain HTTP, from a client saying `forwarded` (if any) in
/// `X-Forwarded-Proto`: (its HSTS header, its cookie).
async fn plain_portal(
    fleet: &TestFleet,
    forwarded: Option<&str>,
) -> anyhow::Result<(Option<String>, String)> {
    let headers: Vec<(&str, &str)> = forwarded
        .map(|v| vec![("x-forwarded-proto", v)])
        .unwrap_or_default();
    let res = http_raw(fleet.http(), "GET", "/r/brand-a", &headers, None).await?;
    anyhow::ensure!(res.status == 200, "{} {}", res.status, res.body);
    Ok((
        res.header("strict-transport-security").map(str::to_owned),
        res.header("set-cookie").unwrap_or_default().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_plain_http_only_a_trusted_proxy_makes_cookies_secure() -> anyhow::Result<()> {
    for (tweak, trusted) in [
        (trusting_loopback as fn(&mut CoordinatorConfig), true),
        (trusting_another, false),
    ] {
        let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
        fleet.config_tweak = Some(tweak);
        fleet.start_coordinator().await?;
        let (hsts, cookie) = plain_portal(&fleet, None).await?;
        assert_eq!(hsts, None);
        assert!(!cookie.contains("Secure"), "{cookie}");
        let (hsts, cookie) = plain_portal(&fleet, Some("https")).await?;
        assert_eq!(hsts.is_some(), trusted, "trusted {trusted}");
        assert_eq!(cookie.ends_with("; Secure"), trusted, "{cookie}");
        fleet.shutdown().await;
    }
    Ok(())
}

//! A UDP proxy to put between one agent and the coordinator, so a test can cut, heal or degrade
//! the link while both ends run unmodified.
//!
//! QUIC runs over UDP, so a partition is not a refused or reset connection: datagrams just stop
//! arriving and each end has to notice on its own (keep-alive, idle timeout). Dropping datagrams
//! here is the closest we get to a cable pulled or a NAT mapping lost, without root, `tc` or
//! iptables, and it leaves the TLS session untouched. The counters let a test prove that the
//! partition really dropped traffic rather than passing only because nothing was sent.
//!
//! Loopback only: the proxy binds 127.0.0.1 (or ::1) and refuses a non-loopback upstream, so a
//! test can never forward anything off the machine. Its tasks are aborted when it is dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::{JoinHandle, JoinSet};

/// Larger than any UDP payload, so no datagram is ever truncated.
const DATAGRAM_BUFFER_BYTES: usize = 65_536;
const PPM: u64 = 1_000_000;
/// Pause after a socket error, so a persistent one cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(1);

/// Datagram counts per direction ("up" is agent → coordinator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub forwarded_up: u64,
    pub forwarded_down: u64,
    pub dropped_up: u64,
    pub dropped_down: u64,
}

impl ProxyStats {
    pub fn forwarded(&self) -> u64 {
        self.forwarded_up + self.forwarded_down
    }

    pub fn dropped(&self) -> u64 {
        self.dropped_up + self.dropped_down
    }
}

/// A running proxy. Point an agent's `coordinator.address` at [`UdpProxy::addr`].
pub struct UdpProxy {
    addr: SocketAddr,
    link: Arc<Link>,
    task: JoinHandle<()>,
}

/// Which way a datagram travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client (agent) → upstream (coordinator).
    Up,
    /// Upstream (coordinator) → client (agent).
    Down,
}

#[derive(Default)]
struct Link {
    cut_up: AtomicBool,
    cut_down: AtomicBool,
    /// Probability of dropping a datagram, in parts per million.
    loss_ppm: AtomicU32,
    /// State of a splitmix64 generator: lock-free, and good enough to decide a drop.
    rng: AtomicU64,
    forwarded_up: AtomicU64,
    forwarded_down: AtomicU64,
    dropped_up: AtomicU64,
    dropped_down: AtomicU64,
}

impl Link {
    /// Decides the fate of one datagram and counts it. `true`: forward it.
    fn pass(&self, direction: Direction) -> bool {
        let cut = match direction {
            Direction::Up => &self.cut_up,
            Direction::Down => &self.cut_down,
        };
        let drop = cut.load(Ordering::SeqCst) || self.lose();
        let counter = match (direction, drop) {
            (Direction::Up, false) => &self.forwarded_up,
            (Direction::Up, true) => &self.dropped_up,
            (Direction::Down, false) => &self.forwarded_down,
            (Direction::Down, true) => &self.dropped_down,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        !drop
    }

    fn lose(&self) -> bool {
        let ppm = u64::from(self.loss_ppm.load(Ordering::SeqCst));
        ppm > 0
            && splitmix64(self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)) % PPM < ppm
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn loopback_like(addr: &SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

impl UdpProxy {
    /// Starts forwarding to `upstream` (the coordinator's QUIC address, which must be on
    /// loopback) from an ephemeral loopback port. The link starts healthy.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the test proxy forwards to loopback only, not {upstream}"),
            ));
        }
        let listener = Arc::new(UdpSocket::bind((loopback_like(&upstream), 0)).await?);
        let addr = listener.local_addr()?;
        let link = Arc::new(Link {
            rng: AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0),
            ),
            ..Link::default()
        });
        let task = tokio::spawn(run(listener, upstream, link.clone()));
        Ok(Self { addr, link, task })
    }

    /// The address agents should send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every datagram, both ways, until [`UdpProxy::heal`]. Datagrams handled after this
    /// returns are dropped.
    pub fn partition(&self) {
        self.partition_one_way(Direction::Up);
        self.partition_one_way(Direction::Down);
    }

    /// Drops every datagram going `direction` until [`UdpProxy::heal`]; the other way still
    /// flows. With [`Direction::Down`], ops reach the coordinator but its acks never return.
    pub fn partition_one_way(&self, direction: Direction) {
        match direction {
            Direction::Up => self.link.cut_up.store(true, Ordering::SeqCst),
            Direction::Down => self.link.cut_down.store(true, Ordering::SeqCst),
        }
    }

    /// Ends a partition and any random loss: every datagram is forwarded again.
    pub fn heal(&self) {
        self.link.loss_ppm.store(0, Ordering::SeqCst);
        self.link.cut_up.store(false, Ordering::SeqCst);
        self.link.cut_down.store(false, Ordering::SeqCst);
    }

    /// Whether either direction is cut.
    pub fn is_partitioned(&self) -> bool {
        self.link.cut_up.load(Ordering::SeqCst) || self.link.cut_down.load(Ordering::SeqCst)
    }

    /// Drops each datagram (either direction) independently with `probability` (0.0..=1.0).
    pub fn set_loss(&self, probability: f64) {
        let ppm = (probability.clamp(0.0, 1.0) * PPM as f64).round() as u32;
        self.link.loss_ppm.store(ppm, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ProxyStats {
        let l = &self.link;
        ProxyStats {
            forwarded_up: l.forwarded_up.load(Ordering::Relaxed),
            forwarded_down: l.forwarded_down.load(Ordering::Relaxed),
            dropped_up: l.dropped_up.load(Ordering::Relaxed),
            dropped_down: l.dropped_down.load(Ordering::Relaxed),
        }
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        // Aborting the main task drops its JoinSet, which aborts the return-path tasks too.
        self.task.abort();
    }
}

/// Receives from clients and forwards up; one upstream socket (and one return-path task) per
/// client address, so the coordinator sees each client as a distinct peer.
async fn run(listener: Arc<UdpSocket>, upstream: SocketAddr, link: Arc<Link>) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut return_paths = JoinSet::new();
    let mut buf = vec![0u8; DATAGRAM_BUFFER_BYTES];
    loop {
        // Errors on an unconnected UDP socket are transient (e.g. an ICMP report): keep going.
        let Ok((n, client)) = listener.recv_from(&mut buf).await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        if !client.ip().is_loopback() {
            continue;
        }
        let socket = match upstreams.get(&client) {
            Some(socket) => socket.clone(),
            None => {
                let Ok(socket) = connect_upstream(upstream).await else {
                    continue;
                };
                let socket = Arc::new(socket);
                return_paths.spawn(return_path(
                    socket.clone(),
                    listener.clone(),
                    client,
                    link.clone(),
                ));
                upstreams.insert(client, socket.clone());
                socket
            }
        };
        if link.pass(Direction::Up) {
            let _ = socket.send(&buf[..n]).await;
        }
    }
}

async fn connect_upstream(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind((loopback_like(&upstream), 0)).await?;
    socket.connect(upstream).await?;
    Ok(socket)
}

/// Coordinator → client for one client.
async fn return_path(
    socket: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    link: Arc<Link>,
) {
    let mut buf = vec![0u8; DATAGRAM_BUFFER_BYTES];
    loop {
        // A connected socket reports "connection refused" while the coordinator is down (it
        // may be restarting on the same port): keep listening.
        let Ok(n) = socket.recv(&mut buf).await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        if link.pass(Direction::Down) {
            let _ = listener.send_to(&buf[..n], client).await;
        }
    }
}

//! Deterministic, seeded simulation of the sync protocol.
//!
//! A few sites and one or two coordinator processes run the real [`Sender`] / [`Receiver`]
//! machines in both directions (ops upstream, commands downstream) over a simulated network with
//! a virtual clock.
//! The network is modelled on what the drivers really use: one QUIC connection per site carrying
//! one bidirectional stream, so within a connection messages arrive in order, exactly once, or
//! not at all from some point on (a lost message is a failed connection, which each side notices
//! after its idle timeout). Reordering and duplicates happen only across connections: the
//! coordinator still handles what a replaced connection had delivered, and a sender resends after
//! a reconnect or a retransmit timeout. The network delays messages (a spike holds up the whole
//! stream behind it), breaks connections and partitions sites; nodes crash,
//! including between applying a batch and committing it, and a site may be reinstalled with a new
//! epoch. Each node keeps a durable part (what a database would hold) and a volatile part (the
//! machines, timers and queues) that a crash throws away.
//!
//! A site's database can also go back in time without the process knowing: restored from an
//! older snapshot, or restarted with a damaged WAL that lost everything since the last checkpoint
//! (both restore an earlier copy of the whole durable state: outboxes, acks, retired epochs, the
//! LPN counter, applied commands). The epochs file beside the database (`agent.db.epochs`) is a
//! separate durable value that is not rolled back, as in the real agent. Like the agent, every
//! start of a site begins a new epoch whose LPN generation is chosen against that file, and
//! retires the epoch it found: its unacknowledged ops are delivered first under their old keys,
//! and it is checked once at the coordinator, whose high-water mark above the database's head
//! means ops were lost; the site then records a `DatabaseRewound` op. The coordinator's database
//! can go back in time too, with everything beside it that could have told (a copy put back with
//! its runs file, a VM snapshot, a WAL that lost its tail): like the real coordinator it numbers
//! commands in a new epoch at every start and carries a site's position over only as far as its
//! database holds the commands (`CommandResume`); sites keep acknowledged ops (for
//! `outbox_keep_days`, longer than a run) and, on seeing a new coordinator epoch, check their
//! retired epochs with it again, so what the database lost is sent again. Two processes on one data
//! directory are not modelled: the agent takes an flock on the directory before it opens the
//! database (agent/src/dir_lock.rs), so a second instance exits before touching any durable
//! state, and a site here is one process by construction.
//!
//! Coordinators are stateless replicas over one shared database (PostgreSQL; on SQLite there is
//! one): two of them in two seeds of five, one in the rest so the single-process model stays
//! covered. Each process has its own incarnation, memory (inboxes, command senders, connections)
//! and command epoch, a new one at each start; the database (ops applied with their marks and
//! hashes, command streams, epochs) is shared, and a rollback of it stops every process. A site
//! connects to one address of its list, its own primary first, and moves to the next after a
//! failed connection (agent/src/sync_client.rs `server_at`); a replica may be killed for a while,
//! or at the heal for good, and its sites must move to the other. Each batch of ops is planned
//! inside its write transaction from the durable mark and stored hashes (store/apply.rs
//! `apply_in`), one transaction at a time across processes, since the other process may have
//! applied the same items from a connection the site left. A command is queued by any process
//! that is up and sent by the one holding the site's link, woken through the database (a wake-up
//! that may be lost) or by its worker's tick; a site moving between processes carries its
//! position over by `CommandResume` as far as the database vouches for it.
//!
//! After the chaos everything is healed and run to quiescence, then the invariants are checked:
//! every op applied exactly once, in order, with the same totals on both sides and no
//! payload-hash conflict; every site holding, in order, exactly the commands the coordinator's
//! database holds (a command stream sent again from scratch is applied again: commands set
//! state); all of it within a bound after the heal computed from the backlog and the seed's
//! network (liveness). Every op a site confirmed that survived on its disk or had been
//! acknowledged arrives; ops confirmed and lost with the disk before they were sent are counted
//! as lost by rollback; an epoch of which the coordinator holds more than the surviving database
//! must have been reported rewound; and no LPN is printed twice across all epochs, rollbacks
//! included. With two coordinators the invariants are the same, judged against the one
//! database; a site's commands against the process holding its link at the end.
//!
//! Why: the machines are sans-IO precisely so the whole protocol, crashes included, can be
//! driven from a seed in microseconds, and a failing seed replays exactly. The driver can also be
//! switched to deliberately broken variants (ack before the apply is durable, no dedup, no new
//! epoch at a start or a reinstall, an LPN generation taken from the database, a coordinator that
//! keeps its command epoch at a start, a coordinator that plans batches from its own memory,
//! caught with two); the checker must catch each, or it would prove nothing.
//!
//! Found with two coordinators, and counted (`rewound_reported_without_rollback`) rather than
//! hidden: a command queued after a newer replica started carries that replica's epoch ordinal
//! (store/commands.rs), so a site whose position is in an older replica's epoch and fails over
//! to another is told the database lost its commands (`CommandResume` from scratch, a
//! "coordinator rewound" anomaly) although nothing was lost. Safe (commands set state and are
//! sent again), but a false alarm and a full resend per failover; the liveness bound counts the
//! whole stream for it. `MODORI_SIM_SEED=16 MODORI_SIM_TRACE=1` replays one in
//! `sync_survives_faults` (with `--nocapture`) and prints the refusal.
//!
//! `MODORI_SIM_SEEDS=N` runs N seeds instead of the default, starting at `MODORI_SIM_SEED_FROM`
//! (0 unless set, so a long soak can be split into ranges); `MODORI_SIM_SEED=S` replays seed S,
//! and `MODORI_SIM_TRACE=1` prints its events.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Instant;

use modori_shared::sync::{cut_batch, BatchLimits, Plan, Receiver, Sender, SenderError};
use modori_shared::wire::handshake::{ClientHello, ServerHello};
use modori_shared::wire::messages::{Message, Sequenced};
use modori_shared::wire::payload::{
    decode_command, decode_op, encode_command, encode_op, payload_hash, PayloadHash,
};
use modori_shared::wire::PROTOCOL_VERSION;
use modori_shared::{
    CommandBody, Epoch, OpBody, OpRecord, ReasonCode, ReturnLine, RmaId, SiteId, Sku,
};

const DEFAULT_SEEDS: u64 = 1_000;
const EPOCH_SEEDS: u64 = 100;
const ROLLBACK_SEEDS: u64 = 300;
/// Liveness, per retired epoch still to deliver or check: each takes a session of its own (a
/// reconnect after the retry delay, a handshake and a few round trips).
const RETIRED_SESSION_ROUND_TRIPS: u64 = 4;
/// Chance that a new op is followed by a WAL checkpoint (the state a damaged WAL falls back to)
/// that is also kept as a snapshot (what a restore puts back).
const CHECKPOINT_CHANCE: f64 = 0.05;
/// Chance that a new command is followed by a copy of the coordinator's database (what a
/// coordinator rollback puts back); it is also copied at every start and, like a site, after
/// some applied batches.
const COMMAND_SNAPSHOT_CHANCE: f64 = 0.1;
/// Snapshots of a site's database kept for the rollback fault, newest last.
const SNAPSHOTS_KEPT: usize = 4;
/// Liveness, fixed part: the longest the fleet can take after the heal before items move again.
/// The sum of the worst cases of the seed space: a dead connection noticed (3 s), the reconnect
/// delay (1 s), a handshake timed out once (1 s), a delay spike still in flight (8.3 s), a
/// retransmit timer (4 s), with room to spare.
const HEAL_SETUP_MS: u64 = 30_000;
/// Liveness, per item: after the heal every round trip (two network delays and a durable write)
/// must move at least one item of the longest backlog; this factor leaves room for the spurious
/// resends of a retransmit timer shorter than the round trip, which queue behind real batches.
const HEAL_ROUND_TRIPS_PER_ITEM: u64 = 2;
/// How long a coordinator still handles what a connection replaced by a newer one from the same
/// site had already delivered (its task ends on the close), in milliseconds.
const REPLACED_CLOSE_MS: (u64, u64) = (0, 200);
/// Guards against a driver bug that schedules events forever at the same instant.
const MAX_EVENTS: u64 = 5_000_000;
const HANDSHAKE_TIMEOUT_MS: u64 = 1_000;
/// Only this many violations are kept for the report; the rest are counted.
const VIOLATIONS_KEPT: usize = 8;
/// Share of seeds that run a second coordinator process over the same database; the rest keep
/// one, so the single-process model stays covered.
const TWO_COORDINATORS_CHANCE: f64 = 0.4;
/// How long a replica killed during the chaos stays down: long enough for its sites to move.
const KILL_MS: (u64, u64) = (3_000, 15_000);
/// Chance, with two coordinators, that one is killed at the heal and stays down to the end: its
/// sites must move to the other within the liveness bound.
const KILLED_AT_HEAL_CHANCE: f64 = 0.3;
/// Every coordinator worker also ticks this often (app/*.rs `WORKER_TICK`), so a wake-up lost
/// between replicas delays a command at most this long.
const WORKER_TICK_MS: u64 = 1_000;
/// Delay of a wake-up from one replica to another through the database (LISTEN/NOTIFY).
const NOTIFY_MS: (u64, u64) = (1, 30);

// ---------------------------------------------------------------------------------------------
// Randomness and configuration

/// splitmix64: tiny, good enough for a simulation, and its stream for a seed can never change
/// under a dependency upgrade, so a seed printed today replays the same run next year.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + ((u128::from(self.next_u64()) * u128::from(hi - lo + 1)) >> 64) as u64
    }

    fn below(&mut self, n: usize) -> usize {
        self.range((0, n as u64 - 1)) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Everything that varies between seeds, drawn once so calm and stormy runs both occur.
struct Config {
    sites: usize,
    chaos_ms: u64,
    op_every_ms: (u64, u64),
    command_every_ms: (u64, u64),
    net_delay_ms: (u64, u64),
    /// Chance that a message is lost, which fails its connection: a QUIC stream retransmits
    /// what the network drops, so a loss it cannot repair ends the connection.
    loss: f64,
    delay_spike: f64,
    chaos_every_ms: (u64, u64),
    /// Relative weights of partition, site crash, coordinator crash, a site database restored
    /// from an older snapshot, a site restarted with a damaged WAL, and a coordinator database
    /// put back in time.
    chaos_weights: [u64; 6],
    partition_ms: (u64, u64),
    downtime_ms: (u64, u64),
    detect_ms: (u64, u64),
    retry_ms: u64,
    write_ms: (u64, u64),
    crash_before_durable: f64,
    crash_after_durable: f64,
    /// Drivers batch their bookkeeping writes; a lost "acked" write must only cost a resend.
    persist_ack: f64,
    reinstall_at: Option<u64>,
    site_limits: BatchLimits,
    coordinator_limits: BatchLimits,
    /// Coordinator processes over the one coordinator database; each site's address list holds
    /// them all, starting at its own primary.
    coordinators: usize,
    /// Chance that a wake-up from one replica to another is lost (NOTIFY is not durable).
    notify_loss: f64,
}

impl Config {
    fn random(rng: &mut Rng, force: Force) -> Self {
        let force_reinstall = force == Force::Reinstall;
        let force_rollback = force == Force::Rollback;
        let force_coordinator_rollback = force == Force::CoordinatorRollback;
        let chaos_ms = rng.range((15_000, 45_000));
        let mut prob = |max: f64| {
            if rng.chance(0.2) {
                0.0
            } else {
                max * rng.unit()
            }
        };
        let loss = prob(0.05);
        let delay_spike = prob(0.03);
        let crash_before_durable = prob(0.02);
        let crash_after_durable = prob(0.02);
        let limits = |rng: &mut Rng| BatchLimits {
            ops_max: rng.range((1, 16)) as usize,
            bytes_max: rng.range((60, 600)) as usize,
            inflight_batches_max: rng.range((1, 4)) as usize,
            retransmit_after_ms: rng.range((300, 4_000)),
        };
        let site_limits = limits(rng);
        let coordinator_limits = limits(rng);
        let op_min = rng.range((50, 300));
        let command_min = rng.range((200, 1_000));
        let reinstall = force_reinstall || rng.chance(0.25);
        Self {
            sites: rng.range((2, 4)) as usize,
            chaos_ms,
            op_every_ms: (op_min, op_min * rng.range((2, 6))),
            command_every_ms: (command_min, command_min * rng.range((2, 4))),
            net_delay_ms: (rng.range((1, 20)), rng.range((20, 300))),
            loss,
            delay_spike,
            chaos_every_ms: (rng.range((300, 1_500)), rng.range((1_500, 6_000))),
            chaos_weights: [
                rng.range((1, 6)),
                rng.range((0, 4)),
                rng.range((0, 2)),
                rng.range((u64::from(force_rollback), 1)),
                rng.range((u64::from(force_rollback), 1)),
                rng.range((u64::from(force_coordinator_rollback), 1)),
            ],
            partition_ms: (200, rng.range((1_000, 15_000))),
            downtime_ms: (0, rng.range((100, 5_000))),
            detect_ms: (50, rng.range((100, 3_000))),
            retry_ms: rng.range((100, 1_000)),
            write_ms: (1, rng.range((2, 30))),
            crash_before_durable,
            crash_after_durable,
            persist_ack: 0.2 + 0.8 * rng.unit(),
            reinstall_at: reinstall.then(|| rng.range((1_000, chaos_ms - 1_000))),
            site_limits,
            coordinator_limits,
            coordinators: if force == Force::TwoCoordinators || rng.chance(TWO_COORDINATORS_CHANCE)
            {
                2
            } else {
                1
            },
            notify_loss: 0.5 * rng.unit(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Correct,
    /// The receiver acknowledges as soon as it has planned a batch, before the apply is durable.
    AckBeforeDurable,
    /// The receiver applies every item it receives, whatever the plan says.
    NoDedup,
    /// A site keeps its epoch at a start, and a reinstalled one numbers its ops from 1 again in
    /// its old epoch.
    ReinstallKeepsEpoch,
    /// A start takes the LPN generation from the database (a boot counter kept there) instead of
    /// the epochs file beside it, so a rolled-back database prints plates again.
    GenerationFromDatabase,
    /// The coordinator keeps its command epoch at a start and trusts a site's position in it,
    /// so a database that went back in time numbers commands on from its own head.
    CommandEpochKeptAtStart,
    /// A coordinator plans each batch from the high-water mark in its own memory, before the
    /// write transaction: right for one process, wrong for two over one database.
    PlanFromMemory,
}

/// A fault every seed of a test must include.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Force {
    Nothing,
    Reinstall,
    Rollback,
    CoordinatorRollback,
    TwoCoordinators,
}

// ---------------------------------------------------------------------------------------------
// Counters

macro_rules! counters {
    ($($name:ident),* $(,)?; max: $($max:ident),* $(,)?) => {
        #[derive(Clone, Debug, Default)]
        struct Counts {
            $($name: u64,)*
            $($max: u64,)*
        }

        impl Counts {
            fn add(&mut self, other: &Counts) {
                $(self.$name += other.$name;)*
                $(self.$max = self.$max.max(other.$max);)*
            }

            fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)* $((stringify!($max), self.$max)),*]
            }
        }
    };
}

counters! {
    // Faults injected (or, for reorder, observed at delivery: across connections only).
    loss,
    reorder,
    delay,
    partition,
    site_crash,
    coordinator_crash,
    crash_before_durable,
    crash_after_durable,
    reinstall,
    rollback,
    damaged_wal,
    coordinator_rollback,
    replica_kill,
    notify_lost,
    // What the protocol saw and did about them.
    retransmit_timeouts,
    duplicates_received,
    gaps_received,
    stale_epoch_acks,
    commands_resent_from_scratch,
    commands_carried_over,
    two_coordinator_runs,
    failovers,
    commands_sent_by_another_replica,
    rewound_reported_without_rollback,
    coordinator_rewound_reported,
    command_resume_refused,
    retired_rechecks,
    ops_resent_to_restored_coordinator,
    epoch_seq_reuse,
    retired_epochs,
    rollbacks_reported,
    rewound_missed_in_flight,
    retired_ack_ahead,
    lost_by_rollback,
    lpns_printed,
    ops_created,
    commands_created,
    events;
    // Over seeds, the largest rather than the sum.
    max:
    // Convergence after the heal, in thousandths of the seed's liveness bound.
    heal_permille_of_bound_max,
    heal_ms_max,
}

/// Every kind the default run must have fired at least once.
const FAULT_KINDS: [&str; 14] = [
    "loss",
    "reorder",
    "delay",
    "partition",
    "site_crash",
    "coordinator_crash",
    "crash_before_durable",
    "crash_after_durable",
    "reinstall",
    "rollback",
    "damaged_wal",
    "coordinator_rollback",
    "replica_kill",
    "notify_lost",
];

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, n) in self.named() {
            writeln!(f, "  {name:<26} {n}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes, streams and messages

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Coordinator(usize),
    Site(usize),
}

/// A receiving stream: the ops of one (site, epoch) at a coordinator process, or a site's
/// commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Ops(usize, usize, Epoch),
    Commands(usize),
}

impl Stream {
    fn node(self) -> Node {
        match self {
            Stream::Ops(c, ..) => Node::Coordinator(c),
            Stream::Commands(site) => Node::Site(site),
        }
    }
}

#[derive(Clone, Debug)]
struct Envelope {
    from: Node,
    from_inc: u64,
    to: Node,
    /// The incarnation the message is for: a restarted process has new sockets, so whatever was
    /// in flight to the old one is gone. None for a connection attempt, which reaches whichever
    /// process is running.
    to_inc: Option<u64>,
    /// The connection the message travels on: messages of one connection arrive in order.
    conn: u64,
    /// Global send order, to observe reordering (across connections) and to cut a failed
    /// connection's stream at the lost message.
    no: u64,
    body: Body,
}

#[derive(Clone, Debug)]
enum Body {
    Hello(ClientHello),
    ServerHello(ServerHello),
    Msg(Message),
}

#[derive(Debug)]
enum Ev {
    Deliver(Envelope),
    WriteDone {
        stream: Stream,
        inc: u64,
    },
    Wake {
        node: Node,
        inc: u64,
    },
    Restart(Node),
    /// A replica is woken through the database to send a site's new commands.
    Notify {
        c: usize,
        inc: u64,
        site: usize,
    },
    /// A coordinator's worker tick: it sends what the database holds for the sites it serves.
    Tick {
        c: usize,
        inc: u64,
    },
    Heal {
        site: usize,
        partition: u64,
    },
    /// A node notices that connection `conn` to or from `site` is dead.
    Detect {
        node: Node,
        inc: u64,
        site: usize,
        conn: u64,
    },
    NewOp(usize),
    NewCommand(usize),
    Chaos,
    Reinstall,
    Calm,
}

/// Durable receiving side of one stream: the high-water mark and the applied items, written in
/// one transaction. `items` keeps every apply in order, so a double apply is visible.
#[derive(Clone, Debug, Default)]
struct Applied {
    hwm: u64,
    items: Vec<(u64, PayloadHash)>,
    /// Sum of the applied items' effects (inventory deltas, or returned quantities).
    total: i64,
}

impl Applied {
    fn stored_hash(&self, seq: u64) -> Option<PayloadHash> {
        let at = usize::try_from(seq.checked_sub(1)?).ok()?;
        match self.items.get(at) {
            Some((s, hash)) if *s == seq => Some(*hash),
            _ => self.items.iter().find(|(s, _)| *s == seq).map(|(_, h)| *h),
        }
    }
}

/// Volatile receiving side of one stream. Batches are planned, written and committed one at a
/// time: a plan made while another write is pending would re-apply the same items.
struct Inbox {
    receiver: Receiver,
    writing: Option<Write>,
    queue: VecDeque<Inbound>,
}

impl Inbox {
    fn new(receiver: Receiver) -> Self {
        Self {
            receiver,
            writing: None,
            queue: VecDeque::new(),
        }
    }
}

struct Inbound {
    items: Vec<Sequenced>,
    /// The process the batch came from, where its ack goes.
    reply_to: Node,
    reply_inc: u64,
    /// The ack goes back on the connection the batch came in on.
    reply_conn: u64,
}

struct Write {
    /// Made when the batch was read, or None to plan inside the write transaction.
    plan: Option<Plan>,
    /// Every item received: the plan picks those to apply.
    items: Vec<Sequenced>,
    reply_to: Node,
    reply_inc: u64,
    reply_conn: u64,
    acked_early: bool,
}

#[derive(Clone, Copy, Debug)]
enum Conn {
    Down {
        retry_at: u64,
    },
    Connecting {
        id: u64,
        since: u64,
    },
    Up {
        id: u64,
        coordinator: usize,
        coordinator_inc: u64,
    },
}

impl Conn {
    fn id(self) -> Option<u64> {
        match self {
            Conn::Down { .. } => None,
            Conn::Connecting { id, .. } | Conn::Up { id, .. } => Some(id),
        }
    }
}

/// An epoch a start retired (agent/src/store.rs `retired_epochs` and `retired_outbox`).
#[derive(Clone, Debug)]
struct Retired {
    epoch: Epoch,
    head: u64,
    acked: u64,
    outbox: BTreeMap<u64, Vec<u8>>,
    /// Still to be checked once against the coordinator's mark, even with nothing pending.
    unchecked: bool,
}

impl Retired {
    fn needs_session(&self) -> bool {
        self.acked < self.head || self.unchecked
    }
}

#[derive(Clone, Debug)]
struct SiteDb {
    op_epoch: Epoch,
    head: u64,
    acked: u64,
    /// Every op of the epoch: acknowledged ones are kept for `outbox_keep_days` by the agent,
    /// longer than a run here.
    outbox: BTreeMap<u64, Vec<u8>>,
    delta_total: i64,
    command_epoch: Option<Epoch>,
    commands: Applied,
    retired: Vec<Retired>,
    /// The next LPN number; a plate is (site, generation of the epoch, number).
    lpn_next: u64,
    /// Epochs already reported rewound (the agent's `rollbacks` table).
    rollbacks: BTreeSet<Epoch>,
    /// Made by an install or a reinstall and not started yet: its first start has no past
    /// to check.
    created: bool,
}

impl SiteDb {
    fn new(op_epoch: Epoch) -> Self {
        Self {
            op_epoch,
            head: 0,
            acked: 0,
            outbox: BTreeMap::new(),
            delta_total: 0,
            command_epoch: None,
            commands: Applied::default(),
            retired: Vec::new(),
            lpn_next: 1,
            rollbacks: BTreeSet::new(),
            created: true,
        }
    }

    /// How many ops of `epoch` this database holds (0 for an epoch it never knew).
    fn head_of(&self, epoch: Epoch) -> u64 {
        if epoch == self.op_epoch {
            return self.head;
        }
        self.retired
            .iter()
            .find(|r| r.epoch == epoch)
            .map_or(0, |r| r.head)
    }

    /// The stream a new session delivers: the oldest retired epoch with ops pending or still
    /// unchecked, otherwise the current one (agent/src/store.rs `next_stream`).
    fn next_stream(&self) -> Out {
        self.retired
            .iter()
            .find(|r| r.needs_session())
            .map_or(Out::Current, |r| Out::Retired(r.epoch))
    }

    fn retired_mut(&mut self, epoch: Epoch) -> Option<&mut Retired> {
        self.retired.iter_mut().find(|r| r.epoch == epoch)
    }
}

/// Which outbox the site's current session streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Current,
    Retired(Epoch),
}

struct SiteVol {
    ops: Sender,
    stream: Out,
    commands: Option<Inbox>,
    conn: Conn,
    wake: Option<u64>,
    /// Where in its list of coordinator addresses the site connects (the agent's `server_at`):
    /// the next after a failed connection, in memory only.
    at: usize,
}

struct Site {
    name: String,
    inc: u64,
    db: SiteDb,
    vol: Option<SiteVol>,
    /// `agent.db.epochs`: every epoch this data directory started, oldest first. Durable, and
    /// not rolled back with the database.
    epochs_file: Vec<Epoch>,
    /// The database as of its last WAL checkpoint, and older copies a restore may put back.
    checkpoint: Option<SiteDb>,
    snapshots: VecDeque<SiteDb>,
    /// The database went back in time since the coordinator last heard what it holds (a
    /// hello): until then the coordinator may believe in commands the disk lost.
    rolled_back: bool,
    /// Index in the ledger of the first epoch of the current database (a reinstall starts a
    /// new one; what the old database held is the operator's loss).
    lineage_start: usize,
    /// The coordinator process that last accepted the site's hello, to count failovers.
    served_by: Option<usize>,
}

/// The coordinator's durable view of one site's command stream.
#[derive(Clone)]
struct CommandStreamDb {
    /// Every command issued, kept so a reinstalled site can be sent them all again, with the
    /// index in `CoordinatorDb::epochs` of the epoch it was issued in.
    commands: Vec<(Vec<u8>, usize)>,
    acked: u64,
}

#[derive(Clone)]
struct CoordinatorDb {
    ops: BTreeMap<(usize, Epoch), Applied>,
    sites: Vec<CommandStreamDb>,
    /// The command epochs of this database, one per start, the running one last
    /// (coordinator/src/store/command_epochs.rs).
    epochs: Vec<Epoch>,
}

impl CoordinatorDb {
    fn epoch(&self) -> Epoch {
        *self.epochs.last().expect("an epoch from the first start")
    }
}

struct CoordinatorVol {
    /// The command epoch this start numbers commands in.
    epoch: Epoch,
    inboxes: BTreeMap<(usize, Epoch), Inbox>,
    commands: Vec<Sender>,
    /// Per site: the connection id and the site incarnation it was made with.
    conns: Vec<Option<(u64, u64)>>,
    /// Per site: connections whose messages are still handled, the current one and any replaced
    /// one whose task has not ended yet.
    open: Vec<BTreeSet<u64>>,
    wake: Option<u64>,
}

/// One coordinator process: its incarnation and volatile state. What it stores is in the one
/// database all processes share.
struct Coordinator {
    inc: u64,
    vol: Option<CoordinatorVol>,
    /// Killed at the heal: it stays down to the end and its sites must move.
    stays_down: bool,
}

/// What each site database really recorded, for the checker: nodes may lie, this may not.
struct DbLedger {
    epoch: Epoch,
    ops: Vec<(Vec<u8>, i64)>,
}

struct Link {
    partition: Option<u64>,
    /// Highest send number delivered so far, upstream and downstream.
    delivered_max: [u64; 2],
}

#[derive(Debug)]
struct Violation {
    at_ms: u64,
    kind: &'static str,
    detail: String,
}

#[derive(Debug)]
struct Failure {
    kept: Vec<Violation>,
    total: usize,
    kinds: BTreeSet<&'static str>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} invariant violation(s) {:?}", self.total, self.kinds)?;
        for v in &self.kept {
            write!(f, "\n  at {} ms, {}: {}", v.at_ms, v.kind, v.detail)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The simulation

struct Sim {
    cfg: Config,
    variant: Variant,
    rng: Rng,
    now: u64,
    calm: bool,
    queue: BTreeMap<(u64, u64), Ev>,
    next_event: u64,
    next_send: u64,
    next_conn: u64,
    next_partition: u64,
    /// Per connection and direction (0 down, 1 up): when its last message arrives, so the next
    /// one arrives no earlier (a stream delivers in order).
    lanes: BTreeMap<(u64, usize), u64>,
    /// Failed connections and the send number of the lost message: it and everything after it
    /// on that connection never arrive.
    broken: BTreeMap<u64, u64>,
    /// When the run must have converged; set at the heal, from the backlog.
    deadline: u64,
    sites: Vec<Site>,
    coordinators: Vec<Coordinator>,
    /// The one coordinator database every process stores in.
    central: CoordinatorDb,
    /// Copies of it a rollback may put back (a file copied over it together with the runs file,
    /// a VM snapshot, a WAL that lost its tail), newest last.
    central_snapshots: VecDeque<CoordinatorDb>,
    links: Vec<Link>,
    ledger: Vec<Vec<DbLedger>>,
    /// Per site: every (seq, payload hash) a coordinator ever issued to it, in any timeline.
    issued_ever: Vec<BTreeSet<(u64, PayloadHash)>>,
    /// Per site: the highest command seq ever durable at it (a rollback may take it back).
    commands_durable_max: Vec<u64>,
    /// Per (site, epoch): the highest op seq ever durable at the coordinator (a rollback of the
    /// coordinator may take it back; an ack must never exceed it).
    ops_durable_max: BTreeMap<(usize, Epoch), u64>,
    /// The coordinator's database has gone back in time in this run.
    coordinator_rewound: bool,
    /// Every LPN printed: (site, generation, number).
    plates: BTreeSet<(usize, u16, u64)>,
    /// (site, epoch) reported rewound by an applied `DatabaseRewound` op.
    rewound: BTreeSet<(usize, Epoch)>,
    /// (site, retired epoch): the highest coordinator mark the site's present database was told
    /// at a hello (a rollback of the site forgets what its lost database was told).
    checked: BTreeMap<(usize, Epoch), u64>,
    counts: Counts,
    violations: Vec<Violation>,
    n_violations: usize,
    kinds: BTreeSet<&'static str>,
    /// `MODORI_SIM_TRACE=1` prints every event, for working out why a replayed seed fails.
    trace: bool,
}

fn run_seed(seed: u64, variant: Variant, force: Force) -> Result<Counts, Failure> {
    let mut rng = Rng(seed);
    let cfg = Config::random(&mut rng, force);
    let n = cfg.sites;
    let n_coordinators = cfg.coordinators;
    let mut sites = Vec::new();
    let mut ledger = Vec::new();
    for s in 0..n {
        let epoch = Epoch(rng.next_u64());
        sites.push(Site {
            name: format!("site-{s}"),
            inc: 0,
            db: SiteDb::new(epoch),
            vol: None,
            epochs_file: Vec::new(),
            checkpoint: None,
            snapshots: VecDeque::new(),
            rolled_back: false,
            lineage_start: 0,
            served_by: None,
        });
        ledger.push(vec![DbLedger {
            epoch,
            ops: Vec::new(),
        }]);
    }
    let command_streams = (0..n)
        .map(|_| CommandStreamDb {
            commands: Vec::new(),
            acked: 0,
        })
        .collect();
    let mut sim = Sim {
        cfg,
        variant,
        rng,
        now: 0,
        calm: false,
        queue: BTreeMap::new(),
        next_event: 0,
        next_send: 0,
        next_conn: 0,
        next_partition: 0,
        lanes: BTreeMap::new(),
        broken: BTreeMap::new(),
        deadline: u64::MAX,
        sites,
        coordinators: (0..n_coordinators)
            .map(|_| Coordinator {
                inc: 0,
                vol: None,
                stays_down: false,
            })
            .collect(),
        central: CoordinatorDb {
            ops: BTreeMap::new(),
            sites: command_streams,
            epochs: Vec::new(),
        },
        central_snapshots: VecDeque::new(),
        links: (0..n)
            .map(|_| Link {
                partition: None,
                delivered_max: [0; 2],
            })
            .collect(),
        ledger,
        issued_ever: vec![BTreeSet::new(); n],
        commands_durable_max: vec![0; n],
        ops_durable_max: BTreeMap::new(),
        coordinator_rewound: false,
        plates: BTreeSet::new(),
        rewound: BTreeSet::new(),
        checked: BTreeMap::new(),
        counts: Counts::default(),
        violations: Vec::new(),
        n_violations: 0,
        kinds: BTreeSet::new(),
        trace: std::env::var_os("MODORI_SIM_TRACE").is_some(),
    };
    sim.run();
    if sim.n_violations == 0 {
        Ok(sim.counts)
    } else {
        Err(Failure {
            kept: sim.violations,
            total: sim.n_violations,
            kinds: sim.kinds,
        })
    }
}

impl Sim {
    fn run(&mut self) {
        if self.coordinators.len() > 1 {
            self.counts.two_coordinator_runs += 1;
        }
        for c in 0..self.coordinators.len() {
            self.restart(Node::Coordinator(c));
        }
        for s in 0..self.sites.len() {
            self.restart(Node::Site(s));
            let first_op = self.rng.range(self.cfg.op_every_ms);
            self.schedule(first_op, Ev::NewOp(s));
            let first_command = self.rng.range(self.cfg.command_every_ms);
            self.schedule(first_command, Ev::NewCommand(s));
        }
        let first_chaos = self.rng.range(self.cfg.chaos_every_ms);
        self.schedule(first_chaos, Ev::Chaos);
        if let Some(at) = self.cfg.reinstall_at {
            self.schedule(at, Ev::Reinstall);
        }
        self.schedule(self.cfg.chaos_ms, Ev::Calm);

        let mut last_at = 0;
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            self.counts.events += 1;
            if at > self.deadline || self.counts.events > MAX_EVENTS {
                let detail = format!(
                    "still busy {} ms after the heal ({} events)",
                    at.saturating_sub(self.cfg.chaos_ms),
                    self.counts.events
                );
                self.violate("not-converged", detail);
                break;
            }
            self.now = at;
            last_at = at;
            if self.trace {
                eprintln!("{at:>8} {ev:?}");
            }
            self.handle(ev);
        }
        let heal_ms = last_at.saturating_sub(self.cfg.chaos_ms);
        let bound_ms = self.deadline - self.cfg.chaos_ms;
        self.counts.heal_ms_max = heal_ms;
        self.counts.heal_permille_of_bound_max = heal_ms * 1_000 / bound_ms.max(1);
        self.check_end();
    }

    fn schedule(&mut self, after_ms: u64, ev: Ev) {
        self.next_event += 1;
        self.queue
            .insert((self.now + after_ms, self.next_event), ev);
    }

    fn violate(&mut self, kind: &'static str, detail: String) {
        self.n_violations += 1;
        self.kinds.insert(kind);
        if self.violations.len() < VIOLATIONS_KEPT {
            self.violations.push(Violation {
                at_ms: self.now,
                kind,
                detail,
            });
        }
    }

    fn inc(&self, node: Node) -> u64 {
        match node {
            Node::Coordinator(c) => self.coordinators[c].inc,
            Node::Site(s) => self.sites[s].inc,
        }
    }

    fn is_up(&self, node: Node) -> bool {
        match node {
            Node::Coordinator(c) => self.coordinators[c].vol.is_some(),
            Node::Site(s) => self.sites[s].vol.is_some(),
        }
    }

    fn handle(&mut self, ev: Ev) {
        let chaos = self.now < self.cfg.chaos_ms;
        match ev {
            Ev::Deliver(env) => self.deliver(env),
            Ev::WriteDone { stream, inc } => self.write_done(stream, inc),
            Ev::Wake { node, inc } => self.wake(node, inc),
            Ev::Restart(Node::Coordinator(c)) if self.coordinators[c].stays_down => {}
            Ev::Restart(node) => self.restart(node),
            Ev::Notify { c, inc, site } => {
                if self.coordinators[c].inc == inc {
                    self.coordinator_pump(c, site);
                }
            }
            Ev::Tick { c, inc } => self.tick(c, inc),
            Ev::Heal { site, partition } => {
                if self.links[site].partition == Some(partition) {
                    self.links[site].partition = None;
                }
            }
            Ev::Detect {
                node,
                inc,
                site,
                conn,
            } => self.detect(node, inc, site, conn),
            // Sites record ops whenever they are up, connected or not: they are offline-first.
            Ev::NewOp(s) if chaos => {
                self.new_op(s);
                let next = self.rng.range(self.cfg.op_every_ms);
                self.schedule(next, Ev::NewOp(s));
            }
            Ev::NewCommand(s) if chaos => {
                self.new_command(s);
                let next = self.rng.range(self.cfg.command_every_ms);
                self.schedule(next, Ev::NewCommand(s));
            }
            Ev::Chaos if chaos => {
                self.chaos();
                let next = self.rng.range(self.cfg.chaos_every_ms);
                self.schedule(next, Ev::Chaos);
            }
            Ev::Reinstall => self.reinstall(),
            Ev::Calm => self.calm(),
            Ev::NewOp(_) | Ev::NewCommand(_) | Ev::Chaos => {}
        }
    }

    // -- Faults -----------------------------------------------------------------------------------

    fn chaos(&mut self) {
        let [partition, site_crash, coordinator_crash, rollback, damaged_wal, coordinator_rollback] =
            self.cfg.chaos_weights;
        let total = partition
            + site_crash
            + coordinator_crash
            + rollback
            + damaged_wal
            + coordinator_rollback;
        if total == 0 {
            return;
        }
        let pick = self.rng.range((0, total - 1));
        let s = self.rng.below(self.sites.len());
        if pick < partition {
            if self.links[s].partition.is_none() {
                self.partition(s);
            }
        } else if pick < partition + site_crash {
            self.crash_and_restart(Node::Site(s));
        } else if pick < partition + site_crash + coordinator_crash {
            let c = self.rng.below(self.coordinators.len());
            if self.coordinators.len() > 1 && self.rng.chance(0.5) {
                self.kill(c);
            } else {
                self.crash_and_restart(Node::Coordinator(c));
            }
        } else if pick >= total - coordinator_rollback {
            self.coordinator_rollback();
        } else {
            let damaged_wal = pick >= partition + site_crash + coordinator_crash + rollback;
            self.rollback(s, damaged_wal);
        }
    }

    /// The site's database goes back in time under the process: restored from an older
    /// snapshot, or (`damaged_wal`) reopened without the WAL's tail, back to the last checkpoint.
    /// The process dies with it (nothing it held in memory matches the disk any more) and starts
    /// again; the epochs file beside the database keeps what it recorded.
    fn rollback(&mut self, s: usize, damaged_wal: bool) {
        let site = &self.sites[s];
        let restored = if damaged_wal {
            site.checkpoint.clone()
        } else if site.snapshots.is_empty() {
            None
        } else {
            // Snapshots taken after the one restored belong to a timeline the disk no longer
            // has, so going back is linear. A copy from an abandoned timeline is not modelled:
            // it may hold as checked an epoch of which that timeline delivered more, and the
            // agent checks a retired epoch only once.
            let i = self.rng.below(site.snapshots.len());
            let restored = site.snapshots.get(i).cloned();
            self.sites[s].snapshots.truncate(i + 1);
            restored
        };
        let Some(restored) = restored else {
            return;
        };
        if damaged_wal {
            self.counts.damaged_wal += 1;
        } else {
            self.counts.rollback += 1;
        }
        let was_up = self.is_up(Node::Site(s));
        self.crash(Node::Site(s));
        let site = &mut self.sites[s];
        site.checkpoint = Some(restored.clone());
        site.db = restored;
        site.rolled_back = true;
        // What earlier hellos told the site of its retired epochs was told to a database that
        // is gone: only what this one is told counts when its reports are judged.
        self.checked.retain(|(site, _), _| *site != s);
        if was_up {
            let downtime = self.rng.range(self.cfg.downtime_ms);
            self.schedule(downtime, Ev::Restart(Node::Site(s)));
        }
    }

    /// The coordinator's database goes back in time under the process, with everything beside
    /// it that could have told (the runs file): a copy put back by hand, a VM snapshot, a WAL
    /// that lost its tail. The process dies with it and starts again.
    /// Every process over it dies with it (what they hold in memory no longer matches the
    /// database) and starts again.
    fn coordinator_rollback(&mut self) {
        if self.central_snapshots.is_empty() {
            return;
        }
        let i = self.rng.below(self.central_snapshots.len());
        let restored = self.central_snapshots[i].clone();
        self.central_snapshots.truncate(i + 1);
        self.counts.coordinator_rollback += 1;
        let was_up: Vec<_> = (0..self.coordinators.len())
            .map(|c| self.is_up(Node::Coordinator(c)))
            .collect();
        for c in 0..self.coordinators.len() {
            self.crash(Node::Coordinator(c));
        }
        self.central = restored;
        self.coordinator_rewound = true;
        for (c, was_up) in was_up.into_iter().enumerate() {
            if was_up {
                let downtime = self.rng.range(self.cfg.downtime_ms);
                self.schedule(downtime, Ev::Restart(Node::Coordinator(c)));
            }
        }
    }

    /// Keeps a copy of the coordinator database for the rollback fault.
    fn coordinator_snapshot(&mut self) {
        self.central_snapshots.push_back(self.central.clone());
        if self.central_snapshots.len() > SNAPSHOTS_KEPT {
            self.central_snapshots.pop_front();
        }
    }

    /// A replica is killed and stays down for a while, longer than a crash and restart: its
    /// sites fail over to the other.
    fn kill(&mut self, c: usize) {
        if !self.is_up(Node::Coordinator(c)) {
            return;
        }
        self.counts.replica_kill += 1;
        self.crash(Node::Coordinator(c));
        let downtime = self.rng.range(KILL_MS);
        self.schedule(downtime, Ev::Restart(Node::Coordinator(c)));
    }

    fn partition(&mut self, s: usize) {
        self.next_partition += 1;
        let id = self.next_partition;
        self.links[s].partition = Some(id);
        self.counts.partition += 1;
        let length = self.rng.range(self.cfg.partition_ms);
        self.schedule(
            length,
            Ev::Heal {
                site: s,
                partition: id,
            },
        );
        // What was on the wire is lost, so the connections fail (a stream cannot skip it).
        if let Some(conn) = self.sites[s].vol.as_ref().and_then(|v| v.conn.id()) {
            self.break_connection(s, conn, self.next_send + 1);
        }
        for c in 0..self.coordinators.len() {
            let vol = self.coordinators[c].vol.as_ref();
            if let Some((conn, _)) = vol.and_then(|v| v.conns[s]) {
                self.break_connection(s, conn, self.next_send + 1);
            }
        }
    }

    /// Connection `conn` fails at send number `from_no`: that message and every later one on it
    /// never arrive, and each side notices after its idle timeout.
    fn break_connection(&mut self, site: usize, conn: u64, from_no: u64) {
        let at = self.broken.entry(conn).or_insert(from_no);
        if *at < from_no {
            return;
        }
        *at = from_no;
        self.notice_later(Node::Site(site), site, conn);
        for c in 0..self.coordinators.len() {
            let vol = self.coordinators[c].vol.as_ref();
            if vol.is_some_and(|v| v.open[site].contains(&conn)) {
                self.notice_later(Node::Coordinator(c), site, conn);
            }
        }
    }

    /// Nobody is told a connection died: each side finds out after its own idle timeout.
    fn notice_later(&mut self, node: Node, site: usize, conn: u64) {
        let after = self.rng.range(self.cfg.detect_ms);
        let inc = self.inc(node);
        self.schedule(
            after,
            Ev::Detect {
                node,
                inc,
                site,
                conn,
            },
        );
    }

    /// Throws away the node's volatile state: machines, timers, queued batches and any write
    /// that has not landed.
    fn crash(&mut self, node: Node) {
        if self.trace && self.is_up(node) {
            eprintln!("{:>8} crash {node:?}", self.now);
        }
        match node {
            Node::Site(s) => {
                let Some(vol) = self.sites[s].vol.take() else {
                    return;
                };
                self.counts.site_crash += 1;
                if vol.commands.is_some_and(|inbox| inbox.writing.is_some()) {
                    self.counts.crash_before_durable += 1;
                }
                for c in 0..self.coordinators.len() {
                    let vol = self.coordinators[c].vol.as_ref();
                    if let Some((conn, site_inc)) = vol.and_then(|v| v.conns[s]) {
                        if site_inc == self.sites[s].inc {
                            self.notice_later(Node::Coordinator(c), s, conn);
                        }
                    }
                }
            }
            Node::Coordinator(c) => {
                let Some(vol) = self.coordinators[c].vol.take() else {
                    return;
                };
                self.counts.coordinator_crash += 1;
                if vol.inboxes.values().any(|inbox| inbox.writing.is_some()) {
                    self.counts.crash_before_durable += 1;
                }
                // Its sites find out after their idle timeout, those still shaking hands too.
                let n = self.coordinators.len();
                for s in 0..self.sites.len() {
                    let Some(vol) = self.sites[s].vol.as_ref() else {
                        continue;
                    };
                    if let Some(id) = vol.conn.id().filter(|_| vol.at % n == c) {
                        self.notice_later(Node::Site(s), s, id);
                    }
                }
            }
        }
    }

    fn crash_and_restart(&mut self, node: Node) {
        if !self.is_up(node) {
            return;
        }
        self.crash(node);
        let downtime = self.rng.range(self.cfg.downtime_ms);
        self.schedule(downtime, Ev::Restart(node));
    }

    /// The epoch scenario: a site's database is replaced by an empty one (reinstall, or restore
    /// from a backup), which numbers its ops from 1 again in a new random epoch. Unacknowledged
    /// ops of the old database are lost with its disk; that is the operator's loss, not the
    /// protocol's, so the checker only demands a prefix of the old epoch.
    fn reinstall(&mut self) {
        let s = self.rng.below(self.sites.len());
        self.counts.reinstall += 1;
        let was_up = self.is_up(Node::Site(s));
        self.crash(Node::Site(s));
        let fresh = Epoch(self.rng.next_u64());
        let epoch = match self.variant {
            Variant::ReinstallKeepsEpoch => self.sites[s].db.op_epoch,
            _ => fresh,
        };
        // The data directory keeps its epochs file: a reinstall replaces the database.
        let site = &mut self.sites[s];
        site.db = SiteDb::new(epoch);
        site.checkpoint = None;
        site.snapshots.clear();
        site.rolled_back = false;
        site.lineage_start = self.ledger[s].len();
        self.ledger[s].push(DbLedger {
            epoch,
            ops: Vec::new(),
        });
        // A site that was already down has its restart pending.
        if was_up {
            let downtime = self.rng.range(self.cfg.downtime_ms);
            self.schedule(downtime, Ev::Restart(Node::Site(s)));
        }
    }

    /// End of the chaos: no more faults or new items; heal partitions and bring everyone up.
    fn calm(&mut self) {
        self.calm = true;
        for link in &mut self.links {
            link.partition = None;
        }
        // With two, one may be killed at the heal for good: its sites must move to the other.
        let n = self.coordinators.len();
        if n > 1 && self.rng.chance(KILLED_AT_HEAL_CHANCE) {
            let c = self.rng.below(n);
            if self.is_up(Node::Coordinator(c)) {
                self.counts.replica_kill += 1;
                self.crash(Node::Coordinator(c));
            }
            self.coordinators[c].stays_down = true;
        }
        self.deadline = self.now + self.liveness_bound_ms();
        for c in 0..n {
            if !self.coordinators[c].stays_down {
                self.restart(Node::Coordinator(c));
            }
        }
        for s in 0..self.sites.len() {
            self.restart(Node::Site(s));
        }
    }

    /// How long after the heal everything may take to be applied and acknowledged: the longest
    /// backlog of any site, one item per worst-case round trip, after the reconnects, plus a
    /// session for each retired epoch it must deliver or check first (and for the epoch the
    /// restart at the heal may retire).
    ///
    /// With two coordinators a session may first try the replica killed at the heal (one more
    /// handshake timeout and retry delay), a command may wait for a worker tick when its wake-up
    /// was lost, and a site whose position is in another replica's epoch may be sent its whole
    /// command stream again (`CommandResume` cannot tell a replica's epoch from one a database
    /// put back lost, see `coordinator_hello`), so its whole stream counts as backlog.
    fn liveness_bound_ms(&self) -> u64 {
        let replicas = self.coordinators.len() > 1;
        let round_trip_ms = 2 * self.cfg.net_delay_ms.1 + self.cfg.write_ms.1;
        let failover_ms = if replicas {
            HANDSHAKE_TIMEOUT_MS + self.cfg.retry_ms
        } else {
            0
        };
        let session_ms = self.cfg.retry_ms
            + HANDSHAKE_TIMEOUT_MS
            + failover_ms
            + RETIRED_SESSION_ROUND_TRIPS * round_trip_ms;
        let item_ms = round_trip_ms * HEAL_ROUND_TRIPS_PER_ITEM;
        let tick_ms = if replicas { WORKER_TICK_MS } else { 0 };
        let applied =
            |s: usize, epoch: Epoch| self.central.ops.get(&(s, epoch)).map_or(0, |a| a.hwm);
        let worst = (0..self.sites.len())
            .flat_map(|s| {
                let db = &self.sites[s].db;
                // Saturating: a broken variant may have the receiver ahead of the sender.
                let retired_items: u64 = db
                    .retired
                    .iter()
                    .map(|r| r.head.saturating_sub(applied(s, r.epoch)))
                    .sum();
                // Every retired epoch holding ops may be checked again once the site sees the
                // coordinator's new command epoch, and the session that saw it ends for that.
                let rechecks = db
                    .retired
                    .iter()
                    .filter(|r| r.needs_session() || !r.outbox.is_empty())
                    .count() as u64;
                let sessions = 2 + rechecks;
                let ops = db.head.saturating_sub(applied(s, db.op_epoch)) + retired_items;
                let stream = &self.central.sites[s];
                let current = self.central.epochs.last().copied();
                let commands_applied =
                    if !replicas && db.command_epoch.is_some() && db.command_epoch == current {
                        db.commands.hwm
                    } else {
                        0
                    };
                let commands = (stream.commands.len() as u64).saturating_sub(commands_applied);
                [
                    ops * item_ms + sessions * session_ms,
                    commands * item_ms + failover_ms + tick_ms,
                ]
            })
            .max()
            .unwrap_or(0);
        HEAL_SETUP_MS + worst
    }

    // -- Network ----------------------------------------------------------------------------------

    fn send(&mut self, from: Node, to: Node, to_inc: Option<u64>, conn: u64, body: Body) {
        let site = match (from, to) {
            (Node::Site(s), _) | (_, Node::Site(s)) => s,
            _ => unreachable!("coordinators talk through the database"),
        };
        self.next_send += 1;
        let no = self.next_send;
        if self.broken.get(&conn).is_some_and(|&at| no >= at) {
            return;
        }
        if self.links[site].partition.is_some() {
            return self.break_connection(site, conn, no);
        }
        if !self.calm && self.rng.chance(self.cfg.loss) {
            self.counts.loss += 1;
            return self.break_connection(site, conn, no);
        }
        let env = Envelope {
            from,
            from_inc: self.inc(from),
            to,
            to_inc,
            conn,
            no,
            body,
        };
        // In order within the connection: never before the message sent ahead of it.
        let direction = usize::from(matches!(to, Node::Coordinator(_)));
        let arrival = self.now + self.net_delay();
        let lane = self.lanes.entry((conn, direction)).or_insert(0);
        let at = arrival.max(*lane);
        *lane = at;
        self.schedule(at - self.now, Ev::Deliver(env));
    }

    /// A random delay per message; a spike outlasts the retransmit timeout and holds up the
    /// stream behind it.
    fn net_delay(&mut self) -> u64 {
        let mut delay = self.rng.range(self.cfg.net_delay_ms);
        if !self.calm && self.rng.chance(self.cfg.delay_spike) {
            self.counts.delay += 1;
            delay += self.rng.range((1_000, 8_000));
        }
        delay
    }

    fn deliver(&mut self, env: Envelope) {
        let site = match (env.from, env.to) {
            (Node::Site(s), _) | (_, Node::Site(s)) => s,
            _ => unreachable!("coordinators talk through the database"),
        };
        if self.broken.get(&env.conn).is_some_and(|&at| env.no >= at) {
            return;
        }
        if self.links[site].partition.is_some() {
            return self.break_connection(site, env.conn, env.no);
        }
        if !self.is_up(env.to) || env.to_inc.is_some_and(|inc| inc != self.inc(env.to)) {
            return;
        }
        if !matches!(env.body, Body::Hello(_)) && !self.handles(env.to, site, env.conn) {
            return;
        }
        // A real handshake takes several round trips, so a connection only comes up if the site
        // is still waiting on that very attempt; a stale hello cannot resurrect a dead one.
        if matches!(env.body, Body::Hello(_)) && !self.site_awaits(site, env.from_inc, env.conn) {
            return;
        }
        let link = &mut self.links[site];
        let direction = usize::from(matches!(env.to, Node::Coordinator(_)));
        if env.no < link.delivered_max[direction] {
            self.counts.reorder += 1;
        } else {
            link.delivered_max[direction] = env.no;
        }
        match env.to {
            Node::Coordinator(c) => self.coordinator_receive(c, site, env),
            Node::Site(s) => self.site_receive(s, env),
        }
    }

    /// Whether the receiving process still reads connection `conn`: a site only its current
    /// one, the coordinator any it has not closed yet.
    fn handles(&self, to: Node, site: usize, conn: u64) -> bool {
        match to {
            Node::Site(s) => self.sites[s]
                .vol
                .as_ref()
                .is_some_and(|v| v.conn.id() == Some(conn)),
            Node::Coordinator(c) => self.coordinators[c]
                .vol
                .as_ref()
                .is_some_and(|v| v.open[site].contains(&conn)),
        }
    }

    fn site_awaits(&self, s: usize, inc: u64, conn: u64) -> bool {
        let site = &self.sites[s];
        let attempt = site.vol.as_ref().map(|v| v.conn);
        site.inc == inc && matches!(attempt, Some(Conn::Connecting { id, .. }) if id == conn)
    }

    fn detect(&mut self, node: Node, inc: u64, site: usize, conn: u64) {
        if self.inc(node) != inc {
            return;
        }
        match node {
            Node::Site(s) => {
                let retry_at = self.now + self.cfg.retry_ms;
                let Some(vol) = self.sites[s].vol.as_mut() else {
                    return;
                };
                if vol.conn.id() != Some(conn) {
                    return;
                }
                vol.ops.on_disconnected();
                vol.conn = Conn::Down { retry_at };
                // A failed connection: the agent tries the next address of its list. The
                // process at the other end (maybe a new one that took the hello late) finds
                // out by its own idle timeout.
                let peer = vol.at % self.coordinators.len();
                vol.at += 1;
                self.notice_later(Node::Coordinator(peer), s, conn);
                self.site_pump(s);
            }
            Node::Coordinator(c) => {
                let Some(vol) = self.coordinators[c].vol.as_mut() else {
                    return;
                };
                vol.open[site].remove(&conn);
                if vol.conns[site].map(|(id, _)| id) != Some(conn) {
                    return;
                }
                vol.commands[site].on_disconnected();
                vol.conns[site] = None;
            }
        }
    }

    // -- Restart and timers -----------------------------------------------------------------------

    /// Rebuilds the volatile state from the durable state, as a restarted process would.
    fn restart(&mut self, node: Node) {
        if self.is_up(node) {
            return;
        }
        match node {
            Node::Site(s) => {
                if self.variant != Variant::ReinstallKeepsEpoch {
                    self.start_epoch(s);
                }
                let site = &mut self.sites[s];
                site.inc += 1;
                if site.checkpoint.is_none() {
                    site.checkpoint = Some(site.db.clone());
                    site.snapshots.push_back(site.db.clone());
                }
                let rolled_back = site.rolled_back;
                let db = &site.db;
                site.vol = Some(SiteVol {
                    ops: Sender::new(db.op_epoch, db.acked, db.head, self.cfg.site_limits),
                    stream: Out::Current,
                    commands: db
                        .command_epoch
                        .map(|epoch| Inbox::new(Receiver::new(epoch, db.commands.hwm))),
                    conn: Conn::Down { retry_at: self.now },
                    wake: None,
                    // Sites are spread over the replicas: each list starts at its own primary.
                    at: s,
                });
                // Acked means durable: the process that last took the site's hello (its sender
                // was made from what this database reported) must not believe in commands the
                // site lost. Another process's sender may date from before the database went
                // back.
                let db = &self.sites[s].db;
                let mut told: Vec<u64> = self.sites[s]
                    .served_by
                    .and_then(|c| self.coordinators[c].vol.as_ref())
                    .filter(|v| db.command_epoch == Some(v.epoch))
                    .map(|v| v.commands[s].acked())
                    .into_iter()
                    .collect();
                if self.coordinators.len() == 1 && !self.is_up(Node::Coordinator(0)) {
                    let stream = &self.central.sites[s];
                    if db.command_epoch == Some(self.central.epoch()) {
                        told.push(stream.acked);
                    }
                }
                let acked = told.into_iter().max().unwrap_or(0);
                // A database that went back in time lost acknowledged commands with its disk;
                // the next hello reports what it really holds and they are sent again.
                // (A coordinator database put back in time may hold an acked mark of another
                // timeline.)
                if !rolled_back && !self.coordinator_rewound && acked > db.commands.hwm {
                    let detail = format!(
                        "site {s} restarted with commands applied up to {}, but the coordinator \
                         was told {acked} were durable",
                        db.commands.hwm
                    );
                    self.violate("receiver-lost-acked", detail);
                }
                self.site_pump(s);
            }
            Node::Coordinator(c) => {
                // Every start numbers commands in a new epoch (store/command_epochs.rs), so
                // whatever the database forgot, no (epoch, seq) is issued twice.
                let fresh = Epoch(self.rng.next_u64() >> 1);
                let db = &mut self.central;
                self.coordinators[c].inc += 1;
                let epoch = match self.variant {
                    Variant::CommandEpochKeptAtStart if !db.epochs.is_empty() => db.epoch(),
                    _ => {
                        db.epochs.push(fresh);
                        for st in &mut db.sites {
                            st.acked = 0;
                        }
                        fresh
                    }
                };
                let limits = self.cfg.coordinator_limits;
                let commands = db
                    .sites
                    .iter()
                    .map(|st| Sender::new(epoch, st.acked, st.commands.len() as u64, limits))
                    .collect();
                self.coordinators[c].vol = Some(CoordinatorVol {
                    epoch,
                    inboxes: BTreeMap::new(),
                    commands,
                    conns: vec![None; self.sites.len()],
                    open: vec![BTreeSet::new(); self.sites.len()],
                    wake: None,
                });
                for s in 0..self.sites.len() {
                    let site = &self.sites[s];
                    let (epoch, acked) = site
                        .vol
                        .as_ref()
                        .map_or((site.db.op_epoch, site.db.acked), |v| {
                            (v.ops.epoch(), v.ops.acked())
                        });
                    let key = (s, epoch);
                    let hwm = self.central.ops.get(&key).map_or(0, |a| a.hwm);
                    // A database put back in time lost acknowledged ops (the sites resend them),
                    // and acks its earlier process sent may still be arriving for long after.
                    if acked > hwm && !self.coordinator_rewound {
                        let detail = format!(
                            "coordinator restarted with ops of site {s} applied up to {hwm}, but \
                             the site was told {acked} were durable"
                        );
                        self.violate("receiver-lost-acked", detail);
                    }
                }
                self.coordinator_snapshot();
                if self.coordinators.len() > 1 {
                    let inc = self.coordinators[c].inc;
                    self.schedule(WORKER_TICK_MS, Ev::Tick { c, inc });
                }
            }
        }
    }

    /// A worker's tick sends what the database holds that a lost wake-up did not announce. One
    /// process needs none (its wake-ups stay in memory). After the heal a tick that finds
    /// nothing to send is the last, so that a quiet run ends.
    fn tick(&mut self, c: usize, inc: u64) {
        if self.coordinators[c].inc != inc || !self.is_up(Node::Coordinator(c)) {
            return;
        }
        for s in 0..self.sites.len() {
            self.coordinator_pump(c, s);
        }
        let vol = self.coordinators[c]
            .vol
            .as_ref()
            .expect("coordinator is up");
        let busy = (0..self.sites.len()).any(|s| {
            vol.conns[s].is_some()
                && vol.commands[s].acked() < self.central.sites[s].commands.len() as u64
        });
        if !self.calm || busy {
            self.schedule(WORKER_TICK_MS, Ev::Tick { c, inc });
        }
    }

    /// Every start of the agent begins a new epoch (agent/src/store.rs `start_epoch_at_boot`):
    /// its LPN generation is reserved in the epochs file first, the epoch found is retired (its
    /// unacknowledged ops kept for delivery) and checked once at the coordinator, and epochs the
    /// file recorded after the database's own are runs the database lost, retired empty and
    /// checked too.
    fn start_epoch(&mut self, s: usize) {
        let site = &mut self.sites[s];
        let db = &mut site.db;
        let lost: Vec<Epoch> = match site.epochs_file.iter().rposition(|e| *e == db.op_epoch) {
            Some(i) => site.epochs_file[i + 1..].to_vec(),
            None => Vec::new(),
        };
        let generation = |e: Epoch| (e.0 & 0xffff) as u16;
        let g = match self.variant {
            // A boot counter in the database: whatever the database forgot, it counts again.
            Variant::GenerationFromDatabase => generation(db.op_epoch).wrapping_add(1),
            _ => loop {
                let g = self.rng.next_u64() as u16;
                let taken = g == generation(db.op_epoch)
                    || site.epochs_file.iter().any(|f| generation(*f) == g);
                if !taken {
                    break g;
                }
            },
        };
        // 47 random bits above the generation: the top bit stays clear, as for SQLite.
        let epoch = Epoch((self.rng.next_u64() >> 17 << 16) | u64::from(g));
        site.epochs_file.push(epoch);
        let check = !db.created;
        if db.head > 0 || check {
            let retired = Retired {
                epoch: db.op_epoch,
                head: db.head,
                acked: db.acked,
                outbox: std::mem::take(&mut db.outbox),
                unchecked: check,
            };
            match db.retired_mut(retired.epoch) {
                Some(r) => *r = retired,
                None => db.retired.push(retired),
            }
            self.counts.retired_epochs += 1;
        }
        for e in lost {
            if db.retired_mut(e).is_none() {
                db.retired.push(Retired {
                    epoch: e,
                    head: 0,
                    acked: 0,
                    outbox: BTreeMap::new(),
                    unchecked: true,
                });
            }
        }
        db.outbox.clear();
        db.op_epoch = epoch;
        db.head = 0;
        db.acked = 0;
        db.created = false;
        self.ledger[s].push(DbLedger {
            epoch,
            ops: Vec::new(),
        });
    }

    fn wake(&mut self, node: Node, inc: u64) {
        if self.inc(node) != inc {
            return;
        }
        let now = self.now;
        let wake = match node {
            Node::Site(s) => self.sites[s].vol.as_mut().map(|v| &mut v.wake),
            Node::Coordinator(c) => self.coordinators[c].vol.as_mut().map(|v| &mut v.wake),
        };
        // Only the latest armed wake-up counts; earlier or superseded ones are stale.
        match wake {
            Some(wake) if *wake == Some(now) => *wake = None,
            _ => return,
        }
        match node {
            Node::Site(s) => self.site_pump(s),
            Node::Coordinator(c) => {
                for s in 0..self.sites.len() {
                    self.coordinator_pump(c, s);
                }
            }
        }
    }

    /// Arms one wake-up at the node's earliest deadline (retransmit, handshake, reconnect).
    fn rearm(&mut self, node: Node) {
        let now = self.now;
        let (deadline, wake) = match node {
            Node::Site(s) => {
                let Some(vol) = self.sites[s].vol.as_mut() else {
                    return;
                };
                let conn_deadline = match vol.conn {
                    Conn::Down { retry_at } => Some(retry_at),
                    Conn::Connecting { since, .. } => Some(since + HANDSHAKE_TIMEOUT_MS),
                    Conn::Up { .. } => None,
                };
                let deadline = [vol.ops.poll_timeout(), conn_deadline]
                    .into_iter()
                    .flatten()
                    .min();
                (deadline, &mut vol.wake)
            }
            Node::Coordinator(c) => {
                let Some(vol) = self.coordinators[c].vol.as_mut() else {
                    return;
                };
                let deadline = vol.commands.iter().filter_map(Sender::poll_timeout).min();
                (deadline, &mut vol.wake)
            }
        };
        let Some(deadline) = deadline.map(|d| d.max(now + 1)) else {
            return;
        };
        if wake.is_some_and(|armed| armed <= deadline) {
            return;
        }
        *wake = Some(deadline);
        let inc = self.inc(node);
        self.schedule(deadline - now, Ev::Wake { node, inc });
    }

    // -- Site -------------------------------------------------------------------------------------

    fn new_op(&mut self, s: usize) {
        let now = self.now;
        let delta = self.rng.range((1, 40)) as i64 * if self.rng.chance(0.5) { -1 } else { 1 };
        let op = OpRecord {
            site: SiteId::new(self.sites[s].name.clone()).expect("valid site id"),
            at_ms: now as i64,
            operator: format!("B-{:04}", self.rng.range((0, 9_999))),
            station: "sim".into(),
            body: OpBody::InventoryAdjusted {
                sku: Sku::new(format!("SKU-{}", self.rng.range((1, 500)))).expect("valid sku"),
                delta,
            },
        };
        if !self.is_up(Node::Site(s)) {
            return;
        }
        // Each adjustment prints a plate for the unit: (site, generation of the epoch, number).
        let db = &mut self.sites[s].db;
        let plate = (s, (db.op_epoch.0 & 0xffff) as u16, db.lpn_next);
        db.lpn_next += 1;
        self.counts.lpns_printed += 1;
        if !self.plates.insert(plate) {
            let detail = format!(
                "site {s} printed LPN generation {:04X} number {} a second time (epoch {})",
                plate.1, plate.2, db.op_epoch
            );
            self.violate("duplicate-lpn", detail);
        }
        self.record_op(s, &op, delta);
        if self.rng.chance(CHECKPOINT_CHANCE) {
            let site = &mut self.sites[s];
            site.checkpoint = Some(site.db.clone());
            site.snapshots.push_back(site.db.clone());
            if site.snapshots.len() > SNAPSHOTS_KEPT {
                site.snapshots.pop_front();
            }
        }
        self.site_pump(s);
    }

    /// Appends an op to the current epoch's outbox, durably, as the agent's `record_op`.
    fn record_op(&mut self, s: usize, op: &OpRecord, delta: i64) {
        let site = &mut self.sites[s];
        let Some(vol) = site.vol.as_mut() else {
            return;
        };
        let payload = encode_op(op).expect("op encodes");
        let seq = site.db.head + 1;
        site.db.outbox.insert(seq, payload.clone());
        site.db.head = seq;
        site.db.delta_total += delta;
        if vol.stream == Out::Current {
            vol.ops.on_recorded(seq);
        }
        let ledger = self.ledger[s].last_mut().expect("a ledger per site");
        ledger.ops.push((payload, delta));
        self.counts.ops_created += 1;
    }

    fn site_pump(&mut self, s: usize) {
        if !self.is_up(Node::Site(s)) {
            return;
        }
        self.site_connection(s);
        self.site_send_ops(s);
        self.rearm(Node::Site(s));
    }

    fn site_connection(&mut self, s: usize) {
        let (now, retry) = (self.now, self.cfg.retry_ms);
        let n_coordinators = self.coordinators.len();
        let vol = self.sites[s].vol.as_mut().expect("site is up");
        if let Conn::Connecting { id, since } = vol.conn {
            if now >= since + HANDSHAKE_TIMEOUT_MS {
                vol.conn = Conn::Down {
                    retry_at: now + retry,
                };
                // A failed connection: the next address, and the coordinator that may have
                // accepted the attempt lets it idle out.
                let tried = vol.at % n_coordinators;
                vol.at += 1;
                self.notice_later(Node::Coordinator(tried), s, id);
            }
        }
        let vol = self.sites[s].vol.as_mut().expect("site is up");
        match vol.conn {
            Conn::Down { retry_at } if now >= retry_at => {}
            _ => return,
        }
        self.next_conn += 1;
        let id = self.next_conn;
        let limits = self.cfg.site_limits;
        let site = &mut self.sites[s];
        let vol = site.vol.as_mut().expect("site is up");
        vol.conn = Conn::Connecting { id, since: now };
        // Each session streams one outbox, retired epochs first, with a sender made from what
        // the database holds (agent/src/sync_client.rs `converse`).
        let db = &site.db;
        vol.stream = db.next_stream();
        let (epoch, acked, head) = match vol.stream {
            Out::Current => (db.op_epoch, db.acked, db.head),
            Out::Retired(e) => {
                let r = db.retired.iter().find(|r| r.epoch == e).expect("retired");
                (r.epoch, r.acked, r.head)
            }
        };
        vol.ops = Sender::new(epoch, acked, head, limits);
        let (command_epoch, command_applied) = vol.commands.as_ref().map_or((None, 0), |inbox| {
            (Some(inbox.receiver.epoch()), inbox.receiver.applied())
        });
        let hello = ClientHello::new(
            site.name.clone(),
            epoch,
            command_epoch,
            command_applied,
            PROTOCOL_VERSION,
        );
        let to = Node::Coordinator(vol.at % n_coordinators);
        self.send(Node::Site(s), to, None, id, Body::Hello(hello));
    }

    fn site_send_ops(&mut self, s: usize) {
        let now = self.now;
        let bytes_max = self.cfg.site_limits.bytes_max;
        let site = &mut self.sites[s];
        let vol = site.vol.as_mut().expect("site is up");
        if vol.ops.handle_timeout(now) {
            self.counts.retransmit_timeouts += 1;
        }
        loop {
            let site = &mut self.sites[s];
            let vol = site.vol.as_mut().expect("site is up");
            let Some(request) = vol.ops.next_batch() else {
                return;
            };
            let Conn::Up {
                id: conn,
                coordinator,
                coordinator_inc,
            } = vol.conn
            else {
                let detail = format!("site {s}: op sender connected without a connection");
                self.violate("driver", detail);
                return;
            };
            let head = vol.ops.head();
            let epoch = vol.ops.epoch();
            let outbox = match vol.stream {
                Out::Current => &site.db.outbox,
                Out::Retired(e) => {
                    &site
                        .db
                        .retired
                        .iter()
                        .find(|r| r.epoch == e)
                        .expect("retired")
                        .outbox
                }
            };
            let items: Option<Vec<_>> = (request.first_seq..=head)
                .take(request.ops_max)
                .map(|seq| {
                    let payload = outbox.get(&seq)?.clone();
                    Some(Sequenced { seq, payload })
                })
                .collect();
            let Some(items) = items else {
                let detail = format!(
                    "site {s} was asked to send from seq {} but pruned it",
                    request.first_seq
                );
                self.violate("sender-pruned", detail);
                return;
            };
            let items = cut_batch(items, bytes_max);
            let last = items.last().expect("cut_batch keeps one").seq;
            vol.ops.on_batch_sent(last, now);
            let msg = Message::OpBatch {
                epoch,
                ops: items,
                outbox_head_seq: Some(head),
            };
            let (to, to_inc) = (Node::Coordinator(coordinator), Some(coordinator_inc));
            self.send(Node::Site(s), to, to_inc, conn, Body::Msg(msg));
        }
    }

    fn site_receive(&mut self, s: usize, env: Envelope) {
        match env.body {
            Body::ServerHello(ServerHello::Accepted { op_applied_seq, .. }) => {
                let vol = self.sites[s]
                    .vol
                    .as_mut()
                    .expect("delivered to a live site");
                match vol.conn {
                    Conn::Connecting { id, .. } if id == env.conn => {}
                    _ => return,
                }
                if let Out::Retired(epoch) = vol.stream {
                    if self.site_check_retired(s, epoch, op_applied_seq, env.conn) {
                        return;
                    }
                }
                let site = &mut self.sites[s];
                let vol = site.vol.as_mut().expect("site is up");
                let result = vol.ops.on_connected(op_applied_seq);
                // The coordinator holds less than it acknowledged (its database went back in
                // time): the agent stores the lower mark at once and sends the difference again
                // from the ops it keeps (agent/src/sync_client.rs `converse`).
                if let Ok(Some(applied)) = result {
                    let durable = match vol.stream {
                        Out::Current => Some(&mut site.db.acked),
                        Out::Retired(e) => site.db.retired_mut(e).map(|r| &mut r.acked),
                    };
                    if let Some(durable) = durable.filter(|d| applied < **d) {
                        *durable = applied;
                        self.counts.ops_resent_to_restored_coordinator += 1;
                    }
                }
                let vol = site.vol.as_mut().expect("site is up");
                let Node::Coordinator(coordinator) = env.from else {
                    unreachable!("a server hello comes from a coordinator")
                };
                vol.conn = if result.is_ok() {
                    Conn::Up {
                        id: env.conn,
                        coordinator,
                        coordinator_inc: env.from_inc,
                    }
                } else {
                    // A driver would close the connection, raise an alarm and try again later.
                    vol.at += 1;
                    Conn::Down {
                        retry_at: self.now + self.cfg.retry_ms,
                    }
                };
                if result.is_err() {
                    self.notice_later(env.from, s, env.conn);
                }
                self.site_ops_acked(s, result);
                self.site_pump(s);
            }
            Body::ServerHello(ServerHello::Refused { reason }) => {
                let detail = format!("live site {s} refused: {reason}");
                self.violate("refused", detail);
            }
            Body::Msg(Message::OpAck { epoch, up_to_seq }) => {
                let now = self.now;
                let vol = self.sites[s]
                    .vol
                    .as_mut()
                    .expect("delivered to a live site");
                let result = vol.ops.on_ack(epoch, up_to_seq, now);
                self.site_ops_acked(s, result);
                self.site_pump(s);
            }
            Body::Msg(Message::CommandBatch { epoch, commands }) => {
                let vol = self.sites[s]
                    .vol
                    .as_mut()
                    .expect("delivered to a live site");
                // A fresh database learns the coordinator's command epoch from its first batch.
                let inbox = vol
                    .commands
                    .get_or_insert_with(|| Inbox::new(Receiver::new(epoch, 0)));
                if inbox.receiver.epoch() != epoch {
                    let detail = format!(
                        "site {s} got commands of epoch {epoch} while applying epoch {}",
                        inbox.receiver.epoch()
                    );
                    self.violate("command-epoch", detail);
                    return;
                }
                let inbound = Inbound {
                    items: commands,
                    reply_to: env.from,
                    reply_inc: env.from_inc,
                    reply_conn: env.conn,
                };
                self.on_batch(Stream::Commands(s), inbound);
            }
            Body::Msg(Message::CommandResume {
                from_epoch,
                epoch,
                after_seq,
            }) => self.site_command_resume(s, env.conn, from_epoch, epoch, after_seq),
            Body::Hello(_) | Body::Msg(_) => unreachable!("not sent to a site"),
        }
    }

    /// The coordinator started again and says where this site's commands continue in its new
    /// epoch (agent/src/sync_client.rs): after the position this connection's hello reported,
    /// or from scratch. The site then checks its retired epochs with it again: it may have been
    /// put back in time and lack ops it once acknowledged.
    fn site_command_resume(
        &mut self,
        s: usize,
        conn: u64,
        from_epoch: Epoch,
        epoch: Epoch,
        after_seq: u64,
    ) {
        let now = self.now;
        let site = &mut self.sites[s];
        let vol = site.vol.as_mut().expect("delivered to a live site");
        // A batch of the previous connection still being written moves the position after the
        // hello reported it; the agent refuses what it cannot match and reconnects.
        let busy = vol
            .commands
            .as_ref()
            .is_some_and(|inbox| inbox.writing.is_some() || !inbox.queue.is_empty());
        let reported = vol
            .commands
            .as_ref()
            .map(|inbox| (inbox.receiver.epoch(), inbox.receiver.applied()));
        if busy || (after_seq > 0 && reported != Some((from_epoch, after_seq))) {
            self.counts.command_resume_refused += 1;
            vol.ops.on_disconnected();
            vol.conn = Conn::Down {
                retry_at: now + self.cfg.retry_ms,
            };
            // An error ends the session: the agent tries the next address.
            let peer = vol.at % self.coordinators.len();
            vol.at += 1;
            self.notice_later(Node::Coordinator(peer), s, conn);
            return self.site_pump(s);
        }
        if after_seq == 0 {
            site.db.commands = Applied::default();
        }
        site.db.command_epoch = Some(epoch);
        vol.commands = Some(Inbox::new(Receiver::new(epoch, after_seq)));
        let mut n_rechecks = 0;
        for r in &mut site.db.retired {
            if !r.unchecked && !r.outbox.is_empty() {
                r.unchecked = true;
                n_rechecks += 1;
            }
        }
        self.counts.retired_rechecks += n_rechecks;
        if n_rechecks > 0 {
            self.site_end_session(s, conn);
        }
    }

    /// The coordinator's answer for a retired epoch: above the database's head, the database
    /// went back in time and the site reports it; at or above it, the epoch is delivered and
    /// checked, and the session ends for the next stream. Returns whether it ended.
    fn site_check_retired(&mut self, s: usize, epoch: Epoch, applied: u64, conn: u64) -> bool {
        let seen = self.checked.entry((s, epoch)).or_insert(0);
        *seen = (*seen).max(applied);
        let site = &mut self.sites[s];
        let head = site.db.retired_mut(epoch).expect("retired").head;
        if applied > head && site.db.rollbacks.insert(epoch) {
            let op = OpRecord {
                site: SiteId::new(site.name.clone()).expect("valid site id"),
                at_ms: self.now as i64,
                operator: "system".into(),
                station: "sync".into(),
                body: OpBody::DatabaseRewound {
                    epoch,
                    head_seq: head,
                    new_epoch: site.db.op_epoch,
                },
            };
            self.record_op(s, &op, 0);
        }
        if applied < head {
            return false;
        }
        let r = self.sites[s].db.retired_mut(epoch).expect("retired");
        r.acked = r.head;
        r.unchecked = false;
        self.site_end_session(s, conn);
        true
    }

    /// The site closes its session to start the next stream's.
    fn site_end_session(&mut self, s: usize, conn: u64) {
        let now = self.now;
        let vol = self.sites[s].vol.as_mut().expect("site is up");
        vol.ops.on_disconnected();
        vol.conn = Conn::Down { retry_at: now };
        // A drained session: the agent reconnects to the same address.
        let peer = vol.at % self.coordinators.len();
        self.notice_later(Node::Coordinator(peer), s, conn);
        self.site_pump(s);
    }

    /// The op sender learned a new acked seq: check it is durable at the coordinator, and
    /// sometimes persist it (pruning the outbox). A retired epoch acknowledged to its head is
    /// persisted at once and its session ends.
    fn site_ops_acked(&mut self, s: usize, result: Result<Option<u64>, SenderError>) {
        let vol = self.sites[s].vol.as_ref().expect("site is up");
        let (stream, epoch, conn) = (vol.stream, vol.ops.epoch(), vol.conn.id());
        let acked = match result {
            Ok(Some(acked)) => acked,
            Ok(None) => return,
            // Ops of a retired epoch the previous process had sent before its database went
            // back landed after this session's hello: the agent ends the session on the
            // protocol error, and the next hello finds the rollback.
            Err(SenderError::ReceiverAhead { .. }) if stream != Out::Current => {
                self.counts.retired_ack_ahead += 1;
                if let Some(conn) = conn {
                    self.site_end_session(s, conn);
                }
                return;
            }
            Err(e) => return self.violate("sender-error", format!("site {s} ops: {e}")),
        };
        // Against the most the coordinator ever held: a rollback may since have taken it back,
        // and an ack its previous process sent may still arrive.
        let hwm = self.ops_durable_max.get(&(s, epoch)).copied().unwrap_or(0);
        if acked > hwm {
            let detail = format!(
                "site {s} told ops up to {acked} of epoch {epoch} are durable, coordinator has \
                 had at most {hwm}"
            );
            self.violate("ack-not-durable", detail);
        }
        match stream {
            Out::Current => {
                // Acknowledged ops stay in the outbox (for `outbox_keep_days`, longer than a
                // run here): a coordinator put back in time asks for them again.
                if self.rng.chance(self.cfg.persist_ack) {
                    let db = &mut self.sites[s].db;
                    db.acked = db.acked.max(acked);
                }
            }
            Out::Retired(e) => {
                let r = self.sites[s].db.retired_mut(e).expect("retired");
                r.acked = r.acked.max(acked).min(r.head);
                if r.acked >= r.head {
                    r.unchecked = false;
                    if let Some(conn) = conn {
                        self.site_end_session(s, conn);
                    }
                }
            }
        }
    }

    // -- Coordinator ------------------------------------------------------------------------------

    /// An API request lands on any process that is up; it queues the command in the database
    /// and wakes the process holding the site's link: itself in memory, another through the
    /// database (a wake-up that may be lost; that process's tick sends it then).
    fn new_command(&mut self, s: usize) {
        let up: Vec<_> = (0..self.coordinators.len())
            .filter(|&c| self.is_up(Node::Coordinator(c)))
            .collect();
        if up.is_empty() {
            return;
        }
        let issuer = up[self.rng.below(up.len())];
        let n = self.central.sites[s].commands.len() + 1;
        let lines: Vec<_> = (0..self.rng.range((1, 3)))
            .map(|_| {
                let sku = Sku::new(format!("SKU-{}", self.rng.range((1, 500)))).expect("sku");
                let qty = self.rng.range((1, 5)) as u32;
                let reason = ReasonCode::ALL[self.rng.below(ReasonCode::ALL.len())];
                ReturnLine::new(sku, qty, reason).expect("valid line")
            })
            .collect();
        let command = CommandBody::ExpectedReturn {
            customer_name: None,
            rma: RmaId::new(format!("RMA-{s}-{n}")).expect("valid rma"),
            lines,
        };
        let payload = encode_command(&command).expect("command encodes");
        // Issued in the running epoch, the last started (store/commands.rs `enqueue`).
        let ordinal = self.central.epochs.len() - 1;
        self.central.sites[s]
            .commands
            .push((payload.clone(), ordinal));
        self.issued_ever[s].insert((n as u64, payload_hash(&payload)));
        self.counts.commands_created += 1;
        if self.rng.chance(COMMAND_SNAPSHOT_CHANCE) {
            self.coordinator_snapshot();
        }
        self.coordinator_pump(issuer, s);
        for c in up.into_iter().filter(|&c| c != issuer) {
            let holds = self.coordinators[c]
                .vol
                .as_ref()
                .is_some_and(|v| v.conns[s].is_some());
            if !holds {
                continue;
            }
            self.counts.commands_sent_by_another_replica += 1;
            if self.rng.chance(self.cfg.notify_loss) {
                self.counts.notify_lost += 1;
                continue;
            }
            let inc = self.coordinators[c].inc;
            let after = self.rng.range(NOTIFY_MS);
            self.schedule(after, Ev::Notify { c, inc, site: s });
        }
    }

    /// Sends the site's commands the database holds, if this process holds the site's link.
    fn coordinator_pump(&mut self, c: usize, s: usize) {
        let now = self.now;
        let bytes_max = self.cfg.coordinator_limits.bytes_max;
        let head = self.central.sites[s].commands.len() as u64;
        let Some(vol) = self.coordinators[c].vol.as_mut() else {
            return;
        };
        // The worker reads the stream's head from the database, whoever queued the commands.
        if head > vol.commands[s].head() {
            vol.commands[s].on_recorded(head);
        }
        if vol.commands[s].handle_timeout(now) {
            self.counts.retransmit_timeouts += 1;
        }
        loop {
            let vol = self.coordinators[c]
                .vol
                .as_mut()
                .expect("coordinator is up");
            let sender = &mut vol.commands[s];
            let Some(request) = sender.next_batch() else {
                break;
            };
            let Some((conn, site_inc)) = vol.conns[s] else {
                let detail = format!("command sender of site {s} connected without a connection");
                self.violate("driver", detail);
                break;
            };
            let stream = &self.central.sites[s];
            let items: Vec<_> = (request.first_seq..=sender.head())
                .take(request.ops_max)
                .map(|seq| Sequenced {
                    seq,
                    payload: stream.commands[seq as usize - 1].0.clone(),
                })
                .collect();
            let items = cut_batch(items, bytes_max);
            let last = items.last().expect("cut_batch keeps one").seq;
            sender.on_batch_sent(last, now);
            let msg = Message::CommandBatch {
                epoch: sender.epoch(),
                commands: items,
            };
            let to = Node::Site(s);
            let from = Node::Coordinator(c);
            self.send(from, to, Some(site_inc), conn, Body::Msg(msg));
        }
        self.rearm(Node::Coordinator(c));
    }

    fn coordinator_receive(&mut self, c: usize, site: usize, env: Envelope) {
        match env.body {
            Body::Hello(hello) => self.coordinator_hello(c, site, env.from_inc, env.conn, hello),
            Body::Msg(Message::OpBatch { epoch, ops, .. }) => {
                let inbound = Inbound {
                    items: ops,
                    reply_to: env.from,
                    reply_inc: env.from_inc,
                    reply_conn: env.conn,
                };
                self.on_batch(Stream::Ops(c, site, epoch), inbound);
            }
            Body::Msg(Message::CommandAck { epoch, up_to_seq }) => {
                let now = self.now;
                let vol = self.coordinators[c]
                    .vol
                    .as_mut()
                    .expect("delivered to a live node");
                // Each connection's task has its own command sender: an ack read by a replaced
                // connection is about a session (and maybe a database) that is gone.
                if vol.conns[site].map(|(id, _)| id) != Some(env.conn) {
                    self.counts.stale_epoch_acks += 1;
                    return;
                }
                let result = vol.commands[site].on_ack(epoch, up_to_seq, now);
                self.coordinator_commands_acked(site, result);
                self.coordinator_pump(c, site);
            }
            Body::ServerHello(_) | Body::Msg(_) => unreachable!("not sent to the coordinator"),
        }
    }

    fn coordinator_hello(
        &mut self,
        c: usize,
        s: usize,
        site_inc: u64,
        conn: u64,
        hello: ClientHello,
    ) {
        let current = self.coordinators[c]
            .vol
            .as_ref()
            .expect("delivered to a live node")
            .epoch;
        // Where the site's commands continue (coordinator/src/store/command_epochs.rs): its
        // position in an earlier epoch holds only as far as this database holds the commands
        // issued up to that epoch; otherwise it gets the whole stream again. The site's answer
        // is the truth about what it applied: a new, reinstalled or rolled-back database says
        // less than was acknowledged, and the sender, made afresh, sends it the rest again.
        let reported = hello.command_epoch.map(|e| (e, hello.command_applied_seq));
        let db = &self.central;
        let (applied, from_epoch, lost) = match reported {
            None => (0, Some(current), false),
            Some((e, seq)) if e == current => (seq, None, false),
            Some(_) if self.variant == Variant::CommandEpochKeptAtStart => {
                (0, Some(current), false)
            }
            Some((e, seq)) => match db.epochs.iter().position(|x| *x == e) {
                Some(ordinal) => {
                    let held = db.sites[s]
                        .commands
                        .iter()
                        .take_while(|(_, o)| *o <= ordinal)
                        .count() as u64;
                    if seq <= held {
                        (seq, Some(e), false)
                    } else {
                        (0, Some(e), true)
                    }
                }
                None => (0, Some(e), seq > 0),
            },
        };
        if lost {
            self.counts.coordinator_rewound_reported += 1;
            // The site holds, up to the position it reported, exactly what the database holds:
            // nothing was lost, yet the position is refused (a finding of the replicas model:
            // a command queued after another replica started carries that replica's ordinal,
            // so a position in an older replica's epoch never covers it).
            let held: Vec<_> = db.sites[s]
                .commands
                .iter()
                .take(hello.command_applied_seq as usize)
                .map(|(payload, _)| payload_hash(payload))
                .collect();
            let site_db = &self.sites[s].db;
            let applied: Vec<_> = site_db.commands.items.iter().map(|(_, h)| *h).collect();
            if !self.coordinator_rewound
                && site_db.commands.hwm == hello.command_applied_seq
                && held == applied
            {
                self.counts.rewound_reported_without_rollback += 1;
                if self.trace {
                    eprintln!(
                        "{:>8} site {s}'s command position {reported:?} refused by coordinator \
                         {c} (epoch {current}) although the database lost nothing",
                        self.now
                    );
                }
            }
        }
        if from_epoch.is_some() && applied > 0 {
            self.counts.commands_carried_over += 1;
        }
        self.sites[s].rolled_back = false;
        let stream = &mut self.central.sites[s];
        let vol = self.coordinators[c]
            .vol
            .as_mut()
            .expect("delivered to a live node");
        let head = stream.commands.len() as u64;
        if applied > head {
            let detail = format!("site {s} reports command seq {applied} of {head}");
            return self.violate("command-ahead", detail);
        }
        if applied == 0 && (stream.acked > 0 || reported.is_some_and(|(_, seq)| seq > 0)) {
            self.counts.commands_resent_from_scratch += 1;
        }
        stream.acked = applied;
        vol.commands[s] = Sender::new(current, applied, head, self.cfg.coordinator_limits);
        let result = vol.commands[s].on_connected(applied);
        let replaced = vol.conns[s].replace((conn, site_inc));
        vol.open[s].insert(conn);
        let key = (s, hello.op_epoch);
        let hwm = self.central.ops.get(&key).map_or(0, |a| a.hwm);
        let inbox = vol
            .inboxes
            .entry(key)
            .or_insert_with(|| Inbox::new(Receiver::new(hello.op_epoch, hwm)));
        // The mark is read from the database (another process may have moved it), except by
        // the broken variant that trusts its own memory.
        let op_applied_seq = match self.variant {
            Variant::PlanFromMemory => inbox.receiver.applied(),
            _ => hwm,
        };
        let accepted = ServerHello::Accepted {
            version: PROTOCOL_VERSION,
            op_applied_seq,
        };
        if let Some(previous) = self.sites[s].served_by.replace(c) {
            if previous != c {
                self.counts.failovers += 1;
            }
        }
        self.coordinator_commands_acked(s, result);
        // The replaced connection is closed, but its task may still handle what it has read.
        if let Some((old, _)) = replaced.filter(|(old, _)| *old != conn) {
            let after = self.rng.range(REPLACED_CLOSE_MS);
            let inc = self.coordinators[c].inc;
            let node = Node::Coordinator(c);
            self.schedule(
                after,
                Ev::Detect {
                    node,
                    inc,
                    site: s,
                    conn: old,
                },
            );
        }
        let body = Body::ServerHello(accepted);
        let from = Node::Coordinator(c);
        self.send(from, Node::Site(s), Some(site_inc), conn, body);
        if let Some(from_epoch) = from_epoch {
            let resume = Message::CommandResume {
                from_epoch,
                epoch: current,
                after_seq: applied,
            };
            self.send(from, Node::Site(s), Some(site_inc), conn, Body::Msg(resume));
        }
        self.coordinator_pump(c, s);
    }

    fn coordinator_commands_acked(&mut self, s: usize, result: Result<Option<u64>, SenderError>) {
        let acked = match result {
            Ok(Some(acked)) => acked,
            Ok(None) => return,
            // Acks still in flight from a replaced site database carry the old epoch.
            Err(SenderError::WrongEpoch { .. }) => {
                self.counts.stale_epoch_acks += 1;
                return;
            }
            Err(e) => return self.violate("sender-error", format!("commands to site {s}: {e}")),
        };
        // Against the most the site ever held: a rollback may since have taken it back.
        let durable = self.commands_durable_max[s];
        if acked > durable {
            let detail = format!(
                "coordinator told commands up to {acked} are durable at site {s}, which has had \
                 at most {durable}"
            );
            self.violate("ack-not-durable", detail);
        }
        if self.rng.chance(self.cfg.persist_ack) {
            let stream = &mut self.central.sites[s];
            stream.acked = stream.acked.max(acked);
        }
    }

    // -- Receiving a stream (both directions) -----------------------------------------------------

    /// The volatile and durable halves of a receiving stream, if its node is up.
    fn stream_parts(&mut self, stream: Stream) -> Option<(&mut Inbox, &mut Applied)> {
        match stream {
            Stream::Ops(c, site, epoch) => {
                let vol = self.coordinators[c].vol.as_mut()?;
                let applied = self.central.ops.entry((site, epoch)).or_default();
                let inbox = vol
                    .inboxes
                    .entry((site, epoch))
                    .or_insert_with(|| Inbox::new(Receiver::new(epoch, applied.hwm)));
                Some((inbox, applied))
            }
            Stream::Commands(site) => {
                let site = &mut self.sites[site];
                let inbox = site.vol.as_mut()?.commands.as_mut()?;
                Some((inbox, &mut site.db.commands))
            }
        }
    }

    fn on_batch(&mut self, stream: Stream, inbound: Inbound) {
        let Some((inbox, _)) = self.stream_parts(stream) else {
            return;
        };
        if inbox.writing.is_some() {
            inbox.queue.push_back(inbound);
        } else {
            self.start_write(stream, inbound);
        }
    }

    /// Whether a batch is planned when it is read, from the receiver in the process's memory,
    /// rather than inside its write transaction from the durable mark. A site is one process
    /// whose memory follows its database; a coordinator plans in the transaction
    /// (store/apply.rs `apply_in`), as another process may have applied the same items since.
    fn plans_early(&self, stream: Stream) -> bool {
        match stream {
            Stream::Commands(_) => true,
            Stream::Ops(..) => matches!(
                self.variant,
                Variant::PlanFromMemory | Variant::AckBeforeDurable
            ),
        }
    }

    /// Starts the batch's durable write, which lands after a random latency.
    fn start_write(&mut self, stream: Stream, inbound: Inbound) {
        let early = self.plans_early(stream);
        let acked_early = self.variant == Variant::AckBeforeDurable;
        let Some((inbox, applied)) = self.stream_parts(stream) else {
            return;
        };
        let plan = early.then(|| {
            inbox
                .receiver
                .plan(&inbound.items, |seq| applied.stored_hash(seq))
        });
        let epoch = inbox.receiver.epoch();
        inbox.writing = Some(Write {
            plan: plan.clone(),
            items: inbound.items,
            reply_to: inbound.reply_to,
            reply_inc: inbound.reply_inc,
            reply_conn: inbound.reply_conn,
            acked_early,
        });
        if let Some(plan) = &plan {
            self.note_plan(stream, plan);
            if acked_early {
                let reply = (inbound.reply_to, inbound.reply_inc, inbound.reply_conn);
                self.send_ack(stream, epoch, plan.new_applied, reply);
            }
        }
        let inc = self.inc(stream.node());
        let latency = self.rng.range(self.cfg.write_ms);
        self.schedule(latency, Ev::WriteDone { stream, inc });
    }

    /// Counts what a plan found and reports its payload conflicts.
    fn note_plan(&mut self, stream: Stream, plan: &Plan) {
        self.counts.duplicates_received += plan.n_duplicates as u64;
        self.counts.gaps_received += u64::from(plan.gap_at.is_some());
        for conflict in &plan.conflicts {
            let detail = format!(
                "{stream:?} seq {} arrived with a payload that differs from the applied one",
                conflict.seq
            );
            self.violate("payload-conflict", detail);
        }
    }

    /// The write transaction lands (or the node dies first): planned from the durable mark and
    /// stored hashes unless planned early, applied, committed, then acknowledged. Transactions
    /// are serialised across processes (one SQLite writer, PostgreSQL's advisory lock): this
    /// event is one of them.
    fn write_done(&mut self, stream: Stream, inc: u64) {
        let node = stream.node();
        if self.inc(node) != inc || !self.is_up(node) {
            return;
        }
        if !self.calm && self.rng.chance(self.cfg.crash_before_durable) {
            self.crash_and_restart(node);
            return;
        }
        let variant = self.variant;
        let (inbox, applied) = self.stream_parts(stream).expect("node is up");
        let write = inbox.writing.take().expect("a write is pending");
        let epoch = inbox.receiver.epoch();
        let (plan, late) = match write.plan {
            Some(plan) => (plan, false),
            None => {
                let receiver = Receiver::new(epoch, applied.hwm);
                let plan = receiver.plan(&write.items, |seq| applied.stored_hash(seq));
                (plan, true)
            }
        };
        if late {
            self.note_plan(stream, &plan);
        }
        let items: Vec<_> = match variant {
            Variant::NoDedup => write.items.clone(),
            _ => plan.apply.iter().map(|&i| write.items[i].clone()).collect(),
        };
        for item in &items {
            self.record_apply(stream, epoch, item);
        }
        let (_, applied) = self.stream_parts(stream).expect("node is up");
        applied.hwm = plan.new_applied;
        match stream {
            Stream::Commands(s) => {
                self.sites[s].db.command_epoch = Some(epoch);
                let hwm = self.sites[s].db.commands.hwm;
                self.commands_durable_max[s] = self.commands_durable_max[s].max(hwm);
            }
            Stream::Ops(_, s, epoch) => {
                let hwm = plan.new_applied;
                let max = self.ops_durable_max.entry((s, epoch)).or_insert(0);
                *max = (*max).max(hwm);
                if self.rng.chance(CHECKPOINT_CHANCE) {
                    self.coordinator_snapshot();
                }
            }
        }
        if !self.calm && self.rng.chance(self.cfg.crash_after_durable) {
            self.counts.crash_after_durable += 1;
            self.crash_and_restart(node);
            return;
        }
        let (inbox, _) = self.stream_parts(stream).expect("node is up");
        let ack = if late {
            inbox.receiver = Receiver::new(epoch, plan.new_applied);
            plan.new_applied
        } else {
            inbox.receiver.commit(&plan)
        };
        let next = inbox.queue.pop_front();
        if !write.acked_early {
            let reply = (write.reply_to, write.reply_inc, write.reply_conn);
            self.send_ack(stream, epoch, ack, reply);
        }
        if let Some(next) = next {
            self.start_write(stream, next);
        }
    }

    /// One item of a durable write: the driver's apply, watched by the checker as it happens.
    fn record_apply(&mut self, stream: Stream, epoch: Epoch, item: &Sequenced) {
        let (expected, effect) = match stream {
            Stream::Ops(_, site, _) => {
                let expected = self.ledger[site]
                    .iter()
                    .find(|db| db.epoch == epoch)
                    .and_then(|db| db.ops.get(item.seq as usize - 1));
                let delta = match decode_op(&item.payload) {
                    Ok(OpRecord {
                        body: OpBody::InventoryAdjusted { delta, .. },
                        ..
                    }) => delta,
                    // The coordinator raises its anomaly from this op.
                    Ok(OpRecord {
                        body: OpBody::DatabaseRewound { epoch, .. },
                        ..
                    }) => {
                        if self.rewound.insert((site, epoch)) {
                            self.counts.rollbacks_reported += 1;
                        }
                        0
                    }
                    _ => 0,
                };
                (expected.map(|(payload, _)| payload), delta)
            }
            Stream::Commands(site) => {
                // Some coordinator issued it at that seq, in this timeline or one a rollback
                // abandoned; the end state is checked against what the coordinator holds.
                let hash = payload_hash(&item.payload);
                let known = self.issued_ever[site].contains(&(item.seq, hash));
                let qty = match decode_command(&item.payload) {
                    Ok(CommandBody::ExpectedReturn { lines, .. }) => {
                        lines.iter().map(|l| i64::from(l.qty)).sum()
                    }
                    _ => 0,
                };
                (known.then_some(&item.payload), qty)
            }
        };
        let payload_matches = expected == Some(&item.payload);
        let (_, applied) = self.stream_parts(stream).expect("node is up");
        let next = applied.items.len() as u64 + 1;
        applied.items.push((item.seq, payload_hash(&item.payload)));
        applied.total += effect;
        if item.seq != next {
            let detail = format!(
                "{stream:?} applied seq {} where {next} was next (applied twice, or skipped)",
                item.seq
            );
            self.violate("applied-out-of-order", detail);
        }
        if !payload_matches {
            let detail = format!("{stream:?} seq {}: not the payload recorded", item.seq);
            self.violate("wrong-payload", detail);
        }
    }

    /// Acknowledges on the connection the batch came in on, to the process that sent it.
    fn send_ack(
        &mut self,
        stream: Stream,
        epoch: Epoch,
        up_to_seq: u64,
        (reply_to, inc, conn): (Node, u64, u64),
    ) {
        let to = Some(inc);
        match stream {
            Stream::Ops(c, site, _) => {
                let msg = Message::OpAck { epoch, up_to_seq };
                self.send(
                    Node::Coordinator(c),
                    Node::Site(site),
                    to,
                    conn,
                    Body::Msg(msg),
                );
            }
            Stream::Commands(site) => {
                let msg = Message::CommandAck { epoch, up_to_seq };
                self.send(Node::Site(site), reply_to, to, conn, Body::Msg(msg));
            }
        }
    }

    // -- The end-of-run checker -------------------------------------------------------------------

    fn check_end(&mut self) {
        for s in 0..self.sites.len() {
            self.check_ops(s);
            self.check_commands(s);
        }
        let known: BTreeSet<_> = self
            .ledger
            .iter()
            .enumerate()
            .flat_map(|(s, dbs)| dbs.iter().map(move |db| (s, db.epoch)))
            .collect();
        let stray: Vec<_> = self
            .central
            .ops
            .keys()
            .filter(|key| !known.contains(key))
            .copied()
            .collect();
        for (s, epoch) in stray {
            let detail = format!("coordinator holds ops of site {s} for unknown epoch {epoch}");
            self.violate("unknown-epoch", detail);
        }
    }

    fn check_ops(&mut self, s: usize) {
        let mut problems = Vec::new();
        let site = &self.sites[s];
        let mut epochs_with_ops = 0;
        let mut lost = 0;
        let mut all_kept = true;
        let mut lineage_total = 0;
        for (i, db) in self.ledger[s].iter().enumerate() {
            let empty = Applied::default();
            let applied = self.central.ops.get(&(s, db.epoch)).unwrap_or(&empty);
            let n = applied.items.len();
            epochs_with_ops += usize::from(n > 0);
            if n > db.ops.len() || applied.hwm != n as u64 {
                problems.push((
                    "op-count",
                    format!(
                        "site {s} epoch {}: {} ops recorded, {n} applied, high-water mark {}",
                        db.epoch,
                        db.ops.len(),
                        applied.hwm
                    ),
                ));
            }
            let expected: i64 = db.ops.iter().take(n).map(|(_, delta)| delta).sum();
            if applied.total != expected {
                problems.push((
                    "totals",
                    format!(
                        "site {s} epoch {}: coordinator sums {} over applied ops, recorded ops \
                         sum {expected}",
                        db.epoch, applied.total
                    ),
                ));
            }
            // Epochs of a database replaced by a reinstall need only be a prefix.
            if i < site.lineage_start {
                continue;
            }
            lineage_total += applied.total;
            let kept = site.db.head_of(db.epoch) as usize;
            all_kept &= kept == db.ops.len();
            if n < kept {
                problems.push((
                    "op-count",
                    format!(
                        "site {s} epoch {}: {kept} ops on the site's disk, {n} applied",
                        db.epoch
                    ),
                ));
            }
            let reported = self.rewound.contains(&(s, db.epoch));
            let seen = self.checked.get(&(s, db.epoch)).copied();
            if n > kept && !reported && seen.is_none_or(|seen| seen as usize <= kept) {
                // No hello told the present database a mark above its head, so what the
                // coordinator applied above it came later: batches the process sent before the
                // database went back, still read from its replaced connection after the new
                // process's check. The real agent checks once at the hello and misses these
                // too; they are counted, not reported.
                self.counts.rewound_missed_in_flight += 1;
            } else if n > kept && !reported {
                problems.push((
                    "rollback-unreported",
                    format!(
                        "site {s} epoch {}: the coordinator applied {n} ops, the database holds \
                         {kept}, and no DatabaseRewound arrived",
                        db.epoch
                    ),
                ));
            }
            lost += db.ops.len().saturating_sub(n.max(kept)) as u64;
        }
        // Nothing lost with the disk: both sides agree on the whole database's effect.
        if all_kept && lineage_total != site.db.delta_total {
            problems.push((
                "totals",
                format!(
                    "site {s}: coordinator sums {lineage_total} over the database's epochs, the \
                     site says {}",
                    site.db.delta_total
                ),
            ));
        }
        self.counts.lost_by_rollback += lost;
        if epochs_with_ops > 1 {
            // Seq 1.. of a later epoch were applied although the same seqs of an earlier epoch
            // had been: they were not mistaken for duplicates.
            self.counts.epoch_seq_reuse += 1;
        }
        if let Some(vol) = &site.vol {
            let pending: Vec<_> = site
                .db
                .retired
                .iter()
                .filter(|r| r.needs_session())
                .map(|r| r.epoch)
                .collect();
            if vol.stream != Out::Current || vol.ops.acked() != site.db.head || !pending.is_empty()
            {
                problems.push((
                    "not-converged",
                    format!(
                        "site {s} op sender acked {} of {} ({:?}), retired epochs pending \
                         {pending:?}",
                        vol.ops.acked(),
                        site.db.head,
                        vol.stream
                    ),
                ));
            }
        }
        for (kind, detail) in problems {
            self.violate(kind, detail);
        }
    }

    fn check_commands(&mut self, s: usize) {
        let mut problems = Vec::new();
        // The process holding the site's link sends its commands, in its own epoch.
        let holder = self.sites[s].vol.as_ref().and_then(|v| match v.conn {
            Conn::Up { coordinator, .. } => self.coordinators[coordinator].vol.as_ref(),
            _ => None,
        });
        if holder.is_none() {
            problems.push((
                "not-converged",
                format!("site {s} holds no link at the end"),
            ));
        }
        let current = holder.map_or(self.central.epoch(), |v| v.epoch);
        let stream = &self.central.sites[s];
        let db = &self.sites[s].db;
        let n = stream.commands.len();
        // The site holds, in order, exactly the commands the coordinator's database holds: none
        // skipped, none taken for one it had applied under the same seq with other content.
        let expected: Vec<_> = stream
            .commands
            .iter()
            .enumerate()
            .map(|(i, (payload, _))| (i as u64 + 1, payload_hash(payload)))
            .collect();
        let epoch_ok = n == 0 || db.command_epoch == Some(current);
        if !epoch_ok || db.commands.hwm != n as u64 || db.commands.items != expected {
            let differ = expected
                .iter()
                .zip(&db.commands.items)
                .position(|(a, b)| a != b);
            problems.push((
                "command-count",
                format!(
                    "site {s}: the coordinator holds {n} commands, the site applied {} (high-water \
                     mark {}, epoch {:?}, coordinator epoch {current}, first difference at \
                     index {differ:?})",
                    db.commands.items.len(),
                    db.commands.hwm,
                    db.command_epoch,
                ),
            ));
        }
        if let Some(vol) = holder {
            if vol.commands[s].acked() != n as u64 {
                problems.push((
                    "not-converged",
                    format!(
                        "command sender of site {s} acked {} of {n}",
                        vol.commands[s].acked()
                    ),
                ));
            }
        }
        for (kind, detail) in problems {
            self.violate(kind, detail);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

fn seeds(default: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("MODORI_SIM_SEED") {
        return vec![seed.parse().expect("MODORI_SIM_SEED must be a number")];
    }
    let n = std::env::var("MODORI_SIM_SEEDS").map_or(default, |n| {
        n.parse().expect("MODORI_SIM_SEEDS must be a number")
    });
    let from = std::env::var("MODORI_SIM_SEED_FROM").map_or(0, |n| {
        n.parse().expect("MODORI_SIM_SEED_FROM must be a number")
    });
    (from..from + n).collect()
}

fn run_correct(test: &str, seeds: &[u64], force: Force) -> Counts {
    let mut total = Counts::default();
    for &seed in seeds {
        match run_seed(seed, Variant::Correct, force) {
            Ok(counts) => total.add(&counts),
            Err(failure) => panic!(
                "seed {seed} failed: {failure}\nreplay with MODORI_SIM_SEED={seed} cargo test \
                 -p modori-shared --test sim -- {test}"
            ),
        }
    }
    total
}

#[test]
fn sync_survives_faults() {
    let seeds = seeds(DEFAULT_SEEDS);
    let started = Instant::now();
    let total = run_correct("sync_survives_faults", &seeds, Force::Nothing);
    eprintln!(
        "{} seeds in {:.1?}:\n{total}",
        seeds.len(),
        started.elapsed()
    );
    // A replayed seed or a short run need not hit every fault; the default run must, or the
    // simulation has silently stopped exercising something.
    if seeds.len() >= 200 {
        for (name, n) in total.named() {
            if FAULT_KINDS.contains(&name) {
                assert!(n > 0, "fault `{name}` never fired in {} seeds", seeds.len());
            }
        }
        // Two coordinators over one database in a share of the seeds: sites moved between
        // them, and commands queued by one were sent by the other.
        for (name, n) in [
            ("two_coordinator_runs", total.two_coordinator_runs),
            ("failovers", total.failovers),
            (
                "commands_sent_by_another_replica",
                total.commands_sent_by_another_replica,
            ),
        ] {
            assert!(n > 0, "`{name}` never happened in {} seeds", seeds.len());
        }
    }
}

#[test]
fn reinstalled_site_starts_a_new_epoch() {
    let seeds = seeds(EPOCH_SEEDS);
    let total = run_correct(
        "reinstalled_site_starts_a_new_epoch",
        &seeds,
        Force::Reinstall,
    );
    assert_eq!(total.reinstall, seeds.len() as u64);
    if seeds.len() >= 20 {
        assert!(
            total.epoch_seq_reuse > 0,
            "no run had ops applied in both the old and the new epoch of a site:\n{total}"
        );
        // The new database knows no command: it is sent them all again.
        assert!(total.commands_resent_from_scratch > 0, "{total}");
    }
}

#[test]
fn a_database_that_went_back_in_time_loses_nothing_it_kept_and_prints_no_plate_twice() {
    let seeds = seeds(ROLLBACK_SEEDS);
    let total = run_correct(
        "a_database_that_went_back_in_time_loses_nothing_it_kept_and_prints_no_plate_twice",
        &seeds,
        Force::Rollback,
    );
    eprintln!("{} seeds with rollbacks:\n{total}", seeds.len());
    if seeds.len() >= 100 {
        for (name, n) in [
            ("rollback", total.rollback),
            ("damaged_wal", total.damaged_wal),
            // The coordinator had ops the rolled-back database had lost, and was told.
            ("rollbacks_reported", total.rollbacks_reported),
            // Some confirmed ops went with the disk before they were sent.
            ("lost_by_rollback", total.lost_by_rollback),
        ] {
            assert!(
                n > 0,
                "`{name}` never happened in {} seeds:\n{total}",
                seeds.len()
            );
        }
    }
}

#[test]
fn a_coordinator_that_went_back_in_time_reuses_no_command_seq_and_loses_no_op() {
    let seeds = seeds(ROLLBACK_SEEDS);
    let total = run_correct(
        "a_coordinator_that_went_back_in_time_reuses_no_command_seq_and_loses_no_op",
        &seeds,
        Force::CoordinatorRollback,
    );
    eprintln!("{} seeds with coordinator rollbacks:\n{total}", seeds.len());
    if seeds.len() >= 100 {
        for (name, n) in [
            ("coordinator_rollback", total.coordinator_rollback),
            // A site had applied commands the put-back database lost, and got all again.
            (
                "coordinator_rewound_reported",
                total.coordinator_rewound_reported,
            ),
            // Positions the database still held were carried over, not resent.
            ("commands_carried_over", total.commands_carried_over),
            // Acknowledged ops the database lost came back from the sites.
            (
                "ops_resent_to_restored_coordinator",
                total.ops_resent_to_restored_coordinator,
            ),
            ("retired_rechecks", total.retired_rechecks),
        ] {
            assert!(
                n > 0,
                "`{name}` never happened in {} seeds:\n{total}",
                seeds.len()
            );
        }
    }
}

/// Runs a broken driver and returns, per violation kind, how many seeds it was seen in.
fn run_broken(variant: Variant, seeds: u64, force: Force) -> BTreeMap<&'static str, usize> {
    let mut caught = BTreeMap::new();
    let mut failed = 0;
    let mut example = None;
    for seed in 0..seeds {
        if let Err(failure) = run_seed(seed, variant, force) {
            failed += 1;
            for kind in &failure.kinds {
                *caught.entry(*kind).or_insert(0) += 1;
            }
            example.get_or_insert((seed, failure));
        }
    }
    eprintln!("{variant:?}: {failed} of {seeds} seeds caught, by kind {caught:?}");
    if let Some((seed, failure)) = example {
        eprintln!("first caught, seed {seed}: {failure}");
    }
    assert!(failed > 0, "{variant:?} was never caught");
    caught
}

#[test]
fn ack_before_durable_commit_is_caught() {
    let caught = run_broken(Variant::AckBeforeDurable, 300, Force::Nothing);
    // The end state heals: senders keep what was acknowledged (for `outbox_keep_days`) and
    // every hello reports what the receiver really holds, so a lost apply is sent again. What
    // must catch the lie is the check at the ack and at the receiver's restart.
    assert!(caught.contains_key("ack-not-durable"), "{caught:?}");
    assert!(caught.contains_key("receiver-lost-acked"), "{caught:?}");
}

#[test]
fn applying_without_dedup_is_caught() {
    let caught = run_broken(Variant::NoDedup, 200, Force::Nothing);
    assert!(caught.contains_key("applied-out-of-order"), "{caught:?}");
    assert!(caught.contains_key("totals"), "{caught:?}");
}

#[test]
fn reinstall_without_a_new_epoch_is_caught() {
    let caught = run_broken(Variant::ReinstallKeepsEpoch, 200, Force::Reinstall);
    // The new database's ops 1..n look like ones already applied: they are lost.
    assert!(caught.contains_key("op-count"), "{caught:?}");
}

#[test]
fn a_coordinator_keeping_its_command_epoch_at_start_is_caught() {
    // Its database put back in time numbers commands on from its own head: a site that had
    // applied the lost ones takes the new ones for duplicates, or is ahead of it.
    let caught = run_broken(
        Variant::CommandEpochKeptAtStart,
        300,
        Force::CoordinatorRollback,
    );
    assert!(
        caught.contains_key("command-count") || caught.contains_key("command-ahead"),
        "{caught:?}"
    );
}

#[test]
fn planning_from_the_process_memory_is_caught_with_two_coordinators() {
    // Right for one process; with two, a site moving between them has its batches applied by
    // both, each from the mark it last saw.
    let caught = run_broken(Variant::PlanFromMemory, 300, Force::TwoCoordinators);
    assert!(
        caught.contains_key("applied-out-of-order") || caught.contains_key("op-count"),
        "{caught:?}"
    );
}

#[test]
fn lpn_generation_from_the_database_is_caught() {
    // With rollbacks in the ordinary fault mix, as the CI seeds run them.
    let caught = run_broken(Variant::GenerationFromDatabase, 1_000, Force::Nothing);
    assert!(caught.contains_key("duplicate-lpn"), "{caught:?}");
}

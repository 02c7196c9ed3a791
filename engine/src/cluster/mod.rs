//! Timely's own cluster mode: the same dataflow on several processes that exchange data over
//! TCP (`--peers` + `--process`). Nothing here distributes work; timely does that.
//!
//! What this module adds around timely's networking, and why:
//! - **It opens the sockets itself** and hands them to timely's
//!   [`initialize_networking_from_sockets`] (timely's documented entry for callers that connect
//!   on their own). timely's own `CommunicationConfig::Cluster` retries a missing peer forever and
//!   prints its progress on stdout, where `lpm replay` writes the views; here the wait is bounded
//!   ([`ClusterConfig::connect_timeout`]) and reported through `tracing` on stderr.
//! - **A handshake** before timely takes the sockets: each pair of processes exchanges its
//!   process index and the settings that shape the dataflow ([`ClusterConfig::settings`]: view
//!   set, zone, worker threads, version, ...). Timely assumes every process builds the same
//!   dataflow; processes that do not would hang or give a wrong answer, so a difference refuses
//!   the start, on both ends of the pair. Every pair handshakes, so when the processes do not all
//!   agree every process meets at least one that differs from it and refuses.
//! - **Fail-stop**: when a peer disappears timely's communication threads panic ("timely
//!   communication error"). A panic hook records the first such failure, naming the peer, for
//!   [`failure`], and parks the panicking thread instead of letting it unwind (unwinding would
//!   poison the workers' queues, and a worker unwinding over a poisoned queue can abort the
//!   whole process: `failure.rs`), so the command stops with that message at once instead of
//!   waiting on threads that may never finish. The hook is process-wide once a cluster forms.
//! - **Checkpoint agreement**: each process offers the ticks of the checkpoints it could load
//!   ([`ClusterConfig::checkpoints`], sent but not compared) and all settle on the newest tick
//!   every process offered ([`ClusterConfig::agreed`]).
//! - **Byte counts**: every socket counts the bytes timely reads and writes ([`Traffic`]).
//!
//! The wire after the handshake (`handshake.rs`) is timely's own.

mod failure;
mod handshake;
mod traffic;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};

pub use failure::failure;
use handshake::{differences, Hello};
use traffic::Counted;
pub use traffic::Traffic;

/// How often a missing peer is tried again, and the accept loop polls.
const RETRY: Duration = Duration::from_millis(50);

/// What can go wrong forming a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--peers` is empty.
    #[error("--peers lists no address")]
    NoPeers,
    /// An entry of `--peers` is not `HOST:PORT`.
    #[error("--peers entry {index} `{address}` is not HOST:PORT (a host name or IP address, a colon, a port 1-65535)")]
    BadAddress {
        /// Position in the list (0-based: the process it names).
        index: usize,
        /// The entry.
        address: String,
    },
    /// The same address twice.
    #[error("--peers names `{address}` twice (processes {first} and {second}); every process needs its own address")]
    DuplicateAddress {
        /// The address.
        address: String,
        /// First process with it.
        first: usize,
        /// Second process with it.
        second: usize,
    },
    /// `--process` is not an index into `--peers`.
    #[error("--process {process} is out of range: --peers lists {count} processes (0 to {last})", last = count - 1)]
    ProcessOutOfRange {
        /// The index given.
        process: usize,
        /// Length of the list.
        count: usize,
    },
    /// This process could not listen on its own address.
    #[error("listening on {address} (this process's entry in --peers): {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// A peer did not connect, or could not be reached, in time.
    #[error("process {process} ({address}) did not join the cluster within {} s (--peer-timeout-s); is it running with the same --peers?{}", timeout.as_secs(), last.as_ref().map(|e| format!(" last error: {e}")).unwrap_or_default())]
    PeerTimeout {
        /// The missing process.
        process: usize,
        /// Its address.
        address: String,
        /// The wait.
        timeout: Duration,
        /// The last connection error, if connecting was this side's job.
        last: Option<io::Error>,
    },
    /// The handshake with a peer failed (it closed the connection, or spoke something else).
    #[error("handshake with process {process} ({address}) failed: {detail}")]
    Handshake {
        /// The peer.
        process: usize,
        /// Its address.
        address: String,
        /// What happened.
        detail: String,
    },
    /// A peer runs a different dataflow.
    #[error("process {process} ({address}) runs with different settings, so the processes would not build the same dataflow: {differences}; start every process with the same settings")]
    Mismatch {
        /// The peer.
        process: usize,
        /// Its address.
        address: String,
        /// `key: here X, there Y`, for each differing setting.
        differences: String,
    },
    /// timely's networking refused the sockets.
    #[error("starting timely's networking: {0}")]
    Timely(io::Error),
}

/// One process's view of the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This process's index into `peers`.
    pub process: usize,
    /// Every process's `HOST:PORT`, in process order (the same list on every process).
    pub peers: Vec<String>,
    /// How long to wait for every peer to join.
    pub connect_timeout: Duration,
    /// Settings every process must share (`key`, `value`): the caller's (view set, zone, ...);
    /// the engine adds the worker threads and the peer list.
    pub settings: Vec<(String, String)>,
    /// Where the sockets count their bytes.
    pub traffic: Arc<Traffic>,
    /// The ticks of the checkpoints this process could load (its share of the state at each).
    /// Sent in the handshake but not compared: the processes agree on the newest tick they all
    /// offer ([`ClusterConfig::agreed`]), since the state is spread over every process's
    /// workers and is only whole when every process loads its share of the same tick.
    pub checkpoints: Vec<u64>,
    /// Set once the cluster has formed: the newest of [`ClusterConfig::checkpoints`] that every
    /// process offered (`None`: no common one, so every process starts from nothing).
    pub agreed: Arc<OnceLock<Option<u64>>>,
}

impl ClusterConfig {
    /// Checks `peers` (each `HOST:PORT`, none twice) and `process` (an index into it).
    pub fn new(
        process: usize,
        peers: Vec<String>,
        connect_timeout: Duration,
    ) -> Result<ClusterConfig, ClusterError> {
        check_peers(process, &peers)?;
        Ok(ClusterConfig {
            process,
            peers,
            connect_timeout,
            settings: Vec::new(),
            traffic: Arc::default(),
            checkpoints: Vec::new(),
            agreed: Arc::default(),
        })
    }

    /// This process's address.
    pub fn address(&self) -> &str {
        &self.peers[self.process]
    }
}

/// Splits `--peers` text (`HOST:PORT,HOST:PORT`, spaces around entries ignored).
pub fn split_peers(text: &str) -> Vec<String> {
    text.split(',').map(|s| s.trim().to_string()).collect()
}

fn check_peers(process: usize, peers: &[String]) -> Result<(), ClusterError> {
    if peers.is_empty() || peers.iter().all(String::is_empty) {
        return Err(ClusterError::NoPeers);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, address) in peers.iter().enumerate() {
        if !is_host_port(address) {
            return Err(ClusterError::BadAddress {
                index,
                address: address.clone(),
            });
        }
        if let Some(&first) = seen.get(&address.to_ascii_lowercase()) {
            return Err(ClusterError::DuplicateAddress {
                address: address.clone(),
                first,
                second: index,
            });
        }
        seen.insert(address.to_ascii_lowercase(), index);
    }
    if process >= peers.len() {
        return Err(ClusterError::ProcessOutOfRange {
            process,
            count: peers.len(),
        });
    }
    Ok(())
}

/// `HOST:PORT` with a non-empty host (a name, an IPv4 address, or `[IPv6]`) and a port 1-65535.
fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    };
    port_ok && host_ok
}

/// The handshake key of [`ClusterConfig::checkpoints`] (offered, not compared).
const OFFERS: &str = "checkpoint ticks";

/// The settings this process sends: the caller's, plus the worker threads and the peer list,
/// and the checkpoints it offers.
fn my_settings(config: &ClusterConfig, threads: usize) -> BTreeMap<String, String> {
    let mut s: BTreeMap<String, String> = config.settings.iter().cloned().collect();
    s.insert("workers per process".into(), threads.to_string());
    s.insert("peers".into(), config.peers.join(","));
    let offers: Vec<String> = config.checkpoints.iter().map(u64::to_string).collect();
    s.insert(OFFERS.into(), offers.join(","));
    s
}

/// Splits the offered checkpoint ticks from the settings that must match.
fn offers(settings: &BTreeMap<String, String>) -> (BTreeMap<String, String>, BTreeSet<u64>) {
    let mut rest = settings.clone();
    let ticks = rest
        .remove(OFFERS)
        .unwrap_or_default()
        .split(',')
        .filter_map(|t| t.parse().ok())
        .collect();
    (rest, ticks)
}

/// Connects to every peer (bounded by the timeout), handshakes, and starts timely's networking
/// over the sockets: one allocator builder per local worker, and the guard of the
/// communication threads (dropped after the workers).
pub(crate) fn connect(
    config: &ClusterConfig,
    threads: usize,
) -> Result<(Vec<AllocatorBuilder>, Box<dyn std::any::Any + Send>), ClusterError> {
    check_peers(config.process, &config.peers)?;
    let me = config.process;
    let deadline = Instant::now() + config.connect_timeout;
    let listener = TcpListener::bind(config.address()).map_err(|source| ClusterError::Bind {
        address: config.address().to_string(),
        source,
    })?;
    let mine = my_settings(config, threads);
    // what must match every peer's, and the offered ticks, narrowed to what every peer offers
    // as the handshakes go
    let (compared, mut common) = offers(&mine);
    let hello = Hello {
        process: me,
        settings: mine.clone(),
    }
    .encode();
    let mut sockets: Vec<Option<TcpStream>> = (0..config.peers.len()).map(|_| None).collect();
    // as timely does: a process connects to every lower index and accepts every higher one
    for (peer, slot) in sockets.iter_mut().enumerate().take(me) {
        let mut stream = dial(config, peer, deadline)?;
        let fail = |detail: String| ClusterError::Handshake {
            process: peer,
            address: config.peers[peer].clone(),
            detail,
        };
        stream.write_all(&hello).map_err(|e| fail(e.to_string()))?;
        let theirs = Hello::read(&mut stream).map_err(fail)?;
        if theirs.process != peer {
            return Err(fail(format!("it says it is process {}", theirs.process)));
        }
        meet(config, peer, &compared, &mut common, &theirs.settings)?;
        // the handshake's timeout must not outlive it: timely's reader treats a timeout as a lost peer
        stream
            .set_read_timeout(None)
            .map_err(|e| fail(e.to_string()))?;
        tracing::debug!(peer, "Connected to a cluster peer.");
        *slot = Some(stream);
    }
    listener
        .set_nonblocking(true)
        .map_err(|source| ClusterError::Bind {
            address: config.address().to_string(),
            source,
        })?;
    while let Some(missing) = (me + 1..config.peers.len()).find(|&p| sockets[p].is_none()) {
        let (mut stream, from) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(ClusterError::PeerTimeout {
                        process: missing,
                        address: config.peers[missing].clone(),
                        timeout: config.connect_timeout,
                        last: None,
                    });
                }
                std::thread::sleep(RETRY);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Accepting a cluster connection failed.");
                continue;
            }
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(left)));
        let theirs = match setup
            .map_err(|e| e.to_string())
            .and_then(|()| Hello::read(&mut stream))
        {
            Ok(h) => h,
            Err(detail) => {
                tracing::warn!(%from, %detail, "A connection to the cluster port was not an lpm peer; ignored.");
                continue;
            }
        };
        let peer = theirs.process;
        if peer <= me || peer >= config.peers.len() || sockets[peer].is_some() {
            tracing::warn!(%from, peer, "A cluster connection named an unexpected process; ignored.");
            continue;
        }
        let fail = |detail: String| ClusterError::Handshake {
            process: peer,
            address: config.peers[peer].clone(),
            detail,
        };
        stream.write_all(&hello).map_err(|e| fail(e.to_string()))?;
        meet(config, peer, &compared, &mut common, &theirs.settings)?;
        stream
            .set_read_timeout(None)
            .map_err(|e| fail(e.to_string()))?;
        tracing::debug!(peer, "A cluster peer connected.");
        sockets[peer] = Some(stream);
    }
    let counted: Vec<Option<Counted>> = sockets
        .into_iter()
        .map(|s| {
            s.map(|stream| {
                let _ = stream.set_nodelay(true);
                Counted {
                    stream,
                    traffic: config.traffic.clone(),
                }
            })
        })
        .collect();
    let agreed = common.last().copied();
    if config.agreed.set(agreed).is_err() {
        tracing::warn!("This cluster configuration was used to connect twice; its first checkpoint agreement stands.");
    }
    failure::install_failure_hook(config.peers.clone());
    let hooks = Hooks::default();
    let process = ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), None);
    let (builders, guard) =
        initialize_networking_from_sockets(process, counted, me, threads, hooks)
            .map_err(ClusterError::Timely)?;
    tracing::info!(
        process = me,
        processes = config.peers.len(),
        threads,
        checkpoint_tick = ?agreed,
        "Cluster formed."
    );
    Ok((
        builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
        Box::new(guard),
    ))
}

/// Checks a peer's settings against `compared` (this process's, offers left out) and narrows
/// `common` to the checkpoint ticks the peer offers too.
fn meet(
    config: &ClusterConfig,
    peer: usize,
    compared: &BTreeMap<String, String>,
    common: &mut BTreeSet<u64>,
    theirs: &BTreeMap<String, String>,
) -> Result<(), ClusterError> {
    let (theirs, offered) = offers(theirs);
    if *compared != theirs {
        return Err(ClusterError::Mismatch {
            process: peer,
            address: config.peers[peer].clone(),
            differences: differences(compared, &theirs),
        });
    }
    common.retain(|t| offered.contains(t));
    Ok(())
}

/// Connects to a lower process, retrying until `deadline` (it may not be listening yet). The
/// socket comes back with a read timeout for the handshake.
fn dial(config: &ClusterConfig, peer: usize, deadline: Instant) -> Result<TcpStream, ClusterError> {
    let address = &config.peers[peer];
    let mut last: Option<io::Error> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClusterError::PeerTimeout {
                process: peer,
                address: address.clone(),
                timeout: config.connect_timeout,
                last,
            });
        }
        let attempt = address.to_socket_addrs().and_then(|mut addrs| {
            let addr: SocketAddr = addrs.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address")
            })?;
            TcpStream::connect_timeout(&addr, left.min(Duration::from_secs(5)))
        });
        match attempt {
            Ok(stream) => {
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(100));
                let configured = stream
                    .set_read_timeout(Some(wait))
                    .and_then(|()| stream.set_nodelay(true));
                if let Err(e) = configured {
                    last = Some(e);
                } else {
                    return Ok(stream);
                }
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn addresses_are_checked() {
        let ok = ClusterConfig::new(
            1,
            peers(&["a:1", "10.0.0.2:2101", "[::1]:9"]),
            Duration::ZERO,
        );
        assert!(ok.is_ok());
        for bad in [
            "a", "a:", ":1", "a:0", "a:70000", "a b:1", "[::1:2", "[zz]:1",
        ] {
            let e = ClusterConfig::new(0, peers(&["x:1", bad]), Duration::ZERO);
            assert!(
                matches!(e, Err(ClusterError::BadAddress { index: 1, .. })),
                "{bad}: {e:?}"
            );
        }
        let dup = ClusterConfig::new(0, peers(&["h:1", "H:1"]), Duration::ZERO);
        assert!(matches!(
            dup,
            Err(ClusterError::DuplicateAddress {
                first: 0,
                second: 1,
                ..
            })
        ));
        let range = ClusterConfig::new(2, peers(&["h:1", "h:2"]), Duration::ZERO);
        let text = range.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("--process 2 is out of range"), "{text}");
        assert!(matches!(
            ClusterConfig::new(0, split_peers(""), Duration::ZERO),
            Err(ClusterError::NoPeers)
        ));
    }
}

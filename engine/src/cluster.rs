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
//!   communication error"), which poisons the workers' queues and fails them too. A panic hook
//!   records the first such failure, naming the peer, for [`failure`], so the command can stop
//!   with that message at once instead of waiting on threads that may never finish.
//! - **Byte counts**: every socket counts the bytes timely reads and writes ([`Traffic`]).
//!
//! The wire after the handshake is timely's own; the handshake is `MAGIC`, the process index
//! (u64), then the settings as length-prefixed key and value pairs.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Once, OnceLock};
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::zero_copy::stream::Stream;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};

/// The first bytes of a handshake: tells an lpm peer from anything else on the port.
const MAGIC: &[u8; 8] = b"LPMCLU01";
/// The largest handshake accepted (settings are a few hundred bytes; garbage is refused early).
const MAX_HELLO_BYTES: u32 = 64 * 1024;
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

/// Bytes timely exchanged with the other processes, counted on the sockets (timely's message
/// headers and serialized data; not the TCP/IP headers, not the handshake).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes written to peers.
    pub sent: AtomicU64,
    /// Bytes read from peers.
    pub received: AtomicU64,
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

/// A socket that counts what timely reads and writes.
struct Counted {
    stream: TcpStream,
    traffic: Arc<Traffic>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.traffic.received.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.traffic.sent.fetch_add(n as u64, Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Stream for Counted {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(Counted {
            stream: self.stream.try_clone()?,
            traffic: self.traffic.clone(),
        })
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.stream.set_nonblocking(nonblocking)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.shutdown(how)
    }
}

/// What one side tells the other before timely starts.
struct Hello {
    process: usize,
    settings: BTreeMap<String, String>,
}

impl Hello {
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.process as u64).to_be_bytes());
        for (k, v) in &self.settings {
            for s in [k, v] {
                body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                body.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn read(r: &mut impl Read) -> Result<Hello, String> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(closed)?;
        if &magic != MAGIC {
            return Err("the peer is not an lpm cluster process of this version".into());
        }
        let len = read_u32(r)?;
        if len > MAX_HELLO_BYTES {
            return Err(format!("handshake of {len} bytes is too large"));
        }
        let mut body = vec![0u8; len as usize];
        r.read_exact(&mut body).map_err(closed)?;
        let mut cur = io::Cursor::new(body);
        let mut idx = [0u8; 8];
        cur.read_exact(&mut idx).map_err(closed)?;
        let process = usize::try_from(u64::from_be_bytes(idx)).map_err(|e| e.to_string())?;
        let mut settings = BTreeMap::new();
        while (cur.position() as usize) < cur.get_ref().len() {
            let k = read_string(&mut cur)?;
            let v = read_string(&mut cur)?;
            settings.insert(k, v);
        }
        Ok(Hello { process, settings })
    }
}

fn closed(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection (it may have refused the cluster: see its log)".into()
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            "the peer did not finish the handshake in time".into()
        }
        _ => e.to_string(),
    }
}

fn read_u32(r: &mut impl Read) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(closed)?;
    Ok(u32::from_be_bytes(b))
}

fn read_string(r: &mut impl Read) -> Result<String, String> {
    let len = read_u32(r)?;
    let mut b = vec![0u8; len as usize];
    r.read_exact(&mut b).map_err(closed)?;
    String::from_utf8(b).map_err(|e| e.to_string())
}

/// `key: here X, there Y` for each setting the two sides do not share.
fn differences(mine: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) -> String {
    let keys: std::collections::BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
    let none = "(not set)".to_string();
    keys.into_iter()
        .filter(|k| mine.get(*k) != theirs.get(*k))
        .map(|k| {
            format!(
                "{k}: here {}, there {}",
                mine.get(k).unwrap_or(&none),
                theirs.get(k).unwrap_or(&none)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The settings this process sends: the caller's, plus the worker threads and the peer list.
fn my_settings(config: &ClusterConfig, threads: usize) -> BTreeMap<String, String> {
    let mut s: BTreeMap<String, String> = config.settings.iter().cloned().collect();
    s.insert("workers per process".into(), threads.to_string());
    s.insert("peers".into(), config.peers.join(","));
    s
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
        agree(config, peer, &mine, &theirs.settings)?;
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
        agree(config, peer, &mine, &theirs.settings)?;
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
    install_failure_hook(config.peers.clone());
    let hooks = Hooks::default();
    let process = ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), None);
    let (builders, guard) =
        initialize_networking_from_sockets(process, counted, me, threads, hooks)
            .map_err(ClusterError::Timely)?;
    tracing::info!(
        process = me,
        processes = config.peers.len(),
        threads,
        "Cluster formed."
    );
    Ok((
        builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
        Box::new(guard),
    ))
}

fn agree(
    config: &ClusterConfig,
    peer: usize,
    mine: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> Result<(), ClusterError> {
    if mine == theirs {
        return Ok(());
    }
    Err(ClusterError::Mismatch {
        process: peer,
        address: config.peers[peer].clone(),
        differences: differences(mine, theirs),
    })
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

/// The first failure of a timely thread (communication or worker) in this process, naming the
/// peer when it was a connection: the cluster is fail-stop, so the command should stop with it.
pub fn failure() -> Option<&'static str> {
    FAILURE.get().map(String::as_str)
}

static FAILURE: OnceLock<String> = OnceLock::new();
static HOOK: Once = Once::new();
static PEERS: OnceLock<Vec<String>> = OnceLock::new();

/// Records panics of timely's threads in [`FAILURE`] instead of printing each (one lost peer
/// makes every worker panic on its poisoned queue: one line says more than a dozen backtraces).
/// Panics elsewhere go to the previous hook.
fn install_failure_hook(peers: Vec<String>) {
    let _ = PEERS.set(peers);
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or_default();
            if !name.starts_with("timely:") {
                return previous(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            let what = describe_thread(name);
            let text = format!("{what}: {message}");
            if FAILURE.set(text.clone()).is_ok() {
                tracing::error!(thread = name, failure = %text, "A cluster thread failed; the cluster stops (fail-stop).");
            }
        }));
    });
}

/// `timely:recv-2` -> `lost the connection to process 2 (HOST:PORT)`.
fn describe_thread(name: &str) -> String {
    let peer = name
        .strip_prefix("timely:recv-")
        .or_else(|| name.strip_prefix("timely:send-"))
        .and_then(|n| n.parse::<usize>().ok());
    match peer {
        Some(p) => {
            let address = PEERS
                .get()
                .and_then(|v| v.get(p))
                .map_or(String::new(), |a| format!(" ({a})"));
            format!("lost the connection to process {p}{address}")
        }
        None => format!("dataflow thread {name} failed"),
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

    #[test]
    fn a_hello_round_trips_and_differences_name_the_keys() {
        let mut settings = BTreeMap::new();
        settings.insert("tz".to_string(), "UTC".to_string());
        settings.insert("hotspots".to_string(), "off".to_string());
        let bytes = Hello {
            process: 3,
            settings: settings.clone(),
        }
        .encode();
        let back = Hello::read(&mut io::Cursor::new(bytes)).expect("decodes");
        assert_eq!(back.process, 3);
        assert_eq!(back.settings, settings);
        let mut other = settings.clone();
        other.insert("tz".into(), "Europe/Madrid".into());
        other.remove("hotspots");
        assert_eq!(
            differences(&settings, &other),
            "hotspots: here off, there (not set); tz: here UTC, there Europe/Madrid"
        );
        let garbage = Hello::read(&mut io::Cursor::new(b"GET / HTTP/1.1\r\n\r\n".to_vec()));
        assert!(garbage.is_err());
    }
}

//! Fail-stop: the first failure of a timely thread in a cluster process, recorded by a panic
//! hook so the command can stop with it at once.

use std::sync::{Once, OnceLock};

/// The first failure of a timely thread (communication or worker) in this process, naming the
/// peer when it was a connection: the cluster is fail-stop, so the command should stop with it.
pub fn failure() -> Option<&'static str> {
    FAILURE.get().map(String::as_str)
}

static FAILURE: OnceLock<String> = OnceLock::new();
static HOOK: Once = Once::new();
static PEERS: OnceLock<Vec<String>> = OnceLock::new();

/// Records panics of timely's threads in [`FAILURE`] instead of printing each (one lost peer
/// makes every worker panic on its poisoned queue: one line says more than a dozen backtraces),
/// then parks the panicking thread for good instead of letting it unwind. Unwinding is not safe
/// here: timely's `SendEndpoint` flushes into its `MergeQueue` on drop, and that push panics
/// when the queue is poisoned, so a worker unwinding after a lost peer can panic inside a
/// destructor, which aborts the whole process (SIGABRT, "thread caused non-unwinding panic")
/// before the command can stop with its clear error and exit 1. A parked thread poisons
/// nothing: the command sees [`failure`] (it polls it while it waits) and exits, taking the
/// parked threads with it. Panics elsewhere go to the previous hook.
pub(super) fn install_failure_hook(peers: Vec<String>) {
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
            loop {
                std::thread::park();
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

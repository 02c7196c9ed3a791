//! The writer thread: group commit, fsync, the durable hook, poisoning on failure.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::frame::frame;
use super::{io_err, Appended, EncodedEvent, LogError, LogRecord};

/// Called by the writer thread with each durable batch: `(seq, record)` in log order.
pub type DurableHook = Box<dyn FnMut(Vec<(u64, Arc<LogRecord>)>) + Send>;

/// Where the writer thread puts bytes: the segment file, or a failing stand-in in tests.
pub(super) trait Storage: Send {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
}

impl Storage for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// The failure that poisoned the writer, kept to answer every later append.
#[derive(Clone, Debug)]
struct Failure {
    context: &'static str,
    kind: io::ErrorKind,
    message: String,
}

impl Failure {
    fn error(&self, path: &Path) -> LogError {
        LogError::Io {
            context: self.context,
            path: path.to_path_buf(),
            source: io::Error::new(self.kind, self.message.clone()),
        }
    }
}

struct Pending {
    seq: u64,
    record: Arc<LogRecord>,
    frame: Vec<u8>,
    reply: SyncSender<Result<Appended, LogError>>,
}

struct State {
    next_seq: u64,
    queue: Vec<Pending>,
    failed: Option<Failure>,
    closing: bool,
}

struct Shared {
    /// A parking_lot lock, so it does not poison: a panic while holding it (in a caller's build
    /// closure) leaves the state intact, since nothing is mutated before the closure returns.
    state: Mutex<State>,
    wake: Condvar,
    path: PathBuf,
}

impl Shared {
    /// Poisons the writer and fails everything queued.
    fn fail(&self, failure: Failure) {
        let queued = {
            let mut st = self.state.lock();
            if st.failed.is_none() {
                st.failed = Some(failure.clone());
            }
            std::mem::take(&mut st.queue)
        };
        for p in queued {
            let _ = p.reply.send(Err(failure.error(&self.path)));
        }
    }
}

/// Stops the writer thread when the last [`LogWriter`] clone is dropped (after draining).
struct WriterHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.shared.state.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Appends records durably with group commit. Cheap to clone; all clones share one writer
/// thread, which stops (after writing what is queued) when the last clone is dropped.
#[derive(Clone)]
pub struct LogWriter {
    handle: Arc<WriterHandle>,
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.handle.shared.path)
            .finish_non_exhaustive()
    }
}

impl LogWriter {
    pub(super) fn spawn(
        storage: Box<dyn Storage>,
        path: PathBuf,
        end: u64,
        next_seq: u64,
        on_durable: Option<DurableHook>,
    ) -> Result<LogWriter, LogError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_seq,
                queue: Vec::new(),
                failed: None,
                closing: false,
            }),
            wake: Condvar::new(),
            path,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lpm-log-writer".into())
            .spawn(move || write_loop(&thread_shared, storage, end, on_durable))
            .map_err(io_err("starting the writer thread for", &shared.path))?;
        Ok(LogWriter {
            handle: Arc::new(WriterHandle {
                shared,
                thread: Some(thread),
            }),
        })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.handle.shared.path
    }

    /// The sequence number the next record will get (racy with concurrent appends).
    pub fn next_seq(&self) -> u64 {
        self.handle.shared.state.lock().next_seq
    }

    /// Appends one record and blocks until it is durable.
    pub fn append(&self, events: Vec<EncodedEvent>) -> Result<Appended, LogError> {
        self.append_with(|_| events)
    }

    /// Appends the record `build(seq)` and blocks until it is durable. `build` runs under the
    /// queue lock with the record's sequence number, so events can carry `source.pos = seq`
    /// and the file order is the `seq` order. Keep it short: it blocks other appenders.
    pub fn append_with(
        &self,
        build: impl FnOnce(u64) -> Vec<EncodedEvent>,
    ) -> Result<Appended, LogError> {
        self.try_append_with(|seq| Ok::<_, LogError>(build(seq)))
    }

    /// As [`append_with`](Self::append_with) with a fallible `build`: its error is returned and
    /// nothing is appended (the sequence number is not used up).
    pub fn try_append_with<E: From<LogError>>(
        &self,
        build: impl FnOnce(u64) -> Result<Vec<EncodedEvent>, E>,
    ) -> Result<Appended, E> {
        self.try_append_as(None, build)
    }

    /// As [`try_append_with`](Self::try_append_with), recording `actor` (who made the write)
    /// in the record.
    pub fn try_append_as<E: From<LogError>>(
        &self,
        actor: Option<&str>,
        build: impl FnOnce(u64) -> Result<Vec<EncodedEvent>, E>,
    ) -> Result<Appended, E> {
        let shared = &self.handle.shared;
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut st = shared.state.lock();
            if let Some(f) = &st.failed {
                return Err(f.error(&shared.path).into());
            }
            let seq = st.next_seq;
            let record = LogRecord {
                seq,
                events: build(seq)?,
                actor: actor.map(str::to_string),
            };
            let frame = frame(&record)?;
            st.next_seq += 1;
            st.queue.push(Pending {
                seq,
                record: Arc::new(record),
                frame,
                reply,
            });
        }
        shared.wake.notify_one();
        answer
            .recv()
            .unwrap_or(Err(LogError::Closed))
            .map_err(E::from)
    }
}

/// Marks the writer failed if its thread ends for any reason but a clean close (a panic in the
/// hook), so no append waits forever.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(Failure {
                context: "the writer thread panicked; not appending to",
                kind: io::ErrorKind::Other,
                message: "writer thread panicked".into(),
            });
        }
    }
}

fn write_loop(
    shared: &Shared,
    mut storage: Box<dyn Storage>,
    mut end: u64,
    mut on_durable: Option<DurableHook>,
) {
    let _guard = ExitGuard(shared);
    let mut buf = Vec::new();
    let mut offsets = Vec::new();
    loop {
        let batch = {
            let mut st = shared.state.lock();
            while st.queue.is_empty() && !st.closing {
                shared.wake.wait(&mut st);
            }
            if st.queue.is_empty() {
                return;
            }
            std::mem::take(&mut st.queue)
        };
        buf.clear();
        offsets.clear();
        for p in &batch {
            offsets.push(end + buf.len() as u64);
            buf.extend_from_slice(&p.frame);
        }
        let written = match storage.write_all(&buf) {
            Ok(()) => storage.sync_data().map_err(|e| ("fsyncing", e)),
            Err(e) => Err(("writing", e)),
        };
        if let Err((context, error)) = written {
            tracing::error!(
                path = %shared.path.display(),
                op = context,
                %error,
                records = batch.len(),
                "Embedded log write failed; the writer is poisoned until restart."
            );
            let failure = Failure {
                context: if context == "writing" {
                    "writing (the log is poisoned until restart)"
                } else {
                    "fsyncing (the log is poisoned until restart)"
                },
                kind: error.kind(),
                message: error.to_string(),
            };
            for p in batch {
                let _ = p.reply.send(Err(failure.error(&shared.path)));
            }
            shared.fail(failure);
            return;
        }
        end += buf.len() as u64;
        if let Some(hook) = on_durable.as_mut() {
            hook(batch.iter().map(|p| (p.seq, p.record.clone())).collect());
        }
        for (p, offset) in batch.into_iter().zip(offsets.iter().copied()) {
            let _ = p.reply.send(Ok(Appended { offset, seq: p.seq }));
        }
    }
}

//! The writer thread: group commit, fsync, the durable hook, rotation, poisoning on failure.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::frame::frame;
use super::retire::{retire, RetireSummary};
use super::segments::{create_segment, segment_name, summarize};
use super::{io_err, Appended, EncodedEvent, LogError, LogRecord, SegmentsSummary};

/// Called by the writer thread with each durable batch: `(seq, record)` in log order.
pub type DurableHook = Box<dyn FnMut(Vec<(u64, Arc<LogRecord>)>) + Send>;

/// Where the writer thread puts bytes: the segment files, or a failing stand-in in tests.
pub(super) trait Storage: Send {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes segment `number` (empty, durable: file and directory entry) the one written to.
    fn rotate(&mut self, number: u64) -> io::Result<()>;
}

/// The active segment file of a log directory.
struct SegmentFiles {
    dir: PathBuf,
    file: File,
}

impl Storage for SegmentFiles {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.file, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn rotate(&mut self, number: u64) -> io::Result<()> {
        self.file = create_segment(&self.dir, number)?;
        Ok(())
    }
}

/// Where a writer starts: the active segment, its verified end, and the seqs.
#[derive(Clone, Copy, Debug)]
pub(super) struct WriterStart {
    pub segment: u64,
    pub end: u64,
    pub next_seq: u64,
    pub last_seq: Option<u64>,
    pub segment_bytes: u64,
}

/// The failure that poisoned the writer, kept to answer every later append.
#[derive(Clone, Debug)]
struct Failure {
    context: &'static str,
    path: PathBuf,
    kind: io::ErrorKind,
    message: String,
}

impl Failure {
    fn error(&self) -> LogError {
        LogError::Io {
            context: self.context,
            path: self.path.clone(),
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
    /// The newest durable record's seq.
    last_seq: Option<u64>,
    /// The active segment's number.
    segment: u64,
    queue: Vec<Pending>,
    failed: Option<Failure>,
    closing: bool,
}

struct Shared {
    /// A parking_lot lock, so it does not poison: a panic while holding it (in a caller's build
    /// closure) leaves the state intact, since nothing is mutated before the closure returns.
    state: Mutex<State>,
    wake: Condvar,
    dir: PathBuf,
    /// Held by [`LogWriter::retire_through`], so two retirements never interleave.
    retiring: Mutex<()>,
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
            let _ = p.reply.send(Err(failure.error()));
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
            .field("dir", &self.handle.shared.dir)
            .finish_non_exhaustive()
    }
}

impl LogWriter {
    /// Starts the writer on the active segment `file` of `dir`, first moving to a new segment
    /// if that one is already full.
    pub(super) fn open(
        dir: PathBuf,
        file: File,
        mut start: WriterStart,
        on_durable: Option<DurableHook>,
    ) -> Result<LogWriter, LogError> {
        let mut storage = SegmentFiles {
            dir: dir.clone(),
            file,
        };
        if start.end > 0 && start.end >= start.segment_bytes {
            let next = start.segment + 1;
            storage
                .rotate(next)
                .map_err(io_err("creating", &dir.join(segment_name(next))))?;
            start.segment = next;
            start.end = 0;
        }
        LogWriter::spawn(Box::new(storage), dir, start, on_durable)
    }

    pub(super) fn spawn(
        storage: Box<dyn Storage>,
        dir: PathBuf,
        start: WriterStart,
        on_durable: Option<DurableHook>,
    ) -> Result<LogWriter, LogError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_seq: start.next_seq,
                last_seq: start.last_seq,
                segment: start.segment,
                queue: Vec::new(),
                failed: None,
                closing: false,
            }),
            wake: Condvar::new(),
            dir,
            retiring: Mutex::new(()),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lpm-log-writer".into())
            .spawn(move || write_loop(&thread_shared, storage, start, on_durable))
            .map_err(io_err("starting the writer thread for", &shared.dir))?;
        Ok(LogWriter {
            handle: Arc::new(WriterHandle {
                shared,
                thread: Some(thread),
            }),
        })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.handle.shared.dir
    }

    /// The active segment file (racy with rotation).
    pub fn path(&self) -> PathBuf {
        let segment = self.handle.shared.state.lock().segment;
        self.handle.shared.dir.join(segment_name(segment))
    }

    /// Segments, bytes and seqs of the log now: the directory is listed (retirement may have
    /// removed segments), the last seq is the newest durable record's.
    pub fn segments(&self) -> Result<SegmentsSummary, LogError> {
        let last_seq = self.handle.shared.state.lock().last_seq;
        summarize(&self.handle.shared.dir, last_seq)
    }

    /// [`retire_through`](super::retire_through) for this writer's log, never touching the
    /// segment it is appending to; retirements through one writer run one at a time.
    pub fn retire_through(
        &self,
        seq: u64,
        archive: Option<&Path>,
    ) -> Result<RetireSummary, LogError> {
        let shared = &self.handle.shared;
        let _one_at_a_time = shared.retiring.lock();
        let active = shared.state.lock().segment;
        retire(&shared.dir, seq, archive, Some(active))
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
                return Err(f.error().into());
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
                path: self.0.dir.clone(),
                kind: io::ErrorKind::Other,
                message: "writer thread panicked".into(),
            });
        }
    }
}

fn write_loop(
    shared: &Shared,
    mut storage: Box<dyn Storage>,
    start: WriterStart,
    mut on_durable: Option<DurableHook>,
) {
    let _guard = ExitGuard(shared);
    let WriterStart {
        mut segment,
        mut end,
        segment_bytes,
        ..
    } = start;
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
        let path = shared.dir.join(segment_name(segment));
        if let Err((context, error)) = written {
            tracing::error!(
                path = %path.display(),
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
                path,
                kind: error.kind(),
                message: error.to_string(),
            };
            for p in batch {
                let _ = p.reply.send(Err(failure.error()));
            }
            shared.fail(failure);
            return;
        }
        end += buf.len() as u64;
        shared.state.lock().last_seq = batch.last().map(|p| p.seq);
        if let Some(hook) = on_durable.as_mut() {
            hook(batch.iter().map(|p| (p.seq, p.record.clone())).collect());
        }
        for (p, offset) in batch.into_iter().zip(offsets.iter().copied()) {
            let _ = p.reply.send(Ok(Appended {
                segment,
                offset,
                seq: p.seq,
            }));
        }
        // after the replies: the appenders of this batch do not wait for the new segment
        if end >= segment_bytes {
            let next = segment + 1;
            let path = shared.dir.join(segment_name(next));
            if let Err(error) = storage.rotate(next) {
                tracing::error!(
                    path = %path.display(),
                    %error,
                    "Creating the next embedded log segment failed; the writer is poisoned until restart."
                );
                shared.fail(Failure {
                    context: "creating the next segment (the log is poisoned until restart)",
                    path,
                    kind: error.kind(),
                    message: error.to_string(),
                });
                return;
            }
            tracing::info!(path = %path.display(), after_bytes = end, "Embedded log rotated to a new segment.");
            segment = next;
            end = 0;
            shared.state.lock().segment = segment;
        }
    }
}

//! A checkpoint's two files: the state (the upsert state's rows and positions, framed and
//! checksummed) and the manifest (JSON) that publishes it.
//!
//! ```text
//! state:    "LPMSTATE" | frame* ;  frame = len: u32 LE | crc32(payload): u32 LE | payload
//!           payload = postcard(Frame): Header, then Entries{table, ≤ 4096 entries}*, then End
//! manifest: {"format":2,"number":..,"position":{..},"ingest_seq":..,"state_file":..,
//!            "state_bytes":..,"state_crc32":..,...}
//! ```
//!
//! Why postcard frames and not an embedded store (redb, fjall): a checkpoint is written once,
//! whole, and read once, whole, in order; it is never updated in place or looked up by key.
//! A sequential file is the cheapest thing that does that (one `write` stream, one fsync, one
//! rename), a store would add a write-ahead log and pages we never use. Postcard is compact
//! (varints), serde-driven (the rows' own derives) and maintained. Frames bound what a corrupt
//! length can allocate and let the loader stream 4096 entries at a time. The manifest is JSON so
//! an operator can read it (`cat`), and it is written last: a state file without a manifest is
//! an unfinished checkpoint and is never loaded.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use lpm_engine::checkpoint::{StoredEntry, TableMeta};
use lpm_engine::model::Table;
use serde::{Deserialize, Serialize};

use crate::position::SourcePosition;

/// The state file's first bytes.
const MAGIC: &[u8; 8] = b"LPMSTATE";
/// The format both files are in; a different one is refused (and falls back: an older
/// checkpoint or a replay of the log; a log retired past every loadable checkpoint fails the
/// start loudly). 2: `case_sightings` joined the tables, which moved the postcard index of
/// `persons_lost` and `responsible_contacts` (tables are written as their variant index), and
/// `case_cases` rows carry `public` and `public_id` (migration 0003).
pub const FORMAT: u32 = 2;
/// Entries per frame: bounds the memory of one read step.
pub const ENTRIES_PER_FRAME: usize = 4096;
/// The largest frame a reader accepts (a corrupt length must not allocate gigabytes).
const MAX_FRAME: u32 = 256 << 20;

/// Why a checkpoint file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    /// Reading or writing failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The bytes are not a valid checkpoint (torn, corrupt, another format).
    #[error("{path}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl CheckpointFileError {
    fn invalid(path: &Path, why: impl Into<String>) -> CheckpointFileError {
        CheckpointFileError::Invalid {
            path: path.display().to_string(),
            why: why.into(),
        }
    }

    fn io(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CheckpointFileError {
        let path = path.display().to_string();
        move |source| CheckpointFileError::Io {
            context,
            path,
            source,
        }
    }
}

/// What the manifest says of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Checkpoints are numbered 1, 2, 3, ... in the order they were taken.
    pub number: u64,
    /// The engine tick the state is at (ticks restart with each process: for logs only).
    pub tick: u64,
    /// When it was taken (ms since the epoch).
    pub taken_at_ms: i64,
    /// Where the source stood at that tick: a restart resumes right after it.
    pub position: SourcePosition,
    /// The source's ingestion counter at that tick (the `seq` of positions continues above it).
    pub ingest_seq: u64,
    /// Workers that took the image (the restart may run another count).
    pub workers: usize,
    /// Stored keys (rows, hidden rows and deleted keys), per table name.
    pub entries: std::collections::BTreeMap<String, u64>,
    /// The state file's name, beside the manifest.
    pub state_file: String,
    /// Its length.
    pub state_bytes: u64,
    /// crc32 of all its bytes.
    pub state_crc32: u32,
    /// How long taking it took, image to published manifest.
    pub duration_ms: u64,
    /// Earlier checkpoints, oldest first (log retention counts from them).
    #[serde(default)]
    pub history: Vec<super::Taken>,
    /// What the position is a position in ([`super::Checkpointable::origin`]); empty for the
    /// embedded log.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
}

impl Manifest {
    /// Stored keys over all tables.
    pub fn total_entries(&self) -> u64 {
        self.entries.values().sum()
    }
}

/// The unit of the state file.
#[derive(Serialize, Deserialize)]
enum Frame {
    Header {
        format: u32,
        tables: Vec<(Table, TableMeta)>,
    },
    Entries {
        table: Table,
        entries: Vec<StoredEntry>,
    },
    End {
        entries: u64,
    },
}

/// Writes a state file: the header, then entries, then [`StateWriter::finish`].
pub struct StateWriter<'p> {
    path: &'p Path,
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    bytes: u64,
    entries: u64,
    buf: Vec<u8>,
}

impl<'p> StateWriter<'p> {
    /// Creates `path` (replacing it) and writes the header with each table's meta.
    pub fn create(
        path: &'p Path,
        tables: Vec<(Table, TableMeta)>,
    ) -> Result<StateWriter<'p>, CheckpointFileError> {
        let file = File::create(path).map_err(CheckpointFileError::io("creating", path))?;
        let mut w = StateWriter {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
            bytes: 0,
            entries: 0,
            buf: Vec::new(),
        };
        w.raw(MAGIC)?;
        w.frame(&Frame::Header {
            format: FORMAT,
            tables,
        })?;
        Ok(w)
    }

    /// Appends entries of `table` (any number; framed by [`ENTRIES_PER_FRAME`]).
    pub fn entries(
        &mut self,
        table: Table,
        entries: &[StoredEntry],
    ) -> Result<(), CheckpointFileError> {
        for chunk in entries.chunks(ENTRIES_PER_FRAME) {
            self.entries += chunk.len() as u64;
            // a borrowed frame would need a second type; the clone is of `Arc`s
            self.frame(&Frame::Entries {
                table,
                entries: chunk.to_vec(),
            })?;
        }
        Ok(())
    }

    /// Ends the file and makes it durable; returns its length and crc32.
    pub fn finish(mut self) -> Result<(u64, u32), CheckpointFileError> {
        let entries = self.entries;
        self.frame(&Frame::End { entries })?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| CheckpointFileError::io("writing", self.path)(e.into_error()))?;
        file.sync_all()
            .map_err(CheckpointFileError::io("syncing", self.path))?;
        Ok((self.bytes, self.crc.finalize()))
    }

    fn frame(&mut self, frame: &Frame) -> Result<(), CheckpointFileError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&[0; 8]);
        let mut buf = postcard::to_extend(frame, buf)
            .map_err(|e| CheckpointFileError::invalid(self.path, format!("encoding: {e}")))?;
        let len = u32::try_from(buf.len() - 8)
            .ok()
            .filter(|n| *n <= MAX_FRAME)
            .ok_or_else(|| CheckpointFileError::invalid(self.path, "a frame over 256 MiB"))?;
        let crc = crc32fast::hash(&buf[8..]);
        buf[..4].copy_from_slice(&len.to_le_bytes());
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        self.raw(&buf)?;
        self.buf = buf;
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), CheckpointFileError> {
        self.out
            .write_all(bytes)
            .map_err(CheckpointFileError::io("writing", self.path))?;
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// Reads frames, checking each one's length and crc.
struct FrameReader<'p> {
    path: &'p Path,
    input: BufReader<File>,
    payload: Vec<u8>,
}

impl<'p> FrameReader<'p> {
    fn open(path: &'p Path) -> Result<FrameReader<'p>, CheckpointFileError> {
        let file = File::open(path).map_err(CheckpointFileError::io("opening", path))?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|_| CheckpointFileError::invalid(path, "shorter than its magic"))?;
        if &magic != MAGIC {
            return Err(CheckpointFileError::invalid(
                path,
                "not a state file (magic)",
            ));
        }
        Ok(FrameReader {
            path,
            input,
            payload: Vec::new(),
        })
    }

    /// The next frame's payload, checked; `None` at a clean end of file.
    fn next(&mut self) -> Result<Option<&[u8]>, CheckpointFileError> {
        let mut head = [0u8; 8];
        let mut got = 0;
        while got < head.len() {
            match self.input.read(&mut head[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(CheckpointFileError::invalid(self.path, "torn frame header")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CheckpointFileError::io("reading", self.path)(e)),
            }
        }
        let [l0, l1, l2, l3, c0, c1, c2, c3] = head;
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if len > MAX_FRAME {
            return Err(CheckpointFileError::invalid(
                self.path,
                format!("frame length {len} over the limit"),
            ));
        }
        self.payload.resize(len as usize, 0);
        self.input
            .read_exact(&mut self.payload)
            .map_err(|_| CheckpointFileError::invalid(self.path, "torn frame"))?;
        if crc32fast::hash(&self.payload) != crc {
            return Err(CheckpointFileError::invalid(
                self.path,
                "frame crc mismatch",
            ));
        }
        Ok(Some(&self.payload))
    }

    fn decode(&mut self) -> Result<Option<Frame>, CheckpointFileError> {
        let path = self.path;
        match self.next()? {
            None => Ok(None),
            Some(p) => postcard::from_bytes(p)
                .map(Some)
                .map_err(|e| CheckpointFileError::invalid(path, format!("decoding a frame: {e}"))),
        }
    }
}

/// Checks a state file against its manifest without decoding its rows: length, whole-file
/// crc32, every frame's crc, the header's format, and an end frame last. This is what decides
/// whether a checkpoint is used, before anything reaches the engine.
pub fn verify(path: &Path, manifest: &Manifest) -> Result<(), CheckpointFileError> {
    let len = std::fs::metadata(path)
        .map_err(CheckpointFileError::io("reading metadata of", path))?
        .len();
    if len != manifest.state_bytes {
        return Err(CheckpointFileError::invalid(
            path,
            format!("{len} bytes, the manifest says {}", manifest.state_bytes),
        ));
    }
    let mut crc = crc32fast::Hasher::new();
    let mut file = File::open(path).map_err(CheckpointFileError::io("opening", path))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => crc.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CheckpointFileError::io("reading", path)(e)),
        }
    }
    if crc.finalize() != manifest.state_crc32 {
        return Err(CheckpointFileError::invalid(
            path,
            "crc32 differs from the manifest's",
        ));
    }
    let mut frames = FrameReader::open(path)?;
    match frames.decode()? {
        Some(Frame::Header { format, .. }) if format == FORMAT => {}
        Some(Frame::Header { format, .. }) => {
            return Err(CheckpointFileError::invalid(
                path,
                format!("format {format}, this build reads {FORMAT}"),
            ))
        }
        _ => return Err(CheckpointFileError::invalid(path, "no header frame")),
    }
    // postcard writes an enum's variant index first: 1 = entries, 2 = end
    let mut ended = false;
    while let Some(payload) = frames.next()? {
        if ended {
            return Err(CheckpointFileError::invalid(path, "frames after the end"));
        }
        match payload.first() {
            Some(1) => {}
            Some(2) => ended = true,
            _ => return Err(CheckpointFileError::invalid(path, "an unknown frame")),
        }
    }
    if !ended {
        return Err(CheckpointFileError::invalid(path, "no end frame"));
    }
    Ok(())
}

/// Reads a (verified) state file: `tables` gets the header's metas, then `entries` each frame
/// of entries in file order. Fails if the entries counted differ from the end frame's.
pub fn read(
    path: &Path,
    tables: impl FnOnce(Vec<(Table, TableMeta)>) -> Result<(), CheckpointFileError>,
    mut entries: impl FnMut(Table, Vec<StoredEntry>) -> Result<(), CheckpointFileError>,
) -> Result<u64, CheckpointFileError> {
    let mut frames = FrameReader::open(path)?;
    match frames.decode()? {
        Some(Frame::Header {
            format: FORMAT,
            tables: metas,
        }) => tables(metas)?,
        _ => return Err(CheckpointFileError::invalid(path, "no header frame")),
    }
    let mut n = 0u64;
    loop {
        match frames.decode()? {
            Some(Frame::Entries { table, entries: e }) => {
                n += e.len() as u64;
                entries(table, e)?;
            }
            Some(Frame::End { entries: total }) if total == n => return Ok(n),
            Some(Frame::End { entries: total }) => {
                return Err(CheckpointFileError::invalid(
                    path,
                    format!("{n} entries read, the end frame says {total}"),
                ))
            }
            Some(Frame::Header { .. }) => {
                return Err(CheckpointFileError::invalid(path, "a second header"))
            }
            None => return Err(CheckpointFileError::invalid(path, "no end frame")),
        }
    }
}

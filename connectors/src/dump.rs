//! The topic-dump source: the JSON lines `kcat -C -J` prints (`topic, partition, offset, ts,
//! key, payload`), read as a stream (bounded memory; gzip and stdin accepted) and decoded on the
//! worker threads.
//!
//! With schemas on, every record repeats a ~4 KB schema inside the escaped `payload` string.
//! Each worker remembers the escaped text of the schemas it has seen, so a known schema is
//! skipped with one comparison and only the payload itself is unescaped and parsed.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lpm_engine::{Feed, FeedItem};
use parking_lot::Mutex;
use serde::Deserialize;

use crate::catalog::Catalog;
use crate::dead_letter::file::FileDeadLetters;
use crate::dead_letter::{DeadLetters, Discard, Raw};
use crate::debezium::rows::RowShape;
use crate::debezium::schema::SchemaCache;
use crate::debezium::{Decoded, Decoder, KnownSchema};
use crate::decode::DecodePath;
use crate::error::{DecodeError, DumpError};
use crate::stats::DecodeStats;

/// One `kcat -C -J` line as we write it, fields in kcat's order (the dump reader's fast path
/// expects `payload` last). `key` is `None` for keyless records (truncates).
#[derive(serde::Serialize)]
pub struct KcatLine<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: u64,
    /// Always `"create"` (the producer's timestamp).
    pub tstype: &'static str,
    /// Record timestamp, epoch ms.
    pub ts: i64,
    /// kcat writes the broker id; `-1` when not from a broker.
    pub broker: i32,
    /// Key text.
    pub key: Option<&'a str>,
    /// Value text; `None` for a tombstone.
    pub payload: Option<&'a str>,
}

/// Dump-source options.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// The dump (`-` for stdin; `*.gz` is decompressed).
    pub path: PathBuf,
    /// Records per tick.
    pub tick_records: u64,
    /// Records a worker takes at once.
    pub chunk_records: usize,
    /// Where undecodable records go.
    pub dead_letters: Option<PathBuf>,
    /// Worker count (one decoder each).
    pub workers: usize,
    /// Which columns decoded rows keep.
    pub shape: RowShape,
    /// `(process, processes)`: in a cluster every process reads the whole dump and decodes
    /// only chunk `c` with `c % processes == process` (its workers share those as usual);
    /// `(0, 1)` decodes everything.
    pub share: (usize, usize),
    /// After a read error, never end the feed (the workers idle) instead of ending it like the
    /// end of the file. In a cluster an ended feed lets the others finish with views that miss
    /// this process's unread share; held, the cluster cannot finish, and the command stops
    /// this process (fail-stop) when it sees [`DumpFeed::read_error`].
    pub hold_on_error: bool,
}

impl DumpOptions {
    /// Defaults for `path`.
    pub fn new(path: impl Into<PathBuf>) -> DumpOptions {
        DumpOptions {
            path: path.into(),
            tick_records: 200_000,
            chunk_records: 2048,
            dead_letters: None,
            workers: 1,
            shape: RowShape::Full,
            share: (0, 1),
            hold_on_error: false,
        }
    }
}

struct ReaderState {
    reader: Box<dyn BufRead + Send>,
    /// Reused for the lines of chunks another process decodes.
    skipped: Vec<u8>,
    next_chunk: u64,
    next_seq: u64,
    eof: bool,
}

/// One worker's decoder: the generic decoder plus the escaped schema prefixes it learned.
pub(crate) struct WorkerDecoder {
    decoder: Decoder,
    /// Escaped schema prefixes (as they appear inside the kcat `payload` string).
    escaped: SchemaCache,
}

impl WorkerDecoder {
    pub(crate) fn new(catalog: Arc<Catalog>) -> WorkerDecoder {
        WorkerDecoder {
            decoder: Decoder::new(catalog),
            escaped: SchemaCache::default(),
        }
    }
}

/// A topic dump as an engine [`Feed`].
pub struct DumpFeed {
    reader: Mutex<ReaderState>,
    decoders: Vec<Mutex<WorkerDecoder>>,
    chunks_per_tick: u64,
    chunk_records: usize,
    /// See [`DumpOptions::share`].
    share: (u64, u64),
    /// See [`DumpOptions::hold_on_error`].
    hold_on_error: bool,
    /// Decode, count, dead-letter (`--dead-letters FILE`, or nowhere).
    decode: DecodePath,
    /// Total input size in bytes when known (for progress).
    pub total_bytes: Option<u64>,
    compressed_read: Arc<AtomicU64>,
    /// The input as named by the options, for errors.
    path: String,
    /// Why reading stopped early, if it did. The feed still ends normally (the engine finishes
    /// the records it has), so the caller decides whether a partial input is acceptable.
    read_error: OnceLock<DumpError>,
}

/// Counts bytes as they are read from the file (compressed bytes for `.gz`).
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Relaxed);
        Ok(k)
    }
}

impl DumpFeed {
    /// Opens a dump.
    pub fn open(
        options: &DumpOptions,
        catalog: Arc<Catalog>,
        stats: Arc<DecodeStats>,
    ) -> Result<DumpFeed, DumpError> {
        let io = |source| DumpError::Io {
            path: options.path.display().to_string(),
            source,
        };
        let counter = Arc::new(AtomicU64::new(0));
        let (raw, total): (Box<dyn Read + Send>, Option<u64>) = if options.path.as_os_str() == "-" {
            (Box::new(std::io::stdin()), None)
        } else {
            let f = File::open(&options.path).map_err(io)?;
            let len = f.metadata().map(|m| m.len()).ok();
            (Box::new(f), len)
        };
        let counted = Counting {
            inner: raw,
            n: counter.clone(),
        };
        let gz = options.path.extension().is_some_and(|e| e == "gz");
        let reader: Box<dyn BufRead + Send> = if gz {
            Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::read::MultiGzDecoder::new(BufReader::new(counted)),
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, counted))
        };
        let dead: Arc<dyn DeadLetters> = match &options.dead_letters {
            Some(p) => Arc::new(FileDeadLetters::open(p).map_err(|source| DumpError::Io {
                path: p.display().to_string(),
                source,
            })?),
            None => Arc::new(Discard),
        };
        let chunk_records = options.chunk_records.max(1);
        Ok(DumpFeed {
            reader: Mutex::new(ReaderState {
                reader,
                skipped: Vec::new(),
                next_chunk: 0,
                next_seq: 1,
                eof: false,
            }),
            decoders: (0..options.workers.max(1))
                .map(|_| Mutex::new(WorkerDecoder::new(catalog.clone())))
                .collect(),
            chunks_per_tick: (options.tick_records / chunk_records as u64).max(1),
            chunk_records,
            share: (options.share.0 as u64, options.share.1.max(1) as u64),
            hold_on_error: options.hold_on_error,
            decode: DecodePath::new("dump", stats, dead).with_shape(options.shape),
            total_bytes: total,
            compressed_read: counter,
            path: options.path.display().to_string(),
            read_error: OnceLock::new(),
        })
    }

    /// Bytes consumed from the file so far.
    pub fn bytes_read(&self) -> u64 {
        self.compressed_read.load(Relaxed)
    }

    /// Reads the next chunk of this process's share: `(tick, first seq, lines)`. The chunks of
    /// other processes are read past (their lines still count for seq and tick).
    fn read_chunk(&self) -> Option<(u64, u64, Vec<Vec<u8>>)> {
        let mut st = self.reader.lock();
        let (process, processes) = self.share;
        while st.next_chunk % processes != process {
            let n = self.skip_chunk(&mut st);
            if n == 0 {
                return None;
            }
            st.next_chunk += 1;
            st.next_seq += n;
        }
        if st.eof {
            return None;
        }
        let mut lines = Vec::with_capacity(self.chunk_records);
        while lines.len() < self.chunk_records {
            let mut line = Vec::new();
            match st.reader.read_until(b'\n', &mut line) {
                Ok(0) => {
                    st.eof = true;
                    break;
                }
                Ok(_) => lines.push(line),
                Err(source) => {
                    // The partial line in `line` is dropped: only complete records count.
                    let records = st.next_seq - 1 + lines.len() as u64;
                    self.stop_reading(&mut st, records, source);
                    break;
                }
            }
        }
        if lines.is_empty() {
            return None;
        }
        let chunk = st.next_chunk;
        let seq = st.next_seq;
        st.next_chunk += 1;
        st.next_seq += lines.len() as u64;
        Some((chunk / self.chunks_per_tick, seq, lines))
    }

    /// Reads past one chunk that another process decodes; returns its line count.
    fn skip_chunk(&self, st: &mut ReaderState) -> u64 {
        let mut n = 0u64;
        let mut line = std::mem::take(&mut st.skipped);
        while !st.eof && n < self.chunk_records as u64 {
            line.clear();
            match st.reader.read_until(b'\n', &mut line) {
                Ok(0) => st.eof = true,
                Ok(_) => n += 1,
                Err(source) => {
                    let records = st.next_seq - 1 + n;
                    self.stop_reading(st, records, source);
                }
            }
        }
        st.skipped = line;
        n
    }

    fn stop_reading(&self, st: &mut ReaderState, records: u64, source: std::io::Error) {
        tracing::debug!(%source, records, "Reading the dump failed; the feed ends here.");
        let _ = self.read_error.set(DumpError::Truncated {
            path: self.path.clone(),
            records,
            source,
        });
        st.eof = true;
    }

    /// Flushes the dead-letter sink.
    pub fn finish(&self) {
        self.decode.dead_letters().flush(Duration::ZERO);
    }

    /// Why the feed ended before the end of its input (a truncated or corrupt gzip, an I/O
    /// error), once it has ended. A read error ends the feed like the end of the file would, so
    /// every consumer must ask here before it treats what it got as the whole dump.
    pub fn read_error(&self) -> Option<&DumpError> {
        self.read_error.get()
    }
}

impl Feed for DumpFeed {
    fn next(&self, worker: usize) -> FeedItem {
        let Some((tick, first_seq, lines)) = self.read_chunk() else {
            if self.hold_on_error && self.read_error().is_some() {
                std::thread::sleep(Duration::from_millis(10));
                let tick = self.reader.lock().next_chunk / self.chunks_per_tick;
                return FeedItem::Idle { tick };
            }
            return FeedItem::End;
        };
        // one decoder per local worker: in a cluster `worker` is global (process * workers +
        // local), so the remainder is still the local index
        let mut dec = self.decoders[worker % self.decoders.len()].lock();
        let mut changes = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let seq = first_seq + i as u64;
            self.decode.read(line.len());
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            let decoded = decode_line(&mut dec, trimmed, seq);
            changes.extend(self.decode.accept(decoded, seq, Raw::Line(trimmed)));
        }
        FeedItem::Batch { tick, changes }
    }
}

/// The fields of a kcat `-J` record we read. The fast path parses the part before `payload`
/// into it (`payload` then stays `None`); the fallback parses the whole line.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a serde_json::value::RawValue>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bad_record(detail: &str) -> DecodeError {
    DecodeError::BadRecord(detail.into())
}

/// Decodes one kcat line: the fast path assumes kcat's field order (`payload` last); any other
/// order, or anything unexpected, goes through a full parse.
pub(crate) fn decode_line(
    dec: &mut WorkerDecoder,
    line: &[u8],
    seq: u64,
) -> Result<Decoded, DecodeError> {
    match decode_kcat_order(dec, line, seq) {
        Err(DecodeError::BadRecord(_) | DecodeError::Json { .. }) => {
            decode_any_order(dec, line, seq)
        }
        other => other,
    }
}

fn decode_any_order(
    dec: &mut WorkerDecoder,
    line: &[u8],
    seq: u64,
) -> Result<Decoded, DecodeError> {
    let r: Record<'_> = serde_json::from_slice(line).map_err(|e| bad_record(&e.to_string()))?;
    let value: Option<Cow<'_, str>> = match r.payload.map(|p| p.get()) {
        None | Some("null") => None,
        Some(text) if text.starts_with('{') => Some(Cow::Borrowed(text)),
        Some(text) => {
            Some(serde_json::from_str(text).map_err(|e| bad_record(&format!("payload: {e}")))?)
        }
    };
    dec.decoder
        .decode(&r.topic, r.key.as_deref(), value.as_deref(), seq)
}

fn decode_kcat_order(
    dec: &mut WorkerDecoder,
    line: &[u8],
    seq: u64,
) -> Result<Decoded, DecodeError> {
    // `"payload":` with a bare closing quote can only be the field itself: inside the escaped key
    // string every quote is preceded by a backslash.
    let at = find(line, b"\"payload\":").ok_or_else(|| bad_record("no payload field"))?;
    let head_end = line[..at]
        .iter()
        .rposition(|b| *b == b',')
        .ok_or_else(|| bad_record("no field before payload"))?;
    let mut head = line[..head_end].to_vec();
    head.push(b'}');
    let header: Record<'_> =
        serde_json::from_slice(&head).map_err(|e| bad_record(&e.to_string()))?;
    let topic = header.topic.as_ref();
    let key = header.key.as_deref();
    let rest = &line[at + b"\"payload\":".len()..];
    let body = rest
        .strip_suffix(b"}")
        .ok_or_else(|| bad_record("record does not end with '}'"))?
        .trim_ascii();
    if body == b"null" {
        return dec.decoder.decode(topic, key, None, seq);
    }
    if body.first() == Some(&b'{') {
        // payload printed as a JSON object rather than a string
        let value = std::str::from_utf8(body).map_err(|e| bad_record(&e.to_string()))?;
        return dec.decoder.decode(topic, key, Some(value), seq);
    }
    let escaped = body
        .strip_prefix(b"\"")
        .and_then(|b| b.strip_suffix(b"\""))
        .ok_or_else(|| bad_record("payload is not a string, object or null"))?;
    if let Some((len, schema)) = dec.escaped.lookup(escaped) {
        let mut quoted = Vec::with_capacity(escaped.len() - len + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(&escaped[len..]);
        quoted.push(b'"');
        let payload: Cow<'_, str> =
            serde_json::from_slice(&quoted).map_err(|e| DecodeError::Json {
                part: "value",
                detail: e.to_string(),
            })?;
        return dec.decoder.decode_known(
            topic,
            key,
            KnownSchema {
                schema,
                payload: &payload,
            },
            seq,
        );
    }
    let value: Cow<'_, str> = serde_json::from_slice(body).map_err(|e| DecodeError::Json {
        part: "value",
        detail: e.to_string(),
    })?;
    let decoded = dec.decoder.decode(topic, key, Some(&value), seq);
    // learn the escaped form of a schema prefix the decoder just learned
    if value.starts_with("{\"schema\":") {
        if let Some((len, schema)) = dec.decoder.schemas().lookup(value.as_bytes()) {
            if let Ok(esc) = serde_json::to_string(&value[..len]) {
                let esc = &esc.as_bytes()[1..esc.len() - 1];
                if escaped.starts_with(esc) && dec.escaped.lookup(escaped).is_none() {
                    dec.escaped.insert(esc, schema);
                }
            }
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn ingested_counts_keep_the_debezium_op() {
        let dir = std::env::temp_dir().join(format!("lpm-dump-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("ops.jsonl");
        let contact = |op: &str, pos: u64, snap: &str| {
            let after = r#"{"id":1,"full_name":"A","agency":"ECU 911","phone":null,"email":null,"active":1,"version":1}"#;
            let value = format!(
                r#"{{"before":null,"after":{after},"source":{{"snapshot":"{snap}","file":"mysql-bin.000001","pos":{pos},"row":0}},"op":"{op}"}}"#
            );
            serde_json::json!({"topic": "lpm.db.responsible_contacts", "partition": 0, "offset": pos, "key": "{\"id\":1}", "payload": value}).to_string()
        };
        let mut f = File::create(&path).expect("create");
        for line in [
            contact("r", 1, "last"),
            contact("c", 2, "false"),
            contact("u", 3, "false"),
        ] {
            writeln!(f, "{line}").expect("write");
        }
        drop(f);
        let stats = Arc::new(DecodeStats::default());
        let feed = DumpFeed::open(
            &DumpOptions::new(&path),
            Arc::new(Catalog::lpm()),
            stats.clone(),
        )
        .expect("open");
        while let FeedItem::Batch { .. } = feed.next(0) {}
        let t = lpm_engine::model::Table::ResponsibleContacts;
        assert_eq!(
            stats.ingested_counts(),
            vec![(t, "c", 1), (t, "r", 1), (t, "u", 1)]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn cluster_shares_split_the_chunks_with_the_same_ticks_and_seqs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.jsonl");
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("write");
        let chunks = |share: (usize, usize)| {
            let mut options = DumpOptions::new(&path);
            options.chunk_records = 3;
            options.tick_records = 6;
            options.share = share;
            let stats = Arc::new(DecodeStats::default());
            let feed = DumpFeed::open(&options, Arc::new(Catalog::lpm()), stats).expect("open");
            std::iter::from_fn(|| feed.read_chunk()).collect::<Vec<_>>()
        };
        let whole = chunks((0, 1));
        assert_eq!(whole.len(), 17);
        let (a, b) = (chunks((0, 2)), chunks((1, 2)));
        assert_eq!((a.len(), b.len()), (9, 8));
        assert_eq!(a[1], whole[2]);
        assert_eq!(b[0], whole[1]);
        let mut both: Vec<_> = a.into_iter().chain(b).collect();
        both.sort();
        assert_eq!(both, whole);
        let third = chunks((2, 3));
        assert_eq!(third.first(), whole.get(2));
        assert_eq!(third.len(), 5);
    }

    /// Drains a feed over `bytes` written to `name`; returns the records read and the error.
    fn drain(dir: &std::path::Path, name: &str, bytes: &[u8]) -> (u64, Option<String>) {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let stats = Arc::new(DecodeStats::default());
        let mut options = DumpOptions::new(&path);
        options.chunk_records = 7;
        let feed = DumpFeed::open(&options, Arc::new(Catalog::lpm()), stats.clone()).expect("open");
        while let FeedItem::Batch { .. } = feed.next(0) {}
        (
            stats.records.load(Relaxed),
            feed.read_error().map(ToString::to_string),
        )
    }

    #[test]
    fn a_truncated_gzip_ends_the_feed_with_a_read_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text: String = (0..5000)
            .map(|i| {
                format!(
                    "{{\"topic\":\"t{i}\",\"payload\":null,\"pad\":{}}}\n",
                    i * 7919
                )
            })
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).expect("gzip");
        let gz = gz.finish().expect("gzip");

        assert_eq!(drain(dir.path(), "whole.jsonl.gz", &gz), (5000, None));
        let (records, error) = drain(dir.path(), "cut.jsonl.gz", &gz[..gz.len() / 2]);
        let error = error.expect("a read error");
        assert!(records > 0 && records < 5000, "{records}");
        assert!(
            error.contains(&format!("failed after {records} records")),
            "{error}"
        );
        assert!(error.contains("cut.jsonl.gz"), "{error}");
    }
}

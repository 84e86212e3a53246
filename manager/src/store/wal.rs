//! The raft log on disk: a write-ahead log of our own, shaped like etcd's.
//!
//! Why not a database: every write waits for a follower's log write, and a redb commit
//! (what `log.redb` was until this file format) rewrites pages of its b-tree and its
//! header, about ten `pwrite`s and 150 µs (p50) per one-entry commit on this project's
//! machines, where one `pwrite` plus `fdatasync` into a preallocated file takes 85–95 µs.
//!
//! The directory holds `LOCK` (locked while a process has the log open) and segments
//! `{seq:016x}.wal`, each preallocated to [`SEGMENT`] bytes so that an `fdatasync` writes
//! the data and not the file's new size. A segment is a run of frames, one per batch the
//! log writer commits, each written with one `pwrite`:
//!
//! ```text
//! frame  = header | body (len bytes) | zeros to a multiple of 16
//! header = len: u32 LE | crc: u32 LE | check: u32 LE | 0u32
//! body   = record*
//! record = kind: u8 | len: u32 LE | payload (len bytes)
//! ```
//!
//! `crc` is the CRC-32 of the body seeded with the previous frame's (0 for a segment's
//! first), so no frame left from an earlier write can pass for the next one; `check` is
//! the CRC-32 of `len` and `crc`, so a damaged length is not taken for a short write.
//! A header of zeros ends a segment's frames. A segment's first record is its head: the
//! vote, the committed id and the last purged id as they were when it began, so that a
//! segment holding only purged entries can be deleted and the log still read from the
//! next.
//!
//! Recovery. A header sits in one disk sector (16 bytes at a multiple of 16), so a crash
//! leaves it whole or as it was (zeros). A frame with a sound header whose body fails
//! its crc in the last segment, followed only by zeros, is a write a crash tore; nobody
//! was told it was written (that waits for the `fdatasync`), so it is dropped. Anything
//! else that fails a check is damage, reported with the file and byte offset: a damaged
//! header, a body that passes its crc but cannot be read, data after the frames of a
//! segment before the last, a missing segment, a log that does not start right after
//! its last purged entry. The space after the last good frame is cleared at open, so
//! nothing written before the crash can follow the next frame; whatever was there (a
//! write whose first sector the crash lost) is kept aside in `{seq}.wal.dropped-{offset}`
//! first.

use super::consecutive::Consecutive;
use super::disk::{self, DiskError};
use super::types::{Entry, LogId, Vote};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes preallocated per segment (etcd's size); a frame that does not fit starts the next.
pub(crate) const SEGMENT: u64 = 64 << 20;

/// Bytes of a frame's header; frames start at multiples of it.
const HEADER: u64 = 16;

const HEAD: u8 = 1;
const ENTRY: u8 = 2;
const TRUNCATE: u8 = 3;
const PURGE: u8 = 4;
const VOTE: u8 = 5;
const COMMITTED: u8 = 6;

/// A change of the log, in the order raft made it.
#[derive(Debug)]
pub(crate) enum Op {
    Append(Vec<Entry>),
    /// Remove the entries from this index on.
    Truncate(u64),
    /// Remove the entries up to this id.
    Purge(LogId),
    Vote(Vote),
    /// The committed id raft saved (a hint: raft recovers it from a quorum).
    Committed(Option<LogId>),
}

/// What the log holds besides its entries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) vote: Option<Vote>,
    pub(crate) committed: Option<LogId>,
    pub(crate) last_purged: Option<LogId>,
}

/// Where an entry's encoding is.
#[derive(Clone, Debug)]
struct Loc {
    file: Arc<File>,
    at: u64,
    len: u32,
}

/// The log as it is on disk.
#[derive(Debug)]
struct Durable {
    meta: Meta,
    entries: Consecutive<Loc>,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    file: Arc<File>,
    /// The highest index of an entry written here: the segment may go once that is purged.
    max_index: Option<u64>,
}

/// The writing end of the log (one, owned by the log writer).
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    /// Oldest first; frames go to the last.
    segments: Vec<Segment>,
    /// Where the next frame goes in the last segment, and the crc it chains from.
    offset: u64,
    crc: u32,
    segment_size: u64,
    durable: Arc<Mutex<Durable>>,
    _lock: File,
}

/// Reads what the log holds durably (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct WalReader {
    durable: Arc<Mutex<Durable>>,
}

fn lock(durable: &Mutex<Durable>) -> MutexGuard<'_, Durable> {
    // Changed only by `apply`, which cannot fail (what it applies was read before).
    durable.lock().unwrap_or_else(|e| e.into_inner())
}

impl WalReader {
    pub(crate) fn meta(&self) -> Meta {
        lock(&self.durable).meta.clone()
    }

    /// The durable entries with indexes in `from..to`.
    pub(crate) fn entries(&self, from: u64, to: u64) -> Result<Vec<Entry>, DiskError> {
        let locs: Vec<Loc> = lock(&self.durable)
            .entries
            .range(from, to)
            .cloned()
            .collect();
        let mut entries = Vec::with_capacity(locs.len());
        let mut buf = Vec::new();
        for loc in locs {
            buf.resize(loc.len as usize, 0);
            loc.file.read_exact_at(&mut buf, loc.at)?;
            entries.push(disk::decode(&buf)?);
        }
        Ok(entries)
    }

    /// The id of the last entry (of the last purged one when there is none).
    pub(crate) fn last(&self) -> Result<Option<LogId>, DiskError> {
        let (end, purged) = {
            let durable = lock(&self.durable);
            (durable.entries.end(), durable.meta.last_purged)
        };
        let last = self.entries(end.saturating_sub(1), end)?.pop();
        Ok(last.map(|e| e.log_id).or(purged))
    }
}

impl Wal {
    /// Open the log in `dir`, creating an empty one if there is none.
    pub(crate) fn open(dir: &Path) -> Result<(Wal, WalReader), DiskError> {
        Wal::open_sized(dir, SEGMENT)
    }

    pub(crate) fn open_sized(dir: &Path, segment_size: u64) -> Result<(Wal, WalReader), DiskError> {
        if !dir.exists() {
            Wal::create(dir, segment_size, |_| Ok(()))?;
        }
        Wal::open_in(dir, segment_size)
    }

    /// Create the log in `dir` with what `fill` writes, all at once: it is built beside
    /// `dir` and renamed into place, so a crash leaves no log or the whole of it.
    pub(crate) fn create(
        dir: &Path,
        segment_size: u64,
        fill: impl FnOnce(&mut Wal) -> Result<(), DiskError>,
    ) -> Result<(), DiskError> {
        let building = dir.with_extension("new");
        if building.exists() {
            fs::remove_dir_all(&building)?;
        }
        fs::create_dir_all(&building)?;
        {
            let (mut wal, _) = Wal::open_in(&building, segment_size)?;
            fill(&mut wal)?;
        }
        fs::rename(&building, dir)?;
        sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
        Ok(())
    }

    fn open_in(dir: &Path, segment_size: u64) -> Result<(Wal, WalReader), DiskError> {
        let lock_file = lock_dir(dir)?;
        let mut seqs = Vec::new();
        for item in fs::read_dir(dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".wal.tmp") {
                // A segment whose creation a crash interrupted: it never held a frame.
                fs::remove_file(&path)?;
            } else if let Some(seq) = name.strip_suffix(".wal") {
                let seq = segment_seq(seq).ok_or_else(|| DiskError::Damaged {
                    path: path.clone(),
                    offset: 0,
                    problem: "a segment's name is not 16 hexadecimal digits".into(),
                })?;
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        if let Some(pair) = seqs.windows(2).find(|p| p[1] != p[0] + 1) {
            return Err(DiskError::Damaged {
                path: dir.join(segment_name(pair[0] + 1)),
                offset: 0,
                problem: format!(
                    "the segment is missing (segments {} and {} exist)",
                    segment_name(pair[0]),
                    segment_name(pair[1])
                ),
            });
        }
        let durable = Arc::new(Mutex::new(Durable {
            meta: Meta::default(),
            entries: Consecutive::new(0),
        }));
        let mut wal = Wal {
            dir: dir.to_owned(),
            segments: Vec::new(),
            offset: 0,
            crc: 0,
            segment_size,
            durable: durable.clone(),
            _lock: lock_file,
        };
        if seqs.is_empty() {
            wal.segments.push(create_segment(dir, 0, segment_size)?);
        }
        for (n, seq) in seqs.iter().enumerate() {
            let path = dir.join(segment_name(*seq));
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let mut segment = Segment {
                seq: *seq,
                path,
                file: Arc::new(file),
                max_index: None,
            };
            let (offset, crc) = wal.replay(&mut segment, n + 1 == seqs.len())?;
            wal.segments.push(segment);
            (wal.offset, wal.crc) = (offset, crc);
        }
        wal.check_start()?;
        // Clear what follows the last frame (a torn write, or nothing): the next frame
        // must be followed by zeros.
        if let Some(last) = wal.segments.last() {
            keep_aside(last, wal.offset)?;
            last.file.set_len(wal.offset)?;
            allocate(&last.file, segment_size.max(wal.offset))?;
            last.file.sync_all()?;
        }
        Ok((wal, WalReader { durable }))
    }

    fn durable(&self) -> MutexGuard<'_, Durable> {
        lock(&self.durable)
    }

    /// The log read at open must start right after its last purged entry.
    fn check_start(&self) -> Result<(), DiskError> {
        let durable = self.durable();
        let (start, end) = (durable.entries.start(), durable.entries.end());
        match durable.meta.last_purged {
            Some(purged) if start < end && start != purged.index.saturating_add(1) => {
                Err(DiskError::Damaged {
                    path: self
                        .segments
                        .first()
                        .map_or(self.dir.clone(), |s| s.path.clone()),
                    offset: 0,
                    problem: format!(
                        "the log's first entry is {start}, but the last purged one is {}",
                        purged.index
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Read a segment's frames into the durable log: where the next frame would go, and
    /// the crc it would chain from.
    fn replay(&self, segment: &mut Segment, last: bool) -> Result<(u64, u32), DiskError> {
        let file = segment.file.clone();
        let path = segment.path.clone();
        let size = file.metadata()?.len();
        let (mut offset, mut crc) = (0u64, 0u32);
        let mut body = Vec::new();
        let damaged = |offset, problem: &str| DiskError::Damaged {
            path: path.clone(),
            offset,
            problem: problem.to_owned(),
        };
        while offset + HEADER <= size {
            let mut header = [0u8; HEADER as usize];
            file.read_exact_at(&mut header, offset)?;
            let Some((len, sum)) = frame_header(header) else {
                return Err(damaged(offset, "the frame's header fails its check"));
            };
            if len == 0 {
                // The end of the frames. Before the last segment, nothing may follow.
                if !last && !zeros_from(&file, offset, size)? {
                    return Err(damaged(
                        offset,
                        "data follows the end of the segment's frames",
                    ));
                }
                break;
            }
            let end = offset + HEADER + u64::from(len);
            let torn = if end > size {
                Some("the frame runs past the end of the file")
            } else {
                body.resize(len as usize, 0);
                file.read_exact_at(&mut body, offset + HEADER)?;
                (checksum(crc, &body) != sum).then_some("the frame's checksum does not match")
            };
            if let Some(problem) = torn {
                if last && zeros_from(&file, end.min(size), size)? {
                    eprintln!(
                        "orch manager: dropped the raft log's last write in {} at byte {offset} \
                         ({problem}): a crash tore it before it was acknowledged",
                        path.display()
                    );
                    break;
                }
                return Err(damaged(offset, problem));
            }
            // Whole as written: what cannot be read is damage, wherever it is.
            let records = parse(&body, offset == 0).map_err(|p| damaged(offset, &p))?;
            apply(&mut self.durable(), segment, records, offset + HEADER);
            crc = sum;
            offset = aligned(end);
        }
        Ok((offset, crc))
    }

    /// Write `ops` as one frame and wait until the disk has it.
    pub(crate) fn write<'a>(
        &mut self,
        ops: impl IntoIterator<Item = &'a Op>,
    ) -> Result<(), DiskError> {
        let mut records = Vec::new();
        for op in ops {
            encode(&mut records, op)?;
        }
        if records.is_empty() {
            return Ok(());
        }
        if self.offset > 0 && self.offset + 8 + records.len() as u64 > self.segment_size {
            self.rotate()?;
        }
        let header = HEADER as usize;
        let mut frame = vec![0u8; header];
        if self.offset == 0 {
            let meta = self.durable().meta.clone();
            record(&mut frame, HEAD, |out| json(out, &meta))?;
        }
        frame.extend_from_slice(&records);
        let len = u32::try_from(frame.len() - header).map_err(|_| too_large(frame.len()))?;
        let sum = checksum(self.crc, &frame[header..]);
        frame[..header].copy_from_slice(&encode_header(len, sum));
        frame.resize(aligned(frame.len() as u64) as usize, 0);
        let at = self.offset;
        // Read back as replay will, before it reaches the disk: a frame this code cannot
        // read is never written.
        let records = parse(&frame[header..header + len as usize], at == 0)
            .map_err(|problem| io::Error::other(format!("a log write is malformed: {problem}")))?;
        let segment = self
            .segments
            .last_mut()
            .ok_or_else(|| io::Error::other("the log has no segment"))?;
        segment.file.write_all_at(&frame, at)?;
        segment.file.sync_data()?;
        apply(&mut lock(&self.durable), segment, records, at + HEADER);
        self.offset = at + frame.len() as u64;
        self.crc = sum;
        self.drop_purged();
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), DiskError> {
        let seq = match self.segments.last() {
            Some(last) => last
                .seq
                .checked_add(1)
                .ok_or_else(|| io::Error::other("the log's segment numbers are used up"))?,
            None => 0,
        };
        self.segments
            .push(create_segment(&self.dir, seq, self.segment_size)?);
        self.offset = 0;
        self.crc = 0;
        Ok(())
    }

    /// Delete the segments before the last that hold only purged entries.
    fn drop_purged(&mut self) {
        let purged = self.durable().meta.last_purged.map(|l| l.index);
        while self.segments.len() > 1 {
            let first = &self.segments[0];
            if first
                .max_index
                .is_some_and(|max| purged.is_none_or(|p| max > p))
            {
                break;
            }
            // Left behind, it would only be read again at the next open: harmless.
            if let Err(e) = fs::remove_file(&first.path) {
                eprintln!(
                    "orch manager: could not delete the purged raft log segment {}: {e}",
                    first.path.display()
                );
            }
            self.segments.remove(0);
        }
    }

    /// The segment files, oldest first (for tests).
    #[cfg(test)]
    fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }
}

/// A record read from a frame's body.
enum Record {
    Head(Meta),
    /// An entry whose encoding is `len` bytes at `at` in the body.
    Entry {
        index: u64,
        at: usize,
        len: u32,
    },
    Truncate(u64),
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

/// The records of a frame's body (the first of its segment when `first`); what is
/// wrong with it.
fn parse(body: &[u8], first: bool) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < body.len() {
        let header = body
            .get(pos..pos + 5)
            .ok_or("a record's header is cut short")?;
        let kind = header[0];
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
        pos += 5;
        let payload = body
            .get(pos..pos + len as usize)
            .ok_or("a record runs past the end of its frame")?;
        if first && records.is_empty() && kind != HEAD {
            return Err("the segment does not begin with its head record".into());
        }
        let bad = |e: DiskError| format!("record of kind {kind}: {e}");
        let index = |what: &str| {
            payload
                .first_chunk::<8>()
                .map(|i| u64::from_le_bytes(*i))
                .ok_or(format!("a {what} record is shorter than its index"))
        };
        records.push(match kind {
            HEAD => Record::Head(disk::decode(payload).map_err(bad)?),
            ENTRY => Record::Entry {
                index: index("entry")?,
                at: pos + 8,
                len: len - 8,
            },
            TRUNCATE => Record::Truncate(index("truncate")?),
            PURGE => Record::Purge(disk::decode(payload).map_err(bad)?),
            VOTE => Record::Vote(disk::decode(payload).map_err(bad)?),
            COMMITTED => Record::Committed(disk::decode(payload).map_err(bad)?),
            other => return Err(format!("unknown record kind {other}")),
        });
        pos += len as usize;
    }
    Ok(records)
}

/// Apply the records of a frame whose body is at `at` of `segment` to the durable log.
fn apply(durable: &mut Durable, segment: &mut Segment, records: Vec<Record>, at: u64) {
    for record in records {
        match record {
            Record::Head(meta) => {
                durable.meta = meta;
                if let Some(purged) = durable.meta.last_purged {
                    durable.entries.purge(purged.index);
                }
            }
            Record::Entry {
                index,
                at: pos,
                len,
            } => {
                let loc = Loc {
                    file: segment.file.clone(),
                    at: at + pos as u64,
                    len,
                };
                durable.entries.put(index, loc);
                segment.max_index = segment.max_index.max(Some(index));
            }
            Record::Truncate(index) => durable.entries.truncate(index),
            Record::Purge(upto) => {
                durable.entries.purge(upto.index);
                durable.meta.last_purged = Some(upto);
            }
            Record::Vote(vote) => durable.meta.vote = Some(vote),
            Record::Committed(committed) => durable.meta.committed = committed,
        }
    }
}

fn encode(out: &mut Vec<u8>, op: &Op) -> Result<(), DiskError> {
    match op {
        Op::Append(entries) => {
            for entry in entries {
                record(out, ENTRY, |out| {
                    out.extend_from_slice(&entry.log_id.index.to_le_bytes());
                    json(out, entry)
                })?;
            }
            Ok(())
        }
        Op::Truncate(index) => record(out, TRUNCATE, |out| {
            out.extend_from_slice(&index.to_le_bytes());
            Ok(())
        }),
        Op::Purge(upto) => record(out, PURGE, |out| json(out, upto)),
        Op::Vote(vote) => record(out, VOTE, |out| json(out, vote)),
        Op::Committed(committed) => record(out, COMMITTED, |out| json(out, committed)),
    }
}

/// Append a record of `kind` whose payload `write` appends.
fn record(
    out: &mut Vec<u8>,
    kind: u8,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), DiskError>,
) -> Result<(), DiskError> {
    out.push(kind);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out)?;
    let len = out.len() - at - 4;
    let len = u32::try_from(len).map_err(|_| too_large(len))?;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn json<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), DiskError> {
    serde_json::to_writer(out.by_ref(), value)?;
    Ok(())
}

fn too_large(len: usize) -> DiskError {
    io::Error::other(format!(
        "a log write of {len} bytes is over the 4 GiB a frame holds"
    ))
    .into()
}

fn encode_header(len: u32, sum: u32) -> [u8; HEADER as usize] {
    let mut header = [0u8; HEADER as usize];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&sum.to_le_bytes());
    let check = checksum(0, &header[..8]);
    header[8..12].copy_from_slice(&check.to_le_bytes());
    header
}

/// A frame header's length and body crc; `(0, 0)` for zeros (no frame); `None` when it
/// fails its check.
fn frame_header(header: [u8; HEADER as usize]) -> Option<(u32, u32)> {
    if header == [0; HEADER as usize] {
        return Some((0, 0));
    }
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (len, sum) = (word(0), word(4));
    (len > 0 && encode_header(len, sum) == header).then_some((len, sum))
}

fn checksum(seed: u32, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(seed);
    hasher.update(body);
    hasher.finalize()
}

fn aligned(offset: u64) -> u64 {
    offset.div_ceil(HEADER) * HEADER
}

fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

/// The number in a segment's name (without `.wal`): exactly 16 lowercase hex digits.
fn segment_seq(name: &str) -> Option<u64> {
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if name.len() != 16 || !name.chars().all(hex) {
        return None;
    }
    u64::from_str_radix(name, 16).ok()
}

/// Copy what follows the frames of `segment` (from `offset`) to a file beside it, if
/// anything but zeros does, before it is cleared.
fn keep_aside(segment: &Segment, offset: u64) -> Result<(), DiskError> {
    let size = segment.file.metadata()?.len();
    if zeros_from(&segment.file, offset, size)? {
        return Ok(());
    }
    let aside = segment.path.with_extension(format!("wal.dropped-{offset}"));
    let mut out = File::create(&aside)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = offset;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        segment.file.read_exact_at(&mut buf[..n], at)?;
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    out.sync_all()?;
    eprintln!(
        "orch manager: {} held data after its last frame (a write a crash tore); kept in {}",
        segment.path.display(),
        aside.display()
    );
    Ok(())
}

/// `true` when the bytes of `file` in `from..to` are all zero.
fn zeros_from(file: &File, from: u64, to: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = (to - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// A new, empty segment: created aside, preallocated, synced, then renamed in.
fn create_segment(dir: &Path, seq: u64, size: u64) -> Result<Segment, DiskError> {
    let path = dir.join(segment_name(seq));
    let building = dir.join(format!("{}.tmp", segment_name(seq)));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&building)?;
    allocate(&file, size)?;
    file.sync_all()?;
    fs::rename(&building, &path)?;
    sync_dir(dir)?;
    Ok(Segment {
        seq,
        path,
        file: Arc::new(file),
        max_index: None,
    })
}

/// Reserve the first `size` bytes of `file` (reading as zeros until written).
fn allocate(file: &File, size: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(size).map_err(io::Error::other)?;
    // SAFETY: fallocate reads no memory of ours; the descriptor is open for writing.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(error);
    }
    // A file system without fallocate: a sparse file, which only costs the file's size
    // in each fdatasync.
    if file.metadata()?.len() < size {
        file.set_len(size)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Take `dir`'s lock, held while the returned file is open.
fn lock_dir(dir: &Path) -> Result<File, DiskError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    // SAFETY: flock reads no memory of ours; the descriptor is open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            return Err(DiskError::InUse { path });
        }
        return Err(error.into());
    }
    Ok(file)
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;

use super::*;
use crate::store::scratch::Scratch;
use openraft::{CommittedLeaderId, EntryPayload};

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Op {
    Op::Append(
        indexes
            .map(|index| Entry {
                log_id: log_id(term, index),
                payload: EntryPayload::Blank,
            })
            .collect(),
    )
}

/// (index, term) of every entry the log holds.
fn held(reader: &WalReader) -> Vec<(u64, u64)> {
    reader
        .entries(0, u64::MAX)
        .expect("read entries")
        .iter()
        .map(|e| (e.log_id.index, e.log_id.leader_id.term))
        .collect()
}

fn open(dir: &Path, segment_size: u64) -> (Wal, WalReader) {
    Wal::open_sized(dir, segment_size).expect("open the log")
}

/// Write each of `ops` as a frame of its own into a new log in `dir`: where each frame
/// starts, and where the last ends.
fn frames(dir: &Path, ops: Vec<Op>) -> Vec<u64> {
    let (mut wal, _) = open(dir, SEGMENT);
    let mut offsets = vec![wal.offset];
    for op in ops {
        wal.write(&[op]).expect("write");
        offsets.push(wal.offset);
    }
    offsets
}

/// The first segment of the log in `dir`, open to be damaged.
fn first_segment(dir: &Path) -> (PathBuf, File) {
    let path = dir.join(segment_name(0));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open the segment");
    (path, file)
}

#[test]
fn every_change_is_read_back_after_a_reopen() {
    let scratch = Scratch::new("wal-reopen");
    let dir = scratch.path().join("log");
    {
        let (mut wal, reader) = open(&dir, SEGMENT);
        wal.write(&[Op::Vote(Vote::new(2, 1)), entries(2, 1..=5)])
            .expect("write");
        wal.write(&[Op::Committed(Some(log_id(2, 3)))])
            .expect("write");
        // A new leader overwrites the uncommitted suffix.
        wal.write(&[Op::Truncate(4), entries(3, 4..=6)])
            .expect("write");
        wal.write(&[Op::Purge(log_id(2, 2))]).expect("write");
        assert_eq!(held(&reader), [(3, 2), (4, 3), (5, 3), (6, 3)]);
    }
    let (_wal, reader) = open(&dir, SEGMENT);
    assert_eq!(held(&reader), [(3, 2), (4, 3), (5, 3), (6, 3)]);
    let meta = reader.meta();
    assert_eq!(meta.vote, Some(Vote::new(2, 1)));
    assert_eq!(meta.committed, Some(log_id(2, 3)));
    assert_eq!(meta.last_purged, Some(log_id(2, 2)));
    assert_eq!(reader.last().expect("last"), Some(log_id(3, 6)));
    assert_eq!(reader.entries(4, 6).expect("range").len(), 2);
}

#[test]
fn a_torn_last_write_is_dropped_and_the_next_one_follows_it_cleanly() {
    let scratch = Scratch::new("wal-torn");
    let dir = scratch.path().join("log");
    let offsets = frames(&dir, vec![entries(1, 1..=2), entries(1, 3..=40)]);
    let (torn_at, torn_end) = (offsets[1], offsets[2]);
    // The crash wrote the frame's first sectors, not its last ones.
    let (_, file) = first_segment(&dir);
    let half = (torn_at + torn_end) / 2;
    file.write_all_at(&vec![0; (torn_end - half) as usize], half)
        .expect("tear");
    drop(file);
    {
        let (mut wal, reader) = open(&dir, SEGMENT);
        assert_eq!(held(&reader), [(1, 1), (2, 1)], "the torn frame is dropped");
        assert_eq!(wal.offset, torn_at);
        // Shorter than the torn frame: what the tear left must not follow it.
        wal.write(&[entries(2, 3..=3)]).expect("write");
        let file = &wal.segments[0].file;
        assert!(
            zeros_from(file, wal.offset, torn_end).expect("read"),
            "nothing of the torn frame is left after the next one"
        );
    }
    let (_wal, reader) = open(&dir, SEGMENT);
    assert_eq!(held(&reader), [(1, 1), (2, 1), (3, 2)]);
}

#[test]
fn a_frame_from_an_earlier_write_does_not_pass_for_the_next() {
    let scratch = Scratch::new("wal-stale");
    let dir = scratch.path().join("log");
    let offsets = frames(
        &dir,
        vec![entries(1, 1..=1), entries(1, 2..=2), entries(1, 3..=3)],
    );
    let (second, third, end) = (offsets[1], offsets[2], offsets[3]);
    // The second frame, byte for byte, again after the third: its checksum chains from
    // the first frame, not from the third (read as a frame, it would take entry 3 away).
    let (_, file) = first_segment(&dir);
    let mut frame = vec![0; (third - second) as usize];
    file.read_exact_at(&mut frame, second).expect("read");
    file.write_all_at(&frame, end).expect("write");
    drop(file);
    let (_wal, reader) = open(&dir, SEGMENT);
    assert_eq!(held(&reader), [(1, 1), (2, 1), (3, 1)]);
}

#[test]
fn damage_before_the_last_write_is_reported_with_its_file_and_offset() {
    let scratch = Scratch::new("wal-damage");
    let dir = scratch.path().join("log");
    let offsets = frames(
        &dir,
        vec![entries(1, 1..=3), entries(1, 4..=6), entries(1, 7..=9)],
    );
    let second = offsets[1];
    let (segment, file) = first_segment(&dir);
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, second + 20).expect("read");
    file.write_all_at(&[byte[0] ^ 0x40], second + 20)
        .expect("flip");
    drop(file);
    let error = Wal::open(&dir).expect_err("damage is refused");
    match &error {
        DiskError::Damaged { path, offset, .. } => {
            assert_eq!((path, *offset), (&segment, second));
        }
        other => panic!("expected damage, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&segment.display().to_string()) && message.contains("checksum"),
        "{message}"
    );
}

#[test]
fn segments_roll_over_and_those_holding_only_purged_entries_are_deleted() {
    let scratch = Scratch::new("wal-segments");
    let dir = scratch.path().join("log");
    let size = 2048;
    {
        let (mut wal, reader) = open(&dir, size);
        wal.write(&[Op::Vote(Vote::new(1, 1))]).expect("write");
        for index in 1..=100 {
            wal.write(&[entries(1, index..=index)]).expect("write");
        }
        let before = wal.segment_paths();
        assert!(before.len() > 5, "{} segments", before.len());
        wal.write(&[Op::Purge(log_id(1, 60))]).expect("write");
        let after = wal.segment_paths();
        assert!(after.len() < before.len());
        for gone in before.iter().filter(|p| !after.contains(p)) {
            assert!(!gone.exists(), "{} is deleted", gone.display());
        }
        assert_eq!(reader.entries(0, 61).expect("read"), []);
    }
    let (_wal, reader) = open(&dir, size);
    let indexes: Vec<u64> = held(&reader).iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, (61..=100).collect::<Vec<_>>());
    let meta = reader.meta();
    assert_eq!(
        meta.vote,
        Some(Vote::new(1, 1)),
        "carried by each segment's head"
    );
    assert_eq!(meta.last_purged, Some(log_id(1, 60)));
}

#[test]
fn a_second_open_of_the_same_log_is_refused() {
    let scratch = Scratch::new("wal-lock");
    let dir = scratch.path().join("log");
    let first = open(&dir, SEGMENT);
    let error = Wal::open(&dir).expect_err("the log is in use");
    assert!(matches!(error, DiskError::InUse { .. }), "{error}");
    drop(first);
    open(&dir, SEGMENT);
}

#[test]
fn a_damaged_frame_length_is_damage_not_a_torn_write() {
    let scratch = Scratch::new("wal-len");
    let dir = scratch.path().join("log");
    let offsets = frames(
        &dir,
        vec![entries(1, 1..=10), entries(1, 11..=20), entries(1, 21..=30)],
    );
    // A length pointing past every frame would look like a write cut short.
    let (segment, file) = first_segment(&dir);
    let mut len = [0u8; 4];
    file.read_exact_at(&mut len, offsets[1]).expect("read");
    let flipped = u32::from_le_bytes(len) | 1 << 16;
    file.write_all_at(&flipped.to_le_bytes(), offsets[1])
        .expect("flip");
    drop(file);
    match Wal::open(&dir) {
        Err(DiskError::Damaged { path, offset, .. }) => {
            assert_eq!((path, offset), (segment, offsets[1]));
        }
        other => panic!("expected damage, got {other:?}"),
    }
}

#[test]
fn a_frame_that_passes_its_checksum_but_cannot_be_read_is_damage() {
    let scratch = Scratch::new("wal-kind");
    let dir = scratch.path().join("log");
    let (at, crc) = {
        let (mut wal, _) = open(&dir, SEGMENT);
        wal.write(&[entries(1, 1..=2)]).expect("write");
        (wal.offset, wal.crc)
    };
    // What a later orch might write: an entry, then a record kind this one lacks.
    let mut body = Vec::new();
    encode(&mut body, &entries(1, 3..=3)).expect("encode");
    record(&mut body, 9, |_| Ok(())).expect("record");
    let mut frame = encode_header(body.len() as u32, checksum(crc, &body)).to_vec();
    frame.extend_from_slice(&body);
    first_segment(&dir)
        .1
        .write_all_at(&frame, at)
        .expect("write");
    match Wal::open(&dir) {
        Err(DiskError::Damaged {
            offset, problem, ..
        }) => {
            assert_eq!(offset, at);
            assert!(problem.contains("unknown record kind 9"), "{problem}");
        }
        other => panic!("expected damage, got {other:?}"),
    }
}

/// 40 one-entry frames in segments of 1 KiB, then a purge of the first 5 entries: the
/// segment paths, and where each frame of the first segment starts.
fn small_segments(dir: &Path) -> (Vec<PathBuf>, Vec<u64>) {
    let (mut wal, _) = open(dir, 1024);
    let mut first = Vec::new();
    for index in 1..=40 {
        if wal.segments.len() == 1 {
            first.push(wal.offset);
        }
        wal.write(&[entries(1, index..=index)]).expect("write");
    }
    wal.write(&[Op::Purge(log_id(1, 5))]).expect("write");
    let paths = wal.segment_paths();
    assert!(paths.len() > 3, "{} segments", paths.len());
    (paths, first)
}

fn expect_damage(dir: &Path, what: &str) -> (PathBuf, u64, String) {
    match Wal::open_sized(dir, 1024) {
        Err(DiskError::Damaged {
            path,
            offset,
            problem,
        }) => (path, offset, problem),
        other => panic!("{what}: expected damage, got {other:?}"),
    }
}

#[test]
fn a_hole_before_the_last_segment_is_damage() {
    let scratch = Scratch::new("wal-hole");
    let dir = scratch.path().join("log");
    let (paths, first) = small_segments(&dir);
    // A lost sector in the middle of the first segment reads as zeros.
    let header = vec![0u8; HEADER as usize];
    first_segment(&dir)
        .1
        .write_all_at(&header, first[3])
        .expect("zero");
    let (path, offset, _) = expect_damage(&dir, "a zeroed header");
    assert_eq!((path, offset), (paths[0].clone(), first[3]));
}

#[test]
fn a_missing_segment_is_damage() {
    let scratch = Scratch::new("wal-missing");
    let dir = scratch.path().join("log");
    let (paths, _) = small_segments(&dir);
    std::fs::remove_file(&paths[2]).expect("remove");
    let (path, _, problem) = expect_damage(&dir, "a segment gone from the middle");
    assert_eq!(path, paths[2]);
    assert!(problem.contains("missing"), "{problem}");
}

#[test]
fn a_log_that_does_not_start_after_its_last_purged_entry_is_damage() {
    let scratch = Scratch::new("wal-start");
    let dir = scratch.path().join("log");
    let (paths, _) = small_segments(&dir);
    // The first segment held entries 1 to 6 or more, and only 1 to 5 are purged.
    std::fs::remove_file(&paths[0]).expect("remove");
    let (_, _, problem) = expect_damage(&dir, "the first segment gone");
    assert!(problem.contains("last purged one is 5"), "{problem}");
}

#[test]
fn what_follows_the_last_frame_is_kept_aside_before_it_is_cleared() {
    let scratch = Scratch::new("wal-aside");
    let dir = scratch.path().join("log");
    let offsets = frames(&dir, vec![entries(1, 1..=2), entries(1, 3..=40)]);
    // A crash lost the last write's first sector (its header), not the rest.
    let (_, file) = first_segment(&dir);
    file.write_all_at(&[0; 512], offsets[1])
        .expect("lose a sector");
    drop(file);
    let (_wal, reader) = open(&dir, SEGMENT);
    assert_eq!(held(&reader), [(1, 1), (2, 1)]);
    let aside = dir.join(format!("{}.dropped-{}", segment_name(0), offsets[1]));
    let kept = std::fs::read(&aside).expect("the dropped bytes are kept");
    assert_eq!(kept.len() as u64, SEGMENT - offsets[1]);
    assert!(kept.iter().any(|b| *b != 0));
}

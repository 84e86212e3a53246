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

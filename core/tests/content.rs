//! Content store behaviour: commit rules, resume, locking, fsck and gc.
//! Everything runs in a private tempdir and needs no root.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};

use berth_core::content::{ContentError, ContentStore, Problem};
use berth_core::{Digest, ErrorKind};

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    (dir, store)
}

fn ingest_is_empty(store: &ContentStore) -> bool {
    fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .next()
        .is_none()
}

fn read_all(store: &ContentStore, d: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    store.reader(d).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn write_commit_read_round_trip() {
    let (_tmp, store) = store();
    let data = b"hello, berth".repeat(10_000);
    let want = Digest::of(&data);
    let mut w = store
        .writer("layer-1", Some((want, data.len() as u64)))
        .unwrap();
    for chunk in data.chunks(4096) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.offset(), data.len() as u64);
    assert_eq!(w.commit().unwrap(), want);

    assert!(store.exists(&want));
    assert_eq!(store.info(&want).unwrap(), data.len() as u64);
    assert_eq!(read_all(&store, &want), data);
    assert_eq!(store.list().unwrap(), vec![want]);
    let path = store.root().join("blobs/sha256").join(want.hex());
    assert_eq!(store.blob_path(&want), path);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert!(ingest_is_empty(&store));
    assert!(store.fsck().unwrap().is_empty());
}

#[test]
fn commit_without_expectation_returns_digest() {
    let (_tmp, store) = store();
    let mut w = store.writer("anon", None).unwrap();
    w.write_all(b"hello").unwrap();
    let d = w.commit().unwrap();
    assert_eq!(d, Digest::of(b"hello"));
    assert_eq!(read_all(&store, &d), b"hello");
}

#[test]
fn digest_mismatch_leaves_nothing() {
    let (_tmp, store) = store();
    let wrong = Digest::of(b"something else");
    let mut w = store.writer("bad", Some((wrong, 5))).unwrap();
    w.write_all(b"hello").unwrap();
    let err = w.commit().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    let msg = err.to_string();
    assert!(
        matches!(&err, ContentError::DigestMismatch { expected, actual, .. }
            if *expected == wrong && *actual == Digest::of(b"hello")),
        "{msg}"
    );
    assert!(msg.contains(&wrong.to_string()) && msg.contains(&Digest::of(b"hello").to_string()));
    assert!(store.list().unwrap().is_empty());
    assert!(!store.exists(&Digest::of(b"hello")));
    assert!(ingest_is_empty(&store));
}

#[test]
fn size_mismatch_leaves_nothing() {
    let (_tmp, store) = store();
    let d = Digest::of(b"hello");
    let mut w = store.writer("short", Some((d, 6))).unwrap();
    w.write_all(b"hello").unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 6,
                actual: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "ingest \"short\": size mismatch: expected 6 bytes, got 5"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(ingest_is_empty(&store));
}

#[test]
fn write_past_expected_size_fails() {
    let (_tmp, store) = store();
    let mut w = store.writer("big", Some((Digest::of(b"hey"), 3))).unwrap();
    let err = w.write_all(b"hello").unwrap_err();
    let inner = err
        .get_ref()
        .unwrap()
        .downcast_ref::<ContentError>()
        .unwrap();
    assert!(matches!(
        inner,
        ContentError::TooLarge {
            expected: 3,
            attempted: 5,
            ..
        }
    ));
    assert_eq!(w.offset(), 0);
    w.write_all(b"hey").unwrap();
    assert_eq!(w.commit().unwrap(), Digest::of(b"hey"));
}

#[test]
fn resume_after_dropped_writer() {
    let (_tmp, store) = store();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let want = (Digest::of(&data), data.len() as u64);
    {
        let mut w = store.writer("resume", Some(want)).unwrap();
        w.write_all(&data[..1_234_567]).unwrap();
        // Dropped without commit, as if the connection died.
    }
    let mut w = store.writer("resume", Some(want)).unwrap();
    assert_eq!(w.offset(), 1_234_567);
    // The partial bytes can be replayed, exactly those and no more.
    let mut replay = Vec::new();
    w.partial_reader()
        .unwrap()
        .read_to_end(&mut replay)
        .unwrap();
    assert_eq!(replay, data[..1_234_567]);
    w.write_all(&data[1_234_567..]).unwrap();
    assert_eq!(w.commit().unwrap(), want.0);
    assert_eq!(read_all(&store, &want.0), data);
    assert!(ingest_is_empty(&store));
}

#[test]
fn resume_of_oversized_ingest_restarts() {
    let (_tmp, store) = store();
    {
        let mut w = store.writer("r", None).unwrap();
        w.write_all(b"0123456789").unwrap();
    }
    let w = store.writer("r", Some((Digest::of(b"abc"), 3))).unwrap();
    assert_eq!(w.offset(), 0);
}

#[test]
fn abort_discards() {
    let (_tmp, store) = store();
    let mut w = store.writer("a", None).unwrap();
    w.write_all(b"partial").unwrap();
    w.abort().unwrap();
    assert!(ingest_is_empty(&store));
    let w = store.writer("a", None).unwrap();
    assert_eq!(w.offset(), 0);
    w.abort().unwrap();

    let mut w = store.writer("b", None).unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    store.abort_ingest("b").unwrap();
    store.abort_ingest("never-existed").unwrap();
    assert!(ingest_is_empty(&store));
}

#[test]
fn second_writer_for_busy_ref_conflicts() {
    let (_tmp, store) = store();
    let mut first = store.writer("same", None).unwrap();
    first.write_all(b"first").unwrap();
    let err = store.writer("same", None).unwrap_err();
    assert!(
        matches!(&err, ContentError::Busy(r) if r == "same"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        "ingest \"same\" is in use by another writer"
    );
    assert!(matches!(
        store.abort_ingest("same"),
        Err(ContentError::Busy(_))
    ));
    // Another ref is independent.
    store.writer("other", None).unwrap();
    // The first writer is unharmed and its lock goes with it.
    assert_eq!(first.commit().unwrap(), Digest::of(b"first"));
    let w = store.writer("same", None).unwrap();
    assert_eq!(w.offset(), 0);
}

#[test]
fn concurrent_writers_from_threads() {
    let (_tmp, store) = store();
    let data = Arc::new(b"racing bytes".repeat(100_000));
    let want = Digest::of(&data);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, data, barrier) = (store.clone(), data.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                match store.writer("shared-ref", Some((want, data.len() as u64))) {
                    Ok(mut w) => {
                        let start = w.offset() as usize;
                        w.write_all(&data[start..]).unwrap();
                        w.commit().map(Some)
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .collect();
    let mut committed = 0;
    for h in handles {
        match h.join().unwrap() {
            Ok(Some(d)) => {
                assert_eq!(d, want);
                committed += 1;
            }
            Ok(None) => unreachable!(),
            Err(ContentError::Busy(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(committed >= 1);
    assert_eq!(read_all(&store, &want), *data);
    assert!(store.fsck().unwrap().is_empty());
    assert!(ingest_is_empty(&store));
}

#[test]
fn commit_of_present_blob_is_idempotent() {
    let (_tmp, store) = store();
    let d = Digest::of(b"same content");
    for name in ["one", "two", "one"] {
        let mut w = store.writer(name, Some((d, 12))).unwrap();
        w.write_all(b"same content").unwrap();
        assert_eq!(w.commit().unwrap(), d);
    }
    assert_eq!(store.list().unwrap(), vec![d]);
    assert!(ingest_is_empty(&store));
}

#[test]
fn fsck_finds_corruption_foreign_files_and_stale_ingests() {
    let (_tmp, store) = store();
    let good = put(&store, b"good");
    let bad = put(&store, b"bad blob");
    let path = store.blob_path(&bad);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    fs::write(store.root().join("blobs/sha256/not-a-digest"), b"x").unwrap();
    {
        let mut w = store.writer("stale", None).unwrap();
        w.write_all(b"abc").unwrap();
    }
    let mut busy = store.writer("busy", None).unwrap();
    busy.write_all(b"in progress").unwrap();

    let problems = store.fsck().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.contains(&Problem::Corrupted {
        digest: bad,
        actual: Digest::of(&bytes)
    }));
    assert!(
        problems.iter().any(
            |p| matches!(p, Problem::UnexpectedFile { path } if path.ends_with("not-a-digest"))
        )
    );
    assert!(problems.iter().any(
        |p| matches!(p, Problem::StaleIngest { ref_name, size: 3, .. } if ref_name == "stale")
    ));
    assert!(problems.iter().all(|p| !p.to_string().is_empty()));
    assert!(
        !problems
            .iter()
            .any(|p| p.to_string().contains(&good.to_string()))
    );
    // fsck's probe released the stale ingest again.
    assert_eq!(store.writer("stale", None).unwrap().offset(), 3);
}

#[test]
fn gc_removes_unreferenced_blobs() {
    let (_tmp, store) = store();
    let a = put(&store, b"a");
    let b = put(&store, b"bb");
    let c = put(&store, b"ccc");
    let keep: HashSet<Digest> = [a].into_iter().collect();
    let stats = store.gc(&keep).unwrap();
    let mut removed = vec![b, c];
    removed.sort();
    assert_eq!(stats.removed, removed);
    assert_eq!(stats.reclaimed_bytes, 5);
    assert_eq!(store.list().unwrap(), vec![a]);
    assert!(store.gc(&keep).unwrap().removed.is_empty());
}

#[test]
fn missing_blobs_are_not_found() {
    let (_tmp, store) = store();
    let d = Digest::of(b"nope");
    for err in [
        store.reader(&d).unwrap_err(),
        store.info(&d).map(|_| ()).unwrap_err(),
        store.delete(&d).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), format!("blob {d} not found"));
    }
    assert!(!store.exists(&d));
    let a = put(&store, b"x");
    store.delete(&a).unwrap();
    assert!(!store.exists(&a));
    let err = store.writer("", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn reopening_the_store_keeps_everything() {
    let (tmp, store) = store();
    let a = put(&store, b"persist");
    {
        let mut w = store.writer("half", None).unwrap();
        w.write_all(b"half").unwrap();
    }
    drop(store);
    let store = ContentStore::open(tmp.path().join("content")).unwrap();
    assert_eq!(store.list().unwrap(), vec![a]);
    assert_eq!(store.writer("half", None).unwrap().offset(), 4);
}

fn put(store: &ContentStore, data: &[u8]) -> Digest {
    let d = Digest::of(data);
    let mut w = store
        .writer(&format!("put-{d}"), Some((d, data.len() as u64)))
        .unwrap();
    w.write_all(data).unwrap();
    w.commit().unwrap()
}

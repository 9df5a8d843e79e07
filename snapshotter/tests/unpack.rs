//! Unpacking real gzip and zstd layers into the overlay snapshotter. Needs
//! root (ownership, whiteout device nodes, mounts).

use std::fs;
use std::io::{self, Read, Write};

use berth_core::image::chain_ids;
use berth_core::{Digest, ErrorKind};
use berth_snapshotter::conformance::{Mounted, TempDir};
use berth_snapshotter::unpack::{self, LayerOutcome, UnpackError};
use berth_snapshotter::{Compression, OverlaySnapshotter, Snapshotter};

/// A tar of `(name, content)` regular files, padded with zero blocks to a
/// 10 KiB record as GNU tar does (the padding is part of the diff ID).
fn layer_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, content.as_bytes()).unwrap();
    }
    let mut tar = b.into_inner().unwrap();
    tar.resize(tar.len().div_ceil(10240) * 10240, 0);
    tar
}

fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

struct Env {
    snapshotter: OverlaySnapshotter,
    tmp: TempDir,
}

fn env(name: &str) -> Env {
    let tmp = TempDir::new(name).unwrap();
    let snapshotter = OverlaySnapshotter::open(tmp.path().join("root")).unwrap();
    Env { snapshotter, tmp }
}

/// A reader that fails the test if anything reads it.
struct MustNotRead;

impl Read for MustNotRead {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        panic!("the layer was read although its chain ID is committed")
    }
}

#[test]
fn media_types_and_magic() {
    let cases = [
        (
            "application/vnd.oci.image.layer.v1.tar",
            Some(Compression::None),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Some(Compression::Zstd),
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            Some(Compression::Zstd),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Some(Compression::Gzip),
        ),
        ("application/vnd.oci.image.layer.v1.tar+bzip2", None),
        ("application/vnd.oci.image.config.v1+json", None),
    ];
    for (media_type, expected) in cases {
        assert_eq!(
            Compression::from_media_type(media_type),
            expected,
            "{media_type}"
        );
    }
    let tar = layer_tar(&[("a", "a")]);
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let data = compress(&tar, c);
        assert_eq!(Compression::from_magic(&data), c);
        let mut reader = io::BufReader::new(data.as_slice());
        assert_eq!(Compression::detect(&mut reader).unwrap(), c);
        let mut out = Vec::new();
        berth_snapshotter::decompress::decoder(c, reader)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar, "{c} round trip");
    }
}

#[test]
fn unpacks_gzip_and_zstd_and_dedups() {
    let e = env("berth-unpack-dedup");
    let s = &e.snapshotter;
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let tar = layer_tar(&[("etc/hello", c.name()), ("bin/tool", "#!/bin/sh")]);
        let diff_id = Digest::of(&tar);
        let chain_id = diff_id.to_string();
        let outcome = unpack::unpack_layer(
            s,
            &chain_id,
            None,
            compress(&tar, c).as_slice(),
            c,
            Some(diff_id),
        )
        .unwrap();
        let LayerOutcome::Unpacked {
            diff_id: got,
            stats,
        } = outcome
        else {
            panic!("{c}: first unpack reported the layer present");
        };
        assert_eq!(
            got, diff_id,
            "{c}: diff ID must cover the tar's padding too"
        );
        assert_eq!(stats.files, 2);
        assert!(s.is_committed(&chain_id));

        let view = s.view(&format!("view-{c}"), Some(&chain_id)).unwrap();
        let m = Mounted::new(&view, &e.tmp.path().join(format!("mnt-{c}")));
        assert_eq!(
            fs::read_to_string(m.path().join("etc/hello")).unwrap(),
            c.name()
        );

        let again =
            unpack::unpack_layer(s, &chain_id, None, MustNotRead, c, Some(diff_id)).unwrap();
        assert!(matches!(again, LayerOutcome::AlreadyPresent));
    }
    // Only the three layers and their views: no leftover active snapshots.
    assert_eq!(s.list().unwrap().len(), 6);
}

#[test]
fn diff_id_mismatch_keeps_nothing() {
    let e = env("berth-unpack-mismatch");
    let s = &e.snapshotter;
    let tar = layer_tar(&[("a", "a")]);
    let wrong = Digest::of(b"something else");
    let err = unpack::unpack_detached(
        s,
        compress(&tar, Compression::Gzip).as_slice(),
        Compression::Gzip,
        Some(wrong),
    )
    .unwrap_err();
    assert!(
        matches!(&err, UnpackError::DiffIdMismatch { expected, actual } if *expected == wrong && *actual == Digest::of(&tar)),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains(&wrong.to_string()), "{err}");
    let err = unpack::unpack_layer(
        s,
        &wrong.to_string(),
        None,
        tar.as_slice(),
        Compression::None,
        Some(wrong),
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err}");
    assert!(
        s.list().unwrap().is_empty(),
        "a failed unpack kept a snapshot"
    );
    assert_eq!(
        fs::read_dir(e.tmp.path().join("root/snapshots"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn corrupt_streams_name_the_compression_and_keep_nothing() {
    let e = env("berth-unpack-corrupt");
    let s = &e.snapshotter;
    let tar = layer_tar(&[("big", &"0123456789".repeat(50_000)), ("b", "b")]);
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut data = compress(&tar, c);
        // Damage the middle of the compressed data.
        let mid = data.len() / 2;
        for b in &mut data[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let err = unpack::unpack_detached(s, data.as_slice(), c, None).unwrap_err();
        assert!(matches!(err, UnpackError::Decode(_)), "{c}: {err:?}");
        assert!(err.to_string().contains(c.name()), "{c}: {err}");
        assert_eq!(err.kind(), ErrorKind::Integrity);

        // Truncated streams fail too, not silently shorten the layer.
        let data = compress(&tar, c);
        let err = unpack::unpack_detached(s, &data[..data.len() / 2], c, None).unwrap_err();
        assert!(err.to_string().contains(c.name()), "{c}: {err}");
    }
    let err =
        unpack::unpack_detached(s, &b"not gzip at all"[..], Compression::Gzip, None).unwrap_err();
    assert!(err.to_string().contains("gzip"), "{err}");
    assert!(
        s.list().unwrap().is_empty(),
        "a failed unpack kept a snapshot"
    );
    assert_eq!(
        fs::read_dir(e.tmp.path().join("root/snapshots"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn parallel_unpack_then_commit_chain() {
    let e = env("berth-unpack-parallel");
    let s = &e.snapshotter;
    let tars = [
        layer_tar(&[("base.txt", "base"), ("etc/gone", "g"), ("etc/conf", "v1")]),
        layer_tar(&[("etc/.wh.gone", ""), ("etc/conf", "v2")]),
        layer_tar(&[("top.txt", "top")]),
    ];
    let compressions = [Compression::Gzip, Compression::Zstd, Compression::Gzip];
    let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::of(t)).collect();
    let chain: Vec<String> = chain_ids(&diff_ids).iter().map(|d| d.to_string()).collect();

    let unpacked: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = tars
            .iter()
            .zip(compressions)
            .zip(&diff_ids)
            .map(|((tar, c), diff_id)| {
                let data = compress(tar, c);
                scope.spawn(move || unpack::unpack_detached(s, data.as_slice(), c, Some(*diff_id)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });

    unpack::commit_chain(s, unpacked.into_iter().zip(chain.iter().cloned()), None).unwrap();
    for (i, id) in chain.iter().enumerate() {
        let info = s.stat(id).unwrap();
        assert_eq!(info.parent.as_ref(), i.checked_sub(1).map(|p| &chain[p]));
    }
    assert_eq!(
        s.list().unwrap().len(),
        3,
        "active snapshots left after commit"
    );

    let view = s.view("rootfs", Some(&chain[2])).unwrap();
    let m = Mounted::new(&view, &e.tmp.path().join("mnt"));
    let read = |p: &str| fs::read_to_string(m.path().join(p)).ok();
    assert_eq!(read("base.txt").as_deref(), Some("base"));
    assert_eq!(read("etc/conf").as_deref(), Some("v2"));
    assert_eq!(read("top.txt").as_deref(), Some("top"));
    assert!(
        m.path().join("etc/gone").symlink_metadata().is_err(),
        "whiteout ignored"
    );
}

#[test]
fn commit_chain_refuses_wrong_order_and_keeps_nothing() {
    let e = env("berth-unpack-order");
    let s = &e.snapshotter;
    let tars = [layer_tar(&[("a", "a")]), layer_tar(&[("b", "b")])];
    let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::of(t)).collect();
    let chain = chain_ids(&diff_ids);
    let unpacked: Vec<_> = tars
        .iter()
        .map(|t| unpack::unpack_detached(s, t.as_slice(), Compression::None, None).unwrap())
        .collect();
    // Layers swapped against their chain IDs.
    let err = unpack::commit_chain(
        s,
        unpacked
            .into_iter()
            .rev()
            .zip(chain.iter().map(|d| d.to_string())),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::ChainIdMismatch { .. }), "{err}");
    assert!(
        s.list().unwrap().is_empty(),
        "snapshots kept after a refused chain"
    );

    // On a base parent: the first chain ID follows from it.
    let base = unpack::unpack_detached(s, tars[0].as_slice(), Compression::None, None).unwrap();
    unpack::commit_chain(s, [(base, chain[0].to_string())], None).unwrap();
    let top = unpack::unpack_detached(s, tars[1].as_slice(), Compression::None, None).unwrap();
    unpack::commit_chain(
        s,
        [(top, chain[1].to_string())],
        Some(&chain[0].to_string()),
    )
    .unwrap();
    assert_eq!(
        s.stat(&chain[1].to_string()).unwrap().parent,
        Some(chain[0].to_string())
    );
}

/// Fails after handing out `good` bytes, as a dropped download would.
struct FailingReader<'a> {
    good: &'a [u8],
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "network down",
            ));
        }
        self.good.read(buf)
    }
}

#[test]
fn input_errors_are_not_blamed_on_the_decoder() {
    let e = env("berth-unpack-input-error");
    let s = &e.snapshotter;
    let tar = layer_tar(&[("big", &"abcdefgh".repeat(100_000)), ("b", "b")]);
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let data = compress(&tar, c);
        let reader = FailingReader {
            good: &data[..data.len() / 2],
        };
        let err = unpack::unpack_detached(s, reader, c, None).unwrap_err();
        assert!(!matches!(err, UnpackError::Decode(_)), "{c}: {err:?}");
        let mut chain = Vec::new();
        let mut cur: Option<&dyn std::error::Error> = Some(&err);
        while let Some(e) = cur {
            chain.push(e.to_string());
            cur = e.source();
        }
        assert!(
            chain.iter().any(|m| m.contains("network down")),
            "{c}: {chain:?}"
        );
    }
    assert!(
        s.list().unwrap().is_empty(),
        "a failed unpack kept a snapshot"
    );
}

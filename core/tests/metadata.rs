//! The metadata store: references, resolution the way Docker does it,
//! `rmi` semantics, gc roots, leases, key/value tables, persistence.

use std::collections::HashSet;
use std::time::Duration;

use berth_core::image::{
    MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST, chain_ids,
};
use berth_core::{
    ContentStore, Digest, ErrorKind, Image, Layer, MetadataError, MetadataStore, Reference,
    Removed, Target,
};

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// A synthetic image whose config digest is `Digest::of(config)`.
fn image(config: &[u8], layers: &[&[u8]]) -> Image {
    let diff_ids: Vec<Digest> = layers
        .iter()
        .map(|l| Digest::of(&[l, &b"-diff"[..]].concat()))
        .collect();
    let chains = chain_ids(&diff_ids);
    let layers: Vec<Layer> = layers
        .iter()
        .zip(diff_ids.iter().zip(chains))
        .map(|(l, (diff_id, chain_id))| Layer {
            blob: Target {
                digest: Digest::of(l),
                media_type: MEDIA_TYPE_OCI_LAYER_GZIP.into(),
                size: l.len() as u64,
            },
            diff_id: *diff_id,
            chain_id,
        })
        .collect();
    Image {
        target: Target {
            digest: Digest::of(&[config, &b"-manifest"[..]].concat()),
            media_type: MEDIA_TYPE_OCI_MANIFEST.into(),
            size: 100,
        },
        index: None,
        config: Target {
            digest: Digest::of(config),
            media_type: MEDIA_TYPE_OCI_CONFIG.into(),
            size: config.len() as u64,
        },
        layers,
        created: None,
        architecture: "amd64".into(),
        os: "linux".into(),
        size: 0,
    }
}

/// Finds config bytes whose digest hex starts with `prefix`.
fn config_with_prefix(prefix: &str, salt: &str) -> Vec<u8> {
    (0u64..)
        .map(|i| format!("{salt}-{i}").into_bytes())
        .find(|c| Digest::of(c).hex().starts_with(prefix))
        .unwrap()
}

fn open() -> (tempfile::TempDir, MetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn tag_untag_and_get_by_ref() {
    let (_dir, md) = open();
    let img = image(b"cfg-a", &[b"l1", b"l2"]);
    md.put_image(&img, &[r("busybox")], None).unwrap();
    assert_eq!(
        md.get_by_ref(&r("docker.io/library/busybox:latest"))
            .unwrap(),
        Some(img.clone())
    );
    assert_eq!(md.get_image(&img.target.digest).unwrap(), Some(img.clone()));

    let tagged = md.tag("busybox", &r("localhost:5000/mine:v1")).unwrap();
    assert_eq!(tagged, img);
    assert_eq!(md.resolve("localhost:5000/mine:v1").unwrap(), img);
    let refs: Vec<String> = md
        .references()
        .unwrap()
        .iter()
        .map(|(r, _)| r.to_string())
        .collect();
    assert_eq!(
        refs,
        ["docker.io/library/busybox:latest", "localhost:5000/mine:v1"]
    );

    assert_eq!(md.untag(&r("busybox:latest")).unwrap(), img.target.digest);
    assert_eq!(md.get_by_ref(&r("busybox")).unwrap(), None);
    let err = md.untag(&r("busybox:latest")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("busybox:latest"), "{err}");
    // The record stays after untag.
    assert!(md.get_image(&img.target.digest).unwrap().is_some());

    // Digest references must name the image; tag+digest is refused.
    let by_digest = Reference::parse(&format!("busybox@{}", img.target.digest)).unwrap();
    md.tag("localhost:5000/mine:v1", &by_digest).unwrap();
    let wrong = Reference::parse(&format!("busybox@{}", Digest::of(b"other"))).unwrap();
    let err = md.tag("localhost:5000/mine:v1", &wrong).unwrap_err();
    assert!(matches!(err, MetadataError::DigestMismatch { .. }), "{err}");
    let both = Reference::parse(&format!("busybox:1@{}", img.target.digest)).unwrap();
    assert!(matches!(
        md.tag("localhost:5000/mine:v1", &both).unwrap_err(),
        MetadataError::TagAndDigest(_)
    ));
    assert_eq!(
        md.tag("nope", &r("x:y")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn resolve_like_docker() {
    let (_dir, md) = open();
    let a = image(&config_with_prefix("ab", "a"), &[b"la"]);
    let b = image(&config_with_prefix("ab", "b"), &[b"lb"]);
    md.put_image(&a, &[r("alpha:1")], None).unwrap();
    md.put_image(&b, &[r("beta")], None).unwrap();

    assert_eq!(md.resolve("alpha:1").unwrap(), a);
    assert_eq!(md.resolve("docker.io/library/beta:latest").unwrap(), b);
    assert_eq!(md.resolve("beta").unwrap(), b);
    // Full ID (config digest), with and without prefix; manifest digest too.
    assert_eq!(md.resolve(&a.id().to_string()).unwrap(), a);
    assert_eq!(md.resolve(&a.id().hex()).unwrap(), a);
    assert_eq!(md.resolve(&a.target.digest.to_string()).unwrap(), a);
    // Unique short IDs.
    assert_eq!(md.resolve(&a.id().hex()[..12]).unwrap(), a);
    assert_eq!(
        md.resolve(&format!("sha256:{}", &b.id().hex()[..10]))
            .unwrap(),
        b
    );
    // Shared prefix: ambiguous, naming both IDs.
    let err = md.resolve("ab").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let msg = err.to_string();
    assert!(
        msg.contains("ambiguous")
            && msg.contains(&a.id().to_string())
            && msg.contains(&b.id().to_string()),
        "{msg}"
    );
    // Unknown things.
    for input in [
        "alpha:2",
        "gamma",
        "ffffffffffff",
        "sha256:zz",
        &Digest::of(b"x").to_string(),
    ] {
        let err = md.resolve(input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{input}: {err}");
        assert!(err.to_string().contains(input), "{err}");
    }
    // name@digest of an image pulled by tag.
    assert_eq!(md.resolve(&format!("beta@{}", b.target.digest)).unwrap(), b);
    // A tag named like a hex prefix wins over the ID prefix, as in Docker.
    md.tag(&a.id().hex()[..12], &r("ab")).unwrap();
    assert_eq!(md.resolve("ab").unwrap(), a);
}

#[test]
fn list_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let a = image(b"cfg-1", &[b"x"]);
    let b = image(b"cfg-2", &[b"y", b"z"]);
    {
        let md = MetadataStore::open(dir.path()).unwrap();
        md.put_image(&a, &[r("one:1"), r("one:2")], None).unwrap();
        md.put_image(&b, &[], None).unwrap();
        md.put("containers", "c1", &serde_json::json!({"name": "web"}))
            .unwrap();
    }
    let md = MetadataStore::open(dir.path()).unwrap();
    let list = md.list().unwrap();
    assert_eq!(list.len(), 2);
    let entry_a = list.iter().find(|e| e.image == a).unwrap();
    let names: Vec<String> = entry_a.references.iter().map(|r| r.familiar()).collect();
    assert_eq!(names, ["one:1", "one:2"]);
    assert!(
        list.iter()
            .find(|e| e.image == b)
            .unwrap()
            .references
            .is_empty()
    );
    let c: serde_json::Value = md.get("containers", "c1").unwrap().unwrap();
    assert_eq!(c["name"], "web");
    assert!(md.path().ends_with("metadata.redb"));
}

#[test]
fn delete_follows_rmi_semantics() {
    let (_dir, md) = open();
    let img = image(b"cfg-del", &[b"l"]);
    let digest_ref = Reference::parse(&format!("busybox@{}", img.target.digest)).unwrap();
    md.put_image(
        &img,
        &[r("busybox:1"), r("busybox:2"), digest_ref.clone()],
        None,
    )
    .unwrap();

    // A tag with another tag of the repository left: untag only.
    assert_eq!(
        md.delete_image("busybox:1", false).unwrap(),
        vec![Removed::Untagged(r("busybox:1"))]
    );
    // The repository's last tag: its digest reference goes too, then the image.
    assert_eq!(
        md.delete_image("busybox:2", false).unwrap(),
        vec![
            Removed::Untagged(r("busybox:2")),
            Removed::Untagged(digest_ref),
            Removed::Deleted(img.clone())
        ]
    );
    assert!(md.get_image(&img.target.digest).unwrap().is_none());
    assert!(md.references().unwrap().is_empty());

    // By ID: tags in several repositories need force.
    md.put_image(&img, &[r("a:1"), r("b:1")], None).unwrap();
    let short = &img.id().hex()[..12];
    let err = md.delete_image(short, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("must be forced"), "{err}");
    assert_eq!(
        md.references().unwrap().len(),
        2,
        "a refused delete changes nothing"
    );
    // Untagging one repository leaves an image tagged only once: by-ID works.
    md.delete_image("b:1", false).unwrap();
    assert_eq!(
        md.delete_image(short, false).unwrap(),
        vec![Removed::Untagged(r("a:1")), Removed::Deleted(img.clone())]
    );
    // Force deletes whatever tags it has.
    md.put_image(&img, &[r("a:1"), r("b:1")], None).unwrap();
    let removed = md.delete_image(&img.id().to_string(), true).unwrap();
    assert_eq!(removed.len(), 3);
    assert_eq!(md.list().unwrap(), vec![]);
    assert_eq!(
        md.delete_image("a:1", false).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn gc_roots_and_leases_protect_content() {
    let (dir, md) = open();
    let content = ContentStore::open(dir.path().join("content")).unwrap();
    let put = |data: &[u8]| {
        let mut w = content
            .writer(&format!("t-{}", Digest::of(data)), None)
            .unwrap();
        std::io::Write::write_all(&mut w, data).unwrap();
        w.commit().unwrap()
    };
    let mut img = image(b"cfg-gc", &[b"layer-1"]);
    // Make the record's digests those of real blobs.
    img.config.digest = put(b"cfg-gc");
    img.target.digest = put(b"manifest-gc");
    img.layers[0].blob.digest = put(b"layer-1");
    let leased = Digest::of(b"leased");
    let garbage = put(b"garbage");
    md.put_image(&img, &[r("keep:me")], None).unwrap();
    let lease = md.create_lease(Duration::from_secs(600)).unwrap();
    md.lease_add(&lease, &[leased]).unwrap();
    assert_eq!(put(b"leased"), leased);

    let roots = md.gc_roots().unwrap();
    let want: HashSet<Digest> = [
        img.config.digest,
        img.target.digest,
        img.layers[0].blob.digest,
        leased,
    ]
    .into();
    assert_eq!(roots, want);
    let stats = md.gc(&content).unwrap();
    assert_eq!(stats.removed, vec![garbage]);
    assert!(content.exists(&leased));

    // Releasing the lease in put_image makes its content collectable unless
    // the image holds it.
    let img2 = image(b"cfg-2", &[]);
    md.put_image(&img2, &[], Some(&lease)).unwrap();
    assert!(md.lease(&lease).unwrap().is_none());
    assert_eq!(md.gc(&content).unwrap().removed, vec![leased]);
    assert_eq!(
        md.lease_add(&lease, &[leased]).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Deleting the image frees its blobs.
    md.delete_image("keep:me", false).unwrap();
    assert_eq!(md.gc(&content).unwrap().removed.len(), 3);
    assert!(content.list().unwrap().is_empty());
}

#[test]
fn expired_leases_protect_nothing() {
    let (_dir, md) = open();
    let lease = md.create_lease(Duration::from_secs(1)).unwrap();
    md.lease_add(&lease, &[Digest::of(b"x")]).unwrap();
    assert!(md.gc_roots().unwrap().contains(&Digest::of(b"x")));
    // Expiry has one-second resolution: wait until it has passed.
    while md.lease(&lease).unwrap().unwrap().expires_at
        > std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(md.gc_roots().unwrap().is_empty());
    assert_eq!(md.prune_leases().unwrap(), 1);
    assert!(md.lease(&lease).unwrap().is_none());
    assert!(!md.delete_lease(&lease).unwrap());
}

#[test]
fn key_value_tables_are_separate() {
    let (_dir, md) = open();
    md.put("containers", "b", &2u32).unwrap();
    md.put("containers", "a", &1u32).unwrap();
    md.put("volumes", "a", &"vol").unwrap();
    md.put("containers2", "z", &9u32).unwrap();
    assert_eq!(
        md.list_table::<u32>("containers").unwrap(),
        vec![("a".into(), 1), ("b".into(), 2)]
    );
    assert_eq!(
        md.get::<String>("volumes", "a").unwrap().as_deref(),
        Some("vol")
    );
    assert_eq!(md.get::<u32>("volumes", "b").unwrap(), None);
    md.put("containers", "a", &5u32).unwrap();
    assert_eq!(md.get::<u32>("containers", "a").unwrap(), Some(5));
    assert!(md.delete("containers", "a").unwrap());
    assert!(!md.delete("containers", "a").unwrap());
    assert_eq!(
        md.list_table::<u32>("containers").unwrap(),
        vec![("b".into(), 2)]
    );
    assert_eq!(
        md.put("", "k", &1).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // Wrong type: a clear record error naming table and key.
    let err = md.get::<u32>("volumes", "a").unwrap_err();
    assert!(err.to_string().contains("volumes/a"), "{err}");
    // Images are not in the kv tables.
    assert!(md.list().unwrap().is_empty());
}

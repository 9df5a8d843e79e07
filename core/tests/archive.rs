//! Image archives against real peers: skopeo writes docker-archive and
//! oci-archive tarballs we load, and reads the ones we save.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_core::archive::{self, ImportConfig};
use berth_core::{ContentStore, Digest, ErrorKind, MetadataStore, Problem, Reference};
use berth_testkit::image::gzip;
use serde_json::json;

struct Stores {
    dir: tempfile::TempDir,
    content: ContentStore,
    md: MetadataStore,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let content = ContentStore::open(dir.path().join("content")).unwrap();
    let md = MetadataStore::open(dir.path()).unwrap();
    Stores { dir, content, md }
}

/// A rootfs tar of /bin/busybox with a few applet links.
fn busybox_rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir.clone(), "bin/", std::io::empty())
        .unwrap();
    let bin = fs::read("/bin/busybox").unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o755);
    h.set_size(bin.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bin[..]).unwrap();
    for applet in ["sh", "ls", "echo"] {
        let mut l = tar::Header::new_ustar();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        l.set_mode(0o777);
        b.append_link(&mut l, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    b.append_data(&mut dir, "tmp/", std::io::empty()).unwrap();
    b.into_inner().unwrap()
}

fn write_blob(layout: &Path, data: &[u8]) -> (Digest, usize) {
    let d = Digest::of(data);
    fs::write(layout.join("blobs/sha256").join(d.hex()), data).unwrap();
    (d, data.len())
}

/// An OCI image layout directory holding a busybox image tagged `latest`.
/// Returns the layout path and the layer's diff ID.
fn busybox_layout(root: &Path) -> (PathBuf, Digest) {
    let layout = root.join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let tar = busybox_rootfs();
    let diff_id = Digest::of(&tar);
    let (layer, layer_size) = write_blob(&layout, &gzip(&tar));
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let (config, config_size) = write_blob(&layout, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}],
    });
    let (manifest, manifest_size) = write_blob(&layout, &serde_json::to_vec(&manifest).unwrap());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest,
            "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    (layout, diff_id)
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_clean(s: &Stores) {
    assert!(s.md.list().unwrap().is_empty(), "no image records");
    assert!(s.content.list().unwrap().is_empty(), "no blobs left");
    let stale: Vec<Problem> = s.content.fsck().unwrap();
    assert!(stale.is_empty(), "no ingests left: {stale:?}");
    assert!(s.md.gc_roots().unwrap().is_empty(), "no lease left");
}

#[test]
fn skopeo_docker_archive_loads() {
    let s = stores();
    let (layout, diff_id) = busybox_layout(s.dir.path());
    let file = s.dir.path().join("docker.tar");
    skopeo(&[
        "copy",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker-archive:{}:busybox:latest", file.display()),
    ]);
    let loaded = archive::load(&s.content, &s.md, fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    let img = &loaded[0].image;
    assert_eq!(
        loaded[0].references,
        vec![Reference::parse("busybox:latest").unwrap()]
    );
    assert_eq!(img.diff_ids(), vec![diff_id]);
    assert_eq!(img.layers[0].chain_id, diff_id);
    assert_eq!(
        (img.architecture.as_str(), img.os.as_str()),
        ("amd64", "linux")
    );
    assert_eq!(s.md.resolve("busybox").unwrap(), *img);
    for d in img.content_digests() {
        assert!(s.content.exists(&d), "{d} stored");
    }
    assert!(
        s.md.gc_roots().unwrap().len() == 3,
        "lease released, image holds 3 blobs"
    );
    // Loading again is idempotent.
    let again = archive::load(&s.content, &s.md, fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(again[0].image, *img);
    assert_eq!(s.md.list().unwrap().len(), 1);
}

#[test]
fn skopeo_oci_archive_loads() {
    let s = stores();
    let (layout, diff_id) = busybox_layout(s.dir.path());
    let file = s.dir.path().join("oci.tar");
    skopeo(&[
        "copy",
        &format!("oci:{}:latest", layout.display()),
        &format!("oci-archive:{}:localhost:5000/bb:v1", file.display()),
    ]);
    let loaded = archive::load(&s.content, &s.md, fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.diff_ids(), vec![diff_id]);
    assert_eq!(
        loaded[0].references,
        vec![Reference::parse("localhost:5000/bb:v1").unwrap()]
    );
    // The manifest is the layout's own, unchanged.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        loaded[0].image.target.digest.to_string(),
        index["manifests"][0]["digest"]
    );
}

#[test]
fn import_save_skopeo_and_round_trip() {
    let s = stores();
    let rootfs = busybox_rootfs();
    let reference = Reference::parse("bb:imported").unwrap();
    let config = ImportConfig {
        cmd: Some(vec!["/bin/sh".into()]),
        env: vec!["PATH=/bin".into()],
        ..Default::default()
    };
    let img = archive::import(&s.content, &s.md, &rootfs[..], Some(&reference), &config).unwrap();
    assert_eq!(img.diff_ids(), vec![Digest::of(&rootfs)]);
    assert_eq!(
        img.layers[0].blob.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(
        img.layers[0].blob.size < rootfs.len() as u64 * 3 / 4,
        "layer is compressed"
    );
    assert_eq!(s.md.resolve("bb:imported").unwrap(), img);
    let cfg: serde_json::Value =
        serde_json::from_reader(s.content.reader(&img.config.digest).unwrap()).unwrap();
    assert_eq!(cfg["config"]["Cmd"], json!(["/bin/sh"]));
    assert_eq!(cfg["config"]["Env"], json!(["PATH=/bin"]));
    assert_eq!(cfg["history"][0]["comment"], "Imported from -");
    assert_eq!(cfg["rootfs"]["diff_ids"], json!([Digest::of(&rootfs)]));
    // gzip input is accepted and gives the same diff ID.
    let again = archive::import(
        &s.content,
        &s.md,
        &gzip(&rootfs)[..],
        None,
        &ImportConfig::default(),
    )
    .unwrap();
    assert_eq!(again.diff_ids(), img.diff_ids());

    let saved = s.dir.path().join("saved.tar");
    archive::save(
        &s.content,
        &s.md,
        &["bb:imported"],
        fs::File::create(&saved).unwrap(),
    )
    .unwrap();

    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", saved.display()),
    ]))
    .unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["RepoTags"], json!([]), "{inspect}");
    let oci_dir = s.dir.path().join("from-saved");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", saved.display()),
        &format!("oci:{}:x", oci_dir.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(oci_dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    // skopeo also reads it as an OCI layout archive.
    skopeo(&["inspect", &format!("oci-archive:{}", saved.display())]);

    // Round trip into fresh stores: same image, byte-identical blobs.
    let fresh = stores();
    let loaded = archive::load(&fresh.content, &fresh.md, fs::File::open(&saved).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image, img);
    assert_eq!(loaded[0].references, vec![reference.clone()]);
    let mut want: Vec<Digest> = img.content_digests().collect();
    want.sort();
    assert_eq!(fresh.content.list().unwrap(), want);
    for d in &want {
        assert_eq!(
            fs::read(fresh.content.blob_path(d)).unwrap(),
            fs::read(s.content.blob_path(d)).unwrap(),
            "blob {d}"
        );
    }
}

#[test]
fn saving_by_id_keeps_all_tags_and_several_images() {
    let s = stores();
    let rootfs = busybox_rootfs();
    let a = archive::import(
        &s.content,
        &s.md,
        &rootfs[..],
        Some(&Reference::parse("a:1").unwrap()),
        &ImportConfig::default(),
    )
    .unwrap();
    s.md.tag("a:1", &Reference::parse("a:2").unwrap()).unwrap();
    let b_cfg = ImportConfig {
        message: Some("second".into()),
        ..Default::default()
    };
    let b = archive::import(
        &s.content,
        &s.md,
        &rootfs[..],
        Some(&Reference::parse("b:1").unwrap()),
        &b_cfg,
    )
    .unwrap();
    assert_ne!(a.id(), b.id());
    let mut out = Vec::new();
    archive::save(&s.content, &s.md, &[&a.id().hex()[..12], "b:1"], &mut out).unwrap();
    let fresh = stores();
    let loaded = archive::load(&fresh.content, &fresh.md, &out[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    let names: Vec<String> = fresh
        .md
        .references()
        .unwrap()
        .iter()
        .map(|(r, _)| r.familiar())
        .collect();
    assert_eq!(names, ["a:1", "a:2", "b:1"]);
    // The shared layer is stored once.
    assert_eq!(fresh.content.list().unwrap().len(), 5);

    // A bare repository name saves every tag of that repository only.
    let mut out = Vec::new();
    archive::save(&s.content, &s.md, &["a"], &mut out).unwrap();
    let fresh = stores();
    let loaded = archive::load(&fresh.content, &fresh.md, &out[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    let names: Vec<String> = loaded[0].references.iter().map(|r| r.familiar()).collect();
    assert_eq!(names, ["a:1", "a:2"]);
    // Unknown names are a not-found error and write nothing usable.
    let err = archive::save(&s.content, &s.md, &["nope:1"], Vec::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // A missing blob fails before anything is written.
    s.content.delete(&b.layers[0].blob.digest).unwrap();
    let mut out = Vec::new();
    let err = archive::save(&s.content, &s.md, &["b:1"], &mut out).unwrap_err();
    assert!(
        err.to_string()
            .contains(&b.layers[0].blob.digest.to_string()),
        "{err}"
    );
    assert!(out.is_empty());
}

/// Podman's storage (private root, vfs driver) in a temp dir, reset on drop.
struct Podman {
    dir: tempfile::TempDir,
}

/// Where `podman run` puts its container and conmon cgroups (podman's
/// default, `libpod_parent/conmon`, would stay on the host).
fn podman_cgroup_parent() -> String {
    format!("berth-archive-podman-{}", std::process::id())
}

impl Podman {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        let root = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(root.join("root"))
            .arg("--runroot")
            .arg(root.join("run"))
            .arg("--tmpdir")
            .arg(root.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .args(args)
            .output()
            .expect("running podman")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force"]);
        let _ = self.cmd(&["rmi", "--all", "--force"]);
        berth_testkit::cleanup::remove_cgroup_tree(&podman_cgroup_parent());
    }
}

#[test]
fn podman_loads_and_runs_our_save() {
    let s = stores();
    let config = ImportConfig {
        cmd: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo hello-from-berth".into(),
        ]),
        ..Default::default()
    };
    let reference = Reference::parse("localhost/berth-archive-test:v1").unwrap();
    let img = archive::import(
        &s.content,
        &s.md,
        &busybox_rootfs()[..],
        Some(&reference),
        &config,
    )
    .unwrap();
    let saved = s.dir.path().join("saved.tar");
    archive::save(
        &s.content,
        &s.md,
        &["localhost/berth-archive-test:v1"],
        fs::File::create(&saved).unwrap(),
    )
    .unwrap();

    let podman = Podman {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = podman.cmd(&["load", "-i", saved.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "podman load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = podman.cmd(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "localhost/berth-archive-test:v1",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        img.id().hex(),
        "podman's image ID is our config digest"
    );
    let parent = format!("/{}", podman_cgroup_parent());
    let out = podman.cmd(&[
        "run",
        "--rm",
        "--cgroup-parent",
        &parent,
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "localhost/berth-archive-test:v1",
    ]);
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello-from-berth"
    );
}

/// A legacy docker-archive: `<id>/layer.tar`, `<config>.json`, no blobs dir.
#[test]
fn legacy_docker_archive_loads() {
    let s = stores();
    let layer = busybox_rootfs();
    let diff_id = Digest::of(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_digest = Digest::of(&config);
    let manifest = serde_json::to_vec(&json!([{
        "Config": format!("{}.json", config_digest.hex()),
        "RepoTags": ["legacy:1"],
        "Layers": ["abc/layer.tar"],
    }]))
    .unwrap();
    let tar = tar_of(&[
        ("abc/VERSION", b"1.0".to_vec()),
        ("abc/layer.tar", layer),
        (&format!("{}.json", config_digest.hex()), config),
        ("manifest.json", manifest),
    ]);
    let loaded = archive::load(&s.content, &s.md, &tar[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    let img = &loaded[0].image;
    assert_eq!(img.id(), config_digest);
    assert_eq!(
        img.layers[0].blob.digest, diff_id,
        "uncompressed layer: digest is the diff id"
    );
    assert_eq!(
        img.layers[0].blob.media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(s.md.resolve("legacy:1").unwrap(), *img);
}

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn bad_archives_leave_nothing() {
    let layer = busybox_rootfs();
    let diff_id = Digest::of(&layer);
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}}))
    .unwrap();
    let config_digest = Digest::of(&config);
    let config_path = format!("blobs/sha256/{}", config_digest.hex());
    let layer_path = format!("blobs/sha256/{}", diff_id.hex());
    let manifest = serde_json::to_vec(
        &json!([{"Config": config_path, "RepoTags": ["bad:1"], "Layers": [layer_path]}]),
    )
    .unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not a tar", vec![0x42; 3000], "not a valid tar archive"),
        ("empty tar", tar_of(&[]), "neither manifest.json nor index.json"),
        (
            "manifest.json not JSON",
            tar_of(&[(config_path.as_str(), config.clone()), ("manifest.json", b"{nope".to_vec())]),
            "manifest.json in the archive is not valid JSON",
        ),
        (
            "missing layer",
            tar_of(&[(config_path.as_str(), config.clone()), ("manifest.json", manifest.clone())]),
            &layer_path,
        ),
        (
            "digest mismatch",
            tar_of(&[
                (config_path.as_str(), config.clone()),
                (layer_path.as_str(), [&layer[..layer.len() - 1], b"X"].concat()),
                ("manifest.json", manifest.clone()),
            ]),
            "digest mismatch",
        ),
        (
            "diff id mismatch",
            tar_of(&[
                (config_path.as_str(), config.clone()),
                ("x/layer.tar", tar_of(&[("other", b"x".to_vec())])),
                (
                    "manifest.json",
                    serde_json::to_vec(&json!([{"Config": config_path, "RepoTags": ["bad:1"], "Layers": ["x/layer.tar"]}])).unwrap(),
                ),
            ]),
            "config says",
        ),
        (
            "truncated",
            {
                let full = tar_of(&[(layer_path.as_str(), layer.clone()), ("manifest.json", manifest.clone())]);
                full[..full.len() / 2].to_vec()
            },
            "",
        ),
    ];
    for (name, input, want) in cases {
        let s = stores();
        let err = archive::load(&s.content, &s.md, &input[..]).expect_err(name);
        let msg = err.to_string();
        assert!(
            msg.contains(want),
            "{name}: {msg:?} should contain {want:?}"
        );
        assert_ne!(err.kind(), ErrorKind::NotFound, "{name}");
        assert_clean(&s);
    }
}

#[test]
fn import_rejects_non_tar() {
    let s = stores();
    let err = archive::import(
        &s.content,
        &s.md,
        &[0x42u8; 5000][..],
        None,
        &ImportConfig::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_clean(&s);
}

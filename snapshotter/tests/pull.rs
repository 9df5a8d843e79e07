//! End-to-end pulls from a real `docker-registry` on loopback into a real
//! content store, metadata store and overlay snapshotter (as root: device
//! nodes, owners, overlay mounts). Fixture images are built here: busybox
//! from `busybox-static`, a three-layer image with every kind of tar entry
//! (gzip and zstd), and hostile or broken variants. The unpacked tree is
//! compared with what `umoci unpack` makes of the same image. Auth: Basic
//! (htpasswd) and Bearer (the registry's `auth: token` with a JWT signed by
//! a test certificate). Interruptions: the registry killed mid-layer, the
//! pull future dropped, and the `berth-image` example killed with SIGKILL;
//! each time a new pull resumes the partial ingest with a range request.

mod common {
    pub(crate) mod layers;
    pub mod servers;
}

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use berth_core::content::Problem;
use berth_core::registry::Credentials;
use berth_core::{
    ContentStore, Digest, ErrorKind, Image, MetadataStore, Platform, Reference, RegistryClient,
    RegistryConfig,
};
use berth_snapshotter::conformance::{Mounted, TempDir};
use berth_snapshotter::pull::{self, Progress, PullError, PullTarget};
use berth_snapshotter::{Kind, OverlaySnapshotter, Snapshotter};
use berth_testkit::image::{
    Blob, LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, OCI_INDEX, OCI_MANIFEST, Tar, TestImage, busybox_tar,
    gzip, index_of, zstd,
};
use berth_testkit::registry::TestRegistry;
use common::layers::rich_tars;
use common::servers::{CannedServer, ThrottleProxy, TokenService};

fn client() -> RegistryClient {
    RegistryClient::new(RegistryConfig::default()).unwrap()
}

fn busybox() -> &'static TestImage {
    static IMAGE: OnceLock<TestImage> = OnceLock::new();
    IMAGE.get_or_init(|| TestImage::build(&[busybox_tar()], gzip, LAYER_GZIP))
}

fn rich() -> &'static [Vec<u8>] {
    static TARS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    TARS.get_or_init(rich_tars)
}

/// A tar with one incompressible file of `size` bytes (xorshift noise), so
/// its download takes long enough to be interrupted.
fn big_tar(size: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(size);
    Tar::new()
        .dir("big/", 0o755)
        .file("big/noise", 0o644, &data)
        .finish()
}

const BIG: usize = 32 << 20;

/// busybox under an uncompressed 32 MiB layer (not compressed: gzip of
/// noise in a debug build would cost more than the rest of the test).
fn big_image() -> &'static TestImage {
    static IMAGE: OnceLock<TestImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let (small, big) = (busybox_tar(), big_tar(BIG));
        let layers = vec![
            Blob::new(LAYER_GZIP, gzip(&small)),
            Blob::new(LAYER_TAR, big.clone()),
        ];
        TestImage::from_layers(layers, vec![Digest::of(&small), Digest::of(&big)], "amd64")
    })
}

/// A data root laid out as berthd and `berth-image` lay it out.
struct Root {
    target: PullTarget<OverlaySnapshotter>,
    tmp: TempDir,
}

impl Root {
    fn new(name: &str) -> Self {
        let tmp = TempDir::new(&format!("berth-pull-{name}")).unwrap();
        let target = open_target(tmp.path());
        Self { target, tmp }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    async fn pull(
        &self,
        client: &RegistryClient,
        reference: &Reference,
    ) -> (Result<Image, PullError>, Vec<Progress>) {
        self.pull_platform(client, reference, &Platform::default())
            .await
    }

    async fn pull_platform(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        platform: &Platform,
    ) -> (Result<Image, PullError>, Vec<Progress>) {
        let events = Mutex::new(Vec::new());
        let record = |p: Progress| events.lock().unwrap().push(p);
        let result = pull::pull(client, &self.target, reference, platform, &record).await;
        (result, events.into_inner().unwrap())
    }

    /// After a failed pull: no image record, no snapshot at all (active or
    /// committed), no lease protecting anything, a store `fsck` finds
    /// nothing wrong in (ingests named in `partial` may stay, for resuming).
    fn assert_nothing_kept(&self, partial: &[Digest]) {
        let t = &self.target;
        assert_eq!(t.metadata.list().unwrap().len(), 0, "an image was recorded");
        assert_eq!(t.metadata.references().unwrap(), vec![]);
        let snapshots = t.snapshots.list().unwrap();
        assert!(snapshots.is_empty(), "snapshots left: {snapshots:?}");
        let dirs: Vec<_> = std::fs::read_dir(self.path().join("overlay/snapshots"))
            .unwrap()
            .collect();
        assert!(dirs.is_empty(), "snapshot directories left: {dirs:?}");
        let roots = t.metadata.gc_roots().unwrap();
        assert!(roots.is_empty(), "the lease still protects {roots:?}");
        let allowed: HashSet<String> = partial.iter().map(RegistryClient::ingest_ref).collect();
        for problem in t.content.fsck().unwrap() {
            match &problem {
                Problem::StaleIngest { ref_name, .. } if allowed.contains(ref_name) => {}
                _ => panic!("fsck: {problem}"),
            }
        }
    }

    fn assert_fsck_clean(&self) {
        let problems = self.target.content.fsck().unwrap();
        assert!(problems.is_empty(), "fsck: {problems:?}");
        let active: Vec<_> = self
            .target
            .snapshots
            .list()
            .unwrap()
            .into_iter()
            .filter(|i| i.kind != Kind::Committed)
            .collect();
        assert!(active.is_empty(), "snapshots left active: {active:?}");
    }

    /// The image's root filesystem as overlay shows it: a read-only view
    /// mounted, walked, unmounted and removed.
    fn tree(&self, image: &Image) -> Tree {
        let top = image.layers.last().unwrap().chain_id.to_string();
        let key = format!("view-{}", image.target.digest.hex());
        let mounts = self.target.snapshots.view(&key, Some(&top)).unwrap();
        let tree = {
            let mounted = Mounted::new(&mounts, &self.path().join("mnt"));
            walk(mounted.path())
        };
        self.target.snapshots.remove(&key).unwrap();
        tree
    }

    /// Every file under the content store and the snapshot directories
    /// with its size and mtime.
    fn files(&self) -> BTreeMap<PathBuf, (u64, i64, i64)> {
        let mut out = BTreeMap::new();
        for dir in ["content", "overlay/snapshots"] {
            list_files(&self.path().join(dir), &mut out);
        }
        out
    }
}

fn open_target(root: &Path) -> PullTarget<OverlaySnapshotter> {
    PullTarget {
        content: Arc::new(ContentStore::open(root.join("content")).unwrap()),
        metadata: Arc::new(MetadataStore::open(root).unwrap()),
        snapshots: Arc::new(OverlaySnapshotter::open(root.join("overlay")).unwrap()),
    }
}

fn list_files(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, i64, i64)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        out.insert(entry.path(), (meta.size(), meta.mtime(), meta.mtime_nsec()));
        if meta.is_dir() {
            list_files(&entry.path(), out);
        }
    }
}

/// What a test compares of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    /// sha256 of a regular file, target of a symlink, rdev of a device.
    content: String,
    /// Whole seconds (tar's resolution).
    mtime: i64,
    xattrs: BTreeMap<String, Vec<u8>>,
    /// The other paths that are hard links to this file.
    links: Vec<PathBuf>,
}

type Tree = BTreeMap<PathBuf, Node>;

fn walk(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut inodes: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    walk_into(root, Path::new(""), &mut tree, &mut inodes);
    for paths in inodes.values().filter(|p| p.len() > 1) {
        for path in paths {
            let others = paths.iter().filter(|p| *p != path).cloned().collect();
            tree.get_mut(path).unwrap().links = others;
        }
    }
    tree
}

fn walk_into(root: &Path, rel: &Path, tree: &mut Tree, inodes: &mut HashMap<u64, Vec<PathBuf>>) {
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).unwrap();
    let ft = meta.file_type();
    let (kind, content) = if ft.is_dir() {
        ("dir", String::new())
    } else if ft.is_file() {
        inodes.entry(meta.ino()).or_default().push(rel.to_owned());
        (
            "file",
            Digest::of(&std::fs::read(&path).unwrap()).to_string(),
        )
    } else if ft.is_symlink() {
        let target = std::fs::read_link(&path).unwrap();
        ("symlink", target.display().to_string())
    } else if ft.is_char_device() {
        ("char", format!("{:x}", meta.rdev()))
    } else if ft.is_block_device() {
        ("block", format!("{:x}", meta.rdev()))
    } else if ft.is_fifo() {
        ("fifo", String::new())
    } else {
        ("socket", String::new())
    };
    let mut xattrs = BTreeMap::new();
    let mut names = vec![0u8; 64 << 10];
    let n = rustix::fs::llistxattr(&path, &mut names[..]).unwrap_or(0);
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.") || name.starts_with("security.") {
            continue;
        }
        let mut value = vec![0u8; 64 << 10];
        let len = rustix::fs::lgetxattr(&path, name.as_str(), &mut value[..]).unwrap();
        value.truncate(len);
        xattrs.insert(name, value);
    }
    let node = Node {
        kind,
        mode: if ft.is_symlink() {
            0
        } else {
            meta.mode() & 0o7777
        },
        uid: meta.uid(),
        gid: meta.gid(),
        content,
        mtime: meta.mtime(),
        xattrs,
        links: Vec::new(),
    };
    tree.insert(rel.to_owned(), node);
    if ft.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            walk_into(root, &rel.join(name), tree, inodes);
        }
    }
}

/// `umoci unpack` of `image` (gzip layers), walked.
fn umoci_tree(image: &TestImage) -> Tree {
    let tmp = TempDir::new("berth-pull-umoci").unwrap();
    let layout = tmp.path().join("layout");
    image.write_oci_layout(&layout, "t");
    let bundle = tmp.path().join("bundle");
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle)
        .output()
        .expect("running umoci");
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    walk(&bundle.join("rootfs"))
}

fn assert_same_tree(ours: &Tree, theirs: &Tree) {
    // The root directory's mode, owner and mtime come from the snapshotter
    // (or umoci's bundle), not from the image.
    let skip = |p: &PathBuf| p.as_os_str().is_empty();
    let a: BTreeMap<_, _> = ours.iter().filter(|(p, _)| !skip(p)).collect();
    let b: BTreeMap<_, _> = theirs.iter().filter(|(p, _)| !skip(p)).collect();
    let only_ours: Vec<_> = a.keys().filter(|p| !b.contains_key(*p)).collect();
    let only_theirs: Vec<_> = b.keys().filter(|p| !a.contains_key(*p)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only in the first tree: {only_ours:?}; only in the second: {only_theirs:?}"
    );
    for (path, node) in &a {
        assert_eq!(Some(node), b.get(path), "{} differs", path.display());
    }
}

/// Where `cargo build --example berth-image` puts the binary. Examples have
/// no `CARGO_BIN_EXE_*`, and `cargo test --test pull` does not build them,
/// so the test builds it once with the cargo running the tests (the same
/// target dir and profile settings), and takes the path cargo reports.
fn berth_image_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "berth-snapshotter",
                "--example",
                "berth-image",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo build");
        assert!(
            out.status.success(),
            "cargo build --example berth-image failed"
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "berth-image")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no berth-image executable")
    })
}

fn progress_downloaded(events: &[Progress]) -> bool {
    events
        .iter()
        .any(|p| matches!(p, Progress::Downloading { .. } | Progress::PullComplete(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_then_by_digest_writes_nothing_new() {
    let reg = TestRegistry::start(None);
    let image = busybox();
    let client = client();
    let by_tag = reg.reference("test/busybox:1.0");
    image.push(&client, &by_tag).await;
    let root = Root::new("tag");

    let (pulled, events) = root.pull(&client, &by_tag).await;
    let pulled = pulled.unwrap();
    assert_eq!(pulled.target.digest, image.manifest.digest);
    assert_eq!(pulled.config.digest, image.config.digest);
    assert!(events.contains(&Progress::PullComplete(image.layers[0].digest)));
    assert_eq!(
        events.last(),
        Some(&Progress::Done {
            digest: image.manifest.digest
        })
    );
    let recorded = root.target.metadata.get_by_ref(&by_tag).unwrap().unwrap();
    assert_eq!(recorded.target.digest, image.manifest.digest);
    assert!(
        root.target
            .snapshots
            .is_committed(&pulled.layers[0].chain_id.to_string())
    );
    let tree = root.tree(&pulled);
    assert_eq!(tree[Path::new("bin/sh")].content, "busybox");
    assert_eq!(tree[Path::new("bin/busybox")].mode, 0o755);
    root.assert_fsck_clean();
    let before = root.files();

    let by_digest = reg.reference(&format!("test/busybox@{}", image.manifest.digest));
    for again in [&by_digest, &by_tag] {
        let (pulled, events) = root.pull(&client, again).await;
        assert_eq!(pulled.unwrap().target.digest, image.manifest.digest);
        assert!(
            events.contains(&Progress::AlreadyExists(image.layers[0].digest)),
            "{events:?}"
        );
        assert!(
            !progress_downloaded(&events),
            "downloaded again: {events:?}"
        );
        assert_eq!(root.files(), before, "the second pull wrote files");
    }
    let digest_ref = root.target.metadata.get_by_ref(&by_digest).unwrap();
    assert_eq!(digest_ref.unwrap().target.digest, image.manifest.digest);
    root.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_selects_the_platform_manifest() {
    let reg = TestRegistry::start(None);
    let client = client();
    let amd64 = busybox().clone();
    let arm_tar = Tar::new().file("arch", 0o644, b"arm64\n").finish();
    let arm64 = TestImage::from_layers(
        vec![Blob::new(LAYER_GZIP, gzip(&arm_tar))],
        vec![Digest::of(&arm_tar)],
        "arm64",
    );
    let index = index_of(&[&arm64, &amd64]);
    let reference = reg.reference("test/multi:latest");
    for image in [&amd64, &arm64] {
        image.push_blobs(&client, &reference).await;
        let key = image.manifest.digest.to_string();
        client
            .put_manifest(&reference, &key, OCI_MANIFEST, image.manifest.data.clone())
            .await
            .unwrap();
    }
    client
        .put_manifest(&reference, "latest", OCI_INDEX, index.data.clone())
        .await
        .unwrap();

    let root = Root::new("index-amd64");
    let pulled = root.pull(&client, &reference).await.0.unwrap();
    assert_eq!(pulled.target.digest, amd64.manifest.digest);
    assert_eq!(pulled.index, Some(index.digest));
    assert!(root.target.content.exists(&index.digest));
    assert!(!root.target.content.exists(&arm64.layers[0].digest));
    assert!(!root.target.content.exists(&arm64.manifest.digest));
    root.assert_fsck_clean();

    let root = Root::new("index-arm64");
    let arm = Platform::new("linux", "arm64", None);
    let pulled = root
        .pull_platform(&client, &reference, &arm)
        .await
        .0
        .unwrap();
    assert_eq!(pulled.target.digest, arm64.manifest.digest);
    assert_eq!(
        root.tree(&pulled)[Path::new("arch")].content,
        Digest::of(b"arm64\n").to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_registry_needs_credentials() {
    let reg = TestRegistry::start(Some(("berth", "s3cret")));
    let mut config = RegistryConfig::default();
    config
        .credentials
        .insert(reg.host(), Credentials::new("berth", "s3cret"));
    let authed = RegistryClient::new(config).unwrap();
    let reference = reg.reference("private/busybox:1");
    busybox().push(&authed, &reference).await;

    let root = Root::new("auth");
    let err = root.pull(&client(), &reference).await.0.unwrap_err();
    let message = err.to_string();
    eprintln!("error: {message}");
    assert!(
        message.contains(&reg.host()) && message.contains("unauthorized"),
        "{message}"
    );
    root.assert_nothing_kept(&[]);

    let mut config = RegistryConfig::default();
    config
        .credentials
        .insert(reg.host(), Credentials::new("berth", "wrong"));
    let wrong = RegistryClient::new(config).unwrap();
    assert!(root.pull(&wrong, &reference).await.0.is_err());
    root.assert_nothing_kept(&[]);

    let pulled = root.pull(&authed, &reference).await.0.unwrap();
    assert_eq!(pulled.target.digest, busybox().manifest.digest);
    root.assert_fsck_clean();
}

async fn pull_rich_and_compare_with_umoci(compress: fn(&[u8]) -> Vec<u8>, media_type: &str) {
    let reg = TestRegistry::start(None);
    let client = client();
    let image = TestImage::build(rich(), compress, media_type);
    let reference = reg.reference("test/rich:1");
    image.push(&client, &reference).await;
    let root = Root::new("rich");
    let pulled = root.pull(&client, &reference).await.0.unwrap();
    assert_eq!(pulled.layers.len(), 3);
    let ours = root.tree(&pulled);
    // umoci reads gzip layers; the zstd image has the same tars.
    let theirs = umoci_tree(&TestImage::build(rich(), gzip, LAYER_GZIP));
    assert_same_tree(&ours, &theirs);
    // Spot checks, so that a tree both tools get wrong still fails.
    let node = |p: &str| {
        ours.get(Path::new(p))
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    for gone in [
        "var/lib/gone.txt",
        "var/cache",
        "opaque/old1",
        "opaque/old2",
    ] {
        assert!(!ours.contains_key(Path::new(gone)), "{gone} not whited out");
    }
    assert!(ours.contains_key(Path::new("opaque/new")));
    assert!(ours.contains_key(Path::new("var/lib/kept.txt")));
    assert_eq!(node("dev/null").kind, "char");
    assert_eq!(node("run/fifo").kind, "fifo");
    assert_eq!(node("usr/bin/setuid").mode, 0o4755);
    assert_eq!(node("tmp").mode, 0o1777);
    assert_eq!(node("etc").mode, 0o700);
    assert_eq!(
        (node("home/user/secret").uid, node("home/user/secret").gid),
        (1000, 1000)
    );
    assert_eq!(node("etc/labelled").xattrs["user.berth.test"], b"hello");
    assert_eq!(
        node("usr/bin/tool").links,
        vec![PathBuf::from("usr/bin/tool-link")]
    );
    assert_eq!(
        node("usr/bin/added").links,
        vec![PathBuf::from("usr/bin/added-link")]
    );
    assert!(node("long-link").content.len() > 200);
    root.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_image_unpacks_like_umoci() {
    pull_rich_and_compare_with_umoci(gzip, LAYER_GZIP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_image_unpacks_like_umoci() {
    pull_rich_and_compare_with_umoci(zstd, LAYER_ZSTD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_image_pulls_back_identical() {
    let reg = TestRegistry::start(None);
    let client = client();
    let image = TestImage::build(rich(), gzip, LAYER_GZIP);
    let source = reg.reference("test/source:1");
    image.push(&client, &source).await;
    let first = Root::new("push-src");
    let pulled = first.pull(&client, &source).await.0.unwrap();

    let copy = reg.reference("other/copy:2");
    let pushed = client
        .push_image(&first.target.content, &pulled.target.digest, &copy, None)
        .await
        .unwrap();
    assert_eq!(pushed, image.manifest.digest);

    let second = Root::new("push-dst");
    let back = second.pull(&client, &copy).await.0.unwrap();
    assert_eq!(back.target.digest, image.manifest.digest);
    assert_eq!(back.config.digest, pulled.config.digest);
    assert_same_tree(&second.tree(&back), &first.tree(&pulled));
    second.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_both_succeed() {
    let reg = TestRegistry::start(None);
    let client = client();
    let image = TestImage::build(rich(), gzip, LAYER_GZIP);
    let reference = reg.reference("test/rich:1");
    image.push(&client, &reference).await;
    let root = Root::new("concurrent");
    let (a, b) = tokio::join!(
        root.pull(&client, &reference),
        root.pull(&client, &reference)
    );
    let (a, b) = (a.0.unwrap(), b.0.unwrap());
    assert_eq!(a.target.digest, image.manifest.digest);
    assert_eq!(b.target.digest, image.manifest.digest);
    let infos = root.target.snapshots.list().unwrap();
    let names: HashSet<_> = infos.iter().map(|i| i.name.clone()).collect();
    let chain: HashSet<_> = a.layers.iter().map(|l| l.chain_id.to_string()).collect();
    assert_eq!(names, chain, "{infos:?}");
    root.assert_fsck_clean();
    assert_eq!(root.tree(&a).len(), root.tree(&b).len());
}

/// Pushes a rich image whose layer `victim` the registry then serves
/// changed by `damage`; pulls it and checks that nothing is kept.
async fn pull_damaged(name: &str, damage: impl FnOnce(&Path)) -> String {
    let reg = TestRegistry::start(None);
    let client = client();
    let image = TestImage::build(rich(), gzip, LAYER_GZIP);
    let reference = reg.reference("test/damaged:1");
    image.push(&client, &reference).await;
    let victim = &image.layers[1];
    damage(&reg.blob_data_path(&victim.digest));
    let root = Root::new(name);
    let err = root.pull(&client, &reference).await.0.unwrap_err();
    let message = err.to_string();
    eprintln!("error: {message}");
    assert!(message.contains(&victim.digest.to_string()), "{message}");
    root.assert_nothing_kept(&[]);
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_not_matching_its_digest_is_refused() {
    // The gzip header's mtime: the tar inside (and so the diff ID) is the
    // same, only the blob digest differs.
    let message = pull_damaged("tampered", |path| {
        let mut data = std::fs::read(path).unwrap();
        data[4] ^= 0xff;
        std::fs::write(path, data).unwrap();
    })
    .await;
    assert!(message.contains("digest mismatch"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blob_is_refused() {
    pull_damaged("corrupt", |path| {
        let mut data = std::fs::read(path).unwrap();
        let middle = data.len() / 2;
        for b in &mut data[middle..middle + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(path, data).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_blob_is_refused() {
    pull_damaged("truncated", |path| {
        let data = std::fs::read(path).unwrap();
        std::fs::write(path, &data[..data.len() / 2]).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_dying_mid_pull_leaves_a_resumable_ingest() {
    let reg = Arc::new(Mutex::new(TestRegistry::start(None)));
    let client = client();
    let image = big_image();
    let reference = reg.lock().unwrap().reference("test/big:1");
    image.push(&client, &reference).await;
    let big = image.layers[1].digest;

    let root = Root::new("dies");
    let killed = Mutex::new(false);
    let kill_midway = |p: Progress| {
        if let Progress::Downloading { layer, current, .. } = p {
            let mut killed = killed.lock().unwrap();
            if layer == big && current >= 8 << 20 && !*killed {
                reg.lock().unwrap().kill();
                *killed = true;
            }
        }
    };
    let err = pull::pull(
        &client,
        &root.target,
        &reference,
        &Platform::default(),
        &kill_midway,
    )
    .await
    .unwrap_err();
    assert!(
        *killed.lock().unwrap(),
        "the pull ended before the registry was killed"
    );
    let message = err.to_string();
    eprintln!("error: {message}");
    assert!(message.contains(&big.to_string()), "{message}");
    assert_eq!(err.kind(), ErrorKind::Io, "{message}");
    root.assert_nothing_kept(&[big]);

    reg.lock().unwrap().restart();
    let (pulled, events) = root.pull(&client, &reference).await;
    let pulled = pulled.unwrap();
    let resumed_at = events.iter().find_map(|p| match p {
        Progress::Downloading { layer, current, .. } if *layer == big => Some(*current),
        _ => None,
    });
    assert!(
        resumed_at.is_some_and(|c| c >= 8 << 20),
        "the download started over: first progress at {resumed_at:?}"
    );
    let tree = root.tree(&pulled);
    let noise = big_tar(BIG);
    let mut archive = tar::Archive::new(&noise[..]);
    let mut expected = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("big/noise") {
            std::io::copy(&mut entry, &mut expected).unwrap();
        }
    }
    assert_eq!(
        tree[Path::new("big/noise")].content,
        Digest::of(&expected).to_string()
    );
    root.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_that_is_not_json_is_refused() {
    let server = CannedServer::start(OCI_MANIFEST, b"this is not json {");
    let reference = Reference::parse(&format!("{}/test/garbage:1", server.host())).unwrap();
    let root = Root::new("not-json");
    let err = root.pull(&client(), &reference).await.0.unwrap_err();
    let message = err.to_string();
    eprintln!("error: {message}");
    assert!(message.contains("test/garbage"), "{message}");
    assert!(message.contains("manifest"), "{message}");
    root.assert_nothing_kept(&[]);
    assert!(root.target.content.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_layer_media_type_is_refused() {
    let reg = TestRegistry::start(None);
    let client = client();
    let tar = busybox_tar();
    let weird = "application/vnd.berth.test.layer.v1.tar+lz4";
    let image = TestImage::from_layers(
        vec![
            Blob::new(LAYER_GZIP, gzip(&rich()[0])),
            Blob::new(weird, gzip(&tar)),
        ],
        vec![Digest::of(&rich()[0]), Digest::of(&tar)],
        "amd64",
    );
    let reference = reg.reference("test/weird:1");
    image.push(&client, &reference).await;
    let root = Root::new("media-type");
    let err = root.pull(&client, &reference).await.0.unwrap_err();
    let message = err.to_string();
    eprintln!("error: {message}");
    assert!(message.contains(weird), "{message}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{message}");
    root.assert_nothing_kept(&[]);
}

async fn pull_hostile(name: &str, tar: Vec<u8>, names_entry: &str) {
    let reg = TestRegistry::start(None);
    let client = client();
    let image = TestImage::build(&[rich()[0].clone(), tar], gzip, LAYER_GZIP);
    let reference = reg.reference("test/hostile:1");
    image.push(&client, &reference).await;
    let root = Root::new(name);
    let err = root.pull(&client, &reference).await.0.unwrap_err();
    let message = err.to_string();
    eprintln!("error: {message}");
    assert!(message.contains(names_entry), "{message}");
    assert!(
        message.contains(&image.layers[1].digest.to_string()),
        "{message}"
    );
    root.assert_nothing_kept(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_with_dot_dot_path_is_refused() {
    let tar = Tar::new()
        .file("fine", 0o644, b"ok\n")
        .raw_name_file(b"../escaped-by-dot-dot", b"pwned\n")
        .finish();
    pull_hostile("dot-dot", tar, "../escaped-by-dot-dot").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_with_symlink_escape_is_refused() {
    let outside = TempDir::new("berth-pull-outside").unwrap();
    let tar = Tar::new()
        .symlink("door", outside.path().to_str().unwrap())
        .file("door/pwned", 0o644, b"pwned\n")
        .finish();
    pull_hostile("symlink-escape", tar, "door/pwned").await;
    let written: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert!(
        written.is_empty(),
        "written outside the snapshot: {written:?}"
    );
}

/// Kills `berth-image` with SIGKILL on drop, if still running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ingest_bytes(root: &Path) -> u64 {
    let Ok(dirs) = std::fs::read_dir(root.join("content/ingest")) else {
        return 0;
    };
    dirs.filter_map(|d| std::fs::metadata(d.ok()?.path().join("data")).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_berth_image_pull_resumes() {
    let bin = berth_image_bin();
    let reg = TestRegistry::start(None);
    let client = client();
    let image = big_image();
    image.push(&client, &reg.reference("test/big:1")).await;
    let proxy = ThrottleProxy::start(reg.port);
    let reference = format!("{}/test/big:1", proxy.host());
    let tmp = TempDir::new("berth-pull-kill").unwrap();
    let root = tmp.path().join("data");
    let run = |args: &[&str]| {
        Command::new(bin)
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap()
    };

    let mut child = KillOnDrop(
        Command::new(bin)
            .arg("--root")
            .arg(&root)
            .args(["pull", &reference])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while ingest_bytes(&root) < 4 << 20 {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "berth-image ended early"
        );
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill().unwrap();
    assert!(!child.0.wait().unwrap().success());
    let partial = ingest_bytes(&root);
    assert!(partial >= 4 << 20 && partial < image.layers[1].data.len() as u64);

    proxy.slow.store(false, Ordering::SeqCst);
    proxy.saw_range.store(false, Ordering::SeqCst);
    let out = run(&["pull", &reference]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&image.manifest.digest.to_string()),
        "{stdout}"
    );
    assert!(
        proxy.saw_range.load(Ordering::SeqCst),
        "no range request: not resumed"
    );

    let fsck = run(&["fsck"]);
    assert!(
        fsck.status.success() && fsck.stdout.is_empty(),
        "fsck: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let images = run(&["images"]);
    assert!(String::from_utf8_lossy(&images.stdout).contains(&image.manifest.digest.to_string()));
    let target = open_target(&root);
    let infos = target.snapshots.list().unwrap();
    assert!(
        infos.iter().all(|i| i.kind == Kind::Committed),
        "snapshots left by the killed pull: {infos:?}"
    );
    assert_eq!(infos.len(), 2, "{infos:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_but_uncommitted_ingest_is_used() {
    // A pull killed after the last byte was written but before the commit.
    let reg = TestRegistry::start(None);
    let client = client();
    let image = busybox();
    let reference = reg.reference("test/busybox:1");
    image.push(&client, &reference).await;
    let root = Root::new("whole-ingest");
    let layer = &image.layers[0];
    let mut writer = root
        .target
        .content
        .writer(
            &RegistryClient::ingest_ref(&layer.digest),
            Some((layer.digest, layer.data.len() as u64)),
        )
        .unwrap();
    std::io::Write::write_all(&mut writer, &layer.data).unwrap();
    drop(writer);

    let (pulled, events) = root.pull(&client, &reference).await;
    assert_eq!(pulled.unwrap().target.digest, image.manifest.digest);
    assert!(events.contains(&Progress::PullComplete(layer.digest)));
    root.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_pull_keeps_its_partial_ingest_and_releases_its_lease() {
    let reg = TestRegistry::start(None);
    let client = client();
    let image = big_image();
    image.push(&client, &reg.reference("test/big:1")).await;
    let proxy = ThrottleProxy::start(reg.port);
    let reference = Reference::parse(&format!("{}/test/big:1", proxy.host())).unwrap();
    let root = Root::new("cancelled");

    let pulling = root.pull(&client, &reference);
    let partial = async {
        while ingest_bytes(root.path()) < 4 << 20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = pulling => panic!("the pull ended before it was cancelled"),
        _ = tokio::time::timeout(Duration::from_secs(60), partial) => {}
    }
    // The unpacker thread notices and cleans up on its own, the snapshot's
    // record before its directory.
    let snapshot_dirs = root.path().join("overlay/snapshots");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !root.target.snapshots.list().unwrap().is_empty()
        || std::fs::read_dir(&snapshot_dirs).unwrap().next().is_some()
        || !root.target.metadata.gc_roots().unwrap().is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the cancelled pull left state behind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    root.assert_nothing_kept(&[image.layers[1].digest]);

    proxy.slow.store(false, Ordering::SeqCst);
    proxy.saw_range.store(false, Ordering::SeqCst);
    let pulled = root.pull(&client, &reference).await.0.unwrap();
    assert_eq!(pulled.target.digest, image.manifest.digest);
    assert!(proxy.saw_range.load(Ordering::SeqCst), "not resumed");
    root.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registry() {
    let tokens = TokenService::start("test/busybox");
    let reg = TestRegistry::start_with_auth(&tokens.auth);
    let client = client();
    let reference = reg.reference("test/busybox:1");
    busybox().push(&client, &reference).await;
    let root = Root::new("token");
    let pulled = root.pull(&client, &reference).await.0.unwrap();
    assert_eq!(pulled.target.digest, busybox().manifest.digest);
    root.assert_fsck_clean();

    // The token grants nothing on another repository.
    let other = reg.reference("test/other:1");
    let denied = Root::new("token-denied");
    let err = denied.pull(&client, &other).await.0.unwrap_err();
    let message = err.to_string();
    eprintln!("error: {message}");
    assert!(
        message.contains("unauthorized") && message.contains("test/other"),
        "{message}"
    );
    denied.assert_nothing_kept(&[]);
}

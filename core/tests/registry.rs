//! The registry client against a real `docker-registry` on loopback: push,
//! pull by tag and digest, platform selection, Basic and Bearer auth,
//! corrupt/truncated/interrupted downloads, cross-repository mount. A
//! scripted HTTP server stands in only where a real registry cannot be made
//! to misbehave (non-JSON manifests, unknown media types) or to front it
//! with a token service.

mod common {
    pub mod servers;
}

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use berth_core::registry::{Credentials, Platform, RegistryClient, RegistryConfig, RegistryError};
use berth_core::{ContentStore, Digest, ErrorKind, Reference};
use berth_testkit::image::{
    LAYER_GZIP, OCI_INDEX, OCI_MANIFEST, TestImage, busybox_tar, gzip, index_of,
    write_oci_index_layout,
};
use berth_testkit::registry::{TestRegistry, free_port};
use bytes::Bytes;
use common::servers::{TestServer, proxy};
use http::{Response, StatusCode};
use http_body_util::Full;

/// busybox in one gzip'd layer for `architecture` (the layer is the same
/// for every architecture; the config, and so the manifest, differ).
fn busybox(architecture: &str) -> TestImage {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    let tar = TAR.get_or_init(busybox_tar);
    TestImage::build_for(std::slice::from_ref(tar), gzip, LAYER_GZIP, architecture)
}

fn client() -> RegistryClient {
    RegistryClient::new(RegistryConfig::default()).unwrap()
}

fn client_with(host: &str, user: &str, pass: &str) -> RegistryClient {
    let mut config = RegistryConfig::default();
    config
        .credentials
        .insert(host.to_owned(), Credentials::new(user, pass));
    RegistryClient::new(config).unwrap()
}

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    (dir, store)
}

/// Pushes `image` and checks the registry has each of its blobs.
async fn push_image(client: &RegistryClient, reference: &Reference, image: &TestImage) {
    image.push(client, reference).await;
    for blob in image.layers.iter().chain([&image.config]) {
        assert!(client.blob_exists(reference, &blob.digest).await.unwrap());
    }
}

fn read_blob(store: &ContentStore, digest: &Digest) -> Vec<u8> {
    std::fs::read(store.blob_path(digest)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_by_tag_and_by_digest() {
    let reg = TestRegistry::start(None);
    let image = busybox("amd64");
    let client = client();
    let reference = reg.reference("test/busybox:1.0");
    assert!(
        !client
            .blob_exists(&reference, &image.layers[0].digest)
            .await
            .unwrap()
    );
    push_image(&client, &reference, &image).await;

    let resolved = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.digest, image.manifest.digest);
    assert_eq!(resolved.raw, image.manifest.data);
    assert_eq!(resolved.media_type, OCI_MANIFEST);
    assert!(resolved.index.is_none());
    assert_eq!(resolved.manifest.layers().len(), 1);
    assert_eq!(
        resolved.manifest.layers()[0].digest().as_ref(),
        image.layers[0].digest.to_string()
    );

    let by_digest = reg.reference(&format!("test/busybox@{}", image.manifest.digest));
    let resolved = client
        .resolve(&by_digest, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.raw, image.manifest.data);

    let (_dir, store) = store();
    for blob in [&image.layers[0], &image.config] {
        let got = client
            .fetch_blob_into(&store, &reference, &blob.digest, blob.data.len() as u64)
            .await
            .unwrap();
        assert_eq!(got, blob.digest);
        assert_eq!(read_blob(&store, &blob.digest), blob.data);
    }

    // A ranged fetch returns the tail.
    let mut stream = client
        .fetch_blob(&reference, &image.layers[0].digest, 1000)
        .await
        .unwrap();
    let mut tail = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        tail.extend_from_slice(&chunk);
    }
    assert_eq!(tail, image.layers[0].data[1000..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_an_image_seeded_by_skopeo() {
    let reg = TestRegistry::start(None);
    let image = busybox("amd64");
    let layout = tempfile::tempdir().unwrap();
    image.write_oci_layout(layout.path(), "latest");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--preserve-digests"])
        .arg(format!("oci:{}:latest", layout.path().display()))
        .arg(format!("docker://{}/seeded/busybox:v1", reg.host()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let client = client();
    let reference = reg.reference("seeded/busybox:v1");
    let resolved = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.digest, image.manifest.digest);
    let (_dir, store) = store();
    let layer = &resolved.manifest.layers()[0];
    let digest = Digest::parse(layer.digest().as_ref()).unwrap();
    client
        .fetch_blob_into(&store, &reference, &digest, layer.size())
        .await
        .unwrap();
    assert_eq!(read_blob(&store, &digest), image.layers[0].data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_selects_the_platform() {
    let reg = TestRegistry::start(None);
    let amd64 = busybox("amd64");
    let arm64 = busybox("arm64");
    let client = client();
    for image in [&amd64, &arm64] {
        let r = reg.reference(&format!("multi/busybox:{}", image.architecture));
        push_image(&client, &r, image).await;
    }
    let index = index_of(&[&amd64, &arm64]);
    let reference = reg.reference("multi/busybox:latest");
    client
        .put_manifest(&reference, "latest", &index.media_type, index.data.clone())
        .await
        .unwrap();

    let resolved = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.digest, amd64.manifest.digest);
    assert_eq!(resolved.raw, amd64.manifest.data);
    let (index_digest, index_type, index_raw) = resolved.index.unwrap();
    assert_eq!(index_digest, index.digest);
    assert_eq!(index_type, OCI_INDEX);
    assert_eq!(index_raw, index.data);

    let arm = client
        .resolve(&reference, &Platform::parse("linux/arm64").unwrap())
        .await
        .unwrap();
    assert_eq!(arm.digest, arm64.manifest.digest);

    let err = client
        .resolve(&reference, &Platform::parse("linux/s390x").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::PlatformNotFound { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x")
            && msg.contains("linux/amd64")
            && msg.contains("linux/arm64/v8"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth() {
    let reg = TestRegistry::start(Some(("alice", "s3cret")));
    let image = busybox("amd64");
    let reference = reg.reference("private/busybox:1");
    let good = client_with(&reg.host(), "alice", "s3cret");
    push_image(&good, &reference, &image).await;
    let resolved = good
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.raw, image.manifest.data);

    let wrong = client_with(&reg.host(), "alice", "wrong");
    let err = wrong
        .resolve(&reference, &Platform::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("unauthorized"), "{err}");

    let err = client()
        .resolve(&reference, &Platform::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
}

/// A token service in front of the real registry: requests without the
/// issued token get a Bearer challenge; `/token` issues it for good Basic
/// credentials.
async fn bearer_front(upstream: String, token_requests: Arc<AtomicUsize>) -> TestServer {
    const TOKEN: &str = "tok-123";
    let port = Arc::new(OnceLock::<u16>::new());
    let port_in = port.clone();
    let server = TestServer::start(Arc::new(move |req| {
        let upstream = upstream.clone();
        let token_requests = token_requests.clone();
        let port = *port_in.get().unwrap();
        Box::pin(async move {
            if req.uri().path() == "/token" {
                token_requests.fetch_add(1, Ordering::SeqCst);
                let query = req.uri().query().unwrap_or("");
                let good = Credentials::new("bob", "hunter2").basic_header();
                let authorized = req
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .is_some_and(|v| v.as_bytes() == good.as_bytes());
                if !authorized || !query.contains("service=front") || !query.contains("scope=repository") {
                    return Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .body(Full::new(Bytes::from_static(b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}")))
                        .unwrap();
                }
                let body = format!("{{\"access_token\":\"{TOKEN}\",\"expires_in\":300}}");
                return Response::new(Full::new(Bytes::from(body)));
            }
            let bearer = format!("Bearer {TOKEN}");
            let ok = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == bearer.as_bytes());
            if !ok {
                let challenge = format!(
                    "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"front\",scope=\"repository:x/y:pull,push\""
                );
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(http::header::WWW_AUTHENTICATE, challenge)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
            proxy(&upstream, req).await
        })
    }))
    .await;
    port.set(server.port).unwrap();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_through_a_token_front() {
    let reg = TestRegistry::start(None);
    let image = busybox("amd64");
    let token_requests = Arc::new(AtomicUsize::new(0));
    let front = bearer_front(reg.host(), token_requests.clone()).await;
    let reference = Reference::parse(&format!("{}/bearer/busybox:1", front.host())).unwrap();

    let client = client_with(&front.host(), "bob", "hunter2");
    push_image(&client, &reference, &image).await;
    let after_push = token_requests.load(Ordering::SeqCst);
    assert!(after_push >= 1);
    let resolved = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.raw, image.manifest.data);
    let (_dir, store) = store();
    client
        .fetch_blob_into(
            &store,
            &reference,
            &image.layers[0].digest,
            image.layers[0].data.len() as u64,
        )
        .await
        .unwrap();
    // Pull scope differs from push scope: at most one more token, then cached.
    let after_pull = token_requests.load(Ordering::SeqCst);
    assert!(
        after_pull <= after_push + 1,
        "{after_push} then {after_pull}"
    );
    client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(token_requests.load(Ordering::SeqCst), after_pull);

    let wrong = client_with(&front.host(), "bob", "nope");
    let err = wrong
        .resolve(&reference, &Platform::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("bob"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_truncated_blobs_are_rejected() {
    let reg = TestRegistry::start(None);
    let image = busybox("amd64");
    let client = client();
    let reference = reg.reference("bad/busybox:1");
    push_image(&client, &reference, &image).await;
    let size = image.layers[0].data.len() as u64;
    let path = reg.blob_data_path(&image.layers[0].digest);

    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let (_dir, store) = store();
    let err = client
        .fetch_blob_into(&store, &reference, &image.layers[0].digest, size)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(
        err.to_string()
            .contains(&image.layers[0].digest.to_string()),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(!store.exists(&image.layers[0].digest));

    bytes[100] ^= 0xff;
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, &bytes).unwrap();
    let result = client
        .fetch_blob_into(&store, &reference, &image.layers[0].digest, size)
        .await;
    let err = result.unwrap_err();
    // The registry either sends the short file (size mismatch at commit) or
    // breaks the connection (body error): both must fail, and store nothing.
    assert!(
        matches!(err.kind(), ErrorKind::Integrity | ErrorKind::Io),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
}

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_download_resumes_from_the_partial_ingest() {
    let mut reg = TestRegistry::start(None);
    let client = client();
    let reference = reg.reference("big/blob:1");
    let data = Bytes::from(pseudo_random(48 << 20));
    let digest = Digest::of(&data);
    client
        .push_blob(&reference, &digest, data.clone(), None)
        .await
        .unwrap();

    let (_dir, store) = store();
    let ref_name = RegistryClient::ingest_ref(&digest);
    {
        let mut writer = store
            .writer(&ref_name, Some((digest, data.len() as u64)))
            .unwrap();
        let mut stream = client.fetch_blob(&reference, &digest, 0).await.unwrap();
        while writer.offset() < 1 << 20 {
            let chunk = stream.chunk().await.unwrap().unwrap();
            std::io::Write::write_all(&mut writer, &chunk).unwrap();
        }
        reg.kill();
        let err = loop {
            match stream.chunk().await {
                Ok(Some(chunk)) => std::io::Write::write_all(&mut writer, &chunk).unwrap(),
                Ok(None) => panic!("the stream ended cleanly although the registry was killed"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert!(err.to_string().contains(&digest.to_string()), "{err}");
        assert!(writer.offset() < data.len() as u64);
    }
    let partial = store.writer(&ref_name, None).unwrap().offset();
    assert!(partial >= 1 << 20);

    reg.restart();
    let got = client
        .fetch_blob_into(&store, &reference, &digest, data.len() as u64)
        .await
        .unwrap();
    assert_eq!(got, digest);
    assert_eq!(read_blob(&store, &digest), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tag_is_not_found() {
    let reg = TestRegistry::start(None);
    let reference = reg.reference("nothing/here:nope");
    let err = client()
        .resolve(&reference, &Platform::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nothing/here:nope"), "{err}");
}

/// A server that serves canned manifests: a real registry validates what
/// it stores, so it cannot be made to serve these.
async fn canned(manifests: HashMap<&'static str, (&'static str, &'static [u8])>) -> TestServer {
    let manifests = Arc::new(manifests);
    TestServer::start(Arc::new(move |req| {
        let manifests = manifests.clone();
        Box::pin(async move {
            let tag = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
            match manifests.get(tag.as_str()) {
                Some((media_type, body)) => Response::builder()
                    .header(http::header::CONTENT_TYPE, *media_type)
                    .body(Full::new(Bytes::from_static(body)))
                    .unwrap(),
                None => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            }
        })
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_give_clear_errors() {
    let server = canned(HashMap::from([
        ("notjson", (OCI_MANIFEST, &b"<html>oops</html>"[..])),
        (
            "weird",
            ("application/x-weird", &b"{\"schemaVersion\":2}"[..]),
        ),
    ]))
    .await;
    let client = client();

    let reference = Reference::parse(&format!("{}/r/x:notjson", server.host())).unwrap();
    let err = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestNotJson { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("r/x:notjson") && msg.contains(OCI_MANIFEST),
        "{msg}"
    );

    let reference = Reference::parse(&format!("{}/r/x:weird", server.host())).unwrap();
    let err = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::UnknownMediaType { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("application/x-weird"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_repo_mount_and_pull_back_byte_identical() {
    let reg = TestRegistry::start(None);
    let image = busybox("amd64");
    let client = client();
    let source = reg.reference("src/busybox:1");
    push_image(&client, &source, &image).await;

    // Pull, then push what was pulled to another repository.
    let resolved = client.resolve(&source, &Platform::default()).await.unwrap();
    let (_dir, store) = store();
    let mut blobs = vec![resolved.manifest.config().clone()];
    blobs.extend(resolved.manifest.layers().iter().cloned());
    let target = reg.reference("dst/busybox:copy");
    for desc in &blobs {
        let digest = Digest::parse(desc.digest().as_ref()).unwrap();
        client
            .fetch_blob_into(&store, &source, &digest, desc.size())
            .await
            .unwrap();
        let data = Bytes::from(read_blob(&store, &digest));
        let mounted = client
            .push_blob(&target, &digest, data, Some(source.repository()))
            .await
            .unwrap();
        assert!(mounted, "blob {digest} was uploaded instead of mounted");
    }
    client
        .put_manifest(&target, "copy", &resolved.media_type, resolved.raw.clone())
        .await
        .unwrap();

    let back = client.resolve(&target, &Platform::default()).await.unwrap();
    assert_eq!(back.raw, resolved.raw);
    assert_eq!(back.digest, image.manifest.digest);
    let mut stream = client
        .fetch_blob(&target, &image.layers[0].digest, 0)
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, image.layers[0].data);

    // Mounting from a repository that lacks the blob falls back to upload.
    let other = Bytes::from_static(b"not in src");
    let other_digest = Digest::of(&other);
    let mounted = client
        .push_blob(&target, &other_digest, other, Some(source.repository()))
        .await
        .unwrap();
    assert!(!mounted);
    assert!(client.blob_exists(&target, &other_digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_image_streams_from_the_content_store() {
    let reg = TestRegistry::start(None);
    let image = busybox("amd64");
    let client = client();
    let source = reg.reference("from/busybox:1");
    push_image(&client, &source, &image).await;

    // Pull into a store: manifest, config, layer.
    let resolved = client.resolve(&source, &Platform::default()).await.unwrap();
    let (_dir, store) = store();
    let mut writer = store
        .writer(
            "manifest",
            Some((resolved.digest, resolved.raw.len() as u64)),
        )
        .unwrap();
    std::io::Write::write_all(&mut writer, &resolved.raw).unwrap();
    writer.commit().unwrap();
    for blob in [&image.config, &image.layers[0]] {
        client
            .fetch_blob_into(&store, &source, &blob.digest, blob.data.len() as u64)
            .await
            .unwrap();
    }

    // Without a mount source: uploaded from the store's files.
    let plain = reg.reference("plain/busybox:v2");
    let pushed = client
        .push_image(&store, &resolved.digest, &plain, None)
        .await
        .unwrap();
    assert_eq!(pushed, resolved.digest);
    // With one: mounted; either way the result pulls back byte-identical.
    let mounted = reg.reference("mounted/busybox:v3");
    client
        .push_image(&store, &resolved.digest, &mounted, Some(&source))
        .await
        .unwrap();
    for target in [&plain, &mounted] {
        let back = client.resolve(target, &Platform::default()).await.unwrap();
        assert_eq!(back.raw, resolved.raw);
        let (_dir2, store2) = self::store();
        client
            .fetch_blob_into(
                &store2,
                target,
                &image.layers[0].digest,
                image.layers[0].data.len() as u64,
            )
            .await
            .unwrap();
        assert_eq!(
            read_blob(&store2, &image.layers[0].digest),
            image.layers[0].data
        );
    }

    // A manifest the store does not have is a clear local error.
    let missing = Digest::of(b"no such manifest");
    let err = client
        .push_image(&store, &missing, &plain, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
}

fn fast_retry_client(attempts: u32) -> RegistryClient {
    let config = RegistryConfig {
        retry: berth_core::registry::RetryPolicy {
            attempts,
            initial_backoff: std::time::Duration::from_millis(5),
            max_backoff: std::time::Duration::from_millis(20),
        },
        ..RegistryConfig::default()
    };
    RegistryClient::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_and_429_but_not_other_4xx() {
    let image = busybox("amd64");
    let manifest = image.manifest.data.clone();
    let hits: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let hits_in = hits.clone();
    let server = TestServer::start(Arc::new(move |req| {
        let manifest = manifest.clone();
        let tag = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
        let n = {
            let mut hits = hits_in.lock().unwrap();
            let n = hits.entry(tag.clone()).or_insert(0);
            *n += 1;
            *n
        };
        Box::pin(async move {
            let status = match (tag.as_str(), n) {
                ("flaky", 1 | 2) => StatusCode::SERVICE_UNAVAILABLE,
                ("flaky", 3) => StatusCode::TOO_MANY_REQUESTS,
                ("flaky", _) => StatusCode::OK,
                ("forbidden", _) => StatusCode::FORBIDDEN,
                ("broken", _) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::NOT_FOUND,
            };
            let body = if status == StatusCode::OK {
                manifest
            } else {
                Bytes::new()
            };
            Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, OCI_MANIFEST)
                .body(Full::new(body))
                .unwrap()
        })
    }))
    .await;
    let client = fast_retry_client(4);
    let at = |tag: &str| Reference::parse(&format!("{}/r/x:{tag}", server.host())).unwrap();
    let count = |tag: &str| hits.lock().unwrap().get(tag).copied().unwrap_or(0);

    let resolved = client
        .resolve(&at("flaky"), &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.digest, image.manifest.digest);
    assert_eq!(count("flaky"), 4);

    let err = client
        .resolve(&at("broken"), &Platform::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(count("broken"), 4, "bounded by the policy");

    let err = client
        .resolve(&at("gone"), &Platform::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(count("gone"), 1, "404 is not retried");
    let err = client
        .resolve(&at("forbidden"), &Platform::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert_eq!(count("forbidden"), 1, "403 is not retried");

    // Nothing listens on a dropped server's port: connect errors are
    // retried, then reported with the URL and the attempt count.
    let dead = Reference::parse(&format!("127.0.0.1:{}/r/x:1", free_port())).unwrap();
    let err = client
        .resolve(&dead, &Platform::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("after 4 attempt(s)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_redirects_and_copes_with_an_ignored_range() {
    let image = busybox("amd64");
    let data = image.layers[0].data.clone();
    let saw_credentials = Arc::new(AtomicUsize::new(0));
    let saw_in = saw_credentials.clone();
    // "Storage": serves the whole blob with 200 whatever Range says.
    let storage = TestServer::start(Arc::new(move |req| {
        let data = data.clone();
        if req.headers().contains_key(http::header::AUTHORIZATION) {
            saw_in.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async move { Response::new(Full::new(data)) })
    }))
    .await;
    let storage_host = storage.host();
    // "Registry": requires Basic auth, then redirects blob downloads to the
    // storage, which must not receive the registry's credentials.
    let front = TestServer::start(Arc::new(move |req| {
        let location = format!(
            "http://{storage_host}/bucket/blob?sig=1&path={}",
            req.uri().path()
        );
        let authorized = req.headers().contains_key(http::header::AUTHORIZATION);
        Box::pin(async move {
            if !authorized {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"x\"")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
            Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(http::header::LOCATION, location)
                .body(Full::new(Bytes::new()))
                .unwrap()
        })
    }))
    .await;
    let client = client_with(&front.host(), "u", "p");
    let reference = Reference::parse(&format!("{}/r/x:1", front.host())).unwrap();

    let mut stream = client
        .fetch_blob(&reference, &image.layers[0].digest, 1000)
        .await
        .unwrap();
    assert!(stream.url().contains("/bucket/blob"), "{}", stream.url());
    let mut tail = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        tail.extend_from_slice(&chunk);
    }
    assert_eq!(tail, image.layers[0].data[1000..]);

    let (_dir, store) = store();
    client
        .fetch_blob_into(
            &store,
            &reference,
            &image.layers[0].digest,
            image.layers[0].data.len() as u64,
        )
        .await
        .unwrap();
    assert_eq!(
        read_blob(&store, &image.layers[0].digest),
        image.layers[0].data
    );
    assert_eq!(saw_credentials.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_an_index_and_a_docker_manifest_seeded_by_skopeo() {
    let reg = TestRegistry::start(None);
    let amd64 = busybox("amd64");
    let arm64 = busybox("arm64");
    let index = index_of(&[&amd64, &arm64]);
    let layout = tempfile::tempdir().unwrap();
    write_oci_index_layout(layout.path(), &[&amd64, &arm64], &index, "multi");
    let src = format!("oci:{}:multi", layout.path().display());
    common::servers::skopeo_copy(
        &["--all", "--preserve-digests"],
        &src,
        &format!("{}/seeded/multi:1", reg.host()),
    );
    let client = client();
    let reference = reg.reference("seeded/multi:1");
    let resolved = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.digest, amd64.manifest.digest);
    assert_eq!(resolved.index.as_ref().unwrap().0, index.digest);
    let by_digest = reg.reference(&format!("seeded/multi@{}", index.digest));
    let arm = client
        .resolve(&by_digest, &Platform::parse("linux/arm64/v8").unwrap())
        .await
        .unwrap();
    assert_eq!(arm.raw, arm64.manifest.data);
    let err = client
        .resolve(&reference, &Platform::parse("linux/riscv64").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("seeded/multi:1"), "{err}");

    // skopeo converts the OCI manifest to Docker schema 2 on the way.
    let single = tempfile::tempdir().unwrap();
    amd64.write_oci_layout(single.path(), "latest");
    common::servers::skopeo_copy(
        &["--format", "v2s2"],
        &format!("oci:{}:latest", single.path().display()),
        &format!("{}/seeded/docker:1", reg.host()),
    );
    let reference = reg.reference("seeded/docker:1");
    let resolved = client
        .resolve(&reference, &Platform::default())
        .await
        .unwrap();
    assert_eq!(resolved.media_type, berth_core::registry::DOCKER_MANIFEST);
    assert_ne!(resolved.digest, amd64.manifest.digest, "converted");
    assert_eq!(resolved.digest, Digest::of(&resolved.raw));
    let config = resolved.manifest.config();
    let config_digest = Digest::parse(config.digest().as_ref()).unwrap();
    let (_dir, store) = store();
    client
        .fetch_blob_into(&store, &reference, &config_digest, config.size())
        .await
        .unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&read_blob(&store, &config_digest)).unwrap();
    assert_eq!(config["architecture"], "amd64");
}

//! `docker pull`, `docker push` and `docker login` against berthd, with the
//! real docker CLI (28.x), raw API calls and docker-py, and a real
//! loopback `docker-registry`. The registry is seeded by berthd's own push
//! of a busybox image imported from busybox-static.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use berth_testkit::pytest::run_pytest;
use berth_testkit::registry::TestRegistry;
use berth_testkit::rootfs::APPLETS;
use common::{Berthd, BerthdRequest, request, start_berthd};

/// The docker CLI with its own config directory (logins write there).
struct Cli {
    host: String,
    config: PathBuf,
}

impl Cli {
    fn new(daemon: &Berthd) -> Cli {
        let config = daemon.dir.path().join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        Cli {
            host: daemon.host(),
            config,
        }
    }

    fn with_config(daemon: &Berthd, config: &Path) -> Cli {
        Cli {
            host: daemon.host(),
            config: config.to_owned(),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> (ExitStatus, String, String) {
        let mut child = berth_testkit::docker::command(&self.host, &self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running the docker CLI");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        berth_testkit::docker::run_ok(&self.host, &self.config, args)
    }

    fn fails(&self, args: &[&str]) -> String {
        berth_testkit::docker::run_fails(&self.host, &self.config, args)
    }
}

/// Imports a busybox root file system into `daemon` as `reference`.
fn import_busybox(daemon: &Berthd, cli: &Cli, reference: &str) {
    berth_testkit::docker::import_busybox(
        &cli.host,
        &cli.config,
        daemon.dir.path(),
        APPLETS,
        &[],
        reference,
    );
}

/// The `sha256:...` after `digest: ` in push output (or `Digest: ` in pull output).
fn digest_in(output: &str) -> String {
    let start = output
        .find("digest: sha256:")
        .or_else(|| output.find("Digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest in {output:?}"))
        + "digest: ".len();
    output[start..start + 71].to_owned()
}

/// Seeds `registry` with `busybox:latest` pushed by a throwaway berthd;
/// returns the pushed manifest digest.
fn seed(registry: &TestRegistry) -> String {
    let seeder = start_berthd();
    let cli = Cli::new(&seeder);
    let reference = format!("{}/busybox:latest", registry.host());
    import_busybox(&seeder, &cli, &reference);
    let out = cli.ok(&["push", &reference]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/busybox]",
            registry.host()
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    digest_in(&out)
}

#[test]
fn pull_push_and_pull_by_digest_with_the_docker_cli() {
    let registry = TestRegistry::start(None);
    let pushed = seed(&registry);
    let host = registry.host();
    let daemon = start_berthd();
    let cli = Cli::new(&daemon);
    let reference = format!("{host}/busybox:latest");

    let out = cli.ok(&["pull", &reference]);
    assert!(out.contains("latest: Pulling from busybox"), "{out}");
    assert!(out.contains(": Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Digest: {pushed}")),
        "pulled digest differs from the pushed one: {out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {reference}")),
        "{out}"
    );
    let images = cli.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == reference), "{images}");
    let id = cli.ok(&["image", "inspect", "--format", "{{.Id}}", &reference]);
    assert!(id.trim().starts_with("sha256:"), "{id}");

    let again = cli.ok(&["pull", &reference]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {reference}")),
        "{again}"
    );
    assert!(!again.contains("Already exists"), "{again}");

    let by_digest = format!("{host}/busybox@{pushed}");
    let out = cli.ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Digest: {pushed}")), "{out}");

    // Push to another repository and pull it back: same manifest digest.
    let copy = format!("{host}/copy:v1");
    cli.ok(&["tag", &reference, &copy]);
    let out = cli.ok(&["push", &copy]);
    assert_eq!(digest_in(&out), pushed, "{out}");
    cli.ok(&["rmi", &copy]);
    let out = cli.ok(&["pull", &copy]);
    assert_eq!(digest_in(&out), pushed, "{out}");
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");

    let missing = format!("{host}/busybox:nope");
    let err = cli.fails(&["pull", &missing]);
    assert!(
        err.contains(&format!("manifest for {missing} not found")),
        "{err}"
    );
    let err = cli.fails(&["push", &format!("{host}/never-made:v1")]);
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
}

/// The JSON messages of a raw pull, in order.
fn pull_messages(daemon: &Berthd, from_image: &str, tag: &str) -> Vec<serde_json::Value> {
    let path = format!("/v1.47/images/create?fromImage={from_image}&tag={tag}");
    let response = request(&daemon.socket, "POST", &path, &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    response
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_progress_stream_has_dockerds_messages_and_concurrent_pulls_succeed() {
    let registry = TestRegistry::start(None);
    let pushed = seed(&registry);
    let image = format!("{}/busybox", registry.host());
    let daemon = start_berthd();

    // Two pulls of the same image at once: both succeed.
    let messages: Vec<Vec<serde_json::Value>> = std::thread::scope(|s| {
        let pulls: Vec<_> = (0..2)
            .map(|_| s.spawn(|| pull_messages(&daemon, &image, "latest")))
            .collect();
        pulls.into_iter().map(|p| p.join().unwrap()).collect()
    });
    for list in &messages {
        assert!(
            list.iter().all(|m| m.get("error").is_none()),
            "a concurrent pull failed: {list:?}"
        );
        assert_eq!(
            list.first().unwrap(),
            &serde_json::json!({"status": "Pulling from busybox", "id": "latest"})
        );
        assert_eq!(
            list[list.len() - 2],
            serde_json::json!({ "status": format!("Digest: {pushed}") })
        );
        let last = list.last().unwrap()["status"].as_str().unwrap();
        assert!(last.starts_with("Status: "), "{last}");
    }
    let all: Vec<&serde_json::Value> = messages.iter().flatten().collect();
    let layer = all
        .iter()
        .find(|m| m["status"] == "Pulling fs layer")
        .expect("a layer was pulled fresh");
    let id = layer["id"].as_str().unwrap();
    assert_eq!(id.len(), 12);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(layer["progressDetail"], serde_json::json!({}));
    let downloading = all
        .iter()
        .find(|m| m["status"] == "Downloading")
        .expect("download progress");
    assert!(downloading["progressDetail"]["total"].as_u64().unwrap() > 0);
    assert!(
        downloading["progress"].as_str().unwrap().starts_with('['),
        "{downloading}"
    );
    assert!(all.iter().any(|m| m["status"] == "Pull complete"));

    // A bad reference is a 400 before any streaming; a missing one a 404.
    let response = request(
        &daemon.socket,
        "POST",
        "/images/create?fromImage=Bad%2FName&tag=x",
        &[],
        b"",
    );
    assert_eq!(response.status, 400, "{}", response.text());
    let response = request(
        &daemon.socket,
        "POST",
        &format!("/images/create?fromImage={image}&tag=missing"),
        &[],
        b"",
    );
    assert_eq!(response.status, 404, "{}", response.text());
    assert!(
        response.json()["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{}",
        response.text()
    );

    // The pull shows in the event stream.
    let until = common::now() + 1;
    let events = request(
        &daemon.socket,
        "GET",
        &format!("/events?since=0&until={until}&filters=%7B%22event%22%3A%5B%22pull%22%5D%7D"),
        &[],
        b"",
    );
    assert!(
        events
            .text()
            .contains(&format!("\"id\":\"{image}:latest\"")),
        "{}",
        events.text()
    );
}

#[test]
fn a_client_leaving_mid_pull_does_not_hurt_the_daemon() {
    let registry = TestRegistry::start(None);
    seed(&registry);
    let image = format!("{}/busybox", registry.host());
    let daemon = start_berthd();
    {
        let mut stream = UnixStream::connect(&daemon.socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "POST /images/create?fromImage={image}&tag=latest HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        assert!(line.contains("200"), "{line}");
        // Dropped here, mid-stream.
    }
    // The pull goes on without its client and records the image.
    let inspect = format!("/images/{image}:latest/json");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while daemon.request("GET", &inspect).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned pull never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The daemon still answers, and pulling again finds it up to date.
    let messages = pull_messages(&daemon, &image, "latest");
    assert_eq!(
        messages.last().unwrap()["status"],
        format!("Status: Image is up to date for {image}:latest"),
        "{messages:?}"
    );
    assert_eq!(daemon.request("GET", "/_ping").status, 200);
}

/// The largest file under `dir` (the layer blob of the seeded registry).
fn largest_file(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if best.as_ref().is_none_or(|(len, _)| meta.len() > *len) {
                best = Some((meta.len(), entry.path()));
            }
        }
    }
    best.expect("a blob in the registry").1
}

#[test]
fn a_corrupt_layer_fails_inside_the_stream() {
    let registry = TestRegistry::start(None);
    seed(&registry);
    let blobs = registry.dir.path().join("storage/docker/registry/v2/blobs");
    let layer = largest_file(&blobs);
    let len = std::fs::metadata(&layer).unwrap().len();
    std::fs::write(&layer, vec![0u8; len as usize]).unwrap();

    let daemon = start_berthd();
    let image = format!("{}/busybox", registry.host());
    // The manifest resolves, so the answer is a 200 stream ending in an error.
    let messages = pull_messages(&daemon, &image, "latest");
    let last = messages.last().unwrap();
    let error = last["error"].as_str().expect("an error message last");
    assert_eq!(last["errorDetail"]["message"], error);
    assert!(error.contains("layer sha256:"), "{error}");
    // The CLI shows it and fails; no image was recorded.
    let cli = Cli::new(&daemon);
    let err = cli.fails(&["pull", &format!("{image}:latest")]);
    assert!(err.contains("layer sha256:"), "{err}");
    assert_eq!(cli.ok(&["images", "-q"]).trim(), "");
}

#[test]
fn login_push_and_pull_with_an_htpasswd_registry() {
    let registry = TestRegistry::start(Some(("berth", "s3cret")));
    let host = registry.host();
    let daemon = start_berthd();
    let cli = Cli::new(&daemon);

    let (status, stdout, stderr) = cli.run(
        &["login", &host, "-u", "berth", "--password-stdin"],
        "wrong\n",
    );
    assert!(!status.success(), "{stdout}");
    assert!(stderr.contains("401 Unauthorized"), "{stderr}");

    let reference = format!("{host}/busybox:latest");
    import_busybox(&daemon, &cli, &reference);
    // Not logged in: the registry refuses the push.
    let err = cli.fails(&["push", &reference]);
    assert!(err.contains("unauthorized"), "{err}");

    let (status, stdout, stderr) = cli.run(
        &["login", &host, "-u", "berth", "--password-stdin"],
        "s3cret\n",
    );
    assert!(status.success(), "{stdout} {stderr}");
    assert!(stdout.contains("Login Succeeded"), "{stdout}");

    // The CLI now sends the credentials in X-Registry-Auth.
    let out = cli.ok(&["push", &reference]);
    let pushed = digest_in(&out);
    let other = start_berthd();
    let other_cli = Cli::with_config(&other, &cli.config);
    let out = other_cli.ok(&["pull", &reference]);
    assert_eq!(digest_in(&out), pushed, "{out}");
    // A daemon asked without credentials is refused by the registry.
    let anonymous = start_berthd();
    Cli::new(&anonymous).fails(&["pull", &reference]);
}

#[test]
fn docker_py_pulls_and_pushes() {
    let registry = TestRegistry::start(None);
    let pushed = seed(&registry);
    let daemon = start_berthd();
    run_pytest(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_pull.py"),
        &[
            ("BERTHD_HOST", OsStr::new(&daemon.host())),
            ("BERTH_TEST_REGISTRY", OsStr::new(&registry.host())),
            ("BERTH_TEST_DIGEST", OsStr::new(&pushed)),
        ],
        3,
    );
}

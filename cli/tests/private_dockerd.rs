//! Commands whose endpoints berthd does not serve yet, against a PRIVATE dockerd (Debian's
//! docker.io, API 1.41): `cp` (/containers/{id}/archive), `login`/`logout` (POST /auth),
//! and the "downgraded" line of `version`, which needs a daemon older
//! than berth's API 1.47. Everything else runs against berthd in berthd.rs.
//! TODO(lead): move each step to berthd.rs once berthd serves its endpoint; the assertions are
//! about berth's behaviour, not dockerd's.
//!
//! One test runs the steps in order so only one dockerd is started (it takes seconds on 2 cores).

mod common;

use berth_testkit::registry::TestRegistry;
use common::{PrivateDockerd, berth, berth_with_stdin, ok, stderr, stdout};

#[test]
fn commands_berthd_does_not_serve_yet() {
    let d = PrivateDockerd::start();
    let h = d.host.as_str();

    // version negotiation with an older daemon: dockerd 20.10 serves 1.41, berth downgrades
    // from 1.47 and says so (berthd serves 1.47, so berthd.rs cannot show this line)
    let v = ok(h, &["version"]);
    assert!(
        v.contains("API version:       1.41 (downgraded from 1.47)"),
        "{v}"
    );

    // a running container for cp
    ok(
        h,
        &["run", "-d", "--name", "t-sleep", "busybox", "sleep", "300"],
    );

    // cp in and out: files, directories, renames, existing directories
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f.txt"), "hello\n").unwrap();
    std::fs::create_dir_all(work.path().join("tree/sub")).unwrap();
    std::fs::write(work.path().join("tree/sub/x"), "x\n").unwrap();
    let local = |p: &str| work.path().join(p).to_str().unwrap().to_string();
    ok(h, &["exec", "t-sleep", "mkdir", "/in"]);
    ok(h, &["cp", &local("f.txt"), "t-sleep:/in"]);
    ok(h, &["cp", &local("f.txt"), "t-sleep:/in/renamed.txt"]);
    ok(h, &["cp", &local("tree"), "t-sleep:/in/tree"]);
    assert_eq!(
        ok(
            h,
            &[
                "exec",
                "t-sleep",
                "cat",
                "/in/f.txt",
                "/in/renamed.txt",
                "/in/tree/sub/x"
            ]
        ),
        "hello\nhello\nx\n"
    );
    ok(h, &["cp", "t-sleep:/in/renamed.txt", &local("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("back.txt")).unwrap(),
        "hello\n"
    );
    ok(h, &["cp", "t-sleep:/in/tree", &local("copy")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("copy/sub/x")).unwrap(),
        "x\n"
    );
    ok(h, &["cp", "t-sleep:/in/tree", &local("copy")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("copy/tree/sub/x")).unwrap(),
        "x\n"
    );
    let out = berth(h, &["cp", "t-sleep:/nothing", &local("n")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("/nothing"), "{}", stderr(&out));

    ok(h, &["rm", "-f", "t-sleep"]);

    let reg = TestRegistry::start(None);
    // login / logout: validated by the daemon (POST /auth), stored in config.json like docker
    let cfg = tempfile::tempdir().unwrap();
    let cfg_dir = cfg.path().to_str().unwrap();
    let out = berth_with_stdin(
        h,
        &[
            "--config",
            cfg_dir,
            "login",
            "-u",
            "me",
            "--password-stdin",
            &reg.host(),
        ],
        b"secret\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(stored["auths"][&reg.host()]["auth"], "bWU6c2VjcmV0"); // base64("me:secret")
    assert_eq!(
        ok(h, &["--config", cfg_dir, "logout", &reg.host()]),
        format!("Removing login credentials for {}\n", reg.host())
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.path().join("config.json")).unwrap()).unwrap();
    assert!(stored["auths"].get(reg.host()).is_none());
    drop(reg);

    drop(d);
}

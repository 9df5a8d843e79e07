//! Commands whose endpoints berthd does not serve yet, against a PRIVATE dockerd (Debian's
//! docker.io, API 1.41): `login`/`logout` (POST /auth),
//! and the "downgraded" line of `version`, which needs a daemon older
//! than berth's API 1.47. Everything else runs against berthd in berthd.rs.
//! TODO(lead): move each step to berthd.rs once berthd serves its endpoint; the assertions are
//! about berth's behaviour, not dockerd's.
//!
//! One test runs the steps in order so only one dockerd is started (it takes seconds on 2 cores).

mod common;

use berth_testkit::registry::TestRegistry;
use common::{PrivateDockerd, berth_with_stdin, ok, stderr, stdout};

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

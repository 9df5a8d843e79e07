//! What needs a daemon older than berth's API 1.47, against a PRIVATE dockerd (Debian's
//! docker.io, API 1.41): the "downgraded" line of `version`. Everything else runs against
//! berthd in berthd.rs.

mod common;

use common::{PrivateDockerd, ok};

#[test]
fn version_against_an_older_daemon_says_downgraded() {
    let d = PrivateDockerd::start();
    let h = d.host.as_str();

    // version negotiation with an older daemon: dockerd 20.10 serves 1.41, berth downgrades
    // from 1.47 and says so (berthd serves 1.47, so berthd.rs cannot show this line)
    let v = ok(h, &["version"]);
    assert!(
        v.contains("API version:       1.41 (downgraded from 1.47)"),
        "{v}"
    );
    drop(d);
}

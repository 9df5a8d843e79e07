//! Runs `tests/python/test_system.py` (pytest + docker-py) against a real berthd.

mod common;

use std::ffi::OsStr;

use berth_testkit::pytest::run_pytest;
use common::start_berthd;

#[test]
fn docker_py_talks_to_berthd() {
    let daemon = start_berthd();
    run_pytest(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_system.py"),
        &[("BERTHD_HOST", OsStr::new(&daemon.host()))],
        6,
    );
}

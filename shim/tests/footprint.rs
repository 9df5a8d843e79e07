//! Memory footprint of idle shims: not a pass/fail test, a measurement.
//! Run with
//! `cargo test -p berth-shim --release --test footprint -- --ignored --nocapture`
//! (`BERTH_SHIM_COUNT=200` for the daemon's target load, default 20;
//! `BERTH_SHIM_SMAPS=1` to list the first shim's private mappings).

mod common;

use berth_shim::client;
use common::*;

fn rollup(pid: i32) -> Vec<(String, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let key = it.next()?.trim_end_matches(':').to_string();
            let kb = it.next()?.parse().ok()?;
            Some((key, kb))
        })
        .collect()
}

fn field(r: &[(String, u64)], key: &str) -> u64 {
    r.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

/// Each mapping with private dirty pages (`BERTH_SHIM_SMAPS=1`).
fn print_private_mappings(pid: i32) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut header = "";
    for line in smaps.lines() {
        if line.contains('-') && !line.contains(':') || line.split_whitespace().count() >= 5 {
            header = line;
        } else if let Some(kb) = line.strip_prefix("Private_Dirty:") {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            if kb > 0 {
                println!("{kb:>5} KiB private dirty  {header}");
            }
        }
    }
}

#[test]
#[ignore = "measurement, prints numbers"]
fn idle_shim_pss() {
    require_root();
    let count: usize = std::env::var("BERTH_SHIM_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let bundle = Bundle::new(&["sleep", "1000"]);
    let mut shims = Vec::new();
    for _ in 0..count {
        let dirs = Dirs::new("pss");
        let c = client::spawn(&dirs.options(&bundle)).unwrap();
        c.start().unwrap();
        shims.push((dirs, c));
    }
    // Exercise the request path once per shim, as the daemon would.
    for (_, c) in &shims {
        c.state().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut pss = Vec::new();
    for (i, (_, c)) in shims.iter().enumerate() {
        let r = rollup(c.shim_pid());
        pss.push(field(&r, "Pss"));
        if i == 0 {
            println!(
                "first shim: Rss {} KiB, Pss {} KiB (Pss_Anon {}, Pss_File {}), Private_Dirty {} KiB",
                field(&r, "Rss"),
                field(&r, "Pss"),
                field(&r, "Pss_Anon"),
                field(&r, "Pss_File"),
                field(&r, "Private_Dirty")
            );
        }
    }
    if std::env::var_os("BERTH_SHIM_SMAPS").is_some() {
        print_private_mappings(shims[0].1.shim_pid());
    }
    let total: u64 = pss.iter().sum();
    println!(
        "{count} idle shims: total Pss {total} KiB, mean {} KiB, max {} KiB",
        total / count as u64,
        pss.iter().max().unwrap()
    );
    for (dirs, c) in shims {
        cleanup(&dirs, Some(c));
    }
}

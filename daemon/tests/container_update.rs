//! `docker update` (the real docker CLI 28) against a real berthd: limits
//! written live into a running container's cgroup (read back from inside
//! the container and on the host), kept in the record across a berthd
//! restart, applied at the next start of a stopped container; restart
//! policy changes; Docker's refusals with nothing changed.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_testkit::rootfs::APPLETS;
use common::{Daemon, request};

impl Daemon {
    fn start() -> Daemon {
        let d = Daemon::start_in("berthd-upd");
        d.import_busybox(APPLETS);
        d
    }

    /// `docker update` that must fail: returns stderr.
    fn update_fails(&self, args: &[&str]) -> String {
        let mut all = vec!["update"];
        all.extend_from_slice(args);
        let (status, stdout, stderr) = self.docker(&all);
        assert_eq!(status.code(), Some(1), "{all:?}: {stdout} {stderr}");
        stderr
    }

    /// `POST /containers/{name}/update` with a raw body: (status, message).
    fn update_api(&self, name: &str, body: &str) -> (u16, serde_json::Value) {
        let response = request(
            &self.socket,
            "POST",
            &format!("/v1.47/containers/{name}/update"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        (response.status, response.json())
    }

    /// Removes every container, then insists no shim and no mount is left.
    fn assert_clean_after_rm_all(&self) {
        common::assert_clean_after_rm_all(self);
    }
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The limits a container's cgroup holds, read from inside the container
/// (its own cgroup is what it sees at /sys/fs/cgroup).
#[derive(Debug, PartialEq, Eq)]
struct Limits {
    memory: String,
    /// "quota period", e.g. "50000 100000"; "max 100000" without a quota.
    cpu: String,
    pids: String,
    shares: String,
}

fn limits(d: &Daemon, name: &str) -> Limits {
    let read = |path: &str| d.ok(&["exec", name, "cat", path]).trim().to_owned();
    if cgroup_v2() {
        Limits {
            memory: read("/sys/fs/cgroup/memory.max"),
            cpu: read("/sys/fs/cgroup/cpu.max"),
            pids: read("/sys/fs/cgroup/pids.max"),
            shares: read("/sys/fs/cgroup/cpu.weight"),
        }
    } else {
        let quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
        let quota = if quota == "-1" {
            "max".to_owned()
        } else {
            quota
        };
        Limits {
            memory: read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
            cpu: format!("{quota} {}", read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
            pids: read("/sys/fs/cgroup/pids/pids.max"),
            shares: read("/sys/fs/cgroup/cpu/cpu.shares"),
        }
    }
}

/// On a v1 host: the container's memory directory as the host sees it.
fn host_memory_dir(id: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(format!("/sys/fs/cgroup/memory/berth/{id}"));
    (!cgroup_v2() && dir.is_dir()).then_some(dir)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const MIB: i64 = 1 << 20;

#[test]
fn a_running_container_gets_new_limits_live_and_keeps_them() {
    let mut d = Daemon::start();
    // -m 32m gives a 64m memory+swap limit, so 64m may be set without a
    // new swap limit (Docker refuses a memory limit above memory+swap).
    d.ok(&[
        "run", "-d", "--name", "live", "-m", "32m", "busybox", "sleep", "1000",
    ]);
    let id = d.inspect("live")["Id"].as_str().unwrap().to_owned();
    let before = limits(&d, "live");
    assert_eq!(before.memory, (32 * MIB).to_string());

    let since = common::now();
    let (status, stdout, stderr) = d.docker(&[
        "update",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "live",
    ]);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "live\n");
    let after = limits(&d, "live");
    assert_eq!(after.memory, (64 * MIB).to_string());
    assert_eq!(after.cpu, "50000 100000");
    assert_eq!(after.pids, "50");
    // What the update did not name stays as it was.
    assert_eq!(after.shares, before.shares);
    if let Some(dir) = host_memory_dir(&id) {
        let on_host = std::fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap();
        assert_eq!(on_host.trim(), (64 * MIB).to_string());
    }
    let host = d.inspect("live")["HostConfig"].clone();
    assert_eq!(host["Memory"], 64 * MIB);
    assert_eq!(host["MemorySwap"], 64 * MIB);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["PidsLimit"], 50);
    let events = d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(common::now() + 1).to_string(),
        "--filter",
        "event=update",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(events, "update live\n");

    // Raising memory and memory+swap together: memsw must be written
    // first, or the kernel refuses the memory limit.
    d.ok(&["update", "-m", "128m", "--memory-swap", "256m", "live"]);
    assert_eq!(limits(&d, "live").memory, (128 * MIB).to_string());
    if let Some(dir) = host_memory_dir(&id)
        && dir.join("memory.memsw.limit_in_bytes").exists()
    {
        let memsw = std::fs::read_to_string(dir.join("memory.memsw.limit_in_bytes")).unwrap();
        assert_eq!(memsw.trim(), (256 * MIB).to_string());
    }

    // Unlimited swap is written too, not only recorded.
    d.ok(&["update", "--memory-swap", "-1", "live"]);
    assert_eq!(d.inspect("live")["HostConfig"]["MemorySwap"], -1);
    if let Some(dir) = host_memory_dir(&id)
        && dir.join("memory.memsw.limit_in_bytes").exists()
    {
        let memsw = std::fs::read_to_string(dir.join("memory.memsw.limit_in_bytes")).unwrap();
        assert!(memsw.trim().parse::<u64>().unwrap() > 1 << 60, "{memsw}");
    }
    d.ok(&["update", "--memory-swap", "256m", "live"]);

    // A limit this host cannot enforce is discarded with Docker's warning.
    let blkio_weight = if cgroup_v2() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .unwrap()
            .split_whitespace()
            .any(|c| c == "io")
    } else {
        Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
    };
    let (status, stdout, stderr) = d.docker(&["update", "--blkio-weight", "300", "live"]);
    assert!(status.success(), "{stderr}");
    if blkio_weight {
        assert_eq!(stdout, "live\n");
        assert_eq!(d.inspect("live")["HostConfig"]["BlkioWeight"], 300);
    } else {
        assert_eq!(
            stdout,
            "live\nYour kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.\n"
        );
        assert_eq!(d.inspect("live")["HostConfig"]["BlkioWeight"], 0);
    }

    // The record survives a berthd restart (and the container runs on).
    d.0.kill9();
    d.0.spawn();
    let host = d.inspect("live")["HostConfig"].clone();
    assert_eq!(host["Memory"], 128 * MIB);
    assert_eq!(host["MemorySwap"], 256 * MIB);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["PidsLimit"], 50);
    assert_eq!(d.inspect("live")["State"]["Running"], true);
    // ...and so does the update path: pids limit back to unlimited.
    d.ok(&["update", "--pids-limit", "-1", "live"]);
    assert_eq!(limits(&d, "live").pids, "max");
    assert_eq!(d.inspect("live")["HostConfig"]["PidsLimit"], 0);
    // A paused container's (frozen) cgroup takes new limits too.
    d.ok(&["pause", "live"]);
    d.ok(&["update", "--pids-limit", "60", "live"]);
    d.ok(&["unpause", "live"]);
    assert_eq!(limits(&d, "live").pids, "60");
    d.assert_clean_after_rm_all();
}

#[test]
fn refused_updates_change_nothing() {
    let d = Daemon::start();
    d.ok(&[
        "run", "-d", "--name", "live", "-m", "32m", "--cpus", "1", "busybox", "sleep", "1000",
    ]);
    let host_before = d.inspect("live")["HostConfig"].clone();
    let limits_before = limits(&d, "live");

    // Bad values: 400 with moby's message.
    let stderr = d.update_fails(&["--memory", "1m", "live"]);
    assert_eq!(
        stderr,
        "Error response from daemon: Minimum memory limit allowed is 6MB\n"
    );
    for (body, message) in [
        (r#"{"Memory": -5}"#, "Minimum memory limit allowed is 6MB"),
        (
            r#"{"MemoryReservation": 1000}"#,
            "Minimum memory reservation allowed is 6MB",
        ),
        (
            r#"{"NanoCpus": -1}"#,
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            r#"{"CpusetCpus": "abc"}"#,
            "Invalid value abc for cpuset cpus",
        ),
        (
            r#"{"MemorySwap": -5}"#,
            "invalid memoryswap limit -5: use -1 for unlimited swap",
        ),
        (
            r#"{"CpuPeriod": -1000}"#,
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            r#"{"CpuShares": -3}"#,
            "invalid CPU shares (-3): shares can not be negative",
        ),
        (
            r#"{"MemorySwap": 16777216}"#,
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            r#"{"RestartPolicy": {"Name": "sometimes"}}"#,
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'",
        ),
    ] {
        let (status, answer) = d.update_api("live", body);
        if body.contains("NanoCpus") {
            // The CPU count is the host's: check the shape, not the number.
            assert_eq!(status, 400, "{body}: {answer}");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Range of CPUs is from 0.01 to "),
                "{answer}"
            );
            continue;
        }
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["message"], message, "{body}");
    }
    let (status, answer) = d.update_api("live", r#"{"Memory": "lots"}"#);
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON in request body"),
        "{answer}"
    );

    // Conflicts with what the container has: 409, Docker's texts.
    let id = d.inspect("live")["Id"].as_str().unwrap().to_owned();
    let stderr = d.update_fails(&["--memory", "256m", "live"]);
    assert_eq!(
        stderr,
        format!(
            "Error response from daemon: Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time\n"
        )
    );
    let (status, answer) = d.update_api("live", r#"{"CpuPeriod": 50000}"#);
    assert_eq!(status, 409);
    assert_eq!(
        answer["message"],
        format!(
            "Cannot update container {id}: Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
        )
    );

    // Unknown container: 404.
    let stderr = d.update_fails(&["--memory", "64m", "nosuch"]);
    assert_eq!(
        stderr,
        "Error response from daemon: No such container: nosuch\n"
    );
    let (status, answer) = d.update_api("nosuch", r#"{"Memory": 67108864}"#);
    assert_eq!(status, 404);
    assert_eq!(answer["message"], "No such container: nosuch");

    // No flags at all is the CLI's own refusal.
    let stderr = d.update_fails(&["live"]);
    assert!(
        stderr.contains("you must provide one or more flags when using this command"),
        "{stderr}"
    );

    assert_eq!(d.inspect("live")["HostConfig"], host_before);
    assert_eq!(limits(&d, "live"), limits_before);
    d.assert_clean_after_rm_all();
}

#[test]
fn a_limit_the_kernel_refuses_leaves_the_old_config() {
    // 40 MB in the container's /dev/shm (tmpfs, charged to its memory
    // cgroup): without swap the kernel cannot bring it under 10 MB and
    // refuses the new limit (EBUSY).
    if std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .count()
        > 1
    {
        eprintln!("skipped: this host has swap, the kernel would take the limit");
        return;
    }
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "full",
        "-m",
        "128m",
        "--memory-swap",
        "256m",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 20 ]; do cat /bin/busybox >> /dev/shm/fill; i=$((i+1)); done; echo > /dev/shm/done; sleep 1000",
    ]);
    wait_for("the tmpfs to fill", || {
        d.docker(&["exec", "full", "cat", "/dev/shm/done"])
            .0
            .success()
    });
    let before = d.inspect("full")["HostConfig"].clone();
    let id = d.inspect("full")["Id"].as_str().unwrap().to_owned();
    let (status, answer) = d.update_api("full", r#"{"Memory": 10485760, "PidsLimit": 9}"#);
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("Cannot update container {id}: ")),
        "{message}"
    );
    assert!(message.contains("memory"), "{message}");
    assert_eq!(d.inspect("full")["HostConfig"], before);
    assert_eq!(limits(&d, "full").memory, (128 * MIB).to_string());
    d.assert_clean_after_rm_all();
}

#[test]
fn a_stopped_container_gets_its_new_limits_at_start() {
    let d = Daemon::start();
    d.ok(&["create", "--name", "stopped", "busybox", "sleep", "1000"]);
    d.ok(&[
        "update",
        "--memory",
        "48m",
        "--memory-swap",
        "96m",
        "--pids-limit",
        "20",
        "--cpu-shares",
        "512",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "stopped",
    ]);
    let host = d.inspect("stopped")["HostConfig"].clone();
    assert_eq!(host["Memory"], 48 * MIB);
    assert_eq!(host["MemorySwap"], 96 * MIB);
    assert_eq!(host["PidsLimit"], 20);
    assert_eq!(host["CpuShares"], 512);
    d.ok(&["start", "stopped"]);
    let got = limits(&d, "stopped");
    assert_eq!(got.memory, (48 * MIB).to_string());
    assert_eq!(got.pids, "20");
    assert_eq!(got.cpu, "25000 50000");
    if !cgroup_v2() {
        assert_eq!(got.shares, "512");
    }

    // Stopped after running: the update waits for the next start.
    d.ok(&["stop", "-t", "0", "stopped"]);
    d.ok(&[
        "update",
        "--pids-limit",
        "30",
        "--memory",
        "64m",
        "--memory-swap",
        "-1",
        "stopped",
    ]);
    assert_eq!(d.inspect("stopped")["HostConfig"]["MemorySwap"], -1);
    d.ok(&["start", "stopped"]);
    let got = limits(&d, "stopped");
    assert_eq!(got.memory, (64 * MIB).to_string());
    assert_eq!(got.pids, "30");
    d.assert_clean_after_rm_all();
}

#[test]
fn a_container_without_limits_keeps_the_kernels_default_cpu_weight() {
    // A spec's "shares: 0" means unset (dockerd writes it so); written as
    // is, the kernel would clamp it to 2, the least weight there is.
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "1000"]);
    let expected = if cgroup_v2() { "100" } else { "1024" };
    assert_eq!(limits(&d, "plain").shares, expected);
    d.assert_clean_after_rm_all();
}

#[test]
fn restart_policy_updates_take_effect_at_the_next_exit() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "policy", "busybox", "sleep", "1000"]);
    assert_eq!(
        d.inspect("policy")["HostConfig"]["RestartPolicy"]["Name"],
        "no"
    );
    d.ok(&["update", "--restart", "always", "policy"]);
    let policy = d.inspect("policy")["HostConfig"]["RestartPolicy"].clone();
    assert_eq!(policy["Name"], "always");
    assert_eq!(policy["MaximumRetryCount"], 0);

    // The process dies on its own (not `docker stop`): always restarts it.
    let kill = |d: &Daemon| {
        let pid = d.inspect("policy")["State"]["Pid"].as_i64().unwrap();
        assert!(pid > 0);
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
    };
    kill(&d);
    wait_for("a restart", || {
        let state = d.inspect("policy");
        state["RestartCount"] == 1 && state["State"]["Running"] == true
    });

    d.ok(&["update", "--restart", "no", "policy"]);
    kill(&d);
    wait_for("the exit", || {
        d.inspect("policy")["State"]["Status"] == "exited"
    });
    // Still exited well after the restart delay (200 ms here): the new
    // policy held.
    std::thread::sleep(Duration::from_millis(800));
    let state = d.inspect("policy");
    assert_eq!(state["State"]["Status"], "exited", "{}", state["State"]);
    assert_eq!(state["RestartCount"], 1);

    // --rm containers take no restart policy: 409 and nothing changed.
    d.ok(&[
        "run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "1000",
    ]);
    let id = d.inspect("gone")["Id"].as_str().unwrap().to_owned();
    let stderr = d.update_fails(&["--restart", "always", "gone"]);
    assert_eq!(
        stderr,
        format!(
            "Error response from daemon: Cannot update container {id}: Restart policy cannot be updated because AutoRemove is enabled for the container\n"
        )
    );
    assert_eq!(
        d.inspect("gone")["HostConfig"]["RestartPolicy"]["Name"],
        "no"
    );
    d.assert_clean_after_rm_all();
}

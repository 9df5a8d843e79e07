//! `ContainerCgroup` against the host's real cgroups (run as root). Each
//! test works in its own `/berth-test/<random>` cgroup, which a guard
//! removes even when the test fails.

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_runtime::cgroups::{CgroupError, ContainerCgroup};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder,
};

const ROOT: &str = "/sys/fs/cgroup";
const PARENT: &str = "berth-test";

/// Serializes creating cgroups under `/berth-test` with removing that
/// parent, so one test's cleanup can't pull it from under another's mkdir.
static PARENT_LOCK: Mutex<()> = Mutex::new(());

fn unique_path() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    PathBuf::from(format!(
        "/{PARENT}/{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn is_v2_host() -> bool {
    fs::read_to_string(Path::new(ROOT).join("cgroup.controllers")).is_ok()
}

/// Every directory named `rel` under any hierarchy (v1 mounts, the hybrid
/// v2 mount, or the v2 root), whether or not the code under test knows it.
fn all_dirs(rel: &Path) -> Vec<PathBuf> {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if is_v2_host() {
        return vec![Path::new(ROOT).join(rel)];
    }
    fs::read_dir(ROOT)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(rel))
        .collect()
}

fn leftovers(path: &Path) -> Vec<PathBuf> {
    all_dirs(path).into_iter().filter(|d| d.exists()).collect()
}

/// The container's directory in the hierarchy that has `controller`.
fn controller_dir(cg: &ContainerCgroup, path: &Path, controller: &str) -> PathBuf {
    if is_v2_host() {
        return Path::new(ROOT).join(path.strip_prefix("/").unwrap());
    }
    cg.v1_mounts()
        .into_iter()
        .find(|m| m.name.split(',').any(|c| c == controller))
        .unwrap_or_else(|| panic!("no {controller} hierarchy"))
        .host_path
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Owns a test cgroup and the children put in it; cleans both up on drop.
struct Guard {
    path: PathBuf,
    children: Vec<Child>,
}

impl Guard {
    fn create(resources: Option<&LinuxResources>) -> (Self, Result<ContainerCgroup, CgroupError>) {
        let path = unique_path();
        let _lock = PARENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let cg = ContainerCgroup::create(&path, resources);
        (
            Self {
                path,
                children: Vec::new(),
            },
            cg,
        )
    }

    /// Spawns `cmd` with a piped stdin and moves it into `cg`.
    fn spawn_in(&mut self, cg: &ContainerCgroup, cmd: &mut Command) -> u32 {
        let child = cmd.stdin(Stdio::piped()).spawn().expect("spawning");
        let pid = child.id();
        self.children.push(child);
        cg.add_task(pid as i32).expect("add_task");
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let cg = ContainerCgroup::open(&self.path).ok();
        if let Some(cg) = &cg {
            let _ = cg.thaw();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(cg) = &cg {
            for pid in cg.pids().unwrap_or_default() {
                // SAFETY: kill(2) with a plain pid and signal touches no memory.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = cg.remove();
        }
        let _lock = PARENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for dir in all_dirs(Path::new(PARENT)) {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn resources(memory: Option<i64>, swap: Option<i64>, pids: Option<i64>) -> LinuxResources {
    let mut b = LinuxResourcesBuilder::default();
    if let Some(limit) = memory {
        let mut m = LinuxMemoryBuilder::default().limit(limit);
        if let Some(swap) = swap {
            m = m.swap(swap);
        }
        b = b.memory(m.build().unwrap());
    }
    if let Some(limit) = pids {
        b = b.pids(LinuxPidsBuilder::default().limit(limit).build().unwrap());
    }
    b.build().unwrap()
}

#[test]
fn limits_land_and_the_lifecycle_works() {
    let r = resources(Some(64 << 20), None, Some(32));
    let (mut guard, cg) = Guard::create(Some(&r));
    let cg = cg.expect("create");
    let path = guard.path.clone();

    let mem = controller_dir(&cg, &path, "memory");
    if is_v2_host() {
        assert_eq!(read(mem.join("memory.max")), (64 << 20).to_string());
    } else {
        assert_eq!(
            read(mem.join("memory.limit_in_bytes")),
            (64 << 20).to_string()
        );
    }
    assert_eq!(
        read(controller_dir(&cg, &path, "pids").join("pids.max")),
        "32"
    );
    if !is_v2_host() {
        // The container's directory exists in every hierarchy.
        for m in cg.v1_mounts() {
            assert!(m.host_path.is_dir(), "{} missing", m.host_path.display());
        }
        assert!(
            cg.v1_mounts()
                .iter()
                .any(|m| m.name.split(',').any(|c| c == "freezer"))
        );
        assert!(cg.clone_into_fd().is_none());
    } else {
        assert!(cg.clone_into_fd().is_some());
        assert!(cg.v1_mounts().is_empty());
    }

    let pid = guard.spawn_in(&cg, Command::new("sleep").arg("5"));
    assert!(cg.pids().unwrap().contains(&(pid as i32)));
    let stats = cg.stats().expect("stats");
    assert!(stats.pids.current >= 1, "{:?}", stats.pids);

    assert!(!cg.is_frozen().unwrap());
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().unwrap());
    let freezer = controller_dir(&cg, &path, "freezer");
    if is_v2_host() {
        assert!(read(freezer.join("cgroup.events")).contains("frozen 1"));
    } else {
        assert_eq!(read(freezer.join("freezer.state")), "FROZEN");
    }
    // Another invocation sees the same.
    let again = ContainerCgroup::open(&path).expect("open");
    assert!(again.is_frozen().unwrap());
    again.thaw().expect("thaw");
    assert!(!cg.is_frozen().unwrap());

    let mut child = guard.children.pop().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    cg.remove().expect("remove");
    assert_eq!(leftovers(&path), Vec::<PathBuf>::new());
}

#[test]
fn update_rewrites_only_the_given_limits_in_an_order_the_kernel_takes() {
    // memory 32m, memory+swap 64m, 10 pids, then both memory limits
    // raised past the old memory+swap: on v1 memsw must go first.
    let memsw =
        !is_v2_host() && Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    let swap = |s: i64| memsw.then_some(s);
    let (guard, cg) = Guard::create(Some(&resources(Some(32 << 20), swap(64 << 20), Some(10))));
    let cg = cg.expect("create");
    let path = guard.path.clone();
    let mem = controller_dir(&cg, &path, "memory");
    let opened = ContainerCgroup::open(&path).expect("open");
    opened
        .update(&resources(Some(128 << 20), swap(256 << 20), None))
        .expect("raising memory and swap");
    let limit_file = if is_v2_host() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(mem.join(limit_file)), (128 << 20).to_string());
    if memsw {
        assert_eq!(
            read(mem.join("memory.memsw.limit_in_bytes")),
            (256 << 20).to_string()
        );
    }
    // Lowering both again takes the other order.
    opened
        .update(&resources(Some(16 << 20), swap(32 << 20), None))
        .expect("lowering memory and swap");
    assert_eq!(read(mem.join(limit_file)), (16 << 20).to_string());
    // The pids limit was not part of either update.
    assert_eq!(
        read(controller_dir(&cg, &path, "pids").join("pids.max")),
        "10"
    );
    opened
        .update(&resources(None, None, Some(-1)))
        .expect("unlimited pids");
    assert_eq!(
        read(controller_dir(&cg, &path, "pids").join("pids.max")),
        "max"
    );
}

#[test]
fn pids_limit_stops_forks() {
    let r = resources(None, None, Some(5));
    let (mut guard, cg) = Guard::create(Some(&r));
    let cg = cg.expect("create");
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        "read x; for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    guard.spawn_in(&cg, &mut cmd);
    let mut child = guard.children.pop().unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("fork") || stderr.contains("resource temporarily unavailable"),
        "no fork failure, stderr: {stderr:?}"
    );
}

#[test]
fn memory_limit_oom_kills() {
    let limit = 16 << 20;
    let v1_memsw = !is_v2_host()
        && Path::new(ROOT)
            .join("memory/memory.memsw.limit_in_bytes")
            .exists();
    let swap = (is_v2_host() || v1_memsw).then_some(limit);
    let r = resources(Some(limit), swap, None);
    let (mut guard, cg) = Guard::create(Some(&r));
    let cg = cg.expect("create");
    let mem = controller_dir(&cg, &guard.path, "memory");
    if v1_memsw {
        assert_eq!(
            read(mem.join("memory.memsw.limit_in_bytes")),
            limit.to_string()
        );
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        r#"read x; x=$(head -c 67108864 /dev/zero | tr "\0" a); echo survived"#,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    guard.spawn_in(&cg, &mut cmd);
    let mut child = guard.children.pop().unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{:?}", out);
    let stats = cg.stats().expect("stats");
    if !is_v2_host() {
        // The cgroup hit its limit (counted in memsw when swap is limited too).
        let m = &stats.memory;
        assert!(
            m.memory.fail_count + m.memswap.fail_count > 0 || m.memory.max_usage >= limit as u64,
            "{m:?}"
        );
    }
}

#[test]
fn open_remove_twice_and_errors_leave_nothing() {
    let (guard, cg) = Guard::create(None);
    let cg = cg.expect("create without resources");
    let opened = ContainerCgroup::open(&guard.path).expect("open");
    assert_eq!(opened.v1_mounts(), cg.v1_mounts());
    assert!(opened.pids().unwrap().is_empty());
    opened.remove().expect("first remove");
    opened.remove().expect("second remove");
    cg.remove().expect("remove of the other handle");
    assert_eq!(leftovers(&guard.path), Vec::<PathBuf>::new());
    assert!(matches!(
        ContainerCgroup::open(&guard.path),
        Err(CgroupError::NotFound { .. })
    ));

    let bad = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().cpus("99999").build().unwrap())
        .build()
        .unwrap();
    let (guard, cg) = Guard::create(Some(&bad));
    let err = cg.expect_err("a cpuset of 99999");
    let msg = err.to_string();
    assert!(
        matches!(&err, CgroupError::Apply { controller, .. } | CgroupError::Write { controller, .. } if controller == "cpuset"),
        "{msg}"
    );
    assert!(msg.contains("cpuset"), "{msg}");
    assert_eq!(leftovers(&guard.path), Vec::<PathBuf>::new());

    let (guard, cg) = {
        let _lock = PARENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let path = PathBuf::from("system.slice:berth:x");
        (path.clone(), ContainerCgroup::create(&path, None))
    };
    assert!(
        matches!(cg, Err(CgroupError::SystemdDriver { .. })),
        "{cg:?}"
    );
    assert_eq!(leftovers(&guard), Vec::<PathBuf>::new());
    assert!(matches!(
        ContainerCgroup::create(Path::new("/a/../b"), None),
        Err(CgroupError::InvalidPath { .. })
    ));
}

/// hugetlb lives on the v2 mount of this hybrid host unless someone bound
/// it to v1; either way a hugetlb limit must land, and a pid must join
/// the hierarchy that enforces it.
#[test]
fn hugetlb_limit_lands_wherever_hugetlb_is() {
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("no 2MB huge pages here, skipping");
        return;
    }
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4i64 << 20)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    let (mut guard, cg) = Guard::create(Some(&r));
    let cg = match cg {
        Ok(cg) => cg,
        Err(e @ CgroupError::Unsupported { .. }) => {
            assert!(e.to_string().contains("hugetlb"), "{e}");
            eprintln!("{e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let rel = guard.path.strip_prefix("/").unwrap().to_path_buf();
    let v1 = Path::new(ROOT).join("hugetlb");
    let (dir, file) = if is_v2_host() {
        (Path::new(ROOT).join(&rel), "hugetlb.2MB.max")
    } else if read("/proc/self/cgroup")
        .lines()
        .any(|l| l.split(':').nth(1) == Some("hugetlb"))
    {
        (v1.join(&rel), "hugetlb.2MB.limit_in_bytes")
    } else {
        (
            Path::new(ROOT).join("unified").join(&rel),
            "hugetlb.2MB.max",
        )
    };
    assert_eq!(read(dir.join(file)), (4 << 20).to_string());
    let pid = guard.spawn_in(&cg, Command::new("sleep").arg("5"));
    assert!(
        read(dir.join("cgroup.procs"))
            .lines()
            .any(|l| l == pid.to_string())
    );
}

/// The init's fast path on v1/hybrid: a single-threaded process moves
/// itself by writing "0" into each `tasks` file.
#[test]
fn a_process_can_join_through_the_tasks_files() {
    let r = resources(None, None, Some(16));
    let (mut guard, cg) = Guard::create(Some(&r));
    let cg = cg.expect("create");
    let Some(files) = cg.self_join_files() else {
        assert!(is_v2_host() || cg.v1_mounts().iter().any(|m| m.name == "unified"));
        return;
    };
    assert_eq!(files.len(), cg.v1_mounts().len());
    let mut child = Command::new("/bin/sh")
        .args([
            "-c",
            r#"for f in "$@"; do echo 0 > "$f" || exit 1; done; echo joined; read x"#,
            "sh",
        ])
        .args(&files)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    guard.children.push(child);
    assert_eq!(line.trim(), "joined");
    assert!(cg.pids().unwrap().contains(&pid));
    let rel = guard.path.to_str().unwrap().to_string();
    let own = read(format!("/proc/{pid}/cgroup"));
    for m in cg.v1_mounts() {
        let line = own.lines().find(|l| {
            l.split(':').nth(1).is_some_and(|c| {
                m.name
                    .split(',')
                    .all(|n| c.split(',').any(|x| x.trim_start_matches("name=") == n))
            })
        });
        assert!(
            line.is_some_and(|l| l.ends_with(&rel)),
            "{} not joined: {own}",
            m.name
        );
    }
}

/// Prints what create + add_task + remove cost here (run with
/// `--release --ignored --nocapture` for numbers that mean anything).
#[test]
#[ignore = "timing report, not a check"]
fn timing() {
    let spec = r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":67108864},"pids":{"limit":100}}"#;
    let r: LinuxResources = serde_json::from_str(spec).unwrap();
    for (label, res) in [("with resources", Some(&r)), ("no resources", None)] {
        let mut total = [Duration::ZERO; 4];
        let n = 20;
        for _ in 0..n {
            let mut guard = Guard {
                path: unique_path(),
                children: Vec::new(),
            };
            let t0 = Instant::now();
            let cg = ContainerCgroup::create(&guard.path, res).unwrap();
            let t1 = Instant::now();
            let mut child = Command::new("true").spawn().unwrap();
            // A fresh CLI process: no cgroup migration just before.
            std::thread::sleep(Duration::from_millis(100));
            let t2 = Instant::now();
            cg.add_task(child.id() as i32).ok();
            let t3 = Instant::now();
            child.wait().unwrap();
            let t4 = Instant::now();
            cg.remove().unwrap();
            let t5 = Instant::now();
            let _ = ContainerCgroup::open(&guard.path);
            let t6 = Instant::now();
            total[0] += t1 - t0;
            total[1] += t3 - t2;
            total[2] += t5 - t4;
            total[3] += t6 - t5;
            guard.children.clear();
        }
        let avg = |d: Duration| d / n;
        eprintln!(
            "{label}: create {:?}, add_task {:?}, remove {:?}, open(missing) {:?}",
            avg(total[0]),
            avg(total[1]),
            avg(total[2]),
            avg(total[3])
        );
    }
}

//! Specs compared field by field with what dockerd 20.10 generated for the
//! same `docker run` flags (fixtures captured from a private dockerd, see
//! `daemon/tests/fixtures/dockerd-20.10-specs/`).

use std::path::Path;

use serde_json::{Value, json};

use super::mounts::merge_tmpfs_options;
use super::seccomp::seccomp;
use super::user::{ResolvedUser, resolve_user};
use super::*;
use crate::api::containers_types::CreateRequest;

/// A rootfs with the passwd and group files the fixtures were captured with.
fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\nusers:x:100:app\napp:x:1000:\nextra:x:2000:app\n",
    )
    .unwrap();
    dir
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dockerd-20.10-specs")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Builds our spec for a create body (hostname as dockerd chose it).
fn ours(body: Value, hostname: &str, rootfs: &Path) -> Value {
    let mut req: CreateRequest = serde_json::from_value(body).unwrap();
    req.validate(2).unwrap();
    if req.config.hostname.is_empty() {
        req.config.hostname = hostname.to_owned();
    }
    let input = SpecInput {
        config: &req.config,
        host: &req.host_config,
        rootfs,
        cgroups_path: None,
        cgroup_v2: false,
        network_files: NetworkFiles {
            resolv_conf: Some("/x/resolv.conf".into()),
            hostname: Some("/x/hostname".into()),
            hosts: Some("/x/hosts".into()),
        },
        extra_mounts: vec![],
        init_binary: Some(Path::new("/usr/bin/docker-init")),
        network_ns_path: None,
    };
    serde_json::to_value(build_spec(&input).unwrap()).unwrap()
}

fn sorted(value: &Value) -> Vec<String> {
    let mut items: Vec<String> = value
        .as_array()
        .map(|a| a.iter().map(|v| v.to_string()).collect())
        .unwrap_or_default();
    items.sort();
    items
}

/// Mounts without their (host-specific) sources of bind mounts.
fn mounts_of(spec: &Value) -> Vec<Value> {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if m["type"] == "bind" && m["destination"] != "/dev/shm" {
                m.as_object_mut().unwrap().remove("source");
            }
            m
        })
        .collect()
}

/// Compares what must agree with dockerd; returns our spec for more checks.
fn compare(name: &str, body: Value) -> Value {
    let theirs = fixture(name);
    let hostname = theirs["hostname"].as_str().unwrap_or("").to_owned();
    let root = rootfs();
    let ours = ours(body, &hostname, root.path());
    let (p, q) = (&ours["process"], &theirs["process"]);
    // dockerd 20.10 wrote `-e FOO=bar -e HOME=/h` as HOME, FOO although its
    // Config.Env kept FOO, HOME; moby's code keeps the order, so do we.
    assert_eq!(sorted(&p["env"]), sorted(&q["env"]), "{name}: process.env");
    for field in [
        "args",
        "cwd",
        "user",
        "oomScoreAdj",
        "noNewPrivileges",
        "rlimits",
    ] {
        assert_eq!(p[field], q[field], "{name}: process.{field}");
    }
    assert_eq!(
        p["terminal"].as_bool().unwrap_or(false),
        q["terminal"].as_bool().unwrap_or(false),
        "{name}: terminal"
    );
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(
            sorted(&p["capabilities"][set]),
            sorted(&q["capabilities"][set]),
            "{name}: capabilities.{set}"
        );
    }
    assert_eq!(
        ours["root"]["readonly"].as_bool().unwrap_or(false),
        theirs["root"]["readonly"].as_bool().unwrap_or(false),
        "{name}: root.readonly"
    );
    assert_eq!(mounts_of(&ours), mounts_of(&theirs), "{name}: mounts");
    let (l, m) = (&ours["linux"], &theirs["linux"]);
    let namespace_types = |v: &Value| -> Vec<String> {
        v["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|ns| ns.get("path").is_none())
            .map(|ns| ns["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(namespace_types(l), namespace_types(m), "{name}: namespaces");
    assert_eq!(l["sysctl"], m["sysctl"], "{name}: sysctl");
    assert_eq!(
        l["readonlyPaths"], m["readonlyPaths"],
        "{name}: readonlyPaths"
    );
    // moby 28 masks one path more than 20.10.
    let mut masked = l["maskedPaths"].clone();
    if let Some(paths) = masked.as_array_mut() {
        paths.retain(|p| p != "/sys/devices/virtual/powercap");
    }
    assert_eq!(masked, m["maskedPaths"], "{name}: maskedPaths");
    let (r, s) = (&l["resources"], &m["resources"]);
    assert_eq!(r["devices"], s["devices"], "{name}: device rules");
    assert_eq!(r["memory"], s["memory"], "{name}: memory");
    assert_eq!(r["cpu"], s["cpu"], "{name}: cpu");
    assert_eq!(r["pids"], s["pids"], "{name}: pids");
    assert_eq!(
        l.get("seccomp").is_some(),
        m.get("seccomp").is_some(),
        "{name}: seccomp presence"
    );
    ours
}

#[test]
fn default_container_matches_dockerd() {
    let spec = compare(
        "default",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {"NetworkMode": "default"}}),
    );
    // Nothing of oci-spec's own defaults (youki's) leaks in.
    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&spec["process"]),
        [
            "args",
            "capabilities",
            "cwd",
            "env",
            "oomScoreAdj",
            "terminal",
            "user"
        ]
    );
    assert_eq!(
        keys(&spec["process"]["capabilities"]),
        ["bounding", "effective", "permitted"]
    );
    assert_eq!(
        keys(&spec),
        [
            "hostname",
            "linux",
            "mounts",
            "ociVersion",
            "process",
            "root"
        ]
    );
    assert_eq!(spec["hostname"], "9cf4b432a0b7");
    let seccomp = &spec["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(seccomp["architectures"][0], "SCMP_ARCH_X86_64");
}

#[test]
fn capability_changes_match_dockerd() {
    compare(
        "caps",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {
            "CapAdd": ["CAP_NET_ADMIN", "CAP_SYS_TIME"], "CapDrop": ["CAP_CHOWN", "CAP_MKNOD"]}}),
    );
    compare(
        "capsall",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {
            "CapAdd": ["CAP_NET_BIND_SERVICE"], "CapDrop": ["ALL"]}}),
    );
}

#[test]
fn resources_and_ulimits_match_dockerd() {
    compare(
        "resources",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {
            "Memory": 104857600, "MemorySwap": 209715200, "NanoCpus": 1500000000,
            "CpuShares": 512, "CpusetCpus": "0", "PidsLimit": 50, "OomKillDisable": true,
            "ShmSize": 134217728, "MemorySwappiness": -1,
            "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024},
                        {"Name": "nproc", "Hard": 100, "Soft": 100}]}}),
    );
    compare(
        "quota",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {
            "CpuQuota": 50000, "CpuPeriod": 100000, "Memory": 67108864, "MemorySwap": -1}}),
    );
}

#[test]
fn tmpfs_readonly_sysctl_and_no_new_privileges_match_dockerd() {
    compare(
        "mounts",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {
            "ReadonlyRootfs": true,
            "Tmpfs": {"/run": "", "/data": "rw,size=10m,mode=1777"},
            "Sysctls": {"net.ipv4.ip_forward": "1"},
            "SecurityOpt": ["no-new-privileges"]}}),
    );
}

#[test]
fn users_and_groups_resolve_like_dockerd() {
    compare(
        "user",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "User": "app", "WorkingDir": "/tmp",
               "Hostname": "myhost", "Env": ["FOO=bar", "HOME=/h"],
               "HostConfig": {"GroupAdd": ["3000"]}}),
    );
    compare(
        "user2",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "User": "1000:2000"}),
    );
}

#[test]
fn network_modes_and_tty_match_dockerd() {
    compare(
        "netnone",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "Tty": true,
               "HostConfig": {"NetworkMode": "none"}}),
    );
    let spec = compare(
        "nethost",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "Hostname": "vm",
               "HostConfig": {"NetworkMode": "host", "IpcMode": "host", "PidMode": "host",
                              "UTSMode": "host"}}),
    );
    assert!(spec.get("hostname").is_none());
    // dockerd joins its own netns by path; we stay in the runtime's (the host's).
    let types: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ns| ns["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["mount"]);
}

#[test]
fn unconfined_and_init_match_dockerd() {
    let spec = compare(
        "unconfined",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {
            "SecurityOpt": ["seccomp=unconfined"], "MaskedPaths": [], "ReadonlyPaths": []}}),
    );
    assert!(spec["linux"].get("seccomp").is_none());
    compare(
        "init",
        json!({"Image": "bb:1", "Cmd": ["sleep", "100"], "HostConfig": {"Init": true}}),
    );
}

#[test]
fn privileged_gets_everything_and_no_confinement() {
    let root = rootfs();
    let spec = ours(
        json!({"Image": "x", "Cmd": ["sh"], "HostConfig": {"Privileged": true}}),
        "h",
        root.path(),
    );
    let linux = &spec["linux"];
    assert!(linux.get("seccomp").is_none());
    assert!(linux.get("maskedPaths").is_none());
    assert!(linux.get("readonlyPaths").is_none());
    assert_eq!(
        linux["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    assert!(
        linux["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "/dev/null")
    );
    assert_eq!(
        spec["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        ALL_CAPABILITIES.len()
    );
    let sys = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert!(!sys["options"].as_array().unwrap().contains(&json!("ro")));
}

#[test]
fn image_config_merges_like_moby() {
    let image = ImageDefaults {
        user: "app".into(),
        env: vec!["PATH=/img/bin".into(), "LANG=C".into()],
        cmd: Some(vec!["nginx".into(), "-g".into()]),
        entrypoint: Some(vec!["/entry.sh".into()]),
        working_dir: "/srv".into(),
        stop_signal: "SIGQUIT".into(),
        ..Default::default()
    };
    let mut config = ContainerConfig {
        env: Some(vec!["LANG=en_US".into()]),
        ..Default::default()
    };
    merge_image_config(&mut config, &image);
    assert_eq!(
        config.env.as_deref().unwrap(),
        ["LANG=en_US", "PATH=/img/bin"]
    );
    assert_eq!(config.user, "app");
    assert_eq!(config.working_dir, "/srv");
    assert_eq!(config.stop_signal, "SIGQUIT");
    assert_eq!(
        command_of(&config).unwrap(),
        ("/entry.sh".into(), vec!["nginx".into(), "-g".into()])
    );
    config.hostname = "h".into();
    assert_eq!(
        container_env(&config),
        ["PATH=/img/bin", "HOSTNAME=h", "LANG=en_US"]
    );

    // `docker run --entrypoint "" image` clears the image's Cmd too.
    let mut cleared = ContainerConfig {
        entrypoint: Some(vec![String::new()]),
        ..Default::default()
    };
    merge_image_config(&mut cleared, &image);
    assert!(matches!(command_of(&cleared), Err(SpecError::NoCommand)));

    // A command given by the user replaces the image's Cmd, keeps its entrypoint.
    let mut run = ContainerConfig {
        cmd: Some(vec!["echo".into()]),
        ..Default::default()
    };
    merge_image_config(&mut run, &image);
    assert_eq!(
        command_of(&run).unwrap(),
        ("/entry.sh".into(), vec!["echo".into()])
    );
}

#[test]
fn env_entries_without_value_unset_defaults() {
    let config = ContainerConfig {
        hostname: "h".into(),
        tty: true,
        env: Some(vec!["TERM".into(), "A=1".into(), "PATH=/p".into()]),
        ..Default::default()
    };
    assert_eq!(container_env(&config), ["PATH=/p", "HOSTNAME=h", "A=1"]);
}

#[test]
fn users_resolve_names_numbers_and_errors() {
    let root = rootfs();
    let root = root.path();
    let user = |spec: &str, add: &[&str]| {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve_user(root, spec, &add)
    };
    let ids = |u: ResolvedUser| (u.uid, u.gid, u.additional_gids);
    assert_eq!(ids(user("", &[]).unwrap()), (0, 0, vec![0]));
    assert_eq!(
        ids(user("app", &["extra"]).unwrap()),
        (1000, 1000, vec![1000, 100, 2000, 2000])
    );
    assert_eq!(ids(user("app:users", &[]).unwrap()), (1000, 100, vec![100]));
    assert_eq!(ids(user("4242", &[]).unwrap()), (4242, 0, vec![0]));
    assert_eq!(ids(user("4242:77", &[]).unwrap()), (4242, 77, vec![77]));
    assert_eq!(
        user("ghost", &[]).unwrap_err().to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    assert_eq!(
        user("app:ghosts", &[]).unwrap_err().to_string(),
        "unable to find group ghosts: no matching entries in group file"
    );
}

#[test]
fn passwd_symlinks_cannot_escape_the_rootfs() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::create_dir_all(root.path().join("real")).unwrap();
    std::fs::write(root.path().join("real/passwd"), "inside:x:5:6::/:/bin/sh\n").unwrap();
    // An absolute link resolves inside the rootfs: the host's /real/passwd
    // does not exist, and the host's /etc/passwd (which has root) is not read.
    std::os::unix::fs::symlink("/real/passwd", root.path().join("etc/passwd")).unwrap();
    let inside = resolve_user(root.path(), "inside", &[]).unwrap();
    assert_eq!((inside.uid, inside.gid), (5, 6));
    assert_eq!(
        resolve_user(root.path(), "root", &[])
            .unwrap_err()
            .to_string(),
        "unable to find user root: no matching entries in passwd file"
    );
}

#[test]
fn tmpfs_options_merge_like_moby() {
    let options = |s: &str| -> Vec<String> { s.split(',').map(str::to_owned).collect() };
    assert_eq!(
        merge_tmpfs_options(&options(
            "noexec,nosuid,nodev,rprivate,exec,size=1m,size=2m"
        ))
        .unwrap(),
        options("nosuid,nodev,rprivate,exec,size=2m")
    );
    assert_eq!(
        merge_tmpfs_options(&options("noexec,bogus=1"))
            .unwrap_err()
            .to_string(),
        "invalid tmpfs option \"bogus\""
    );
}

#[test]
fn docker_format_seccomp_profiles_convert_to_oci() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "ptrace", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["chown"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_CHOWN"]}},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "comment": "x"}
        ]
    });
    let defaults: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    let seccomp = seccomp(Some(&profile.to_string()), &defaults)
        .unwrap()
        .unwrap();
    let value = serde_json::to_value(&seccomp).unwrap();
    assert_eq!(
        value["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    let names: Vec<String> = value["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["read", "write", "arch_prctl", "kill"]);
    assert!(seccomp_errors_name_the_problem());
}

fn seccomp_errors_name_the_problem() -> bool {
    seccomp(Some("{not json"), &[])
        .unwrap_err()
        .to_string()
        .starts_with("decoding seccomp profile: ")
}

#[test]
fn tmpfs_over_dev_shm_replaces_the_default() {
    let root = rootfs();
    let spec = ours(
        json!({"Image": "x", "Cmd": ["sh"], "HostConfig": {"Tmpfs": {"/dev/shm": "size=1m"}}}),
        "h",
        root.path(),
    );
    let shm: Vec<&Value> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == "/dev/shm")
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(shm[0]["source"], "tmpfs");
}

#[test]
fn added_capabilities_open_their_syscalls_in_the_default_profile() {
    let names_of = |caps: &[&str]| -> (Vec<String>, Value) {
        let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        let profile = serde_json::to_value(seccomp(None, &caps).unwrap().unwrap()).unwrap();
        let allowed = profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        (allowed, profile)
    };
    let defaults: Vec<&str> = DEFAULT_CAPABILITIES.to_vec();
    let (plain, plain_profile) = names_of(&defaults);
    let fixture: Value = serde_json::from_str(include_str!("seccomp-default.json")).unwrap();
    assert_eq!(plain_profile["syscalls"], fixture["syscalls"]);
    assert!(!plain.contains(&"mount".to_owned()));

    let mut admin = defaults.clone();
    admin.push("CAP_SYS_ADMIN");
    let (allowed, profile) = names_of(&admin);
    for name in ["mount", "umount2", "unshare", "setns", "clone", "clone3"] {
        assert!(allowed.contains(&name.to_owned()), "{name}");
    }
    // No ENOSYS rule for clone3 and no argument-filtered clone remain.
    let rules_for = |name: &str| {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().contains(&json!(name)))
            .count()
    };
    assert_eq!(rules_for("clone3"), 1);
    assert_eq!(rules_for("clone"), 1);

    let mut time = defaults.clone();
    time.push("CAP_SYS_TIME");
    let (allowed, _) = names_of(&time);
    assert!(allowed.contains(&"settimeofday".to_owned()));
    assert!(allowed.contains(&"clock_settime".to_owned()));
}

/// A container run for real with berth-runtime: a busybox rootfs, the
/// spec built for `body`, and `/results` bound to a host directory where
/// the command writes what it saw.
struct RealRun {
    _dir: tempfile::TempDir,
    state: berth_runtime::state::Root,
    id: String,
    results: PathBuf,
    exit_code: i32,
}

impl Drop for RealRun {
    fn drop(&mut self) {
        // `run` deletes the container; this covers a failure half-way.
        let _ = berth_runtime::container::delete(&self.state, &self.id, true);
    }
}

fn run_for_real(name: &str, body: Value) -> RealRun {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "id", "grep", "cat", "hostname", "mkdir", "mount", "touch", "echo",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let fixture_root = self::rootfs();
    for file in ["passwd", "group"] {
        std::fs::copy(
            fixture_root.path().join("etc").join(file),
            rootfs.join("etc").join(file),
        )
        .unwrap();
    }
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    // Writable for the non-root users of the tests.
    std::fs::set_permissions(
        &results,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();

    let mut req: CreateRequest = serde_json::from_value(body).unwrap();
    req.validate(2).unwrap();
    let id = format!("berthd-spec-{name}-{}", std::process::id());
    req.apply_defaults(&format!("{id:0<64}"), "unused");
    let bind = MountBuilder::default()
        .destination("/results")
        .typ("bind")
        .source(&results)
        .options(vec!["rbind".to_owned(), "rw".to_owned()])
        .build()
        .unwrap();
    let input = SpecInput {
        config: &req.config,
        host: &req.host_config,
        rootfs: &rootfs,
        cgroups_path: None,
        cgroup_v2: false,
        network_files: NetworkFiles::default(),
        extra_mounts: vec![bind],
        init_binary: None,
        network_ns_path: None,
    };
    let spec = build_spec(&input).unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let state = berth_runtime::state::Root::new(dir.path().join("state"));
    let mut run = RealRun {
        _dir: dir,
        state,
        id,
        results,
        exit_code: -1,
    };
    let opts = berth_runtime::container::CreateOptions {
        bundle,
        ..Default::default()
    };
    let status = berth_runtime::container::run(&run.state, &run.id, &opts, false)
        .unwrap()
        .unwrap();
    run.exit_code = status.code();
    run
}

impl RealRun {
    fn output(&self) -> String {
        std::fs::read_to_string(self.results.join("out")).unwrap_or_default()
    }
}

#[test]
fn generated_specs_run_under_berth_runtime_with_dockers_confinement() {
    let probe = "id; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
                 cat /proc/sys/net/ipv4/ping_group_range; hostname; \
                 touch /rootfs-write && echo rootfs-writable; \
                 mkdir -p /mnt/t && mount -t tmpfs t /mnt/t && echo mounted; true";
    let cmd = json!(["sh", "-c", format!("({probe}) > /results/out 2>&1")]);

    let plain = run_for_real(
        "plain",
        json!({"Image": "x", "Cmd": cmd, "Hostname": "probe",
               "HostConfig": {"NetworkMode": "none"}}),
    );
    let out = plain.output();
    assert_eq!(plain.exit_code, 0, "{out}");
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
    // Docker's 14 default capabilities.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("0\t2147483647"), "{out}");
    assert!(out.contains("probe\n"), "{out}");
    assert!(out.contains("rootfs-writable"), "{out}");
    assert!(!out.contains("mounted"), "{out}");

    let confined = run_for_real(
        "confined",
        json!({"Image": "x", "Cmd": cmd, "User": "app",
               "HostConfig": {"NetworkMode": "none", "ReadonlyRootfs": true,
                              "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"]}}),
    );
    let out = confined.output();
    assert!(
        out.contains("uid=1000(app) gid=1000(app) groups=100(users),1000(app),2000(extra)"),
        "{out}"
    );
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(!out.contains("rootfs-writable"), "{out}");

    let admin = run_for_real(
        "admin",
        json!({"Image": "x", "Cmd": cmd,
               "HostConfig": {"NetworkMode": "none", "CapAdd": ["SYS_ADMIN"]}}),
    );
    let out = admin.output();
    assert_eq!(admin.exit_code, 0, "{out}");
    assert!(out.contains("mounted"), "{out}");
}

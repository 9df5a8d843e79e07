//! `docker build` (the classic builder: docker CLI 28 without buildx)
//! against a real berthd: multi-step builds whose image runs, history,
//! build args, `.dockerignore`, and refused or failing builds that leave
//! nothing behind.

mod common;

use std::path::Path;

use common::{Daemon, assert_clean_after_rm_all};

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Snapshot directories of the daemon (unpacked layers and writable ones).
fn snapshots(daemon: &Daemon) -> Vec<String> {
    let dir = daemon.data_root.join("overlay/snapshots");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn daemon() -> Daemon {
    let daemon = Daemon::start_in("berthd-build-");
    daemon.import_busybox(&[
        "sh", "cat", "echo", "ls", "mkdir", "pwd", "env", "id", "test", "true",
    ]);
    daemon
}

const DOCKERFILE: &str = r#"# a multi-step build
FROM busybox
ARG WHO=nobody
ENV GREETING="hello from" \
    TARGET=berth
WORKDIR /app
COPY hello.txt .
COPY tree/ ./tree/
RUN echo "$GREETING $WHO" > made.txt && \
    cat hello.txt && mkdir -p /app/out
LABEL purpose=test
EXPOSE 8080
CMD ["sh", "-c", "cat made.txt hello.txt tree/inner/x.txt; pwd; ls /app"]
"#;

fn context(dir: &Path) {
    write(dir, "Dockerfile", DOCKERFILE);
    write(dir, "hello.txt", "hello file\n");
    write(dir, "tree/inner/x.txt", "nested\n");
    write(dir, "secret.txt", "do not send\n");
    write(dir, ".dockerignore", "secret.txt\n");
}

#[test]
fn docker_build_makes_an_image_that_runs_with_what_the_steps_made() {
    let daemon = daemon();
    let ctx = daemon.dir.path().join("ctx");
    context(&ctx);
    let out = daemon.ok(&[
        "build",
        "-t",
        "built:1",
        "--build-arg",
        "WHO=tests",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("Step 1/10 : FROM busybox"), "{out}");
    assert!(out.contains("Step 7/10 : RUN echo"), "{out}");
    // The RUN step's own output is streamed.
    assert!(out.contains("hello file"), "{out}");
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    let built = out
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .expect("Successfully built line")
        .to_owned();

    let run = daemon.ok(&["run", "--rm", "built:1"]);
    assert_eq!(
        run,
        "hello from tests\nhello file\nnested\n/app\nhello.txt\nmade.txt\nout\ntree\n"
    );

    let image = daemon.inspect_as("image", "built:1");
    assert!(image["Id"].as_str().unwrap().contains(&built));
    let config = &image["Config"];
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["Labels"]["purpose"], "test");
    assert!(config["ExposedPorts"]["8080/tcp"].is_object(), "{config}");
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"GREETING=hello from"), "{env:?}");
    assert!(env.contains(&"TARGET=berth"), "{env:?}");
    // busybox's layer, WORKDIR, two COPYs and RUN.
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 5);

    let history = daemon.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "built:1",
    ]);
    let steps: Vec<&str> = history.lines().collect();
    assert!(steps[0].contains("CMD [\"sh\" \"-c\""), "{history}");
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("|1 WHO=tests /bin/sh -c echo")),
        "{history}"
    );
    assert!(
        steps.iter().any(|s| s.contains("#(nop)  COPY file:")),
        "{history}"
    );
    assert!(
        steps.iter().any(|s| s.contains("#(nop)  WORKDIR /app")),
        "{history}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.contains("#(nop)  ENV GREETING=hello from TARGET=berth")),
        "{history}"
    );

    // .dockerignore kept the secret out of the context.
    let (status, _, stderr) = daemon.docker(&["run", "--rm", "built:1", "cat", "/app/secret.txt"]);
    assert!(!status.success());
    assert!(stderr.contains("No such file"), "{stderr}");

    // The step containers are gone, and nothing is mounted.
    assert_eq!(daemon.ok(&["ps", "-aq"]), "");
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn a_failing_run_reports_its_status_and_leaves_nothing_behind() {
    let daemon = daemon();
    daemon.ok(&["run", "--rm", "busybox", "true"]);
    // The run's writable layer is deleted just after `run --rm` returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while snapshots(&daemon).len() > 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = snapshots(&daemon);
    assert_eq!(
        before.len(),
        2,
        "only busybox's layer and init layer: {before:?}"
    );
    let ctx = daemon.dir.path().join("fail");
    write(&ctx, "a.txt", "a\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /a.txt\nRUN echo before && exit 3\nCMD [\"true\"]\n",
    );
    let (status, stdout, stderr) = daemon.docker(&["build", "-t", "broken", ctx.to_str().unwrap()]);
    // The docker CLI exits with the step's status, as with dockerd.
    assert_eq!(status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("before"), "{stdout}");
    assert!(
        stderr
            .contains("The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"),
        "{stderr}"
    );
    assert_eq!(daemon.ok(&["ps", "-aq"]), "");
    assert!(daemon.ok(&["images", "-q", "broken"]).is_empty());
    assert_eq!(snapshots(&daemon), before);
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn copies_outside_the_context_and_bad_dockerfiles_are_refused() {
    let daemon = daemon();
    let ctx = daemon.dir.path().join("escape");
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY ../outside.txt /x\n");
    let stderr = daemon.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        stderr.contains("forbidden path outside the build context: ../outside.txt ()"),
        "{stderr}"
    );

    // A symlink pointing out of the context resolves inside it.
    let ctx = daemon.dir.path().join("link");
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY link/passwd /p\n");
    std::os::unix::fs::symlink("/etc", ctx.join("link")).unwrap();
    let stderr = daemon.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        stderr.contains("file not found in build context"),
        "{stderr}"
    );

    let ctx = daemon.dir.path().join("unknown");
    write(&ctx, "Dockerfile", "FROM busybox\n\nFOO bar\n");
    let stderr = daemon.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        stderr.contains("dockerfile parse error on line 3: unknown instruction: FOO"),
        "{stderr}"
    );

    let ctx = daemon.dir.path().join("chmod");
    write(&ctx, "a", "a\n");
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY --chmod=755 a /a\n");
    let stderr = daemon.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        stderr.contains("line 2: the --chmod option requires BuildKit"),
        "{stderr}"
    );

    let ctx = daemon.dir.path().join("url");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nADD https://example.com/x /x\n",
    );
    let stderr = daemon.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        stderr.contains("not supported: berthd builds have no network"),
        "{stderr}"
    );

    assert_eq!(daemon.ok(&["ps", "-aq"]), "");
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn scratch_multi_stage_add_of_a_tar_and_quiet_builds() {
    let daemon = daemon();
    let ctx = daemon.dir.path().join("stages");
    write(&ctx, "data/one.txt", "one\n");
    let status = std::process::Command::new("tar")
        .args(["-czf", "files.tgz", "-C", "data", "one.txt"])
        .current_dir(&ctx)
        .status()
        .unwrap();
    assert!(status.success());
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox AS builder\nRUN mkdir /out && echo built > /out/result\n\
         FROM scratch\nCOPY --from=builder /bin/busybox /bin/\nCOPY --from=builder /out/result /result\n\
         ADD files.tgz /unpacked/\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"cat\", \"/result\", \"/unpacked/one.txt\"]\n",
    );
    let out = daemon.ok(&["build", "-q", "-t", "staged", ctx.to_str().unwrap()]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(daemon.ok(&["run", "--rm", "staged"]), "built\none\n");
    // --target stops after the named stage.
    daemon.ok(&[
        "build",
        "-q",
        "--target",
        "builder",
        "-t",
        "first-stage",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(
        daemon.ok(&["run", "--rm", "first-stage", "cat", "/out/result"]),
        "built\n"
    );
    let stderr = daemon.fails(&["build", "--target", "nope", ctx.to_str().unwrap()]);
    assert!(
        stderr.contains("failed to reach build target nope in Dockerfile"),
        "{stderr}"
    );
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn docker_py_builds() {
    let daemon = daemon();
    let tmp = daemon.dir.path().join("py");
    std::fs::create_dir_all(&tmp).unwrap();
    berth_testkit::pytest::run_pytest(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_build.py"),
        &[
            ("BERTHD_HOST", std::ffi::OsStr::new(&daemon.host())),
            ("BERTH_TEST_TMP", tmp.as_os_str()),
        ],
        3,
    );
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn unchanged_steps_come_from_the_cache_and_changes_rebuild_what_follows() {
    let daemon = daemon();
    let ctx = daemon.dir.path().join("cached");
    write(&ctx, "input.txt", "first\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nARG V=1\nRUN X=one; echo \"ran-$X\"\nCOPY input.txt /input.txt\n\
         RUN X=two; echo \"ran-$X\" && cat /input.txt > /copy.txt\nCMD [\"cat\", \"/copy.txt\"]\n",
    );
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "cached"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        daemon.ok(&args)
    };
    let first = build(&[]);
    assert!(
        first.contains("ran-one") && first.contains("ran-two"),
        "{first}"
    );
    assert!(!first.contains("Using cache"), "{first}");

    let second = build(&[]);
    assert_eq!(second.matches(" ---> Using cache").count(), 3, "{second}");
    assert!(
        !second.contains("ran-one") && !second.contains("ran-two"),
        "{second}"
    );
    assert_eq!(daemon.ok(&["run", "--rm", "cached"]), "first\n");

    // New content for the COPY: it and the RUN after it run again.
    write(&ctx, "input.txt", "second\n");
    let third = build(&[]);
    assert_eq!(third.matches(" ---> Using cache").count(), 1, "{third}");
    assert!(
        !third.contains("ran-one") && third.contains("ran-two"),
        "{third}"
    );
    assert_eq!(daemon.ok(&["run", "--rm", "cached"]), "second\n");

    // A different build arg changes every step after its ARG.
    let fourth = build(&["--build-arg", "V=2"]);
    assert!(!fourth.contains("Using cache"), "{fourth}");

    let fifth = build(&["--no-cache"]);
    assert!(!fifth.contains("Using cache"), "{fifth}");
    assert!(
        fifth.contains("ran-one") && fifth.contains("ran-two"),
        "{fifth}"
    );
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn from_pulls_an_image_that_is_not_local() {
    let registry = berth_testkit::registry::TestRegistry::start(None);
    let daemon = daemon();
    let remote = format!("{}/base:1", registry.host());
    daemon.ok(&["tag", "busybox", &remote]);
    daemon.ok(&["push", &remote]);
    daemon.ok(&["rmi", &remote, "busybox"]);
    assert_eq!(daemon.ok(&["images", "-q"]), "");

    let ctx = daemon.dir.path().join("pulled");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {remote}\nRUN echo on-pulled > /f\nCMD [\"cat\", \"/f\"]\n"),
    );
    let out = daemon.ok(&["build", "-t", "on-pulled", ctx.to_str().unwrap()]);
    assert!(out.contains("1: Pulling from base"), "{out}");
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert_eq!(daemon.ok(&["run", "--rm", "on-pulled"]), "on-pulled\n");
    assert!(!daemon.ok(&["images", "-q", &remote]).is_empty());
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn a_restart_after_a_crash_mid_build_removes_what_the_build_left() {
    let mut daemon = daemon();
    let ctx = daemon.dir.path().join("crash");
    write(&ctx, "Dockerfile", "FROM busybox\nRUN sleep 30\n");
    let mut build = berth_testkit::docker::command(&daemon.host(), &common::docker_config())
        .args(["build", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while daemon.ok(&["ps", "-q"]).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let build_dir = daemon.data_root.join("build");
    assert!(std::fs::read_dir(&build_dir).unwrap().count() == 1);
    daemon.kill9();
    let _ = build.kill();
    let _ = build.wait();
    // What a crash in a COPY step leaves: a mount in the build directory.
    let stale = build_dir.join("0123456789abcdef/copy-01234567");
    std::fs::create_dir_all(&stale).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &stale,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    daemon.spawn();
    assert!(!build_dir.exists());
    assert!(berth_testkit::cleanup::mounts_under(&build_dir).is_empty());
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn from_pulls_with_the_credentials_the_cli_sends() {
    let registry = berth_testkit::registry::TestRegistry::start(Some(("berth", "s3cret")));
    let daemon = daemon();
    // A private docker config: the login must not reach other tests.
    let config = daemon.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let docker = |args: &[&str]| berth_testkit::docker::run_ok(&daemon.host(), &config, args);
    let remote = format!("{}/private:1", registry.host());
    docker(&["tag", "busybox", &remote]);
    let mut login = berth_testkit::docker::command(&daemon.host(), &config)
        .args(["login", &registry.host(), "-u", "berth", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), b"s3cret\n").unwrap();
    assert!(login.wait().unwrap().success());
    docker(&["push", &remote]);
    docker(&["rmi", &remote]);

    let ctx = daemon.dir.path().join("private");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {remote}\nCMD [\"echo\", \"private\"]\n"),
    );
    let out = docker(&["build", "-t", "from-private", ctx.to_str().unwrap()]);
    assert!(out.contains("Pulling from private"), "{out}");
    assert_eq!(docker(&["run", "--rm", "from-private"]), "private\n");

    // Without the login, the registry refuses the pull.
    docker(&["logout", &registry.host()]);
    docker(&["rmi", &remote, "from-private"]);
    let (status, _, stderr) =
        berth_testkit::docker::run(&daemon.host(), &config, &["build", ctx.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        stderr.contains("unauthorized") || stderr.contains("401"),
        "{stderr}"
    );
    assert_clean_after_rm_all(&daemon);
}

#[test]
fn onbuild_triggers_run_in_the_child_build_only() {
    let daemon = daemon();
    let parent = daemon.dir.path().join("parent");
    write(
        &parent,
        "Dockerfile",
        "FROM busybox\nONBUILD COPY a.txt /from-trigger.txt\nONBUILD RUN echo ran-trigger > /t\n",
    );
    daemon.ok(&["build", "-t", "parent", parent.to_str().unwrap()]);
    let child = daemon.dir.path().join("child");
    write(&child, "a.txt", "child file\n");
    write(
        &child,
        "Dockerfile",
        "FROM parent\nCMD [\"cat\", \"/from-trigger.txt\", \"/t\"]\n",
    );
    let out = daemon.ok(&["build", "-t", "child", child.to_str().unwrap()]);
    assert!(out.contains("# Executing 2 build triggers"), "{out}");
    assert_eq!(
        daemon.ok(&["run", "--rm", "child"]),
        "child file\nran-trigger\n"
    );
    let image = daemon.inspect_as("image", "child");
    assert!(image["Config"]["OnBuild"].is_null(), "{}", image["Config"]);
    assert_clean_after_rm_all(&daemon);
}

/// A RUN step's layer holds what the step wrote, not the mount points its
/// container got from the image's init layer (`/etc/hosts`, `/proc`...).
#[test]
fn a_run_steps_layer_holds_only_its_changes() {
    let daemon = daemon();
    let ctx = daemon.dir.path().join("run");
    write(&ctx, "Dockerfile", "FROM busybox\nRUN echo y > /y\n");
    daemon.ok(&["build", "-t", "ran", ctx.to_str().unwrap()]);
    let saved = daemon.dir.path().join("ran.tar");
    daemon.ok(&["save", "-o", saved.to_str().unwrap(), "ran"]);
    let out = daemon.dir.path().join("ran");
    std::fs::create_dir(&out).unwrap();
    let tar = |args: &[&str]| {
        let output = std::process::Command::new("tar")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    tar(&["-xf", saved.to_str().unwrap(), "-C", out.to_str().unwrap()]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{manifest}");
    let top = out.join(layers[1].as_str().unwrap());
    assert_eq!(tar(&["-tf", top.to_str().unwrap()]), "y\n");
    assert_clean_after_rm_all(&daemon);
}

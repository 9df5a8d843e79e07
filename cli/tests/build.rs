//! `berth build` against the workspace's berthd: a context directory, a
//! Dockerfile outside it (`-f`), a tar on stdin (`-`), build args,
//! labels, `-q`, and a failing step's status.

mod common;

use common::{berth, berth_with_stdin, ok, start_berthd, stderr, stdout};

#[test]
fn berth_build_against_berthd() {
    let d = start_berthd();
    let h = &d.host();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("sub/data.txt"), "data\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nARG WHO\nENV WHO=$WHO\nWORKDIR /w\nCOPY sub/data.txt .\n\
         RUN echo \"built for $WHO\" > out.txt\nCMD [\"cat\", \"data.txt\", \"out.txt\"]\n",
    )
    .unwrap();
    let out = ok(
        h,
        &[
            "build",
            "-t",
            "bb:1",
            "-t",
            "bb:2",
            "--build-arg",
            "WHO=cli",
            "--label",
            "made.by=berth",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(out.contains("Step 1/7 : FROM busybox"), "{out}");
    assert!(
        out.contains("Successfully tagged bb:1\nSuccessfully tagged bb:2\n"),
        "{out}"
    );
    assert_eq!(ok(h, &["run", "--rm", "bb:2"]), "data\nbuilt for cli\n");
    assert_eq!(
        ok(
            h,
            &[
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"made.by\"}}",
                "bb:1"
            ]
        )
        .trim(),
        "berth"
    );

    // -f outside the context, -q prints the ID alone.
    let other = work.path().join("Other.dockerfile");
    std::fs::write(
        &other,
        "FROM busybox\nCOPY sub /copied\nCMD [\"cat\", \"/copied/data.txt\"]\n",
    )
    .unwrap();
    let id = ok(
        h,
        &[
            "build",
            "-q",
            "-f",
            other.to_str().unwrap(),
            "-t",
            "bb:f",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(
        id.trim().starts_with("sha256:") && id.lines().count() == 1,
        "{id}"
    );
    assert_eq!(ok(h, &["run", "--rm", id.trim()]), "data\n");

    // A tar of the context on stdin.
    let tar = std::process::Command::new("tar")
        .args(["-C", ctx.to_str().unwrap(), "-cf", "-", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let piped = berth_with_stdin(
        h,
        &["build", "-t", "bb:stdin", "--build-arg", "WHO=pipe", "-"],
        &tar.stdout,
    );
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(
        ok(h, &["run", "--rm", "bb:stdin"]),
        "data\nbuilt for pipe\n"
    );

    // A failing step: its message on stderr, its status as ours.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo failing; exit 4\n",
    )
    .unwrap();
    let failed = berth(h, &["build", ctx.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(4), "{}", stdout(&failed));
    assert!(
        stderr(&failed)
            .contains("The command '/bin/sh -c echo failing; exit 4' returned a non-zero code: 4"),
        "{}",
        stderr(&failed)
    );
    assert!(stdout(&failed).contains("failing\n"), "{}", stdout(&failed));
    assert_eq!(ok(h, &["ps", "-aq"]), "");
    drop(d);
}

/// FROM an image of a registry that wants a login: `berth build` sends the
/// stored credentials in `X-Registry-Config`.
#[test]
fn berth_build_pulls_with_stored_credentials() {
    let registry = berth_testkit::registry::TestRegistry::start(Some(("berth", "s3cret")));
    let d = start_berthd();
    let h = &d.host();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    let config = config.to_str().unwrap();
    let remote = format!("{}/private:1", registry.host());
    let login = berth_with_stdin(
        h,
        &[
            "--config",
            config,
            "login",
            &registry.host(),
            "-u",
            "berth",
            "--password-stdin",
        ],
        b"s3cret\n",
    );
    assert!(login.status.success(), "{}", stderr(&login));
    ok(h, &["tag", "busybox", &remote]);
    ok(h, &["--config", config, "push", &remote]);
    ok(h, &["rmi", &remote]);

    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {remote}\nCMD [\"echo\", \"private base\"]\n"),
    )
    .unwrap();
    let out = ok(
        h,
        &[
            "--config",
            config,
            "build",
            "-t",
            "from-private",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(out.contains("Pulling from private"), "{out}");
    assert_eq!(ok(h, &["run", "--rm", "from-private"]), "private base\n");
    drop(d);
}

//! Image endpoints driven by the real docker CLI (28.x) and docker-py:
//! import, list, inspect, tag, rmi, history, save/load, prune, events.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testkit::pytest::run_pytest;
use berth_testkit::rootfs::{APPLETS, busybox_rootfs_tar};
use common::{Berthd, docker_fails, docker_ok, now, request, start_berthd};

/// A busybox root file system tar inside the daemon's temp dir, so it goes
/// away with the daemon.
fn busybox_rootfs(daemon: &Berthd) -> PathBuf {
    busybox_rootfs_tar(daemon.dir.path(), APPLETS)
}

/// Runs the docker CLI and insists on success; returns stdout.
fn ok(daemon: &Berthd, args: &[&str]) -> String {
    docker_ok(&daemon.host(), args)
}

/// Runs the docker CLI and insists on failure; returns stderr.
fn fails(daemon: &Berthd, args: &[&str]) -> String {
    docker_fails(&daemon.host(), args)
}

/// `docker import [options] <tar> [repo]`; returns the new image ID.
fn import(daemon: &Berthd, tar: &Path, options: &[&str], repo: Option<&str>) -> String {
    let mut args = vec!["import"];
    args.extend_from_slice(options);
    args.push(tar.to_str().unwrap());
    args.extend(repo);
    let out = ok(daemon, &args);
    let id = out.trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import printed {out:?}"
    );
    id
}

#[test]
fn import_list_inspect_tag_and_remove() {
    let daemon = start_berthd();
    let tar = busybox_rootfs(&daemon);
    let id = import(
        &daemon,
        &tar,
        &[
            "--change",
            r#"CMD ["/bin/sh"]"#,
            "--change",
            "ENV GREETING=hi",
            "--change",
            "WORKDIR /srv",
            "--change",
            "LABEL tier=web",
        ],
        Some("busybox:latest"),
    );
    let short = &id[7..19];

    let table = ok(&daemon, &["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let header: Vec<&str> = lines[0].split("  ").filter(|s| !s.is_empty()).collect();
    assert_eq!(
        header.iter().map(|s| s.trim()).collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["busybox", "latest", short], "{table}");
    assert!(lines[1].ends_with("MB"), "{table}");

    assert_eq!(ok(&daemon, &["images", "-q"]).trim(), short);
    let json_row: serde_json::Value =
        serde_json::from_str(ok(&daemon, &["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(json_row["Repository"], "busybox");
    assert_eq!(json_row["ID"], short);

    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&daemon, &["image", "inspect", "busybox"])).unwrap();
    let image = &inspect[0];
    assert_eq!(image["Id"], id.as_str());
    assert_eq!(image["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(image["Config"]["Env"], serde_json::json!(["GREETING=hi"]));
    assert_eq!(image["Config"]["WorkingDir"], "/srv");
    assert_eq!(image["Config"]["Labels"]["tier"], "web");
    assert_eq!(image["Architecture"], "amd64");
    assert_eq!(image["Os"], "linux");
    assert_eq!(image["RootFS"]["Type"], "layers");
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(image["GraphDriver"]["Name"], "overlay2");
    assert_eq!(image["Comment"], "Imported from -");
    assert!(image["Size"].as_u64().unwrap() > 500_000, "{image}");
    // By short ID and by the fully qualified name too.
    let by_id = ok(&daemon, &["image", "inspect", "--format", "{{.Id}}", short]);
    assert_eq!(by_id.trim(), id);
    let by_name = ok(
        &daemon,
        &[
            "inspect",
            "--format",
            "{{.Id}}",
            "docker.io/library/busybox:latest",
        ],
    );
    assert_eq!(by_name.trim(), id);

    ok(&daemon, &["tag", "busybox", "box:v1"]);
    let tags = ok(&daemon, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["box:v1", "busybox:latest"]);
    let filtered = ok(
        &daemon,
        &[
            "images",
            "--format",
            "{{.Repository}}",
            "--filter",
            "reference=bo*",
        ],
    );
    assert_eq!(filtered.trim(), "box");
    let info = ok(&daemon, &["info", "--format", "{{.Images}}"]);
    assert_eq!(info.trim(), "1");

    // One row per tag: box:v1 and busybox:latest.
    let labelled = ok(&daemon, &["images", "-q", "--filter", "label=tier=web"]);
    assert_eq!(labelled.lines().collect::<Vec<_>>(), [short, short]);
    let none = ok(&daemon, &["images", "-q", "--filter", "label=tier=db"]);
    assert_eq!(none.trim(), "");

    // By ID, an image named in two repositories needs force.
    ok(&daemon, &["tag", "busybox", "other/repo:x"]);
    let err = fails(&daemon, &["rmi", short]);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )),
        "{err}"
    );
    assert_eq!(
        ok(&daemon, &["rmi", "other/repo:x"]).trim(),
        "Untagged: other/repo:x"
    );

    // Untag only while another tag remains.
    assert_eq!(ok(&daemon, &["rmi", "box:v1"]).trim(), "Untagged: box:v1");
    assert_eq!(ok(&daemon, &["images", "-q"]).trim(), short);
    // By ID: every tag goes, then the image.
    let removed = ok(&daemon, &["rmi", short]);
    assert_eq!(
        removed.lines().collect::<Vec<_>>(),
        ["Untagged: busybox:latest", &format!("Deleted: {id}")]
    );
    assert_eq!(ok(&daemon, &["images", "-q"]).trim(), "");
    // The content went with it.
    let blobs = std::fs::read_dir(daemon.data_root.join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
}

/// Removing an image frees its unpacked layers and init layer too, but
/// not those a container's writable layer still sits on.
#[test]
fn removing_an_image_frees_its_unpacked_layers() {
    let daemon = start_berthd();
    let tar = busybox_rootfs(&daemon);
    let snapshots = || {
        std::fs::read_dir(daemon.data_root.join("overlay/snapshots"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    import(&daemon, &tar, &[], Some("box"));
    // (`rm` deletes the writable layer before it answers; `run --rm`
    // answers first.)
    ok(&daemon, &["create", "--name", "unpack", "box", "true"]);
    ok(&daemon, &["rm", "unpack"]);
    assert_eq!(snapshots(), 2, "the unpacked layer and its init layer");
    ok(&daemon, &["rmi", "box"]);
    assert_eq!(snapshots(), 0);

    import(&daemon, &tar, &[], Some("box"));
    ok(&daemon, &["create", "--name", "holder", "box", "true"]);
    ok(&daemon, &["rmi", "-f", "box"]);
    assert_eq!(snapshots(), 3, "the layer, its init layer, the container's");
    ok(&daemon, &["rm", "holder"]);
    import(&daemon, &tar, &[], Some("other"));
    ok(&daemon, &["rmi", "other"]);
    assert_eq!(snapshots(), 0);
}

#[test]
fn save_then_load_round_trips_the_image_and_history_shows_it() {
    let daemon = start_berthd();
    let tar = busybox_rootfs(&daemon);
    let id = import(
        &daemon,
        &tar,
        &["--change", r#"CMD ["/bin/sh"]"#],
        Some("busybox:latest"),
    );

    let history = ok(&daemon, &["history", "busybox"]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{history}");
    assert_eq!(lines.len(), 2, "{history}");
    assert!(lines[1].starts_with(&id[7..19]), "{history}");
    assert!(lines[1].contains("Imported from -"), "{history}");

    let saved = daemon.dir.path().join("saved.tar");
    ok(&daemon, &["save", "-o", saved.to_str().unwrap(), "busybox"]);
    let listing = Command::new("tar").arg("tf").arg(&saved).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    for file in ["manifest.json", "index.json", "oci-layout"] {
        assert!(listing.lines().any(|l| l == file), "{listing}");
    }
    assert!(
        listing.contains(&format!("blobs/sha256/{}", &id[7..])),
        "{listing}"
    );

    ok(&daemon, &["rmi", "busybox"]);
    assert_eq!(ok(&daemon, &["images", "-q"]).trim(), "");
    let loaded = ok(&daemon, &["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(loaded.trim(), "Loaded image: busybox:latest");
    let after = ok(
        &daemon,
        &["image", "inspect", "--format", "{{.Id}}", "busybox"],
    );
    assert_eq!(after.trim(), id);

    // Saving an unknown image fails before any byte is written.
    let err = fails(
        &daemon,
        &[
            "save",
            "-o",
            daemon.dir.path().join("x.tar").to_str().unwrap(),
            "nope",
        ],
    );
    assert!(err.contains("No such image: nope:latest"), "{err}");
}

#[test]
fn prune_removes_only_dangling_images() {
    let daemon = start_berthd();
    let tar = busybox_rootfs(&daemon);
    let tagged = import(&daemon, &tar, &[], Some("busybox:latest"));
    // Another config (so another ID) with no name: dangling.
    let dangling = import(&daemon, &tar, &["--change", "USER nobody"], None);
    assert_ne!(tagged, dangling);
    let listed = ok(&daemon, &["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(listed.trim(), &dangling[7..19]);
    let table = ok(&daemon, &["images"]);
    let none_row = format!("<none> <none> {}", &dangling[7..19]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ") == none_row),
        "{table}"
    );

    let pruned = ok(&daemon, &["image", "prune", "-f"]);
    assert!(pruned.contains(&format!("deleted: {dangling}")), "{pruned}");
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert_eq!(ok(&daemon, &["images", "-q"]).trim(), &tagged[7..19]);
    // The tagged image's content is intact.
    ok(
        &daemon,
        &[
            "save",
            "-o",
            daemon.dir.path().join("s.tar").to_str().unwrap(),
            "busybox",
        ],
    );
}

#[test]
fn unknown_and_invalid_names_get_docker_errors() {
    let daemon = start_berthd();
    let err = fails(&daemon, &["image", "inspect", "nope"]);
    assert!(err.contains("No such image: nope:latest"), "{err}");
    let err = fails(&daemon, &["rmi", "nope:v1"]);
    assert!(err.contains("No such image: nope:v1"), "{err}");
    let err = fails(&daemon, &["inspect", "nope"]);
    assert!(err.contains("No such object: nope"), "{err}");
    let err = fails(&daemon, &["history", "nope"]);
    assert!(err.contains("No such image: nope:latest"), "{err}");

    let response = request(
        &daemon.socket,
        "POST",
        "/v1.47/images/nope/tag?repo=Bad&tag=x",
        &[],
        b"",
    );
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json()["message"],
        "invalid reference format: repository name \"Bad\" must be lowercase"
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    let response = request(&daemon.socket, "GET", "/v1.47/images/Bad/json", &[], b"");
    assert_eq!(response.status, 400);

    let response = request(
        &daemon.socket,
        "POST",
        "/v1.47/images/create?fromImage=Bad&tag=latest",
        &[],
        b"",
    );
    // Pulls are tested in tests/pull.rs; a bad name is refused up front.
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid reference format"),
        "{}",
        response.text()
    );

    let tar = busybox_rootfs(&daemon);
    let err = fails(
        &daemon,
        &["import", "--change", "RUN echo hi", tar.to_str().unwrap()],
    );
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    let not_a_tar = daemon.dir.path().join("bad.tar");
    std::fs::write(&not_a_tar, b"this is not a tar archive").unwrap();
    let err = fails(&daemon, &["load", "-i", not_a_tar.to_str().unwrap()]);
    assert!(err.contains("not a valid tar archive"), "{err}");
    assert_eq!(ok(&daemon, &["images", "-q"]).trim(), "");
}

#[test]
fn tag_and_untag_show_up_in_docker_events() {
    let daemon = start_berthd();
    let tar = busybox_rootfs(&daemon);
    let since = now();
    let id = import(&daemon, &tar, &[], Some("busybox:latest"));
    ok(&daemon, &["tag", "busybox", "box:v1"]);
    ok(&daemon, &["rmi", "box:v1"]);
    // `until` is whole seconds: end the window after the events.
    let until = (now() + 1).to_string();
    let events = ok(
        &daemon,
        &[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until,
            "--filter",
            "type=image",
        ],
    );
    let actions: Vec<(&str, &str)> = events
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields[2], fields[4])
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("tag", "(name=busybox:latest)"),
            ("import", &*format!("(name={id})")),
            ("tag", "(name=box:v1)"),
            ("untag", &*format!("(name={id})")),
        ],
        "{events}"
    );
    assert!(
        events
            .lines()
            .all(|l| l.split_whitespace().nth(3) == Some(&id)),
        "{events}"
    );
}

#[test]
fn docker_py_images_api() {
    let daemon = start_berthd();
    run_pytest(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_images.py"),
        &[
            ("BERTHD_HOST", OsStr::new(&daemon.host())),
            ("BERTH_TEST_TMP", daemon.dir.path().as_os_str()),
        ],
        4,
    );
}

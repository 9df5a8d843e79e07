//! The rich fixture layers of the pull tests: every kind of tar entry a
//! real image has, built with berth-testkit's `Tar`.

use berth_testkit::image::Tar;

/// Three layers exercising whiteouts, opaque directories, hard links,
/// symlinks, a device node, a fifo, xattrs, owners, special mode bits and
/// names longer than the 100 bytes of a tar header.
pub(crate) fn rich_tars() -> Vec<Vec<u8>> {
    let long_dir = format!("long/{}", "d".repeat(120));
    let long_file = format!("{long_dir}/{}", "f".repeat(90));
    let base = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
        .xattr_file(
            "etc/labelled",
            b"has xattrs\n",
            &[("user.berth.test", b"hello"), ("user.other", b"x")],
        )
        .dir("home/", 0o755)
        .dir("home/user/", 0o750)
        .owned_file("home/user/secret", 0o600, (1000, 1000), b"s3cret\n")
        .dir("usr/", 0o755)
        .dir("usr/bin/", 0o755)
        .file("usr/bin/tool", 0o755, b"#!/bin/sh\necho tool\n")
        .file("usr/bin/setuid", 0o4755, b"setuid\n")
        .hardlink("usr/bin/tool-link", "usr/bin/tool")
        .symlink("usr/bin/sh", "tool")
        .symlink("etc/abs", "/usr/bin/tool")
        .symlink("etc/dangling", "/nowhere/at/all")
        .dir("tmp/", 0o1777)
        .dir("dev/", 0o755)
        .chardev("dev/null", 1, 3)
        .dir("run/", 0o755)
        .fifo("run/fifo")
        .dir("var/", 0o755)
        .dir("var/lib/", 0o755)
        .file("var/lib/gone.txt", 0o644, b"removed by layer 2\n")
        .file("var/lib/kept.txt", 0o644, b"kept\n")
        .dir("var/cache/", 0o755)
        .file("var/cache/a", 0o644, b"a\n")
        .dir("opaque/", 0o755)
        .file("opaque/old1", 0o644, b"old\n")
        .file("opaque/old2", 0o644, b"old\n")
        .dir("long/", 0o755)
        .dir(&format!("{long_dir}/"), 0o755)
        .file(&long_file, 0o644, b"long name\n")
        .symlink("long-link", &long_file)
        .finish();
    let upper = Tar::new()
        .dir("etc/", 0o755)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )
        .dir("var/", 0o755)
        .dir("var/lib/", 0o755)
        .file("var/lib/.wh.gone.txt", 0o644, b"")
        .file("var/.wh.cache", 0o644, b"")
        .dir("opaque/", 0o755)
        .file("opaque/.wh..wh..opq", 0o644, b"")
        .file("opaque/new", 0o644, b"new\n")
        .dir("usr/", 0o755)
        .dir("usr/bin/", 0o755)
        .file("usr/bin/added", 0o755, b"added\n")
        .hardlink("usr/bin/added-link", "usr/bin/added")
        .finish();
    let top = Tar::new()
        .dir("etc/", 0o700)
        .symlink("etc/passwd-link", "passwd")
        .dir("srv/", 0o755)
        .owned_file("srv/data", 0o640, (33, 33), &vec![b'x'; 100_000])
        .finish();
    vec![base, upper, top]
}

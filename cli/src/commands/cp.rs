//! `docker cp` over `/containers/{id}/archive`: GET (copy out, a tar whose top entry is the
//! source's basename), HEAD (stat the destination), PUT (copy in, a tar extracted into a
//! directory), with docker's rules for existing/non-existing destinations.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::Ctx;
use crate::cli::CpArgs;
use crate::client::{Payload, Query, encode_path};
use crate::error::Error;
use crate::units::human_size;

/// Go's `os.ModeDir` in `X-Docker-Container-Path-Stat.mode`.
const GO_MODE_DIR: u64 = 1 << 31;
/// Go's `os.ModeSymlink`.
const GO_MODE_SYMLINK: u64 = 1 << 27;

/// `name:path` → (container, path); a local path has no `:` before its first `/`.
fn split_remote(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') || arg == "-" {
        return None;
    }
    arg.split_once(':')
}

fn io_err(what: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Usage(format!("{}: {e}", what.display()))
}

fn path_stat(header: Option<&str>) -> Option<Value> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header?)
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

pub(crate) fn cp(ctx: &mut Ctx, a: CpArgs) -> Result<(), Error> {
    match (split_remote(&a.src), split_remote(&a.dest)) {
        (Some((c, p)), None) => copy_out(ctx, c, p, &a.dest, a.quiet, a.follow_link),
        (None, Some((c, p))) => copy_in(ctx, &a.src, c, p, &a),
        (Some(_), Some(_)) => Err(Error::Usage(
            "copying between containers is not supported".into(),
        )),
        (None, None) => Err(Error::Usage(
            "must specify at least one container source".into(),
        )),
    }
}

fn copy_out(
    ctx: &mut Ctx,
    container: &str,
    src: &str,
    dest: &str,
    quiet: bool,
    follow_link: bool,
) -> Result<(), Error> {
    let base = format!("/containers/{}/archive", encode_path(container));
    // -L: copy what a symlink points to (the daemon resolves its target
    // inside the container), under the link's own name
    let link_name = Path::new(src)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut src = src.to_string();
    let mut rename_to = None;
    if follow_link {
        let q = Query::new().add("path", src.as_str()).render();
        let resp = ctx
            .client
            .request("HEAD", &format!("{base}{q}"), &[], Payload::None)?;
        let stat = path_stat(resp.header("x-docker-container-path-stat"));
        let target = stat
            .as_ref()
            .filter(|s| s["mode"].as_u64().is_some_and(|m| m & GO_MODE_SYMLINK != 0))
            .and_then(|s| s["linkTarget"].as_str())
            .filter(|t| !t.is_empty());
        if let Some(target) = target {
            src = target.to_string();
            rename_to = link_name;
        }
    }
    let src = src.as_str();
    let q = Query::new().add("path", src).render();
    let resp = ctx
        .client
        .request("GET", &format!("{base}{q}"), &[], Payload::None)?;
    let stat = path_stat(resp.header("x-docker-container-path-stat"));
    let mut body = resp.into_body();
    if dest == "-" {
        std::io::copy(&mut body, &mut std::io::stdout().lock()).map_err(Error::Stream)?;
        return Ok(());
    }
    let dest = PathBuf::from(dest);
    let into_dir = dest.is_dir();
    let src_name = stat
        .as_ref()
        .and_then(|s| s["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            Path::new(src)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let mut archive = tar::Archive::new(&mut body);
    archive.set_preserve_permissions(true);
    let mut total = 0u64;
    for entry in archive.entries().map_err(Error::Stream)? {
        let mut entry = entry.map_err(Error::Stream)?;
        let path = entry.path().map_err(Error::Stream)?.into_owned();
        // into an existing directory: keep the top name; otherwise the top entry becomes `dest`
        let target = if into_dir {
            match (&rename_to, path.strip_prefix(&src_name)) {
                (Some(name), Ok(rest)) if rest.as_os_str().is_empty() => dest.join(name),
                (Some(name), Ok(rest)) => dest.join(name).join(rest),
                _ => dest.join(&path),
            }
        } else {
            let rest = path.strip_prefix(&src_name).unwrap_or(&path);
            if rest.as_os_str().is_empty() {
                dest.clone()
            } else {
                dest.join(rest)
            }
        };
        if target
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::Usage(format!(
                "refusing to extract {} outside {}",
                path.display(),
                dest.display()
            )));
        }
        total += entry.header().size().unwrap_or(0);
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        entry.unpack(&target).map_err(io_err(&target))?;
    }
    if !quiet {
        eprintln!(
            "Successfully copied {} to {}",
            human_size(total as f64),
            dest.display()
        );
    }
    Ok(())
}

fn copy_in(ctx: &mut Ctx, src: &str, container: &str, dest: &str, a: &CpArgs) -> Result<(), Error> {
    let base = format!("/containers/{}/archive", encode_path(container));
    let put = |ctx: &mut Ctx, dir: &str, body: &mut dyn Read| -> Result<(), Error> {
        let q = Query::new()
            .add_if(a.archive, "copyUIDGID", "true")
            .add("noOverwriteDirNonDir", "true")
            .add("path", dir)
            .render();
        ctx.client
            .request("PUT", &format!("{base}{q}"), &[], Payload::Tar(body))?
            .drain()
    };
    if src == "-" {
        return put(ctx, dest, &mut std::io::stdin().lock());
    }
    let src_path = PathBuf::from(src);
    let meta = if a.follow_link {
        std::fs::metadata(&src_path)
    } else {
        std::fs::symlink_metadata(&src_path)
    }
    .map_err(io_err(&src_path))?;
    // where does it go: into an existing directory, or as a new name in the parent
    let q = Query::new().add("path", dest).render();
    let dest_is_dir = match ctx
        .client
        .request("HEAD", &format!("{base}{q}"), &[], Payload::None)
    {
        Ok(resp) => path_stat(resp.header("x-docker-container-path-stat"))
            .and_then(|s| s["mode"].as_u64())
            .is_some_and(|m| m & GO_MODE_DIR != 0),
        Err(e) if e.is_not_found() && dest.ends_with('/') => {
            return Err(Error::Usage(format!(
                "destination \"{container}:{dest}\" must be a directory"
            )));
        }
        Err(e) if e.is_not_found() => false,
        Err(e) => return Err(e),
    };
    let src_name = src_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let (dir, name) = if dest_is_dir {
        (dest.to_string(), src_name)
    } else {
        let d = Path::new(dest);
        let parent = d
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(src_name);
        (parent, name)
    };
    // a socketpair as a pipe (std::io::pipe needs a newer Rust than our MSRV)
    let (mut reader, writer) = std::os::unix::net::UnixStream::pair().map_err(Error::Stream)?;
    let follow = a.follow_link;
    let size = if meta.is_dir() { 0 } else { meta.len() };
    let builder = std::thread::spawn(move || -> std::io::Result<()> {
        let mut tar = tar::Builder::new(writer);
        tar.follow_symlinks(follow);
        if meta.is_dir() {
            tar.append_dir_all(&name, &src_path)?;
        } else {
            tar.append_path_with_name(&src_path, &name)?;
        }
        tar.finish()
    });
    let sent = put(ctx, &dir, &mut reader);
    drop(reader);
    let built = builder
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("tar thread panicked")));
    sent?;
    built.map_err(|e| Error::Usage(format!("archiving {src}: {e}")))?;
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {container}:{dest}",
            human_size(size as f64)
        );
    }
    Ok(())
}

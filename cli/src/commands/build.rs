//! `build`: the context directory (or a tar on stdin) streamed to
//! `POST /build` as a tar, and the classic builder's output printed as
//! docker's legacy builder does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_core::dockerignore::DockerIgnore as Ignore;
use serde_json::Value;

use crate::Ctx;
use crate::cli::BuildArgs;
use crate::client::{Payload, Query};
use crate::error::Error;

/// The `buildargs` JSON: `KEY=value`, or `KEY` alone taking the value
/// from the environment (skipped when unset, as docker does).
fn build_args(list: &[String]) -> Result<String, Error> {
    let mut map = serde_json::Map::new();
    for arg in list {
        match arg.split_once('=') {
            Some((key, value)) => {
                map.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            None => {
                if let Ok(value) = std::env::var(arg) {
                    map.insert(arg.clone(), Value::String(value));
                }
            }
        }
    }
    Ok(Value::Object(map).to_string())
}

fn labels(list: &[String]) -> String {
    let map: serde_json::Map<String, Value> = list
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), Value::String(v.to_owned()))
        })
        .collect();
    Value::Object(map).to_string()
}

/// Where `-f` puts the Dockerfile: its path inside the context, or
/// (outside it) a name it is added under, as the docker CLI does.
fn dockerfile_in_context(context: &Path, file: &str) -> Result<(String, Option<PathBuf>), Error> {
    let path = PathBuf::from(file);
    let abs = std::fs::canonicalize(&path)
        .map_err(|e| Error::Usage(format!("unable to prepare context: {file}: {e}")))?;
    let root = std::fs::canonicalize(context)
        .map_err(|e| Error::Usage(format!("unable to prepare context: {e}")))?;
    match abs.strip_prefix(&root) {
        Ok(relative) => Ok((relative.to_string_lossy().into_owned(), None)),
        Err(_) => Ok((format!(".dockerfile.{}", std::process::id()), Some(abs))),
    }
}

/// Writes the context directory as a tar (symlinks kept as symlinks),
/// without what `.dockerignore` excludes (the daemon applies it again;
/// skipping here saves sending it), always with the Dockerfile and
/// `.dockerignore` themselves.
fn write_context(
    out: impl Write,
    dir: &Path,
    dockerfile: &str,
    extra: Option<(String, PathBuf)>,
) -> std::io::Result<()> {
    let ignore = std::fs::read_to_string(dir.join(".dockerignore"))
        .map(|t| Ignore::parse(&t))
        .unwrap_or_default();
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let keep = [dockerfile, ".dockerignore"];
    append_tree(&mut tar, dir, "", &ignore, &keep)?;
    if let Some((name, path)) = extra {
        tar.append_path_with_name(path, name)?;
    }
    tar.into_inner()?.flush()
}

fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &str,
    ignore: &Ignore,
    keep: &[&str],
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let is_dir = entry.file_type()?.is_dir();
        let ignored = ignore.ignored(&relative) && !keep.contains(&relative.as_str());
        if ignored && !(is_dir && ignore.has_exceptions()) {
            continue;
        }
        if is_dir {
            if !ignored {
                tar.append_dir(&relative, entry.path())?;
            }
            append_tree(tar, &entry.path(), &relative, ignore, keep)?;
        } else if !ignored {
            tar.append_path_with_name(entry.path(), &relative)?;
        }
    }
    Ok(())
}

pub(crate) fn build(ctx: &mut Ctx, a: BuildArgs) -> Result<(), Error> {
    let mut q = Query::new();
    for tag in &a.tag {
        q = q.add("t", tag.clone());
    }
    let mut extra = None;
    let mut dockerfile_name = "Dockerfile".to_owned();
    if let Some(file) = &a.file {
        if a.path == "-" {
            q = q.add("dockerfile", file.clone());
        } else {
            let (name, outside) = dockerfile_in_context(Path::new(&a.path), file)?;
            q = q.add("dockerfile", name.clone());
            dockerfile_name = name.clone();
            extra = outside.map(|p| (name, p));
        }
    }
    q = q
        .add_if(
            !a.build_arg.is_empty(),
            "buildargs",
            build_args(&a.build_arg)?,
        )
        .add_if(!a.label.is_empty(), "labels", labels(&a.label))
        .add_if(a.quiet, "q", "1")
        .add_if(a.no_cache, "nocache", "1")
        .add_if(a.pull, "pull", "1")
        .add_if(a.force_rm, "forcerm", "1")
        .add_if(
            a.target.is_some(),
            "target",
            a.target.clone().unwrap_or_default(),
        )
        .add("rm", if a.rm { "1" } else { "0" });
    let path = format!("/build{}", q.render());
    let registry_config = crate::auth::registry_config_header(&ctx.config_dir);
    let headers = [("X-Registry-Config", registry_config.as_str())];
    let resp = if a.path == "-" {
        let mut stdin = std::io::stdin().lock();
        ctx.client.request(
            "POST",
            &path,
            &headers,
            Payload::Tar(&mut stdin as &mut dyn Read),
        )?
    } else {
        let dir = PathBuf::from(&a.path);
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "unable to prepare context: path {:?} not found",
                a.path
            )));
        }
        // A socket pair as the pipe (std::io::pipe is newer than our MSRV).
        let (mut reader, writer) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| Error::Usage(format!("unable to prepare context: {e}")))?;
        let producer =
            std::thread::spawn(move || write_context(writer, &dir, &dockerfile_name, extra));
        let resp = ctx
            .client
            .request("POST", &path, &headers, Payload::Tar(&mut reader));
        let _ = reader.shutdown(std::net::Shutdown::Both);
        drop(reader);
        if let Ok(Err(e)) = producer.join()
            && resp.is_ok()
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(Error::Usage(format!("unable to prepare context: {e}")));
        }
        resp?
    };
    let mut out = std::io::stdout().lock();
    let mut image_id = None;
    for message in resp.json_stream() {
        let message = message?;
        if let Some(detail) = message.get("errorDetail") {
            let text = detail
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            let _ = out.flush();
            eprintln!("{text}");
            let code = detail.get("code").and_then(Value::as_i64).unwrap_or(1);
            return Err(Error::Exit(
                i32::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1),
            ));
        }
        if let Some(id) = message.pointer("/aux/ID").and_then(Value::as_str) {
            image_id = Some(id.to_owned());
            continue;
        }
        if let Some(text) = message.get("stream").and_then(Value::as_str) {
            write!(out, "{text}").map_err(Error::Output)?;
            out.flush().map_err(Error::Output)?;
        }
    }
    if let (Some(file), Some(id)) = (&a.iidfile, &image_id) {
        std::fs::write(file, id).map_err(|e| Error::Usage(format!("writing {file}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_tar_leaves_out_what_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "big\n*.tmp\nDockerfile\n").unwrap();
        std::fs::create_dir(dir.path().join("big")).unwrap();
        std::fs::write(dir.path().join("big/blob"), "x").unwrap();
        std::fs::write(dir.path().join("a.tmp"), "x").unwrap();
        std::fs::write(dir.path().join("kept"), "x").unwrap();
        let mut out = Vec::new();
        write_context(&mut out, dir.path(), "Dockerfile", None).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "kept"]);
    }
}

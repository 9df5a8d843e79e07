//! `build`: the context directory (or a tar on stdin) streamed to
//! `POST /build` as a tar, and the classic builder's output printed as
//! docker's legacy builder does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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

/// Writes the context directory as a tar (symlinks kept as symlinks).
fn write_context(
    out: impl Write,
    dir: &Path,
    extra: Option<(String, PathBuf)>,
) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    tar.append_dir_all(".", dir)?;
    if let Some((name, path)) = extra {
        tar.append_path_with_name(path, name)?;
    }
    tar.into_inner()?.flush()
}

pub(crate) fn build(ctx: &mut Ctx, a: BuildArgs) -> Result<(), Error> {
    let mut q = Query::new();
    for tag in &a.tag {
        q = q.add("t", tag.clone());
    }
    let mut extra = None;
    if let Some(file) = &a.file {
        if a.path == "-" {
            q = q.add("dockerfile", file.clone());
        } else {
            let (name, outside) = dockerfile_in_context(Path::new(&a.path), file)?;
            q = q.add("dockerfile", name.clone());
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
        let producer = std::thread::spawn(move || write_context(writer, &dir, extra));
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

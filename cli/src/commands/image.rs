//! `pull`, `push`, `images`, `rmi`, `tag`.

use std::io::IsTerminal;

use serde_json::{Value, json};

use crate::Ctx;
use crate::auth::registry_auth_header;
use crate::cli::{
    HistoryArgs, ImagesArgs, ImportArgs, LoadArgs, PullArgs, PushArgs, RmiArgs, SaveArgs, TagArgs,
};
use crate::client::{Payload, Query, encode_path};
use crate::error::Error;
use crate::output::{filters_json, print, println, short_id};
use crate::progress::{self, Mode};
use crate::reference::{Reference, familiar};
use crate::template::{ListFormat, row};
use crate::units::{
    format_created_at, format_rfc3339, human_duration, human_size, human_size_prec, now_unix,
};

/// `POST /images/create?fromImage=<normalized>&tag=<tag>`, progress shown on stdout (pull) or
/// stderr (implicit pull of `run`/`create`).
pub(crate) fn pull_image(
    ctx: &mut Ctx,
    image: &str,
    platform: Option<&str>,
    to_stderr: bool,
    quiet: bool,
) -> Result<(), Error> {
    let r = Reference::parse(image);
    let q = Query::new()
        .add("fromImage", r.name.clone())
        .add("tag", r.tag_or_digest())
        .add_if(platform.is_some(), "platform", platform.unwrap_or(""));
    let auth = registry_auth_header(&ctx.config_dir, r.registry());
    let resp = ctx.client.request(
        "POST",
        &format!("/images/create{}", q.render()),
        &[("X-Registry-Auth", auth.as_str())],
        Payload::None,
    )?;
    if quiet {
        progress::display(resp, &mut std::io::sink(), Mode::Plain)?;
    } else if to_stderr {
        let mode = Mode::of(std::io::stderr());
        progress::display(resp, &mut std::io::stderr().lock(), mode)?;
    } else {
        let mode = Mode::of(std::io::stdout());
        progress::display(resp, &mut std::io::stdout().lock(), mode)?;
    }
    Ok(())
}

pub(crate) fn pull(ctx: &mut Ctx, a: PullArgs) -> Result<(), Error> {
    if a.all_tags {
        return Err(Error::Usage(
            "--all-tags is not supported by berth yet".into(),
        ));
    }
    let r = Reference::parse(&a.image);
    if r.tag.is_none() && r.digest.is_none() && !a.quiet {
        println("Using default tag: latest")?;
    }
    pull_image(ctx, &a.image, a.platform.as_deref(), false, a.quiet)?;
    println(&r.full())
}

pub(crate) fn push(ctx: &mut Ctx, a: PushArgs) -> Result<(), Error> {
    if a.all_tags {
        return Err(Error::Usage(
            "--all-tags is not supported by berth yet".into(),
        ));
    }
    let r = Reference::parse(&a.image);
    let auth = registry_auth_header(&ctx.config_dir, r.registry());
    let q = Query::new().add("tag", r.tag.clone().unwrap_or_else(|| "latest".into()));
    if r.tag.is_none() && !a.quiet {
        println("Using default tag: latest")?;
    }
    let resp = ctx.client.request(
        "POST",
        &format!(
            "/images/{}/push{}",
            encode_path(&familiar(&r.name)),
            q.render()
        ),
        &[("X-Registry-Auth", auth.as_str())],
        Payload::None,
    )?;
    if a.quiet {
        progress::display(resp, &mut std::io::sink(), Mode::Plain)?;
        return println(&r.full());
    }
    let mode = Mode::of(std::io::stdout());
    progress::display(resp, &mut std::io::stdout().lock(), mode)?;
    Ok(())
}

/// One `images` row per tag (or one `<none>` row), with docker's formatter fields.
fn image_rows(images: &[Value], a: &ImagesArgs) -> Vec<Value> {
    let now = now_unix() as i64;
    let mut rows = Vec::new();
    for img in images {
        let id = img["Id"].as_str().unwrap_or("");
        let created = img["Created"].as_i64().unwrap_or(0);
        let size = img["Size"].as_i64().unwrap_or(0);
        let digests: Vec<&str> = img["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let tags: Vec<&str> = img["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|t| *t != "<none>:<none>")
            .collect();
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        for t in &tags {
            let f = familiar(t);
            let (repo, tag) = match f.rfind(':') {
                Some(i) if !f[i + 1..].contains('/') => {
                    (f[..i].to_string(), f[i + 1..].to_string())
                }
                _ => (f.clone(), "<none>".into()),
            };
            let digest = digests
                .iter()
                .find(|d| familiar(d).split('@').next() == Some(repo.as_str()))
                .and_then(|d| d.split_once('@').map(|(_, h)| h.to_string()))
                .unwrap_or_else(|| "<none>".into());
            pairs.push((repo, tag, digest));
        }
        if pairs.is_empty() {
            match digests.first() {
                Some(d) => {
                    let f = familiar(d);
                    let (repo, dg) = f.split_once('@').unwrap_or((&f, "<none>"));
                    pairs.push((repo.to_string(), "<none>".into(), dg.to_string()));
                }
                None => pairs.push(("<none>".into(), "<none>".into(), "<none>".into())),
            }
        }
        for (repo, tag, digest) in pairs {
            let shown_id = if a.no_trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            rows.push(row(vec![
                (
                    "Containers",
                    json!(match img["Containers"].as_i64() {
                        Some(n) if n >= 0 => n.to_string(),
                        _ => "N/A".into(),
                    }),
                ),
                ("CreatedAt", json!(format_created_at(created))),
                (
                    "CreatedSince",
                    json!(if created > 0 {
                        format!("{} ago", human_duration(now - created))
                    } else {
                        "N/A".into()
                    }),
                ),
                ("Digest", json!(digest)),
                ("ID", json!(shown_id)),
                ("Repository", json!(repo)),
                (
                    "SharedSize",
                    json!(match img["SharedSize"].as_i64() {
                        Some(n) if n >= 0 => human_size(n as f64),
                        _ => "N/A".into(),
                    }),
                ),
                ("Size", json!(human_size(size as f64))),
                ("Tag", json!(tag)),
                ("UniqueSize", json!("N/A")),
                ("VirtualSize", json!(human_size_prec(size as f64, 4))),
            ]));
        }
    }
    rows
}

pub(crate) fn images(ctx: &mut Ctx, a: ImagesArgs) -> Result<(), Error> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = Query::new().add_if(a.all, "all", "1");
    if let Some(f) = filters_json(&filters)? {
        q = q.add("filters", f);
    }
    let list = ctx
        .client
        .get_json(&format!("/images/json{}", q.render()))?;
    let images = list.as_array().cloned().unwrap_or_default();
    if a.quiet {
        let mut seen = Vec::new();
        for img in &images {
            let id = img["Id"].as_str().unwrap_or("");
            let id = if a.no_trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        return print(&seen.iter().map(|s| format!("{s}\n")).collect::<String>());
    }
    let default = if a.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let f = ListFormat::parse(a.format.as_deref(), default)?;
    let titles = [
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "VIRTUAL SIZE"),
    ];
    print(&f.render(&image_rows(&images, &a), &titles)?)
}

pub(crate) fn rmi(ctx: &mut Ctx, a: RmiArgs) -> Result<(), Error> {
    let mut failed = false;
    for image in &a.images {
        let q = Query::new()
            .add_if(a.force, "force", "1")
            .add_if(a.no_prune, "noprune", "1");
        match ctx
            .client
            .request(
                "DELETE",
                &format!("/images/{}{}", encode_path(image), q.render()),
                &[],
                Payload::None,
            )
            .and_then(|r| r.json())
        {
            Ok(items) => {
                for item in items.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        println(&format!("Untagged: {u}"))?;
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println(&format!("Deleted: {d}"))?;
                    }
                }
            }
            Err(e) if e.is_daemon_error() => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if failed { Err(Error::Exit(1)) } else { Ok(()) }
}

pub(crate) fn tag(ctx: &mut Ctx, a: TagArgs) -> Result<(), Error> {
    let target = Reference::parse(&a.target);
    if target.digest.is_some() {
        return Err(Error::Usage(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let q = Query::new()
        .add("repo", target.name.clone())
        .add("tag", target.tag.clone().unwrap_or_else(|| "latest".into()));
    ctx.client.call(
        "POST",
        &format!("/images/{}/tag{}", encode_path(&a.source), q.render()),
    )?;
    Ok(())
}

pub(crate) fn history(ctx: &mut Ctx, a: HistoryArgs) -> Result<(), Error> {
    let list = ctx
        .client
        .get_json(&format!("/images/{}/history", encode_path(&a.image)))?;
    let now = now_unix() as i64;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" || a.no_trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let by = if a.no_trunc || by.chars().count() <= 45 {
                by
            } else {
                let mut t: String = by.chars().take(44).collect();
                t.push('…');
                t
            };
            let size = h["Size"].as_i64().unwrap_or(0);
            row(vec![
                ("Comment", h["Comment"].clone()),
                ("CreatedAt", json!(format_rfc3339(created))),
                ("CreatedBy", json!(by)),
                (
                    "CreatedSince",
                    json!(if a.human {
                        format!("{} ago", human_duration(now - created))
                    } else {
                        format_rfc3339(created)
                    }),
                ),
                ("ID", json!(id)),
                (
                    "Size",
                    json!(if a.human {
                        human_size(size as f64)
                    } else {
                        size.to_string()
                    }),
                ),
            ])
        })
        .collect();
    let format = if a.quiet {
        Some("{{.ID}}")
    } else {
        a.format.as_deref()
    };
    let f = ListFormat::parse(
        format,
        if a.human {
            "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        } else {
            "{{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        },
    )?;
    let titles = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    print(&f.render(&rows, &titles)?)
}

pub(crate) fn save(ctx: &mut Ctx, a: SaveArgs) -> Result<(), Error> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let mut q = Query::new();
    for i in &a.images {
        q = q.add("names", i.clone());
    }
    let resp = ctx.client.request(
        "GET",
        &format!("/images/get{}", q.render()),
        &[],
        Payload::None,
    )?;
    write_tar(resp.into_body(), a.output.as_deref())
}

/// A tar from the daemon to `output`, or to stdout (checked not to be a
/// terminal by the caller). A file is written next to the target and
/// renamed, so a failed transfer leaves no partial file.
pub(crate) fn write_tar(mut body: impl std::io::Read, output: Option<&str>) -> Result<(), Error> {
    match output {
        Some(path) => {
            let tmp = format!("{path}.berth-tmp");
            let io = |e: std::io::Error| Error::Usage(format!("writing {path}: {e}"));
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            let copied = std::io::copy(&mut body, &mut f).map_err(Error::Stream);
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)
        }
        None => {
            std::io::copy(&mut body, &mut std::io::stdout().lock()).map_err(Error::Stream)?;
            Ok(())
        }
    }
}

pub(crate) fn load(ctx: &mut Ctx, a: LoadArgs) -> Result<(), Error> {
    let mut input: Box<dyn std::io::Read> = match &a.input {
        Some(path) => Box::new(
            std::fs::File::open(path).map_err(|e| Error::Usage(format!("opening {path}: {e}")))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Error::Usage(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let q = Query::new().add("quiet", if a.quiet { "1" } else { "0" });
    let resp = ctx.client.request(
        "POST",
        &format!("/images/load{}", q.render()),
        &[],
        Payload::Tar(&mut *input),
    )?;
    progress::display(resp, &mut std::io::stdout().lock(), Mode::Plain)?;
    Ok(())
}

pub(crate) fn import(ctx: &mut Ctx, a: ImportArgs) -> Result<(), Error> {
    let (repo, tag) = match &a.reference {
        Some(r) => {
            let parsed = Reference::parse(r);
            (parsed.name.clone(), parsed.tag.clone().unwrap_or_default())
        }
        None => (String::new(), String::new()),
    };
    let from_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let mut q = Query::new()
        .add(
            "fromSrc",
            if from_url {
                a.source.clone()
            } else {
                "-".into()
            },
        )
        .add_if(!repo.is_empty(), "repo", repo)
        .add_if(!tag.is_empty(), "tag", tag)
        .add_if(
            a.message.is_some(),
            "message",
            a.message.clone().unwrap_or_default(),
        )
        .add_if(
            a.platform.is_some(),
            "platform",
            a.platform.clone().unwrap_or_default(),
        );
    for c in &a.change {
        q = q.add("changes", c.clone());
    }
    let path = format!("/images/create{}", q.render());
    let resp = if from_url {
        ctx.client.request("POST", &path, &[], Payload::None)?
    } else {
        let mut input: Box<dyn std::io::Read> = if a.source == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(
                std::fs::File::open(&a.source)
                    .map_err(|e| Error::Usage(format!("opening {}: {e}", a.source)))?,
            )
        };
        ctx.client
            .request("POST", &path, &[], Payload::Tar(&mut *input))?
    };
    progress::display(resp, &mut std::io::stdout().lock(), Mode::Plain)?;
    Ok(())
}

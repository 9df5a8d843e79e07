//! A container's files as a whole: `export` (the rootfs as a tar), `diff`
//! (what changed against the image), `commit` (those changes as a new
//! image). `cp` is in [`super::cp`].

use std::io::IsTerminal;

use crate::Ctx;
use crate::cli::{CommitArgs, ContainerArg, ExportArgs};
use crate::client::{Query, encode_path};
use crate::error::Error;

pub(crate) fn export(ctx: &mut Ctx, a: ExportArgs) -> Result<(), Error> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let resp = ctx.client.request(
        "GET",
        &format!("/containers/{}/export", encode_path(&a.container)),
        &[],
        crate::client::Payload::None,
    )?;
    super::image::write_tar(resp.into_body(), a.output.as_deref())
}

pub(crate) fn diff(ctx: &mut Ctx, a: ContainerArg) -> Result<(), Error> {
    let changes = ctx.client.get_json(&format!(
        "/containers/{}/changes",
        encode_path(&a.container)
    ))?;
    for change in changes.as_array().into_iter().flatten() {
        let kind = match change["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", change["Path"].as_str().unwrap_or_default());
    }
    Ok(())
}

/// `REPOSITORY[:TAG]` split as docker does: a tag follows the last `:`
/// that has no `/` after it.
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, ""),
    }
}

pub(crate) fn commit(ctx: &mut Ctx, a: CommitArgs) -> Result<(), Error> {
    let (repo, tag) = split_reference(a.reference.as_deref().unwrap_or(""));
    let mut q = Query::new()
        .add("container", a.container.clone())
        .add_if(!repo.is_empty(), "repo", repo)
        .add_if(!tag.is_empty(), "tag", tag)
        .add_if(
            a.message.is_some(),
            "comment",
            a.message.clone().unwrap_or_default(),
        )
        .add_if(
            a.author.is_some(),
            "author",
            a.author.clone().unwrap_or_default(),
        )
        .add("pause", if a.pause { "1" } else { "0" });
    for change in &a.change {
        q = q.add("changes", change.clone());
    }
    let resp = ctx.client.post_empty(&format!("/commit{}", q.render()))?;
    println!("{}", resp["Id"].as_str().unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_at_the_tag_colon_only() {
        assert_eq!(split_reference("img:v1"), ("img", "v1"));
        assert_eq!(split_reference("img"), ("img", ""));
        assert_eq!(
            split_reference("127.0.0.1:5000/img"),
            ("127.0.0.1:5000/img", "")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/img:2"),
            ("127.0.0.1:5000/img", "2")
        );
    }
}

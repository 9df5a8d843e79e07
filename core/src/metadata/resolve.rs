//! Name resolution and `rmi` planning over a [`State`] snapshot, following
//! Docker's rules (daemon/images/image.go and image_delete.go in moby).

use super::{MetadataError, Result, State};
use crate::digest::Digest;
use crate::image::Image;
use crate::reference::Reference;

/// One effect of [`MetadataStore::delete_image`](super::MetadataStore::delete_image),
/// in the order Docker reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// The reference was removed (`Untagged: busybox:latest`).
    Untagged(Reference),
    /// The image record was removed (`Deleted: sha256:...`).
    Deleted(Image),
}

/// How the user's input matched.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Match {
    /// Through this stored reference.
    Reference(Reference),
    /// Through the image ID, a prefix of it, or a digest.
    Id,
}

impl State {
    /// See [`MetadataStore::resolve`](super::MetadataStore::resolve).
    pub(super) fn resolve(&self, input: &str) -> Result<(&Image, Match)> {
        let not_found = || MetadataError::ImageNotFound(input.to_owned());
        if input.starts_with("sha256:") {
            if let Ok(d) = Digest::parse(input) {
                return self
                    .by_full_digest(&d)
                    .map(|i| (i, Match::Id))
                    .ok_or_else(not_found);
            }
        } else if let Ok(r) = Reference::parse(input) {
            if let Some(image) = self
                .refs
                .get(&r.to_string())
                .and_then(|(_, d)| self.images.get(d))
            {
                return Ok((image, Match::Reference(r)));
            }
            if let (Some(d), None) = (r.digest(), r.tag()) {
                // `name@digest` not stored as such (pulled by tag): accept it
                // when an image with that manifest or index carries the name.
                let name = r.name();
                let found = self.images.values().find(|i| {
                    (i.target.digest == *d || i.index == Some(*d))
                        && self
                            .refs_of(&i.target.digest)
                            .iter()
                            .any(|x| x.name() == name)
                });
                if let Some(image) = found {
                    return Ok((image, Match::Id));
                }
            }
        }
        let prefix = input.strip_prefix("sha256:").unwrap_or(input);
        let is_hex = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_hex {
            return Err(not_found());
        }
        let mut ids: Vec<Digest> = self
            .images
            .values()
            .map(|i| i.id())
            .filter(|id| id.hex().starts_with(prefix))
            .collect();
        ids.sort();
        ids.dedup();
        match ids.as_slice() {
            [] => Err(not_found()),
            [id] => self
                .by_full_digest(id)
                .map(|i| (i, Match::Id))
                .ok_or_else(not_found),
            _ => Err(MetadataError::Ambiguous {
                prefix: input.to_owned(),
                matches: ids,
            }),
        }
    }

    /// The image whose ID (config digest) is `d`, preferring one that has
    /// references when several manifests share a config; else the image
    /// whose manifest digest is `d`.
    fn by_full_digest(&self, d: &Digest) -> Option<&Image> {
        let mut with_id = self.images.values().filter(|i| i.id() == *d);
        let first = with_id.next();
        let tagged = first
            .into_iter()
            .chain(with_id)
            .find(|i| !self.refs_of(&i.target.digest).is_empty());
        tagged.or(first).or_else(|| self.images.get(d))
    }

    fn refs_of(&self, manifest: &Digest) -> Vec<&Reference> {
        self.refs
            .values()
            .filter(|(_, d)| d == manifest)
            .map(|(r, _)| r)
            .collect()
    }

    /// What `docker rmi input` removes; see
    /// [`MetadataStore::delete_image`](super::MetadataStore::delete_image).
    pub(super) fn plan_delete(&self, input: &str, force: bool) -> Result<Vec<Removed>> {
        let (image, matched) = self.resolve(input)?;
        let all_refs = self.refs_of(&image.target.digest);
        let mut out = Vec::new();
        match matched {
            Match::Reference(r) => {
                let mut remaining: Vec<&Reference> =
                    all_refs.into_iter().filter(|x| **x != r).collect();
                if r.digest().is_none() {
                    let name = r.name();
                    let other_tag = remaining
                        .iter()
                        .any(|x| x.digest().is_none() && x.name() == name);
                    if !other_tag {
                        // The repository's last tag: its digest references go too.
                        let (digests, rest): (Vec<&Reference>, Vec<&Reference>) = remaining
                            .into_iter()
                            .partition(|x| x.digest().is_some() && x.name() == name);
                        out.extend(digests.into_iter().map(|x| Removed::Untagged(x.clone())));
                        remaining = rest;
                    }
                }
                out.insert(0, Removed::Untagged(r));
                if remaining.is_empty() {
                    out.push(Removed::Deleted(image.clone()));
                }
            }
            Match::Id => {
                let first_name = all_refs.first().map(|r| r.name());
                let one_repository = all_refs.iter().all(|r| Some(r.name()) == first_name);
                if !force && !one_repository {
                    return Err(MetadataError::ReferencedInMultipleRepositories {
                        id: image.id().hex()[..12].to_owned(),
                        references: all_refs.iter().map(|r| r.familiar()).collect(),
                    });
                }
                out.extend(all_refs.into_iter().map(|r| Removed::Untagged(r.clone())));
                out.push(Removed::Deleted(image.clone()));
            }
        }
        Ok(out)
    }
}

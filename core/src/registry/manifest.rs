//! Manifest media types, parsing and platform selection.

use std::fmt;

use bytes::Bytes;
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::digest::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header for manifest requests: every type we can read.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// What kind of document a manifest media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Manifest,
    Index,
}

pub(crate) fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(Kind::Index),
        _ => None,
    }
}

/// An OS/architecture(/variant) to select from a multi-platform index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// Go-style architecture: `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// CPU variant (`v7`, `v8`), if any.
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Self::new("linux", "amd64", None)
    }
}

impl Platform {
    /// A platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `os/arch[/variant]`; `None` if it has fewer than two parts.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let arch = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next();
        if parts.next().is_some() {
            return None;
        }
        Some(Self::new(os, arch, variant))
    }

    /// The variant, with the defaults Docker assumes (`arm64` means `v8`).
    fn normalized_variant(arch: &str, variant: Option<&str>) -> Option<String> {
        match (arch, variant) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        }
    }

    /// True if an index entry with these fields serves this platform.
    pub(crate) fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != arch {
            return false;
        }
        match &self.variant {
            // No variant asked for: any variant of the architecture will do
            // except that arm64 means v8.
            None => {
                arch != "arm64" || Self::normalized_variant(arch, variant).as_deref() == Some("v8")
            }
            Some(_) => {
                Self::normalized_variant(arch, variant)
                    == Self::normalized_variant(&self.architecture, self.variant.as_deref())
            }
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The single-platform manifest a reference resolved to.
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    /// Digest of [`raw`](Self::raw): the manifest's identity.
    pub digest: Digest,
    /// Media type the registry served it as.
    pub media_type: String,
    /// The exact bytes, to store byte-for-byte.
    pub raw: Bytes,
    /// The parsed manifest (Docker schema 2 parses into the same shape).
    pub manifest: ImageManifest,
    /// The index (raw bytes, media type, digest) the manifest was chosen
    /// from, when the reference named a multi-platform image.
    pub index: Option<(Digest, String, Bytes)>,
}

/// Index entries as `(digest, "os/arch[/variant]")`, in order.
pub(crate) fn index_platforms(index: &ImageIndex) -> Vec<(Digest, Option<Platform>, String)> {
    index
        .manifests()
        .iter()
        .filter_map(|d| {
            let digest = Digest::parse(d.digest().as_ref()).ok()?;
            let platform = d.platform().as_ref().map(|p| {
                Platform::new(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            });
            Some((digest, platform, d.media_type().to_string()))
        })
        .collect()
}

/// Picks the entry of `index` for `wanted`: an exact variant match first,
/// then any entry [`Platform::matches`] accepts. `Err` carries the platforms
/// the index does offer, for the error message.
pub(crate) fn select_platform(
    index: &ImageIndex,
    wanted: &Platform,
) -> Result<(Digest, String), Vec<String>> {
    let entries = index_platforms(index);
    let exact = entries.iter().find(|(_, p, _)| {
        p.as_ref().is_some_and(|p| {
            p.os == wanted.os
                && p.architecture == wanted.architecture
                && p.variant == wanted.variant
        })
    });
    let chosen = exact.or_else(|| {
        entries.iter().find(|(_, p, _)| {
            p.as_ref()
                .is_some_and(|p| wanted.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
    });
    match chosen {
        Some((digest, _, media_type)) => Ok((*digest, media_type.clone())),
        None => Err(entries
            .iter()
            .map(|(_, p, _)| {
                p.as_ref()
                    .map_or_else(|| "unknown".to_owned(), Platform::to_string)
            })
            .collect()),
    }
}

/// The media type a manifest document declares in its `mediaType` field.
pub(crate) fn declared_media_type(json: &serde_json::Value) -> Option<&str> {
    json.get("mediaType").and_then(|m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, &str, Option<&str>)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    platform["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": Digest::of(&[i as u8]).to_string(),
                    "size": 1,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests
        }))
        .unwrap()
    }

    #[test]
    fn selects_by_os_arch_and_variant() {
        let idx = index(&[
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("linux", "amd64", None),
        ]);
        let pick = |p: &str| select_platform(&idx, &Platform::parse(p).unwrap()).map(|r| r.0);
        assert_eq!(pick("linux/amd64"), Ok(Digest::of(&[3])));
        assert_eq!(pick("linux/arm/v7"), Ok(Digest::of(&[1])));
        assert_eq!(pick("linux/arm64"), Ok(Digest::of(&[2])));
        let err = pick("windows/amd64").unwrap_err();
        assert_eq!(
            err,
            [
                "linux/arm/v6",
                "linux/arm/v7",
                "linux/arm64/v8",
                "linux/amd64"
            ]
        );
    }
}

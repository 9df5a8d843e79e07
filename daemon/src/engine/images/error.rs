//! The errors of image operations, with Docker's texts where clients
//! match on them (`No such image: busybox:latest`, the rmi conflicts).

use berth_core::{ArchiveError, ContentError, Digest, MetadataError, Reference, ReferenceError};

use berth_core::registry::RegistryError;
use berth_snapshotter::SnapshotError;
use berth_snapshotter::pull::PullError;

use crate::engine::ErrorKind;
use crate::engine::filters::FilterError;

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    /// Docker's text, with the familiar reference (`busybox:latest`).
    #[error("No such image: {0}")]
    NotFound(String),
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    #[error("cannot {action} a digest reference ({reference}): give a repository and tag")]
    DigestReference {
        action: &'static str,
        reference: String,
    },
    #[error("image id {0:?} is ambiguous: it matches several images; give more characters")]
    Ambiguous(String),
    #[error(
        "conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleRepositories { id: String },
    #[error(
        "conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}"
    )]
    InUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error("{0} is not a valid change command")]
    InvalidChange(String),
    #[error(
        "{0} is not supported by berthd's import yet (supported: CMD, ENTRYPOINT, ENV, LABEL, USER, WORKDIR)"
    )]
    ChangeNotSupported(String),
    #[error("{0} needs arguments of the form key=value")]
    ChangeArguments(String),
    /// moby's text for a missing tag or repository.
    #[error("{0}")]
    PullNotFound(String),
    #[error(transparent)]
    Pull(Box<PullError>),
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// The registry refused `docker login`'s credentials (dockerd's text).
    #[error("{0}")]
    LoginFailed(String),
    #[error("An image does not exist locally with the tag: {0}")]
    NoLocalTag(String),
    #[error(
        "importing from a URL is not supported ({0}); send the tarball as the request body with fromSrc=-"
    )]
    ImportFromUrl(String),
    #[error("invalid filter '{name}={value}'")]
    InvalidFilterValue { name: &'static str, value: String },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("image config {digest}: {reason}")]
    BadConfig { digest: Digest, reason: String },
    #[error(transparent)]
    Metadata(MetadataError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Archive(ArchiveError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("internal error: image {0} task failed: {1}")]
    Task(&'static str, String),
}

impl ImageError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) | ImageError::PullNotFound(_) | ImageError::NoLocalTag(_) => {
                ErrorKind::NotFound
            }
            ImageError::Pull(e) => e.kind().into(),
            ImageError::Registry(e) => e.kind().into(),
            // The API answers 401 for it.
            ImageError::LoginFailed(_) => ErrorKind::InvalidArgument,
            ImageError::InvalidReference(_)
            | ImageError::DigestReference { .. }
            | ImageError::Ambiguous(_)
            | ImageError::InvalidChange(_)
            | ImageError::ChangeArguments(_)
            | ImageError::InvalidFilterValue { .. }
            | ImageError::Filter(_) => ErrorKind::InvalidArgument,
            ImageError::MultipleRepositories { .. } | ImageError::InUse { .. } => {
                ErrorKind::Conflict
            }
            ImageError::ChangeNotSupported(_) | ImageError::ImportFromUrl(_) => {
                ErrorKind::NotImplemented
            }
            ImageError::BadConfig { .. } | ImageError::Task(..) => ErrorKind::Internal,
            ImageError::Metadata(e) => e.kind().into(),
            ImageError::Content(e) => e.kind().into(),
            ImageError::Archive(e) => e.kind().into(),
            ImageError::Snapshot(e) => e.kind().into(),
        }
    }
}

/// Docker's not-found text: a name gets its default tag, IDs stay as typed.
pub(super) fn no_such_image(input: &str) -> ImageError {
    let is_id = input.starts_with("sha256:")
        || input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit());
    match Reference::parse(input) {
        Ok(r) if !is_id => ImageError::NotFound(r.familiar()),
        _ => ImageError::NotFound(input.to_owned()),
    }
}

impl From<MetadataError> for ImageError {
    fn from(err: MetadataError) -> ImageError {
        match err {
            MetadataError::ImageNotFound(input) => no_such_image(&input),
            MetadataError::Ambiguous { prefix, .. } => ImageError::Ambiguous(prefix),
            MetadataError::ReferencedInMultipleRepositories { id, .. } => {
                ImageError::MultipleRepositories { id }
            }
            MetadataError::InvalidReference(e) => ImageError::InvalidReference(e),
            other => ImageError::Metadata(other),
        }
    }
}

impl From<ArchiveError> for ImageError {
    fn from(err: ArchiveError) -> ImageError {
        match err {
            ArchiveError::Metadata(e) => e.into(),
            other => ImageError::Archive(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_messages_use_familiar_names_with_tags() {
        assert_eq!(
            no_such_image("busybox").to_string(),
            "No such image: busybox:latest"
        );
        assert_eq!(
            no_such_image("docker.io/library/busybox:1").to_string(),
            "No such image: busybox:1"
        );
        let id = "sha256:".to_owned() + &"a".repeat(64);
        assert_eq!(
            no_such_image(&id).to_string(),
            format!("No such image: {id}")
        );
    }
}

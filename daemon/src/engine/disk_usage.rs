//! `GET /system/df`: what images and containers take on disk.

use std::collections::{HashMap, HashSet};

use berth_core::Digest;

use super::Engine;
use super::containers::Record;
use super::filters::Filters;
use super::images::{ImageDetails, ImageError};

/// An image with the bytes it shares with other images (blobs more than
/// one image references) and the number of containers made from it.
#[derive(Debug)]
pub(crate) struct ImageUsage {
    pub(crate) details: ImageDetails,
    pub(crate) shared_size: u64,
    pub(crate) containers: usize,
}

/// A container with the size of its writable layer
/// ([`Engine::container_disk_usage`]).
#[derive(Debug)]
pub(crate) struct ContainerUsage {
    pub(crate) record: Record,
    pub(crate) size_rw: u64,
}

impl Engine {
    /// Every image with its shared size and containers, and the bytes of
    /// all stored blobs of images, each counted once (`LayersSize`). Sizes
    /// are the stored (compressed) blobs, as `docker images` shows them.
    pub(crate) async fn image_disk_usage(&self) -> Result<(u64, Vec<ImageUsage>), ImageError> {
        let images = self.image_list(Filters::default()).await?;
        let blobs_of = |details: &ImageDetails| {
            let image = &details.image;
            let mut seen = HashSet::new();
            std::iter::once(&image.target)
                .chain(std::iter::once(&image.config))
                .chain(image.layers.iter().map(|l| &l.blob))
                .filter(|t| seen.insert(t.digest))
                .map(|t| (t.digest, t.size))
                .collect::<Vec<(Digest, u64)>>()
        };
        // blob -> (size, images using it)
        let mut blobs: HashMap<Digest, (u64, usize)> = HashMap::new();
        for details in &images {
            for (digest, size) in blobs_of(details) {
                blobs.entry(digest).or_insert((size, 0)).1 += 1;
            }
        }
        let layers_size = blobs.values().map(|(size, _)| size).sum();
        let usage = images
            .into_iter()
            .map(|details| {
                let shared_size = blobs_of(&details)
                    .into_iter()
                    .filter(|(digest, _)| blobs.get(digest).is_some_and(|(_, n)| *n > 1))
                    .map(|(_, size)| size)
                    .sum();
                let containers = self.containers_of_image(&details.image.id()).len();
                ImageUsage {
                    details,
                    shared_size,
                    containers,
                }
            })
            .collect();
        Ok((layers_size, usage))
    }
}

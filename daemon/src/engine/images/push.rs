//! `docker push`: the layers one by one (so each gets its line), then the
//! config and the manifest, as stored, so the pushed digest is the local one.

use berth_core::Credentials;
use tokio::sync::mpsc;

use super::pull::{PullLine, short_id};
use super::{ImageError, tag_reference};
use crate::engine::Engine;
use crate::engine::events::{Event, EventType};
use crate::log;

/// Lines buffered between the push and a slow client.
const LINES_IN_FLIGHT: usize = 64;

impl Engine {
    /// `POST /images/{name}/push?tag=`: checks the image exists, then
    /// pushes it in a task that streams its progress lines. The push runs
    /// to its end even if the client goes away.
    pub(crate) async fn image_push(
        &self,
        name: &str,
        tag: &str,
        credentials: Option<Credentials>,
    ) -> Result<mpsc::Receiver<PullLine>, ImageError> {
        let reference = tag_reference("push", name, tag)?;
        let image = {
            let (stores, reference) = (self.images.stores.clone(), reference.clone());
            tokio::task::spawn_blocking(move || stores.metadata.get_by_ref(&reference))
                .await
                .map_err(|e| ImageError::Task("push", e.to_string()))??
        };
        let Some(image) = image else {
            return Err(ImageError::NoLocalTag(reference.familiar_name()));
        };
        let client = self.registry_client(reference.domain(), credentials)?;
        let content = self.images.stores.content.clone();
        let bus = self.events.clone();
        let (tx, rx) = mpsc::channel(LINES_IN_FLIGHT);
        tokio::spawn(async move {
            // A client that went away stops reading; the push goes on.
            let send = |line: PullLine| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(line).await;
                }
            };
            send(PullLine::status(format!(
                "The push refers to repository [{}]",
                reference.name()
            )))
            .await;
            let layers: Vec<_> = image.layers.iter().rev().collect();
            for layer in &layers {
                send(PullLine::layer(&short_id(&layer.diff_id), "Preparing")).await;
            }
            let result = async {
                for layer in &layers {
                    let id = short_id(&layer.diff_id);
                    let digest = layer.blob.digest;
                    if client.blob_exists(&reference, &digest).await? {
                        send(PullLine::layer(&id, "Layer already exists")).await;
                        continue;
                    }
                    send(PullLine::Layer {
                        id: id.clone(),
                        status: "Pushing".to_owned(),
                        progress: Some((0, layer.blob.size)),
                    })
                    .await;
                    client
                        .push_blob_from_store(&content, &reference, &digest, None)
                        .await?;
                    send(PullLine::Layer {
                        id: id.clone(),
                        status: "Pushing".to_owned(),
                        progress: Some((layer.blob.size, layer.blob.size)),
                    })
                    .await;
                    send(PullLine::layer(&id, "Pushed")).await;
                }
                client
                    .push_image(&content, &image.target.digest, &reference, None)
                    .await
            }
            .await;
            match result {
                Ok(digest) => {
                    let tag = reference.tag().unwrap_or("latest").to_owned();
                    let size = image.target.size;
                    send(PullLine::status(format!(
                        "{tag}: digest: {digest} size: {size}"
                    )))
                    .await;
                    send(PullLine::PushResult {
                        tag,
                        digest: digest.to_string(),
                        size,
                    })
                    .await;
                    let mut attributes = std::collections::BTreeMap::new();
                    attributes.insert("name".to_owned(), reference.familiar_name());
                    bus.publish(Event::now(
                        EventType::Image,
                        "push",
                        reference.familiar(),
                        attributes,
                    ));
                }
                Err(e) => {
                    log::warning!("pushing {reference}: {e}");
                    send(PullLine::Error(e.to_string())).await;
                }
            }
        });
        Ok(rx)
    }
}

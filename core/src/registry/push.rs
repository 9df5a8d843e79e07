//! Pushing: blob existence checks, cross-repository mounts, monolithic
//! uploads streamed from memory or from the content store, manifests, and
//! whole images (blobs first, the manifest last, so a registry never holds
//! a manifest whose blobs are missing).

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use http::{Method, StatusCode};

use super::transport::{Body, error_excerpt, query_escape, resolve_location};
use super::{Access, RegistryClient, RegistryError, Result, manifest};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::reference::Reference;

impl RegistryClient {
    /// Whether `repository`'s repository has blob `digest` (HEAD).
    pub async fn blob_exists(&self, repository: &Reference, digest: &Digest) -> Result<bool> {
        let url = format!("{}/blobs/{digest}", self.repo_url(repository));
        let scopes = [Self::scope(repository, Access::Pull)];
        let response = self
            .request(
                repository,
                &scopes,
                Method::HEAD,
                &url,
                HeaderMap::new(),
                Body::Empty,
            )
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(RegistryError::Status {
                method: Method::HEAD,
                url,
                status,
                body: String::new(),
            }),
        }
    }

    /// Pushes blob `digest` with content `data` to `repository`'s
    /// repository, unless it is there already. With `mount_from` (another
    /// repository of the same registry), asks the registry to mount it from
    /// there first and uploads only if it cannot. Returns true if the blob
    /// was mounted.
    pub async fn push_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        data: Bytes,
        mount_from: Option<&str>,
    ) -> Result<bool> {
        self.push_blob_body(repository, digest, Body::Bytes(data), mount_from)
            .await
    }

    /// [`push_blob`](Self::push_blob) for a blob of the content store,
    /// streamed from its file.
    pub async fn push_blob_from_store(
        &self,
        store: &ContentStore,
        repository: &Reference,
        digest: &Digest,
        mount_from: Option<&str>,
    ) -> Result<bool> {
        let len = store.info(digest)?;
        let body = Body::File {
            path: store.blob_path(digest),
            len,
        };
        self.push_blob_body(repository, digest, body, mount_from)
            .await
    }

    async fn push_blob_body(
        &self,
        repository: &Reference,
        digest: &Digest,
        body: Body,
        mount_from: Option<&str>,
    ) -> Result<bool> {
        if self.blob_exists(repository, digest).await? {
            return Ok(false);
        }
        let base = self.repo_url(repository);
        let mut scopes = vec![Self::scope(repository, Access::Push)];
        let mount_from = mount_from.filter(|from| *from != repository.repository());
        let url = match mount_from {
            Some(from) => {
                scopes.push(format!("repository:{from}:pull"));
                format!(
                    "{base}/blobs/uploads/?mount={}&from={}",
                    query_escape(&digest.to_string()),
                    query_escape(from)
                )
            }
            None => format!("{base}/blobs/uploads/"),
        };
        let response = self
            .request(
                repository,
                &scopes,
                Method::POST,
                &url,
                HeaderMap::new(),
                Body::Empty,
            )
            .await?;
        match response.status() {
            StatusCode::CREATED if mount_from.is_some() => return Ok(true),
            StatusCode::ACCEPTED => {}
            status => {
                return Err(RegistryError::Status {
                    method: Method::POST,
                    body: error_excerpt(response, &url).await,
                    url,
                    status,
                });
            }
        }
        // 202: an upload session (also the answer to a mount the registry
        // could not do).
        let Some(location) = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(RegistryError::MissingHeader {
                method: Method::POST,
                url,
                header: "Location",
            });
        };
        let mut put_url = resolve_location(&url, location);
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(&query_escape(&digest.to_string()));
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let response = self
            .request(repository, &scopes, Method::PUT, &put_url, headers, body)
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(false),
            status => Err(RegistryError::Status {
                method: Method::PUT,
                body: error_excerpt(response, &put_url).await,
                url: put_url,
                status,
            }),
        }
    }

    /// Stores `data` (of `media_type`) as manifest `tag_or_digest` of
    /// `repository`'s repository; returns its digest.
    pub async fn put_manifest(
        &self,
        repository: &Reference,
        tag_or_digest: &str,
        media_type: &str,
        data: Bytes,
    ) -> Result<Digest> {
        let digest = Digest::of(&data);
        let url = format!("{}/manifests/{tag_or_digest}", self.repo_url(repository));
        let mut headers = HeaderMap::new();
        let content_type =
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::UnknownMediaType {
                reference: format!("{}:{tag_or_digest}", repository.name()),
                media_type: media_type.to_owned(),
            })?;
        headers.insert(CONTENT_TYPE, content_type);
        let scopes = [Self::scope(repository, Access::Push)];
        let response = self
            .request(
                repository,
                &scopes,
                Method::PUT,
                &url,
                headers,
                Body::Bytes(data),
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::Status {
                method: Method::PUT,
                body: error_excerpt(response, &url).await,
                url,
                status,
            });
        }
        let served = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        if let Some(served) = served {
            if served != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest pushed to {url}"),
                    expected: digest,
                    actual: served,
                });
            }
        }
        Ok(digest)
    }

    /// Pushes the image whose manifest (or index) `manifest` is in `store`
    /// to `target`: every blob it references, then the manifest, tagged
    /// with `target`'s tag (or stored by digest). Blobs are mounted from
    /// `mount_from` when it is a repository of the same registry. For an
    /// index, the platform manifests present in `store` are pushed first
    /// (by digest); absent ones are assumed to be in the registry already.
    pub async fn push_image(
        &self,
        store: &ContentStore,
        manifest: &Digest,
        target: &Reference,
        mount_from: Option<&Reference>,
    ) -> Result<Digest> {
        let from = mount_from
            .filter(|m| m.domain() == target.domain())
            .map(|m| m.repository().to_owned());
        let key = match target.tag() {
            Some(tag) => tag.to_owned(),
            None => manifest.to_string(),
        };
        self.push_manifest_tree(store, manifest, target, &key, from.as_deref())
            .await
    }

    async fn push_manifest_tree(
        &self,
        store: &ContentStore,
        digest: &Digest,
        target: &Reference,
        key: &str,
        mount_from: Option<&str>,
    ) -> Result<Digest> {
        let raw = Bytes::from(read_store_blob(store, digest).await?);
        let json: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| RegistryError::Push {
                digest: *digest,
                detail: format!("manifest is not JSON: {e}"),
            })?;
        let media_type = manifest::declared_media_type(&json)
            .map(str::to_owned)
            .or_else(|| {
                json.get("manifests")
                    .map(|_| manifest::OCI_INDEX.to_owned())
            })
            .unwrap_or_else(|| manifest::OCI_MANIFEST.to_owned());
        let descriptors = |field: &str| -> Result<Vec<Digest>> {
            let list: Vec<&serde_json::Value> = match json.get(field) {
                Some(serde_json::Value::Array(a)) => a.iter().collect(),
                Some(v @ serde_json::Value::Object(_)) => vec![v],
                _ => Vec::new(),
            };
            list.into_iter()
                .map(|d| {
                    d.get("digest")
                        .and_then(|v| v.as_str())
                        .and_then(|v| Digest::parse(v).ok())
                        .ok_or_else(|| RegistryError::Push {
                            digest: *digest,
                            detail: format!("a {field} entry has no valid digest"),
                        })
                })
                .collect()
        };
        match manifest::kind_of(&media_type) {
            Some(manifest::Kind::Index) => {
                for child in descriptors("manifests")? {
                    if store.exists(&child) {
                        let child_key = child.to_string();
                        Box::pin(
                            self.push_manifest_tree(store, &child, target, &child_key, mount_from),
                        )
                        .await?;
                    }
                }
            }
            Some(manifest::Kind::Manifest) => {
                let mut blobs = descriptors("layers")?;
                blobs.extend(descriptors("config")?);
                for blob in blobs {
                    self.push_blob_from_store(store, target, &blob, mount_from)
                        .await?;
                }
            }
            None => {
                return Err(RegistryError::Push {
                    digest: *digest,
                    detail: format!("unsupported manifest media type {media_type:?}"),
                });
            }
        }
        self.put_manifest(target, key, &media_type, raw).await
    }
}

async fn read_store_blob(store: &ContentStore, digest: &Digest) -> Result<Vec<u8>> {
    let path = store.blob_path(digest);
    if !store.exists(digest) {
        return Err(crate::content::ContentError::NotFound(*digest).into());
    }
    tokio::fs::read(&path)
        .await
        .map_err(|source| RegistryError::LocalIo {
            op: "reading",
            digest: *digest,
            source,
        })
}

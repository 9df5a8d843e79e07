//! Registry credentials in `~/.docker/config.json`, stored the way docker stores them
//! (`auths.<registry>.auth = base64("user:password")`), and the `X-Registry-Auth` header built
//! from them.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

/// docker.io credentials live under docker's historical index address.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

pub(crate) fn config_dir(flag: Option<&str>) -> PathBuf {
    if let Some(d) = flag {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

/// The `auths` key docker uses for a registry host.
pub(crate) fn registry_key(registry: &str) -> &str {
    key_for(registry)
}

fn key_for(registry: &str) -> &str {
    if registry == "docker.io" || registry == "index.docker.io" {
        DOCKER_HUB_KEY
    } else {
        registry
    }
}

/// base64url(JSON auth config) for `registry`, or `e30=` (`{}`) without stored credentials.
pub(crate) fn registry_auth_header(config_dir: &Path, registry: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE;
    let stored = std::fs::read(config_dir.join("config.json"))
        .ok()
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .and_then(|cfg| {
            cfg["auths"][key_for(registry)]["auth"]
                .as_str()
                .map(str::to_string)
        })
        .and_then(|auth| {
            base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok());
    match stored.as_deref().and_then(|s| s.split_once(':')) {
        Some((user, pass)) => engine.encode(
            json!({"username": user, "password": pass, "serveraddress": key_for(registry)})
                .to_string(),
        ),
        None => "e30=".to_string(),
    }
}

/// `X-Registry-Config` for builds: base64url JSON of every stored
/// registry's credentials, keyed by its `auths` address (as docker sends it).
pub(crate) fn registry_config_header(config_dir: &Path) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE;
    let auths = std::fs::read(config_dir.join("config.json"))
        .ok()
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .and_then(|cfg| cfg["auths"].as_object().cloned())
        .unwrap_or_default();
    let mut configs = serde_json::Map::new();
    for (address, entry) in auths {
        let decoded = entry["auth"]
            .as_str()
            .and_then(|auth| {
                base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok());
        if let Some((user, pass)) = decoded.as_deref().and_then(|s| s.split_once(':')) {
            configs.insert(
                address.clone(),
                json!({"username": user, "password": pass, "serveraddress": address}),
            );
        }
    }
    engine.encode(Value::Object(configs).to_string())
}

//! `--mount type=...,src=...,dst=...`: the docker CLI's CSV syntax (its
//! `opts.MountOpt`) turned into one `HostConfig.Mounts` entry. The type
//! defaults to `volume`; a flag such as `readonly` alone means true.

use serde_json::{Map, Value, json};

use crate::error::Error;

fn usage(text: String) -> Error {
    Error::Usage(format!("invalid argument for \"--mount\" flag: {text}"))
}

fn boolean(key: &str, value: Option<&str>) -> Result<bool, Error> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(usage(format!("invalid value for {key}: {other}"))),
    }
}

fn key_value(key: &str, value: Option<&str>) -> Result<(String, Value), Error> {
    let text = value.unwrap_or_default();
    match text.split_once('=') {
        Some((k, v)) => Ok((k.to_owned(), json!(v))),
        None => Err(usage(format!("invalid value for {key}: {text}"))),
    }
}

/// `1g`, `512m`, `64k`, plain bytes.
fn bytes(text: &str) -> Result<i64, Error> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, multiplier) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower, 1),
    };
    digits
        .parse::<i64>()
        .map(|n| n * multiplier)
        .map_err(|_| usage(format!("invalid size: {text}")))
}

/// One `--mount` value as the API's `Mount` object.
pub(crate) fn parse(spec: &str) -> Result<Value, Error> {
    let mut mount = Map::new();
    let mut bind = Map::new();
    let mut volume = Map::new();
    let mut tmpfs = Map::new();
    let mut labels = Map::new();
    let mut driver = Map::new();
    let mut driver_opts = Map::new();
    let mut kind = "volume".to_owned();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let text = || {
            value
                .map(str::to_owned)
                .ok_or_else(|| usage(format!("invalid field '{field}' must be a key=value pair")))
        };
        match key.as_str() {
            "type" => kind = text()?,
            "source" | "src" => {
                mount.insert("Source".into(), json!(text()?));
            }
            "target" | "dst" | "destination" => {
                mount.insert("Target".into(), json!(text()?));
            }
            "readonly" | "ro" => {
                mount.insert("ReadOnly".into(), json!(boolean(&key, value)?));
            }
            "consistency" => {
                mount.insert("Consistency".into(), json!(text()?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(text()?));
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), json!(boolean(&key, value)?));
            }
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(boolean(&key, value)?));
            }
            "volume-label" => {
                let (k, v) = key_value(&key, value)?;
                labels.insert(k, v);
            }
            "volume-driver" => {
                driver.insert("Name".into(), json!(text()?));
            }
            "volume-opt" => {
                let (k, v) = key_value(&key, value)?;
                driver_opts.insert(k, v);
            }
            "volume-subpath" => {
                volume.insert("Subpath".into(), json!(text()?));
            }
            "tmpfs-size" => {
                tmpfs.insert("SizeBytes".into(), json!(bytes(&text()?)?));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&text()?, 8)
                    .map_err(|_| usage(format!("invalid value for {key}: {field}")))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => return Err(usage(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if !labels.is_empty() {
        volume.insert("Labels".into(), Value::Object(labels));
    }
    if !driver_opts.is_empty() {
        driver.insert("Options".into(), Value::Object(driver_opts));
    }
    if !driver.is_empty() {
        volume.insert("DriverConfig".into(), Value::Object(driver));
    }
    mount.insert("Type".into(), json!(kind));
    for (name, options) in [
        ("BindOptions", bind),
        ("VolumeOptions", volume),
        ("TmpfsOptions", tmpfs),
    ] {
        if !options.is_empty() {
            mount.insert(name.into(), Value::Object(options));
        }
    }
    Ok(Value::Object(mount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_specs_become_api_mounts() {
        assert_eq!(
            parse("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave").unwrap(),
            json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true,
                   "BindOptions": {"Propagation": "rslave"}})
        );
        assert_eq!(
            parse("src=v,target=/v,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs").unwrap(),
            json!({"Type": "volume", "Source": "v", "Target": "/v",
                   "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"},
                                     "DriverConfig": {"Options": {"type": "tmpfs"}}}})
        );
        assert_eq!(
            parse("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            json!({"Type": "tmpfs", "Target": "/t",
                   "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1770}})
        );
        assert!(parse("type=bind,colour=red").is_err());
        assert!(parse("type=tmpfs,tmpfs-mode=9").is_err());
        assert!(parse("readonly=maybe").is_err());
    }
}

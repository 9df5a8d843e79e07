//! `docker import --change`: Dockerfile instructions applied to the
//! imported image's config (moby parses them with its Dockerfile parser and
//! accepts the commit/import subset).

use berth_core::ImportConfig;

use super::ImageError;

/// Instructions moby accepts on import that Berth's import cannot apply yet.
const NOT_YET: &[&str] = &["ONBUILD", "HEALTHCHECK"];

/// Applies every change (each may hold several lines) to `config`.
pub(crate) fn apply(config: &mut ImportConfig, changes: &[String]) -> Result<(), ImageError> {
    for line in changes.iter().flat_map(|c| c.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let instruction = word.to_ascii_uppercase();
        match instruction.as_str() {
            "CMD" => config.cmd = Some(command(rest)),
            "ENTRYPOINT" => config.entrypoint = Some(command(rest)),
            "WORKDIR" => config.working_dir = Some(rest.to_owned()),
            "USER" => config.user = Some(rest.to_owned()),
            "ENV" => {
                for (key, value) in pairs(&instruction, rest)? {
                    config
                        .env
                        .retain(|e| e.split('=').next() != Some(key.as_str()));
                    config.env.push(format!("{key}={value}"));
                }
            }
            "LABEL" => config.labels.extend(pairs(&instruction, rest)?),
            "EXPOSE" => {
                let ports = shell_words(rest);
                if ports.is_empty() {
                    return Err(ImageError::ChangeArguments(instruction));
                }
                for port in ports {
                    let port = if port.contains('/') {
                        port
                    } else {
                        format!("{port}/tcp")
                    };
                    if !config.exposed_ports.contains(&port) {
                        config.exposed_ports.push(port);
                    }
                }
            }
            "VOLUME" => {
                let paths = match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(list) if rest.starts_with('[') => list,
                    _ => shell_words(rest),
                };
                if paths.is_empty() {
                    return Err(ImageError::ChangeArguments(instruction));
                }
                for path in paths {
                    if !config.volumes.contains(&path) {
                        config.volumes.push(path);
                    }
                }
            }
            "STOPSIGNAL" if !rest.is_empty() => config.stop_signal = Some(rest.to_owned()),
            other if NOT_YET.contains(&other) => {
                return Err(ImageError::ChangeNotSupported(other.to_owned()));
            }
            _ => return Err(ImageError::InvalidChange(word.to_owned())),
        }
    }
    Ok(())
}

/// The exec form `["a","b"]` as is; the shell form runs under `/bin/sh -c`.
fn command(text: &str) -> Vec<String> {
    if text.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(text)
    {
        return list;
    }
    vec!["/bin/sh".to_owned(), "-c".to_owned(), text.to_owned()]
}

/// `ENV`/`LABEL` arguments: `k=v k2="v 2"`, or the legacy `KEY value words`.
fn pairs(instruction: &str, text: &str) -> Result<Vec<(String, String)>, ImageError> {
    let words = shell_words(text);
    let Some(first) = words.first() else {
        return Err(ImageError::ChangeArguments(instruction.to_owned()));
    };
    if !first.contains('=') {
        // Legacy form: the first word is the key, the rest (as typed) the value.
        let value = text[text.find(char::is_whitespace).unwrap_or(text.len())..].trim();
        return Ok(vec![(first.clone(), unquote(value))]);
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(ImageError::ChangeArguments(instruction.to_owned())),
        })
        .collect()
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn unquote(text: &str) -> String {
    let words = shell_words(text);
    if words.len() == 1 {
        words.into_iter().next().unwrap_or_default()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[&str]) -> Result<ImportConfig, ImageError> {
        let mut config = ImportConfig::default();
        apply(
            &mut config,
            &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(config)
    }

    #[test]
    fn docker_import_changes_set_the_config() {
        let config = changes(&[
            r#"CMD ["/bin/sh"]"#,
            "entrypoint /init --fast",
            "ENV A=1 B=\"two words\"",
            "ENV LEGACY some value",
            "ENV A=3",
            "WORKDIR /srv",
            "USER 1000:1000",
            "LABEL org.x=\"y z\" tier=web",
            r#"VOLUME ["/data"]"#,
            "VOLUME /logs /cache",
        ])
        .unwrap();
        assert_eq!(config.cmd, Some(vec!["/bin/sh".to_owned()]));
        assert_eq!(
            config.entrypoint,
            Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                "/init --fast".to_owned()
            ])
        );
        assert_eq!(config.env, ["B=two words", "LEGACY=some value", "A=3"]);
        assert_eq!(config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.labels["org.x"], "y z");
        assert_eq!(config.labels["tier"], "web");

        let config = changes(&[
            "EXPOSE 80 53/udp",
            "VOLUME [\"/data\", \"/logs\"]",
            "VOLUME /cache",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(config.exposed_ports, ["80/tcp", "53/udp"]);
        assert_eq!(config.volumes, ["/data", "/logs", "/cache"]);
        assert_eq!(config.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn unknown_and_unsupported_instructions_are_refused_by_name() {
        let err = changes(&["RUN echo hi"]).unwrap_err();
        assert_eq!(err.to_string(), "RUN is not a valid change command");
        let err = changes(&["HEALTHCHECK NONE"]).unwrap_err();
        assert!(err.to_string().contains("HEALTHCHECK"), "{err}");
        let err = changes(&["ENV"]).unwrap_err();
        assert!(err.to_string().contains("ENV"), "{err}");
    }
}

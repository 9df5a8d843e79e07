//! Docker image reference normalization (`busybox` → `docker.io/library/busybox:latest`) as the
//! CLI does before `POST /images/create` and `/images/{name}/tag`.

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reference {
    /// `docker.io/library/busybox`
    pub(crate) name: String,
    pub(crate) tag: Option<String>,
    pub(crate) digest: Option<String>,
}

impl Reference {
    pub(crate) fn parse(s: &str) -> Reference {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (s, None),
        };
        // a tag is after the last ':' that is not part of a registry host:port
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => {
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            _ => (rest, None),
        };
        Reference {
            name: normalize_name(name),
            tag,
            digest,
        }
    }

    /// The tag the daemon should pull: the digest, the tag, or `latest`.
    pub(crate) fn tag_or_digest(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".into())
    }

    /// `docker.io/library/busybox:latest`
    pub(crate) fn full(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.name),
            (None, t) => format!("{}:{}", self.name, t.as_deref().unwrap_or("latest")),
        }
    }

    /// The registry host (`docker.io`), for credentials lookup.
    pub(crate) fn registry(&self) -> &str {
        self.name.split('/').next().unwrap_or("docker.io")
    }
}

pub(crate) fn normalize_name(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

/// `docker.io/library/busybox:latest` → `busybox:latest` (docker's FamiliarString).
pub(crate) fn familiar(s: &str) -> String {
    let s = s.strip_prefix("docker.io/").unwrap_or(s);
    s.strip_prefix("library/")
        .filter(|r| !r.contains('/'))
        .unwrap_or(s)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let r = Reference::parse("busybox");
        assert_eq!(
            (r.full().as_str(), r.tag_or_digest().as_str()),
            ("docker.io/library/busybox:latest", "latest")
        );
        let r = Reference::parse("127.0.0.1:5000/a/b:v1");
        assert_eq!(
            (r.name.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000/a/b", Some("v1"))
        );
        assert_eq!(r.registry(), "127.0.0.1:5000");
        let r = Reference::parse("localhost:5000/x");
        assert_eq!(
            (r.name.as_str(), r.tag.as_deref()),
            ("localhost:5000/x", None)
        );
        assert_eq!(Reference::parse("me/app").name, "docker.io/me/app");
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/me/app:1"), "me/app:1");
    }
}

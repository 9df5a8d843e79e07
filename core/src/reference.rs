//! Image references (`busybox`, `ghcr.io/org/app:1.2@sha256:...`) parsed and
//! normalised the way Docker does it, following the grammar of the
//! `distribution/reference` Go library:
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path
//! domain         := host [ ":" port ]
//! host           := domain-name | "[" ipv6 "]"
//! domain-name    := component ( "." component )*      component: [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?
//! path           := path-component ( "/" path-component )*
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag            := [\w][\w.-]{0,127}
//! ```
//!
//! Normalisation: the first `/`-separated component is a domain when it
//! contains `.` or `:`, is `localhost`, or has uppercase letters; otherwise
//! the domain is `docker.io`. `index.docker.io` becomes `docker.io`, and a
//! single-component Docker Hub path gets the `library/` prefix. A reference
//! with neither tag nor digest gets the tag `latest`; one with both keeps
//! both.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::digest::{Digest, DigestError};
use crate::error::ErrorKind;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag given to a reference that names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest `domain/path`, as in distribution/reference.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a reference was rejected. Each variant carries the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input is empty.
    #[error("invalid reference format: empty reference")]
    Empty,
    /// The input is only 64 hex digits, which Docker reserves for image ids.
    #[error("invalid repository name {0:?}: cannot specify 64-byte hexadecimal strings")]
    HexOnly(String),
    /// No repository path (e.g. `:tag` or `@sha256:...` alone).
    #[error("invalid reference format: {0:?} has no repository name")]
    MissingRepository(String),
    /// The repository path has uppercase letters.
    #[error("invalid reference format: repository name {0:?} must be lowercase")]
    Uppercase(String),
    /// An empty path component (`a//b`, `a/`, `/a`).
    #[error("invalid reference format: empty path component in {0:?}")]
    EmptyComponent(String),
    /// A path component outside the grammar.
    #[error(
        "invalid reference format: path component {component:?} in {reference:?} must match [a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
    )]
    InvalidComponent {
        /// The whole input.
        reference: String,
        /// The bad component.
        component: String,
    },
    /// A domain outside the grammar.
    #[error("invalid reference format: invalid domain {domain:?} in {reference:?}")]
    InvalidDomain {
        /// The whole input.
        reference: String,
        /// The bad domain (host and port).
        domain: String,
    },
    /// A tag outside `[\w][\w.-]{0,127}`.
    #[error("invalid reference format: invalid tag {tag:?} in {reference:?}")]
    InvalidTag {
        /// The whole input.
        reference: String,
        /// The bad tag.
        tag: String,
    },
    /// `domain/path` longer than 255 characters.
    #[error(
        "invalid reference format: repository name {name:?} is {len} characters long (at most 255)"
    )]
    NameTooLong {
        /// The normalised name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// The part after `@` is not a valid digest.
    #[error("invalid reference format: {reference:?}: {source}")]
    InvalidDigest {
        /// The whole input.
        reference: String,
        /// Why the digest was rejected.
        source: DigestError,
    },
}

impl ReferenceError {
    /// Every reference error is a malformed argument.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A normalised image reference: domain, repository path, and a tag and/or
/// digest (at least one of them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as the Docker CLI accepts it and normalises it.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexOnly(s.to_owned()));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((name_tag, digest)) => {
                let digest =
                    Digest::parse(digest).map_err(|source| ReferenceError::InvalidDigest {
                        reference: s.to_owned(),
                        source,
                    })?;
                (name_tag, Some(digest))
            }
            None => (s, None),
        };

        let (domain, remainder) = split_domain(name_tag);
        let (path, tag) = match remainder.rsplit_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };
        if path.is_empty() {
            return Err(ReferenceError::MissingRepository(s.to_owned()));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path.to_owned()));
        }
        validate_path(s, path)?;
        if let Some(domain) = domain {
            validate_domain(s, domain)?;
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(ReferenceError::InvalidTag {
                    reference: s.to_owned(),
                    tag: tag.to_owned(),
                });
            }
        }

        let domain = match domain {
            None | Some(LEGACY_DEFAULT_DOMAIN) => DEFAULT_DOMAIN,
            Some(d) => d,
        };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        let name_len = domain.len() + 1 + path.len();
        if name_len > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                name: format!("{domain}/{path}"),
                len: name_len,
            });
        }
        let tag = match (tag, digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            domain: domain.to_owned(),
            path,
            tag,
            digest,
        })
    }

    /// The registry host, with port if any: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path without the domain: `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.path
    }

    /// The tag, if any (`latest` when the input named neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the input named one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as Docker prints it (the REPOSITORY column of
    /// `docker images`): `busybox`, `user/repo`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as Docker prints it: `busybox:latest`,
    /// `user/repo:tag`, `localhost:5000/x:tag`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        self.push_tag_digest(&mut out);
        out
    }

    /// True for registries Docker talks plain HTTP to without configuration:
    /// `localhost`, 127.0.0.0/8 and `::1`, with any port.
    pub fn is_insecure_by_default(&self) -> bool {
        let host = host_of(&self.domain);
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ip.is_loopback(),
            Ok(IpAddr::V6(ip)) => ip == Ipv6Addr::LOCALHOST,
            Err(_) => false,
        }
    }

    fn push_tag_digest(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_tag_digest(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Docker's `splitDockerDomain`: returns the domain when the first component
/// looks like one, and the rest.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn host_of(domain: &str) -> &str {
    if domain.starts_with('[') {
        return match domain.find(']') {
            Some(end) => &domain[..=end],
            None => domain,
        };
    }
    domain.split_once(':').map_or(domain, |(host, _)| host)
}

fn validate_domain(reference: &str, domain: &str) -> Result<(), ReferenceError> {
    let invalid = || ReferenceError::InvalidDomain {
        reference: reference.to_owned(),
        domain: domain.to_owned(),
    };
    let host = host_of(domain);
    let port = &domain[host.len()..];
    if let Some(port) = port.strip_prefix(':') {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
    } else if !port.is_empty() {
        return Err(invalid());
    }
    let ok = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(invalid)?;
        !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
    } else {
        !host.is_empty() && host.split('.').all(valid_domain_component)
    };
    if ok { Ok(()) } else { Err(invalid()) }
}

fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

fn validate_path(reference: &str, path: &str) -> Result<(), ReferenceError> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::EmptyComponent(reference.to_owned()));
        }
        if !valid_path_component(component) {
            return Err(ReferenceError::InvalidComponent {
                reference: reference.to_owned(),
                component: component.to_owned(),
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    /// input, normalised form, familiar form, domain, repository, tag
    #[test]
    fn normalises_like_docker() {
        let d = format!("sha256:{HEX}");
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            c("busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", Some("latest")),
            c("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "docker.io", "library/busybox", Some("1.36")),
            c("library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", Some("latest")),
            c("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", Some("latest")),
            c("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", Some("latest")),
            c("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", Some("latest")),
            c("user/repo", "docker.io/user/repo:latest", "user/repo:latest", "docker.io", "user/repo", Some("latest")),
            c("user/repo:tag", "docker.io/user/repo:tag", "user/repo:tag", "docker.io", "user/repo", Some("tag")),
            c("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest", "docker.io", "library/a/b", Some("latest")),
            c("localhost/x", "localhost/x:latest", "localhost/x:latest", "localhost", "x", Some("latest")),
            c("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest", "localhost:5000", "x", Some("latest")),
            c("localhost:5000/x:tag", "localhost:5000/x:tag", "localhost:5000/x:tag", "localhost:5000", "x", Some("tag")),
            c("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost", Some("5000")),
            c("127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b:tag", "127.0.0.1:5000", "a/b", Some("tag")),
            c("ghcr.io/org/app:v1.2.3-rc_1", "ghcr.io/org/app:v1.2.3-rc_1", "ghcr.io/org/app:v1.2.3-rc_1", "ghcr.io", "org/app", Some("v1.2.3-rc_1")),
            c("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest", "[::1]:5000", "x", Some("latest")),
            c("[2001:db8::1]/x", "[2001:db8::1]/x:latest", "[2001:db8::1]/x:latest", "[2001:db8::1]", "x", Some("latest")),
            c("Registry.Example.COM/x", "Registry.Example.COM/x:latest", "Registry.Example.COM/x:latest", "Registry.Example.COM", "x", Some("latest")),
            c("Foo/bar", "Foo/bar:latest", "Foo/bar:latest", "Foo", "bar", Some("latest")),
            c("my-registry.example.com:443/a.b/c__d/e---f", "my-registry.example.com:443/a.b/c__d/e---f:latest", "my-registry.example.com:443/a.b/c__d/e---f:latest", "my-registry.example.com:443", "a.b/c__d/e---f", Some("latest")),
            c(&format!("host.io/repo@{d}"), &format!("host.io/repo@{d}"), &format!("host.io/repo@{d}"), "host.io", "repo", None),
            c(&format!("busybox@{d}"), &format!("docker.io/library/busybox@{d}"), &format!("busybox@{d}"), "docker.io", "library/busybox", None),
            c(&format!("repo:tag@{d}"), &format!("docker.io/library/repo:tag@{d}"), &format!("repo:tag@{d}"), "docker.io", "library/repo", Some("tag")),
        ];
        for (input, full, familiar, domain, repo, tag) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(r.domain(), domain, "{input}");
            assert_eq!(r.repository(), repo, "{input}");
            assert_eq!(r.name(), format!("{domain}/{repo}"), "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().is_some(), input.contains('@'), "{input}");
            // The normalised and familiar forms parse back to the same thing.
            assert_eq!(Reference::parse(&full).unwrap(), r, "{full}");
            assert_eq!(familiar.parse::<Reference>().unwrap(), r, "{familiar}");
        }
    }

    type Case = (
        String,
        String,
        String,
        &'static str,
        &'static str,
        Option<&'static str>,
    );

    fn c(
        input: &str,
        full: &str,
        familiar: &str,
        domain: &'static str,
        repo: &'static str,
        tag: Option<&'static str>,
    ) -> Case {
        (
            input.into(),
            full.into(),
            familiar.into(),
            domain,
            repo,
            tag,
        )
    }

    #[test]
    fn rejects_bad_input() {
        let long_tag = "t".repeat(129);
        let ok_tag = "t".repeat(128);
        assert!(Reference::parse(&format!("busybox:{ok_tag}")).is_ok());
        let long_name = format!("a/{}", "b".repeat(250));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty reference"),
            (
                "UPPER".into(),
                "repository name \"UPPER\" must be lowercase",
            ),
            (
                "user/Repo".into(),
                "repository name \"user/Repo\" must be lowercase",
            ),
            (
                "localhost:5000/Repo:tag".into(),
                "\"Repo\" must be lowercase",
            ),
            ("a//b".into(), "empty path component in \"a//b\""),
            ("a/".into(), "empty path component"),
            ("/a".into(), "empty path component"),
            ("host.io/".into(), "has no repository name"),
            (":tag".into(), "\":tag\" has no repository name"),
            (format!("@sha256:{HEX}"), "has no repository name"),
            ("busybox:".into(), "invalid tag \"\""),
            (format!("busybox:{long_tag}"), "invalid tag"),
            ("busybox:.tag".into(), "invalid tag \".tag\""),
            ("busybox:-tag".into(), "invalid tag"),
            ("busybox:ta/g".into(), "invalid domain \"busybox:ta\""),
            ("busybox:t@g".into(), "invalid reference format"),
            ("busybox@sha256:abc".into(), "must be 64 characters, got 3"),
            (
                format!("busybox@sha256:{}", HEX.to_uppercase()),
                "must be lowercase",
            ),
            (format!("busybox@md5:{HEX}"), "unsupported digest algorithm"),
            ("busybox@".into(), "missing algorithm"),
            (HEX.into(), "cannot specify 64-byte hexadecimal strings"),
            ("a-/b".into(), "path component \"a-\""),
            ("-a".into(), "path component \"-a\""),
            ("a..b".into(), "path component \"a..b\""),
            ("a___b".into(), "path component \"a___b\""),
            ("a_-b".into(), "path component \"a_-b\""),
            ("a b".into(), "path component \"a b\""),
            ("_tag".into(), "path component \"_tag\""),
            ("ex-.com/a".into(), "invalid domain \"ex-.com\""),
            ("a..com/a".into(), "invalid domain"),
            ("host:port/a".into(), "invalid domain \"host:port\""),
            ("host:/a".into(), "invalid domain"),
            ("[::1/a".into(), "invalid domain"),
            ("[]:5000/a".into(), "invalid domain"),
            ("[zz::1]/a".into(), "invalid domain"),
            (long_name, "at most 255"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(&input).expect_err(&input);
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "{input:?}: {msg:?} should contain {want:?}"
            );
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn serde_as_normalised_string() {
        let r = Reference::parse("busybox").unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/busybox:latest\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<Reference>("\"user/repo:1\"")
                .unwrap()
                .familiar(),
            "user/repo:1"
        );
        assert!(serde_json::from_str::<Reference>("\"UPPER\"").is_err());
    }

    #[test]
    fn path_component_grammar() {
        for ok in [
            "a", "a1", "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "0", "a.b_c-d",
        ] {
            assert!(valid_path_component(ok), "{ok}");
        }
        for bad in ["", "A", "a.", ".a", "a._b", "a..b", "a___b", "a-_b", "é"] {
            assert!(!valid_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn insecure_by_default() {
        let cases = [
            ("localhost/x", true),
            ("localhost:5000/x", true),
            ("127.0.0.1:5000/x", true),
            ("127.1.2.3/x", true),
            ("[::1]:5000/x", true),
            ("[::1]/x", true),
            ("busybox", false),
            ("10.0.0.1:5000/x", false),
            ("[2001:db8::1]/x", false),
            ("ghcr.io/x", false),
            ("localhost.example.com/x", false),
        ];
        for (input, want) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.is_insecure_by_default(), want, "{input}");
        }
    }
}

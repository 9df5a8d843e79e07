//! The `filters` of `GET /images/json` and `POST /images/prune` (moby's
//! names and value rules).

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::ImageError;
use crate::engine::events::unix_nanos;
use crate::engine::filters::Filters;

/// The filters `GET /images/json` accepts (moby's list).
pub(super) const LIST_FILTERS: &[&str] = &[
    "before",
    "dangling",
    "label",
    "label!",
    "reference",
    "since",
    "until",
];
/// The filters `POST /images/prune` accepts.
pub(super) const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];
/// Shell-style glob (`*`, `?`, `[a-z]`), where `*` does not cross `/`
/// (Go's `path.Match`, which moby's `reference` filter uses).
pub(super) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // Returns (matched, length of the class in p) for p starting after '['.
        let mut i = 0;
        let negate = p.first() == Some(&'^') || p.first() == Some(&'!');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() && (first || p[i] != ']') {
            first = false;
            let lo = p[i];
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                matched |= lo <= c && c <= p[i + 2];
                i += 3;
            } else {
                matched |= lo == c;
                i += 1;
            }
        }
        (i < p.len()).then_some((matched != negate, i + 1))
    }
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len())
                .take_while(|&n| n == 0 || t[n - 1] != '/')
                .any(|n| go(&p[1..], &t[n..])),
            Some('?') => t.first().is_some_and(|&c| c != '/') && go(&p[1..], &t[1..]),
            Some('[') => match (t.first(), class(&p[1..], t.first().copied().unwrap_or('/'))) {
                (Some(&c), Some((true, len))) if c != '/' => go(&p[1 + len..], &t[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

/// `until`: Unix seconds (with fraction), RFC 3339, or a duration before now.
pub(super) fn parse_until(value: &str) -> Result<i64, ImageError> {
    let invalid = || ImageError::InvalidFilterValue {
        name: "until",
        value: value.to_owned(),
    };
    if let Ok(seconds) = value.parse::<f64>() {
        return Ok(seconds as i64);
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(value) {
        return Ok(unix_nanos(time).div_euclid(1_000_000_000));
    }
    let ago = humantime::parse_duration(value).map_err(|_| invalid())?;
    let time = SystemTime::now().checked_sub(ago).ok_or_else(invalid)?;
    Ok(unix_nanos(time).div_euclid(1_000_000_000))
}

pub(super) fn dangling_filter(filters: &Filters) -> Result<Option<bool>, ImageError> {
    let mut wanted = None;
    for value in filters.get("dangling") {
        let dangling = match value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(ImageError::InvalidFilterValue {
                    name: "dangling",
                    value: value.to_owned(),
                });
            }
        };
        wanted = Some(dangling);
    }
    Ok(wanted)
}

/// The `label` and `label!` filters on one image.
pub(super) fn labels_pass(filters: &Filters, labels: &BTreeMap<String, String>) -> bool {
    let excluded = filters
        .get("label!")
        .any(|wanted| match wanted.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
            None => labels.contains_key(wanted),
        });
    filters.labels_match("label", labels) && !excluded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_go_path_match() {
        assert!(glob_match("busybox", "busybox"));
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("compatprobe/*", "compatprobe/box"));
        assert!(!glob_match("*", "compatprobe/box"));
        assert!(glob_match("*/*:v?", "a/b:v1"));
        assert!(glob_match("b[a-u]sybox", "busybox"));
        assert!(!glob_match("b[!u]sybox", "busybox"));
        assert!(!glob_match("busybox", "busybox:latest"));
    }
}

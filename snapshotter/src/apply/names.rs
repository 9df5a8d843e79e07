//! Entry names (lexical cleaning, parent/name split) and PAX values.

use rustix::fs::Timespec;

/// Parses a PAX time, `[-]seconds[.fraction]`.
pub(super) fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let v = std::str::from_utf8(v).ok()?;
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let mut tv_nsec: i64 = 0;
    for (i, c) in frac.bytes().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        if i < 9 {
            tv_nsec = tv_nsec * 10 + i64::from(c - b'0');
        }
    }
    tv_nsec *= 10_i64.pow(9 - frac.len().min(9) as u32);
    if secs.starts_with('-') && tv_nsec != 0 {
        // -1.25 is 1.25 s before the epoch: -2 s + 0.75 s.
        return Some(Timespec {
            tv_sec: tv_sec - 1,
            tv_nsec: 1_000_000_000 - tv_nsec,
        });
    }
    Some(Timespec { tv_sec, tv_nsec })
}

/// Cleans a tar entry name into `out` (components joined by `/`, no `.`,
/// `..` applied lexically). Returns false if it is absolute or climbs above
/// the root.
pub(super) fn clean_path(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if raw.first() == Some(&b'/') {
        return false;
    }
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return false;
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    true
}

/// Splits a cleaned path into its parent (empty for the root) and name.
pub(super) fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &str) -> Option<String> {
        let mut out = Vec::new();
        clean_path(raw.as_bytes(), &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn clean_path_rules() {
        assert_eq!(clean("a/b/c").as_deref(), Some("a/b/c"));
        assert_eq!(clean("./a//b/./c/").as_deref(), Some("a/b/c"));
        assert_eq!(clean("a/../b").as_deref(), Some("b"));
        assert_eq!(clean("a/b/../../c").as_deref(), Some("c"));
        assert_eq!(clean("./").as_deref(), Some(""));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
        assert_eq!(clean("/etc/passwd"), None);
    }

    #[test]
    fn pax_time() {
        let t = |v: &str| parse_pax_time(v.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(t("1600000000"), Some((1_600_000_000, 0)));
        assert_eq!(t("1600000000.5"), Some((1_600_000_000, 500_000_000)));
        assert_eq!(t("1.123456789123"), Some((1, 123_456_789)));
        assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
    }

    #[test]
    fn split_parent_rules() {
        assert_eq!(split_parent(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_parent(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(split_parent(b""), (&b""[..], &b""[..]));
    }
}

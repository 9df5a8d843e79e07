//! The build context: the request body (a tar, maybe compressed) unpacked
//! into a private directory, `.dockerignore` applied, and source paths of
//! `COPY`/`ADD` resolved inside it.

use std::io::{self, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_snapshotter::apply::{ApplyOptions, apply_layer};
use berth_snapshotter::decompress::{Compression, decoder};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::BuildError;

/// Unpacks the context tar into `dir` with the snapshotter's applier
/// (entries resolved beneath `dir`, nothing created through a symlink).
pub(crate) fn unpack(body: impl io::Read + Send, dir: &Path) -> Result<(), BuildError> {
    let mut reader = BufReader::with_capacity(1 << 20, body);
    let compression = Compression::detect(&mut reader).map_err(|source| BuildError::Io {
        what: "reading the build context",
        path: String::new(),
        source,
    })?;
    let input = decoder(compression, reader).map_err(|source| BuildError::Io {
        what: "reading the build context",
        path: String::new(),
        source,
    })?;
    let opts = ApplyOptions {
        chown: true,
        xattrs: false,
        whiteouts: false,
        ..ApplyOptions::default()
    };
    apply_layer(input, dir, &opts)
        .map(drop)
        .map_err(|e| BuildError::Invalid(format!("reading the build context: {e}")))
}

/// `..` components that would climb above the context, lexically, as
/// moby refuses them.
pub(crate) fn escapes(path: &str) -> bool {
    let mut depth = 0i32;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Opens `path` beneath `root` (`..` and symlinks stay inside it, as
/// moby's `FollowSymlinkInScope`), with `flags`.
pub(crate) fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            relative,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN) if tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// One `.dockerignore` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    parts: Vec<String>,
    exclude: bool,
}

/// `.dockerignore` rules: the last matching pattern wins, `!` re-includes,
/// `**` matches any number of directories, a matching directory takes
/// what is beneath it along.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    pub(crate) fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (exclude, body) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let parts = body
                    .split('/')
                    .filter(|p| !p.is_empty() && *p != ".")
                    .map(str::to_owned)
                    .collect();
                Pattern { parts, exclude }
            })
            .filter(|p| !p.parts.is_empty())
            .collect();
        Ignore { patterns }
    }

    /// Whether `path` (relative, `/`-separated) is ignored.
    pub(crate) fn ignored(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut ignored = false;
        for pattern in &self.patterns {
            // The path or one of its parents matches.
            let hit = (1..=parts.len()).any(|n| matches(&pattern.parts, &parts[..n]));
            if hit {
                ignored = !pattern.exclude;
            }
        }
        ignored
    }

    /// Removes what is ignored from `dir`, never `keep` (the Dockerfile and
    /// `.dockerignore`, as moby keeps them). Symlinks are never followed.
    pub(crate) fn apply(&self, dir: &Path, keep: &[&str]) -> io::Result<()> {
        if self.patterns.is_empty() {
            return Ok(());
        }
        self.walk(dir, "", keep)
    }

    fn walk(&self, dir: &Path, prefix: &str, keep: &[&str]) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path: PathBuf = entry.path();
            let is_dir = entry.file_type()?.is_dir();
            if self.ignored(&relative) && !keep.contains(&relative.as_str()) {
                if is_dir {
                    // A re-included path beneath keeps the directory.
                    if self.patterns.iter().any(|p| p.exclude) {
                        self.walk(&path, &relative, keep)?;
                        let _ = std::fs::remove_dir(&path);
                    } else {
                        std::fs::remove_dir_all(&path)?;
                    }
                } else {
                    std::fs::remove_file(&path)?;
                }
            } else if is_dir {
                self.walk(&path, &relative, keep)?;
            }
        }
        Ok(())
    }
}

/// Pattern components against path components; `**` spans any number.
fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, tail)) => glob(first, name) && matches(rest, tail),
            None => false,
        },
    }
}

/// Go's `filepath.Match` on one component: `*`, `?`, `[a-z]`, `[^x]`, `\`.
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return false;
                };
                let Some(c) = n.first() else {
                    return false;
                };
                let (negate, class) = match p.get(1) {
                    Some('^') | Some('!') => (true, &p[2..end]),
                    _ => (false, &p[1..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

pub(crate) fn has_wildcards(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_above_the_context_are_caught() {
        assert!(escapes("../x"));
        assert!(escapes("a/../../x"));
        assert!(!escapes("a/../x"));
        assert!(!escapes("/abs/x"));
    }

    #[test]
    fn globs_match_like_go() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.txt.bak"));
        assert!(glob("file?", "file1"));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[^a-c]x", "bx"));
    }

    #[test]
    fn dockerignore_last_match_wins_and_covers_children() {
        let ignore = Ignore::parse("# c\n*.log\nbuild\n!keep.log\n**/tmp\n");
        assert!(ignore.ignored("a.log"));
        assert!(!ignore.ignored("keep.log"));
        assert!(ignore.ignored("build/x/y"));
        assert!(ignore.ignored("deep/er/tmp/file"));
        assert!(!ignore.ignored("src/main.rs"));
    }
}

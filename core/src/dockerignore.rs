//! `.dockerignore` rules and Go's `filepath.Match` globs, as moby applies
//! them to a build context: shared by berthd (which applies them to the
//! context it receives) and the CLI (which leaves ignored files out of
//! what it sends).

/// One `.dockerignore` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    parts: Vec<String>,
    exclude: bool,
}

/// `.dockerignore` rules: the last matching pattern wins, `!` re-includes,
/// `**` matches any number of directories, a matching directory takes
/// what is beneath it along.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses a `.dockerignore` file (comments and blank lines skipped).
    pub fn parse(text: &str) -> DockerIgnore {
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
        DockerIgnore { patterns }
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Some pattern re-includes (`!`): an ignored directory may still
    /// have something beneath it that is not.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclude)
    }

    /// Whether `path` (relative, `/`-separated) is ignored.
    pub fn ignored(&self, path: &str) -> bool {
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
pub fn glob(pattern: &str, name: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_go() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.txt.bak"));
        assert!(glob("file?", "file1"));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[^a-c]x", "bx"));
        assert!(glob("\\*", "*"));
    }

    #[test]
    fn last_match_wins_and_covers_children() {
        let ignore = DockerIgnore::parse("# c\n*.log\nbuild\n!keep.log\n**/tmp\n");
        assert!(ignore.ignored("a.log"));
        assert!(!ignore.ignored("keep.log"));
        assert!(ignore.ignored("build/x/y"));
        assert!(ignore.ignored("deep/er/tmp/file"));
        assert!(!ignore.ignored("src/main.rs"));
        assert!(ignore.has_exceptions());
        assert!(DockerIgnore::parse("# only\n\n").is_empty());
    }
}

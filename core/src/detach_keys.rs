//! Docker's detach keys: the `--detach-keys` / `detachKeys` syntax
//! (`ctrl-p,ctrl-q`, `ctrl-@`, single characters) and a matcher that finds
//! the sequence in an attached stdin stream, as moby's `term.EscapeProxy`.
//! Both the CLI (which stops at the keys on its side, as the docker CLI
//! does) and berthd (for clients that send them on) use it.

use std::fmt;

/// The sequence used when none is given: ctrl-p ctrl-q.
pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// `ctrl-@` is 0, `ctrl-a` 1 ... `ctrl-z` 26, then `ctrl-[` to `ctrl-_`:
/// moby's `term.ASCII` table, index = byte.
const CONTROL_NAMES: [&str; 32] = [
    "ctrl-@", "ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d", "ctrl-e", "ctrl-f", "ctrl-g", "ctrl-h",
    "ctrl-i", "ctrl-j", "ctrl-k", "ctrl-l", "ctrl-m", "ctrl-n", "ctrl-o", "ctrl-p", "ctrl-q",
    "ctrl-r", "ctrl-s", "ctrl-t", "ctrl-u", "ctrl-v", "ctrl-w", "ctrl-x", "ctrl-y", "ctrl-z",
    "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_",
];

/// A key in the list that is neither one character nor a known `ctrl-` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid detach keys ({keys}) provided: unknown key '{key}'")]
pub struct DetachKeysError {
    pub keys: String,
    pub key: String,
}

/// A parsed, non-empty detach sequence.
#[derive(Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl DetachKeys {
    /// Parses a comma-separated list (`ctrl-p,ctrl-q`, `ctrl-x,x`); an
    /// empty string means [`DEFAULT`], as the API treats it.
    pub fn parse(keys: &str) -> Result<DetachKeys, DetachKeysError> {
        let keys = if keys.is_empty() { DEFAULT } else { keys };
        let mut bytes = Vec::new();
        for key in keys.split(',') {
            let byte = match key.as_bytes() {
                [single] => Some(*single),
                _ => CONTROL_NAMES
                    .iter()
                    .position(|name| *name == key)
                    .map(|code| code as u8),
            };
            bytes.push(byte.ok_or_else(|| DetachKeysError {
                keys: keys.to_string(),
                key: key.to_string(),
            })?);
        }
        Ok(DetachKeys(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A matcher for one stdin stream.
    pub fn matcher(&self) -> DetachMatcher {
        DetachMatcher {
            keys: self.0.clone(),
            held: 0,
        }
    }
}

impl Default for DetachKeys {
    fn default() -> Self {
        DetachKeys::parse(DEFAULT).expect("the default detach keys parse")
    }
}

impl fmt::Debug for DetachKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DetachKeys({:?})", self.0)
    }
}

/// Finds the detach sequence in a byte stream. Bytes that might start it
/// are held back until the next byte shows whether they do; everything
/// else passes through unchanged.
#[derive(Debug, Clone)]
pub struct DetachMatcher {
    keys: Vec<u8>,
    /// How many of `keys` the last bytes seen matched.
    held: usize,
}

impl DetachMatcher {
    /// Appends to `out` the bytes of `input` to pass on; true once the
    /// whole sequence was seen (it and the bytes after it are not passed).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        input.iter().any(|&byte| self.feed_byte(byte, out))
    }

    fn feed_byte(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        if byte == self.keys[self.held] {
            self.held += 1;
            if self.held == self.keys.len() {
                self.held = 0;
                return true;
            }
            return false;
        }
        if self.held == 0 {
            out.push(byte);
            return false;
        }
        // Not the sequence after all: pass its first held byte on and look
        // again from the second (the sequence may overlap itself).
        let held = std::mem::take(&mut self.held);
        out.push(self.keys[0]);
        let replay: Vec<u8> = self.keys[1..held].iter().copied().chain([byte]).collect();
        self.feed(&replay, out)
    }

    /// The bytes held back as a possible start of the sequence, to pass on
    /// when the stream ends.
    pub fn held(&self) -> &[u8] {
        &self.keys[..self.held]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(keys: &str, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut m = DetachKeys::parse(keys).unwrap().matcher();
        let mut out = Vec::new();
        for chunk in chunks {
            if m.feed(chunk, &mut out) {
                return (out, true);
            }
        }
        out.extend_from_slice(m.held());
        (out, false)
    }

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(DetachKeys::parse("").unwrap().as_bytes(), &[16, 17]);
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap().as_bytes(),
            &[16, 17]
        );
        assert_eq!(
            DetachKeys::parse("ctrl-@,ctrl-_").unwrap().as_bytes(),
            &[0, 31]
        );
        assert_eq!(DetachKeys::parse("ctrl-\\").unwrap().as_bytes(), &[28]);
        assert_eq!(
            DetachKeys::parse("ctrl-x,x").unwrap().as_bytes(),
            &[24, b'x']
        );
        assert_eq!(DetachKeys::parse("a,b,c").unwrap().as_bytes(), b"abc");
    }

    #[test]
    fn rejects_unknown_keys_naming_them() {
        let err = DetachKeys::parse("ctrl-p,ctrl-qq").unwrap_err();
        assert_eq!(err.key, "ctrl-qq");
        assert_eq!(
            err.to_string(),
            "Invalid detach keys (ctrl-p,ctrl-qq) provided: unknown key 'ctrl-qq'"
        );
        assert_eq!(DetachKeys::parse("CTRL-P").unwrap_err().key, "CTRL-P");
        assert_eq!(DetachKeys::parse("a,").unwrap_err().key, "");
    }

    #[test]
    fn finds_the_sequence_in_one_chunk_or_split() {
        assert_eq!(run("", &[b"ls\r\x10\x11after"]), (b"ls\r".to_vec(), true));
        assert_eq!(run("", &[b"ls\x10", b"\x11"]), (b"ls".to_vec(), true));
        assert_eq!(run("", &[b"\x10", b"", b"\x11"]), (Vec::new(), true));
    }

    #[test]
    fn passes_a_partial_sequence_on() {
        // ctrl-p alone (shell history) reaches the process with what follows
        assert_eq!(run("", &[b"\x10", b"x"]), (b"\x10x".to_vec(), false));
        assert_eq!(run("", &[b"a\x10"]), (b"a\x10".to_vec(), false));
        assert_eq!(
            run("", &[b"\x11\x10\x10\x11"]),
            (b"\x11\x10".to_vec(), true)
        );
    }

    #[test]
    fn handles_sequences_that_overlap_themselves() {
        assert_eq!(run("a,a,b", &[b"aaab"]), (b"a".to_vec(), true));
        assert_eq!(run("a,b,a,c", &[b"ababac"]), (b"ab".to_vec(), true));
        assert_eq!(run("a,b,a,c", &[b"abax"]), (b"abax".to_vec(), false));
    }
}

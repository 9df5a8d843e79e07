//! Query-string parsing with moby's rules: booleans, integers, `filters`,
//! and the `seconds[.nanos]` timestamps of `since`/`until`.

use super::error::ApiError;
use crate::engine::filters::Filters;

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(key), form_decode(value))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated `key` (e.g. `t` on `/build`).
    #[allow(dead_code)] // used by image routes
    pub(crate) fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Moby's boolean rule: false iff absent or (trimmed, lowercased) one of
    /// "", "0", "no", "false", "none"; docker-py sends `True`/`False`.
    #[allow(dead_code)] // used by container and image routes
    pub(crate) fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|value| {
            let value = value.trim().to_ascii_lowercase();
            !matches!(value.as_str(), "" | "0" | "no" | "false" | "none")
        })
    }

    /// An integer, `None` when absent or empty.
    #[allow(dead_code)] // used by container and image routes
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {value:?} is not an integer"
                ))
            }),
        }
    }

    /// The `filters` argument in either dialect.
    pub(crate) fn filters(&self) -> Result<Filters, ApiError> {
        Ok(Filters::parse(self.get("filters").unwrap_or(""))?)
    }

    /// A `since`/`until` style timestamp as Unix nanoseconds.
    pub(crate) fn timestamp_nanos(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(None),
            Some(value) => parse_timestamp_nanos(value).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {value:?} is not a Unix timestamp (seconds[.nanoseconds])"
                ))
            }),
        }
    }
}

/// `1795838933` or `1795838933.000000123` (what the CLI sends; moby's
/// `timetypes.ParseTimestamps`) -> nanoseconds.
fn parse_timestamp_nanos(value: &str) -> Option<i64> {
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    let seconds: i64 = seconds.parse().ok()?;
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Pad or cut the fraction to nine digits.
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let nanos: i64 = digits.parse().ok()?;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn form_decode(text: &str) -> String {
    percent_decode(&text.replace('+', " "))
}

/// Decodes `%XX` escapes; invalid escapes stay as they are.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_moby_and_accept_python_reprs() {
        let q = Query::parse(Some(
            "a=1&b=0&c=False&d=True&e=&f=no&g=NONE&h=%20false%20&i=yes",
        ));
        let truthy: Vec<bool> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "missing"]
            .iter()
            .map(|k| q.bool(k))
            .collect();
        assert_eq!(
            truthy,
            [
                true, false, false, true, false, false, false, false, true, false
            ]
        );
    }

    #[test]
    fn ints_accept_minus_one_and_name_bad_values() {
        let q = Query::parse(Some("limit=-1&size=&n=abc"));
        assert_eq!(q.int("limit").unwrap(), Some(-1));
        assert_eq!(q.int("size").unwrap(), None);
        assert_eq!(q.int("missing").unwrap(), None);
        let err = q.int("n").unwrap_err();
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert!(err.message.contains("\"abc\""), "{}", err.message);
    }

    #[test]
    fn filters_decode_from_the_url_in_both_dialects() {
        let cli = Query::parse(Some("filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D"));
        let py = Query::parse(Some("filters=%7B%22name%22%3A+%5B%22web%22%5D%7D"));
        assert_eq!(cli.filters().unwrap(), py.filters().unwrap());
        assert_eq!(
            cli.filters().unwrap().get("name").collect::<Vec<_>>(),
            ["web"]
        );
        let bad = Query::parse(Some("filters=%7Bnope")).filters().unwrap_err();
        assert_eq!(bad.status, http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn timestamps_take_seconds_with_optional_nanos() {
        let q = Query::parse(Some("a=12&b=12.5&c=12.000000001&d=x&e=1.2.3"));
        assert_eq!(q.timestamp_nanos("a").unwrap(), Some(12_000_000_000));
        assert_eq!(q.timestamp_nanos("b").unwrap(), Some(12_500_000_000));
        assert_eq!(q.timestamp_nanos("c").unwrap(), Some(12_000_000_001));
        assert_eq!(q.timestamp_nanos("missing").unwrap(), None);
        assert!(q.timestamp_nanos("d").is_err());
        assert!(q.timestamp_nanos("e").is_err());
    }

    #[test]
    fn repeated_keys_and_escapes() {
        let q = Query::parse(Some("t=a%3A1&t=b&x=%zz"));
        assert_eq!(q.get_all("t").collect::<Vec<_>>(), ["a:1", "b"]);
        assert_eq!(q.get("x"), Some("%zz"));
    }
}

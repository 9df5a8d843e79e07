//! Docker's `filters` query argument: a JSON object mapping a filter name to
//! the accepted values, in either of the two dialects clients send:
//! the CLI's `{"name":{"web":true}}` and docker-py's `{"name":["web"]}`.

use std::collections::{BTreeMap, BTreeSet};

/// Parsed filters: name -> set of accepted values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error(
        "invalid filter: {text:?} is not a JSON object of filter names to value lists or maps: {source}"
    )]
    Malformed {
        text: String,
        source: serde_json::Error,
    },
    #[error("invalid filter '{0}'")]
    UnknownName(String),
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Values {
    Map(BTreeMap<String, serde_json::Value>),
    List(Vec<String>),
}

impl Filters {
    /// Parses the `filters` query value; empty text means no filters.
    pub(crate) fn parse(text: &str) -> Result<Filters, FilterError> {
        let mut filters = Filters::default();
        if text.trim().is_empty() {
            return Ok(filters);
        }
        let raw: BTreeMap<String, Values> =
            serde_json::from_str(text).map_err(|source| FilterError::Malformed {
                text: text.to_owned(),
                source,
            })?;
        for (name, values) in raw {
            // Moby keeps every key of the map dialect whatever its boolean says.
            let values: BTreeSet<String> = match values {
                Values::Map(map) => map.into_keys().collect(),
                Values::List(list) => list.into_iter().collect(),
            };
            filters.fields.entry(name).or_default().extend(values);
        }
        Ok(filters)
    }

    #[allow(dead_code)] // used by list routes
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Refuses filter names outside `accepted`, with moby's message.
    pub(crate) fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self
            .fields
            .keys()
            .find(|name| !accepted.contains(&name.as_str()))
        {
            Some(name) => Err(FilterError::UnknownName(name.clone())),
            None => Ok(()),
        }
    }

    /// The values given for `name` (empty when the filter is absent).
    pub(crate) fn get(&self, name: &str) -> impl Iterator<Item = &str> {
        self.fields
            .get(name)
            .into_iter()
            .flat_map(|values| values.iter().map(String::as_str))
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// True when `name` is absent or one of its values satisfies `pred`.
    pub(crate) fn any_or_absent(&self, name: &str, pred: impl Fn(&str) -> bool) -> bool {
        !self.contains(name) || self.get(name).any(pred)
    }

    /// Docker's `label` rule: every given `key` or `key=value` must be present
    /// in `labels` (all must match, unlike other filters where any may).
    pub(crate) fn labels_match(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(name).all(|wanted| match wanted.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
            None => labels.contains_key(wanted),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_parse_to_the_same_filters() {
        let cli =
            Filters::parse(r#"{"name":{"web":true,"db":true},"label":{"a=b":true}}"#).unwrap();
        let py = Filters::parse(r#"{"name":["web","db"],"label":["a=b"]}"#).unwrap();
        assert_eq!(cli, py);
        assert_eq!(cli.get("name").collect::<Vec<_>>(), ["db", "web"]);
        assert!(cli.contains("label"));
        assert!(!cli.contains("image"));
    }

    #[test]
    fn empty_text_is_no_filters_and_garbage_is_an_error() {
        assert!(Filters::parse("").unwrap().is_empty());
        assert!(Filters::parse("{}").unwrap().is_empty());
        for bad in [
            r#"["name"]"#,
            r#"{"name":"web"}"#,
            "{not json",
            r#"{"name":[1]}"#,
        ] {
            let err = Filters::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid filter"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn validate_names_the_unknown_filter() {
        let filters = Filters::parse(r#"{"name":["a"],"colour":["red"]}"#).unwrap();
        assert_eq!(
            filters
                .validate(&["name", "label"])
                .unwrap_err()
                .to_string(),
            "invalid filter 'colour'"
        );
        assert!(filters.validate(&["name", "colour"]).is_ok());
    }

    #[test]
    fn label_filters_need_every_label() {
        let filters = Filters::parse(r#"{"label":["app","tier=web"]}"#).unwrap();
        let mut labels = BTreeMap::new();
        labels.insert("app".to_owned(), "x".to_owned());
        assert!(!filters.labels_match("label", &labels));
        labels.insert("tier".to_owned(), "db".to_owned());
        assert!(!filters.labels_match("label", &labels));
        labels.insert("tier".to_owned(), "web".to_owned());
        assert!(filters.labels_match("label", &labels));
    }
}

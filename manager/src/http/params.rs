//! What a request says besides its body: query parameters (with repeatable `label`),
//! the version an update names (`If-Match` or `?version=`), and label selectors.
//! Unknown or repeated parameters are refused, naming them.

use super::error::HttpError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// The query parameters of a request, taken one by one; [`Params::finish`] refuses
/// whatever the handler did not take.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Params, HttpError> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

impl Params {
    /// The parameters of a query string (`a=1&label=k=v`).
    pub fn parse(query: &str) -> Params {
        Params {
            pairs: form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// Every value of `name` (a repeatable parameter).
    pub fn take_all(&mut self, name: &str) -> Vec<String> {
        let (taken, rest) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(k, _)| k == name);
        self.pairs = rest;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    /// The value of `name`, given at most once.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, HttpError> {
        let mut values = self.take_all(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            n => Err(HttpError::invalid(format!(
                "query parameter `{name}` is given {n} times; give it once"
            ))
            .with("parameter", name)),
        }
    }

    /// A boolean parameter (`true`/`false`, `1`/`0`; absent: false).
    pub fn flag(&mut self, name: &str) -> Result<bool, HttpError> {
        match self.take(name)?.as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(bad_value(name, other, "true or false")),
        }
    }

    /// A number parameter.
    pub fn number(&mut self, name: &str) -> Result<Option<u64>, HttpError> {
        self.take(name)?
            .map(|v| {
                v.parse()
                    .map_err(|_| bad_value(name, &v, "a non-negative integer"))
            })
            .transpose()
    }

    /// A parameter naming an enum variant by its wire name (`running`, `manager`, ...).
    pub fn variant<T: DeserializeOwned>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, HttpError> {
        self.take(name)?
            .map(|v| {
                serde_json::from_value(serde_json::Value::String(v.clone()))
                    .map_err(|_| bad_value(name, &v, expected))
            })
            .transpose()
    }

    /// Every value of a repeatable enum parameter.
    pub fn variants<T: DeserializeOwned>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Vec<T>, HttpError> {
        self.take_all(name)
            .into_iter()
            .map(|v| {
                serde_json::from_value(serde_json::Value::String(v.clone()))
                    .map_err(|_| bad_value(name, &v, expected))
            })
            .collect()
    }

    /// The label selectors (`label=k=v`, `label=k`).
    pub fn labels(&mut self) -> Result<Vec<LabelSelector>, HttpError> {
        self.take_all("label")
            .iter()
            .map(|s| LabelSelector::parse(s))
            .collect()
    }

    /// Refuse parameters nobody took.
    pub fn finish(self) -> Result<(), HttpError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => Err(
                HttpError::invalid(format!("unknown query parameter `{name}`"))
                    .with("parameter", name.clone()),
            ),
        }
    }
}

fn bad_value(name: &str, value: &str, expected: &str) -> HttpError {
    HttpError::invalid(format!(
        "query parameter `{name}` is `{value}`; expected {expected}"
    ))
    .with("parameter", name)
}

/// A label filter: `key=value` (the label has that value) or `key` (the label is set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSelector {
    pub key: String,
    pub value: Option<String>,
}

impl LabelSelector {
    /// Parse `key=value` or `key`.
    pub fn parse(text: &str) -> Result<LabelSelector, HttpError> {
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (text, None),
        };
        if key.is_empty() {
            return Err(HttpError::invalid(format!(
                "label filter `{text}` has no key; write `label=key=value` or `label=key`"
            ))
            .with("parameter", "label"));
        }
        Ok(LabelSelector {
            key: key.to_owned(),
            value,
        })
    }

    /// `true` when `labels` satisfy this selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match (&self.value, labels.get(&self.key)) {
            (Some(want), Some(have)) => want == have,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }
}

/// `true` when `labels` satisfy every selector.
pub fn matches_all(selectors: &[LabelSelector], labels: &BTreeMap<String, String>) -> bool {
    selectors.iter().all(|s| s.matches(labels))
}

/// The version a write names: the `If-Match` header (`"12"`, `W/"12"` or `12`) or
/// `?version=12`; both must agree when both are given.
pub fn expected_version(
    headers: &HeaderMap,
    params: &mut Params,
) -> Result<Option<u64>, HttpError> {
    let from_query = params.number("version")?;
    let from_header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            let bare = text.trim().trim_start_matches("W/").trim_matches('"');
            Some(bare.parse::<u64>().map_err(|_| {
                HttpError::invalid(format!(
                    "If-Match is `{text}`; expected the object's version, e.g. \"12\""
                ))
                .with("header", "if-match")
            })?)
        }
    };
    match (from_header, from_query) {
        (Some(h), Some(q)) if h != q => Err(HttpError::invalid(format!(
            "If-Match names version {h} but ?version= names {q}; name one version"
        ))),
        (h, q) => Ok(h.or(q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_labels_and_unknown_parameters() {
        let mut p = Params::parse("label=env=prod&label=tier&stale=true&x=1");
        let labels = p.labels().expect("labels");
        assert_eq!(labels.len(), 2);
        assert!(p.flag("stale").expect("flag"));
        let err = p.finish().expect_err("x is unknown");
        assert_eq!(err.0.details["parameter"], "x");

        let prod: BTreeMap<String, String> = [("env".to_owned(), "prod".to_owned())].into();
        assert!(labels[0].matches(&prod));
        assert!(!labels[1].matches(&prod));
        assert!(LabelSelector::parse("=v").is_err());
    }

    #[test]
    fn versions_from_header_or_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, "W/\"7\"".parse().expect("header"));
        let mut p = Params::parse("version=7");
        assert_eq!(expected_version(&headers, &mut p).ok(), Some(Some(7)));
        let mut p = Params::parse("version=8");
        assert!(expected_version(&headers, &mut p).is_err());
        let mut p = Params::parse("version=nine");
        assert!(expected_version(&HeaderMap::new(), &mut p).is_err());
    }
}

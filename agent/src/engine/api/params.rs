//! Query parameters: `?ref=a&ref=b&force=true`, read with errors that name the
//! parameter.

use super::error::{Failure, invalid};

/// The decoded query string of one request.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decode `query` (the part after `?`, if any).
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`; an error when it is missing or empty.
    pub fn require(&self, name: &str) -> Result<&str, Failure> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(invalid(format!("query parameter {name:?} is required"))),
        }
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag: absent is false; `1`, `true`, empty are true; `0`, `false` false.
    pub fn flag(&self, name: &str) -> Result<bool, Failure> {
        match self.get(name) {
            None => Ok(false),
            Some("" | "1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no") => Ok(false),
            Some(other) => Err(invalid(format!(
                "query parameter {name:?} must be true or false, not {other:?}"
            ))),
        }
    }
}

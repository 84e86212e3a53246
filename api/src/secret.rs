//! Secrets and configs as cluster objects: named values that services mount as files.
//!
//! A [`Secret`]'s value is kept by the managers sealed with the cluster's data key
//! ([`SealedValue`]); the API shows only its size and digest. A [`Config`]'s value is
//! not secret and is shown as it is (base64). Both reach a node only inside the
//! [`Assignments`](crate::session::Assignments) of a node running a task that uses them.

use crate::cluster::Meta;
use crate::is_default;
use serde::{Deserialize, Serialize};

/// The largest value of a secret or config (as Docker Swarm: 500 KiB).
pub const MAX_SIZE: usize = 500 * 1024;

/// A secret's value as the managers keep it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SealedValue {
    /// `hmac-sha256:<hex>` of the value under a key only the managers hold: equal
    /// values have equal digests within a cluster, and the digest tells nothing of
    /// the value to whoever lacks the key.
    pub digest: String,
    /// The value's length in bytes.
    pub size: u64,
    /// Base64 of the nonce, the AES-256-GCM ciphertext and its tag, useless without
    /// the managers' data key. Empty in every answer about a secret (get, list,
    /// events); a stack's spec carries it as the managers sealed it.
    #[serde(skip_serializing_if = "is_default")]
    pub ciphertext: String,
}

/// A secret: a value services mount read-only at `/run/secrets/<target>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Secret {
    /// The id is the secret's name on the cluster (`<stack>_<key>` for a stack's).
    pub meta: Meta,
    /// The id of the stack that declared it (empty: created on its own).
    #[serde(skip_serializing_if = "is_default")]
    pub stack: String,
    pub value: SealedValue,
}

impl Secret {
    /// The secret as the API shows it: without its ciphertext.
    pub fn redacted(mut self) -> Secret {
        self.value.ciphertext.clear();
        self
    }
}

/// A config: a value services mount read-only at their `target`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Config {
    /// The id is the config's name on the cluster (`<stack>_<key>` for a stack's).
    pub meta: Meta,
    /// The id of the stack that declared it (empty: created on its own).
    #[serde(skip_serializing_if = "is_default")]
    pub stack: String,
    /// `sha256:<hex>` of the value.
    pub digest: String,
    /// The value's length in bytes.
    pub size: u64,
    /// The value, base64.
    pub data: String,
}

/// A secret or config value delivered to a node (in its assignments only; kept in
/// memory, never written but to the task's tmpfs). Its `Debug` leaves the value out.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileData {
    /// The secret's or config's id.
    pub id: String,
    /// The value, base64.
    pub data: String,
}

impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileData")
            .field("id", &self.id)
            .field(
                "data",
                &format_args!("<{} base64 characters>", self.data.len()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_values_out() {
        let file = FileData {
            id: "shop_db".into(),
            data: "aHVudGVyMg==".into(),
        };
        let text = format!("{file:?}");
        assert!(
            text.contains("shop_db") && !text.contains("aHVudGVyMg"),
            "{text}"
        );
    }
}

//! Join tokens: `ORCH1-<CA digest>-<role>-<secret>`.
//!
//! - the CA digest is the SHA-256 of the cluster CA certificate (DER), 64 hex digits: a
//!   joining node pins the manager's CA by it before it sends anything;
//! - the role is `W` (worker) or `M` (manager);
//! - the secret is 32 random bytes in base32 (52 characters, lower case), one per role;
//!   rotating a role's secret invalidates every token of that role given out before.

use super::error::{CaError, TokenProblem};
use api::cluster::NodeRole;
use data_encoding::{BASE32_NOPAD, HEXLOWER, HEXLOWER_PERMISSIVE};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The prefix and version of every token.
const PREFIX: &str = "ORCH";
const VERSION: &str = "1";
const DIGEST_CHARS: usize = 64;
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 52;

/// The SHA-256 of a CA certificate (DER): how a token names its CA.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaDigest([u8; 32]);

impl CaDigest {
    /// The digest of a certificate's DER bytes.
    pub fn of(der: &[u8]) -> CaDigest {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        CaDigest(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 hex digits, as they appear in a token.
    pub fn to_hex(&self) -> String {
        HEXLOWER.encode(&self.0)
    }
}

/// `sha256:<64 hex digits>`, the form `openssl x509 -fingerprint -sha256` shows too.
impl fmt::Display for CaDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for CaDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A role's join secret: 32 random bytes. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret([u8; SECRET_BYTES]);

impl TokenSecret {
    /// A fresh secret from the system's random generator.
    pub fn generate() -> Result<TokenSecret, CaError> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; SECRET_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CaError::Random {
                what: "a join token secret",
            })?;
        Ok(TokenSecret(bytes))
    }

    /// A secret from given bytes (tests, or a caller with its own random source).
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> TokenSecret {
        TokenSecret(bytes)
    }

    /// Compares in constant time: how long it takes does not depend on where the
    /// secrets differ.
    pub fn matches(&self, other: &TokenSecret) -> bool {
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0
    }

    fn encode(&self) -> String {
        BASE32_NOPAD.encode(&self.0).to_ascii_lowercase()
    }

    fn decode(text: &str) -> Result<TokenSecret, TokenProblem> {
        if text.len() != SECRET_CHARS {
            return Err(TokenProblem::SecretLength {
                found: text.chars().count(),
                expected: SECRET_CHARS,
            });
        }
        let bytes = BASE32_NOPAD
            .decode(text.to_ascii_uppercase().as_bytes())
            .map_err(|_| TokenProblem::SecretEncoding)?;
        let bytes: [u8; SECRET_BYTES] =
            bytes.try_into().map_err(|_| TokenProblem::SecretEncoding)?;
        Ok(TokenSecret(bytes))
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// Stored as its base32 text.
impl Serialize for TokenSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for TokenSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TokenSecret, D::Error> {
        let text = String::deserialize(deserializer)?;
        TokenSecret::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// A join token: which CA to trust, which role to join as, and the role's secret.
/// `Display` gives the text to hand out; `FromStr` parses untrusted text.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The SHA-256 of the cluster CA certificate.
    pub ca: CaDigest,
    /// The role a node joins as.
    pub role: NodeRole,
    /// The role's secret at the time the token was made.
    pub secret: TokenSecret,
}

impl JoinToken {
    /// Parses token text (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<JoinToken, CaError> {
        parse(text.trim()).map_err(|problem| CaError::BadToken { problem })
    }
}

fn parse(text: &str) -> Result<JoinToken, TokenProblem> {
    let Some(rest) = text.strip_prefix(PREFIX) else {
        return Err(TokenProblem::NotAToken);
    };
    let parts: Vec<&str> = rest.split('-').collect();
    if parts[0] != VERSION {
        return Err(TokenProblem::Version {
            found: parts[0].chars().take(16).collect(),
        });
    }
    let [_, digest, role, secret] = parts[..] else {
        return Err(TokenProblem::Parts { found: parts.len() });
    };
    if digest.len() != DIGEST_CHARS {
        return Err(TokenProblem::DigestLength {
            found: digest.chars().count(),
        });
    }
    let digest = HEXLOWER_PERMISSIVE
        .decode(digest.as_bytes())
        .map_err(|_| TokenProblem::DigestEncoding)?;
    let ca = CaDigest(
        digest
            .try_into()
            .map_err(|_| TokenProblem::DigestEncoding)?,
    );
    let role = match role {
        "W" | "w" => NodeRole::Worker,
        "M" | "m" => NodeRole::Manager,
        other => {
            return Err(TokenProblem::Role {
                found: other.chars().take(16).collect(),
            });
        }
    };
    let secret = TokenSecret::decode(secret)?;
    Ok(JoinToken { ca, role, secret })
}

impl FromStr for JoinToken {
    type Err = CaError;

    fn from_str(text: &str) -> Result<JoinToken, CaError> {
        JoinToken::parse(text)
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            NodeRole::Worker => 'W',
            NodeRole::Manager => 'M',
        };
        write!(
            f,
            "{PREFIX}{VERSION}-{}-{role}-{}",
            self.ca.to_hex(),
            self.secret.encode()
        )
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca", &self.ca)
            .field("role", &self.role)
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token(role: NodeRole) -> JoinToken {
        JoinToken {
            ca: CaDigest::of(b"a CA certificate"),
            role,
            secret: TokenSecret::from_bytes([7; 32]),
        }
    }

    fn problem(text: &str) -> TokenProblem {
        match JoinToken::parse(text) {
            Err(CaError::BadToken { problem }) => problem,
            other => panic!("{text:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_both_roles() {
        for role in [NodeRole::Worker, NodeRole::Manager] {
            let token = token(role);
            let text = token.to_string();
            assert!(text.starts_with("ORCH1-"), "{text}");
            assert_eq!(text.len(), 6 + 64 + 3 + 52, "{text}");
            assert_eq!(JoinToken::parse(&text).ok(), Some(token.clone()));
            assert_eq!(JoinToken::parse(&format!("  {text}\n")).ok(), Some(token));
        }
    }

    #[test]
    fn says_what_is_wrong() {
        let good = token(NodeRole::Worker).to_string();
        let digest = CaDigest::of(b"a CA certificate").to_hex();
        let secret = &good[good.len() - 52..];
        let cases: Vec<(String, TokenProblem)> = vec![
            ("".into(), TokenProblem::NotAToken),
            ("SWMTKN-1-abc".into(), TokenProblem::NotAToken),
            (
                good.replacen("ORCH1", "ORCH2", 1),
                TokenProblem::Version { found: "2".into() },
            ),
            ("ORCH1-abc".into(), TokenProblem::Parts { found: 2 }),
            (format!("{good}-extra"), TokenProblem::Parts { found: 5 }),
            (
                format!("ORCH1-abcd-W-{secret}"),
                TokenProblem::DigestLength { found: 4 },
            ),
            (
                format!("ORCH1-{}-W-{secret}", "g".repeat(64)),
                TokenProblem::DigestEncoding,
            ),
            (
                format!("ORCH1-{digest}-X-{secret}"),
                TokenProblem::Role { found: "X".into() },
            ),
            (
                format!("ORCH1-{digest}-W-abc"),
                TokenProblem::SecretLength {
                    found: 3,
                    expected: 52,
                },
            ),
            (
                format!("ORCH1-{digest}-W-{}", "1".repeat(52)),
                TokenProblem::SecretEncoding,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(problem(&text), expected, "{text}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let message = JoinToken::parse("ORCH1-abc").unwrap_err().to_string();
        assert_eq!(
            message,
            "not a valid join token: it has 2 parts separated by '-', expected 4 \
             (ORCH1-<CA digest>-<W|M>-<secret>)"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = token(NodeRole::Manager);
        let debug = format!("{token:?}");
        assert!(!debug.contains(&token.secret.encode()), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }

    #[test]
    fn secrets_compare() {
        let a = TokenSecret::from_bytes([1; 32]);
        let mut other = [1; 32];
        assert!(a.matches(&TokenSecret::from_bytes(other)));
        other[31] = 2;
        assert!(!a.matches(&TokenSecret::from_bytes(other)));
    }

    #[test]
    fn secret_serializes_as_text() {
        let secret = TokenSecret::from_bytes([9; 32]);
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, format!("\"{}\"", secret.encode()));
        let back: TokenSecret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, secret);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = JoinToken::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_near_tokens(
            digest in "[0-9a-fA-Fg]{0,70}",
            role in "[WMX]{0,2}",
            secret in "[a-z2-7A-Z01=]{0,60}",
        ) {
            let _ = JoinToken::parse(&format!("ORCH1-{digest}-{role}-{secret}"));
        }

        #[test]
        fn any_token_round_trips(ca in any::<[u8; 32]>(), secret in any::<[u8; 32]>(), manager in any::<bool>()) {
            let role = if manager { NodeRole::Manager } else { NodeRole::Worker };
            let token = JoinToken { ca: CaDigest(ca), role, secret: TokenSecret::from_bytes(secret) };
            prop_assert_eq!(JoinToken::parse(&token.to_string()).ok(), Some(token));
        }
    }
}

//! The cluster's data key: what seals secret values before they enter the raft log.
//!
//! `orch manager init` makes 32 random bytes; each manager keeps them in its data
//! directory (`node/data.key`, mode 0600) and hands them to a joining manager in the
//! join answer, over the TLS connection that the join token's CA fingerprint pins.
//! Workers never get the key: a node receives the values its tasks use, opened by the
//! leader, over its session's mutual TLS.
//!
//! From the key, HKDF-SHA256 derives an AES-256-GCM key (sealing) and an HMAC-SHA256
//! key (digests). A value is sealed with a fresh random 96-bit nonce, and with the
//! secret's id as associated data, so a ciphertext moved to another secret is refused.
//!
//! What this protects against: a copy of the raft log, the state machine or a raft
//! snapshot (the files under `raft/`, a backup of them, a disk thrown away, raft traffic
//! recorded) without the data directory's `node/data.key` reveals no secret value,
//! and a changed ciphertext is refused rather than delivered. The API, the event
//! stream and `orch secret inspect` show a secret's size and keyed digest only.
//!
//! What it does not protect against: someone who can read a manager's data directory
//! whole (key and log side by side) or who is root on a manager; a compromised leader
//! (it opens values to deliver them); root on a node running a task that uses a
//! secret (the value is in that task's tmpfs); holders of an API token, who can run
//! a task that prints a secret. The key is not rotated.

use api::secret::SealedValue;
use data_encoding::{BASE64, HEXLOWER};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

/// The length of the data key in bytes.
pub const KEY_LEN: usize = 32;

/// What can go wrong sealing or opening a value.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the data key must be {KEY_LEN} bytes, not {0}")]
    KeyLength(usize),
    #[error("the data key is not base64")]
    KeyEncoding,
    #[error("no randomness for {0}")]
    Random(&'static str),
    #[error("seal the value of secret {0}")]
    Seal(String),
    /// The ciphertext was changed, belongs to another secret, or was sealed under
    /// another cluster's key.
    #[error(
        "open the value of secret {0}: the ciphertext is not one this cluster's data key sealed for it"
    )]
    Open(String),
}

/// The data key and the keys derived from it.
pub struct Keyring {
    raw: [u8; KEY_LEN],
    aead: LessSafeKey,
    mac: hmac::Key,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// A new random data key.
    pub fn generate() -> Result<Keyring, KeyringError> {
        let mut raw = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| KeyringError::Random("the data key"))?;
        Keyring::from_bytes(&raw)
    }

    /// The keyring of data key `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring, KeyringError> {
        let raw: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| KeyringError::KeyLength(bytes.len()))?;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"orch data key").extract(&raw);
        let expand = |info: &'static [u8]| [info];
        let aead_info = expand(b"orch secret seal v1");
        let mac_info = expand(b"orch secret digest v1");
        let aead = prk
            .expand(&aead_info, &AES_256_GCM)
            .map_err(|_| KeyringError::KeyLength(KEY_LEN))?;
        let mac = prk
            .expand(&mac_info, hmac::HMAC_SHA256)
            .map_err(|_| KeyringError::KeyLength(KEY_LEN))?;
        Ok(Keyring {
            raw,
            aead: LessSafeKey::new(UnboundKey::from(aead)),
            mac: hmac::Key::from(mac),
        })
    }

    /// The data key as base64 (what the join answer carries to a new manager).
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.raw)
    }

    /// The keyring of a data key given as base64.
    pub fn from_base64(text: &str) -> Result<Keyring, KeyringError> {
        let bytes = BASE64
            .decode(text.trim().as_bytes())
            .map_err(|_| KeyringError::KeyEncoding)?;
        Keyring::from_bytes(&bytes)
    }

    /// The raw data key (what the data directory keeps).
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub fn digest(&self, value: &[u8]) -> String {
        let tag = hmac::sign(&self.mac, value);
        format!("hmac-sha256:{}", HEXLOWER.encode(tag.as_ref()))
    }

    /// `value` sealed for secret `id`.
    pub fn seal(&self, id: &str, value: &[u8]) -> Result<SealedValue, KeyringError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyringError::Random("a nonce"))?;
        let mut sealed = value.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| KeyringError::Seal(id.to_owned()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(SealedValue {
            digest: self.digest(value),
            size: value.len() as u64,
            ciphertext: BASE64.encode(&out),
        })
    }

    /// The value of secret `id` out of `sealed`; refused when the ciphertext was
    /// changed, sealed for another secret or under another key.
    pub fn open(&self, id: &str, sealed: &SealedValue) -> Result<Vec<u8>, KeyringError> {
        let refused = || KeyringError::Open(id.to_owned());
        let bytes = BASE64
            .decode(sealed.ciphertext.as_bytes())
            .map_err(|_| refused())?;
        if bytes.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut rest = rest.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut rest)
            .map_err(|_| refused())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_to_itself_and_hides_it() {
        let keyring = Keyring::generate().unwrap();
        let sealed = keyring.seal("shop_db", b"hunter2").unwrap();
        assert_eq!(sealed.size, 7);
        assert!(!sealed.ciphertext.contains("hunter2"));
        let raw = BASE64.decode(sealed.ciphertext.as_bytes()).unwrap();
        assert!(!raw.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(keyring.open("shop_db", &sealed).unwrap(), b"hunter2");
        // The same value under a new nonce: another ciphertext, the same digest.
        let again = keyring.seal("shop_db", b"hunter2").unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
        assert_eq!(again.digest, sealed.digest);
        // A keyring made from the same key (a joined manager) opens it too.
        let joined = Keyring::from_base64(&keyring.to_base64()).unwrap();
        assert_eq!(joined.open("shop_db", &sealed).unwrap(), b"hunter2");
    }

    #[test]
    fn a_tampered_moved_or_foreign_ciphertext_is_refused() {
        let keyring = Keyring::generate().unwrap();
        let sealed = keyring.seal("shop_db", b"hunter2").unwrap();
        let mut raw = BASE64.decode(sealed.ciphertext.as_bytes()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = SealedValue {
            ciphertext: BASE64.encode(&raw),
            ..sealed.clone()
        };
        assert!(matches!(
            keyring.open("shop_db", &tampered),
            Err(KeyringError::Open(id)) if id == "shop_db"
        ));
        assert!(keyring.open("shop_other", &sealed).is_err(), "moved");
        let other = Keyring::generate().unwrap();
        assert!(other.open("shop_db", &sealed).is_err(), "foreign key");
        let short = SealedValue {
            ciphertext: BASE64.encode(b"abc"),
            ..sealed
        };
        assert!(keyring.open("shop_db", &short).is_err());
        assert!(matches!(
            Keyring::from_bytes(&[0; 16]),
            Err(KeyringError::KeyLength(16))
        ));
    }
}

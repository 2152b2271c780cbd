//! Platform API keys: `mck_<prefix>_<secret>`. The prefix finds the stored row; only a SHA-256 of
//! the whole key is stored. The operator issues keys for the tenant admin and the platform checks
//! them, so both use this module.

use rand::RngCore;
use sha2::{Digest, Sha256};

const SCHEME: &str = "mck";
const PREFIX_BYTES: usize = 6;
const SECRET_BYTES: usize = 16;

/// A freshly generated key: the plaintext (shown once) and what is stored.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub plaintext: String,
    pub prefix: String,
    pub hash: String,
}

/// A new random key: 48 bits of lookup prefix and 128 bits of secret.
pub fn generate() -> IssuedKey {
    let mut rng = rand::rng();
    let mut prefix = [0u8; PREFIX_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut prefix);
    rng.fill_bytes(&mut secret);
    let prefix = hex::encode(prefix);
    let plaintext = format!("{SCHEME}_{prefix}_{}", hex::encode(secret));
    let hash = hash(&plaintext);
    IssuedKey {
        plaintext,
        prefix,
        hash,
    }
}

/// The lookup prefix of a presented key, if it has the right shape.
pub fn prefix_of(presented: &str) -> Option<&str> {
    let mut parts = presented.splitn(3, '_');
    let (scheme, prefix, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = scheme == SCHEME
        && prefix.len() == PREFIX_BYTES * 2
        && secret.len() == SECRET_BYTES * 2
        && prefix
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(prefix)
}

/// Hex SHA-256 of the whole key, as stored. Keys carry 128 random bits, so a fast hash is enough.
pub fn hash(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate();
        assert_eq!(prefix_of(&key.plaintext), Some(key.prefix.as_str()));
        assert_eq!(key.plaintext.len(), 3 + 1 + 12 + 1 + 32);
        assert_eq!(key.hash, hash(&key.plaintext));
        assert_eq!(key.hash.len(), 64);
        assert_ne!(key.plaintext, generate().plaintext);
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        assert_eq!(prefix_of(""), None);
        assert_eq!(prefix_of("mck_abc_def"), None);
        assert_eq!(
            prefix_of("xyz_0123456789ab_0123456789abcdef0123456789abcdef"),
            None
        );
        assert_eq!(
            prefix_of("mck_0123456789ab_0123456789abcdef0123456789abcdeg"),
            None
        );
        assert!(prefix_of("mck_0123456789ab_0123456789abcdef0123456789abcdef").is_some());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! API keys: `mck_<prefix>_<secret>`. The prefix finds the row; only a SHA-256 of the whole key
//! is stored, and it is compared in constant time. Keys carry 128 random bits, so a fast hash
//! is enough (a slow password hash would only slow every request).

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

// The format and the hash are shared with the operator, which issues tenant-admin keys.
pub use memoryc_crds::api_key::{IssuedKey, generate, hash, prefix_of};

/// Whether a presented key matches the stored hash and is usable at `now`.
pub fn verify(
    presented: &str,
    stored_hash: &str,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let matches: bool = hash(presented)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into();
    matches && revoked_at.is_none() && expires_at.is_none_or(|t| t > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_verify_and_others_do_not() {
        let key = generate();
        let now = Utc::now();
        assert_eq!(prefix_of(&key.plaintext), Some(key.prefix.as_str()));
        assert!(verify(&key.plaintext, &key.hash, None, None, now));
        let other = generate();
        assert!(!verify(&other.plaintext, &key.hash, None, None, now));
        assert_ne!(key.plaintext, other.plaintext);
    }

    #[test]
    fn expired_and_revoked_keys_are_refused() {
        let key = generate();
        let now = Utc::now();
        let past = now - chrono::Duration::seconds(1);
        assert!(!verify(&key.plaintext, &key.hash, Some(past), None, now));
        assert!(!verify(&key.plaintext, &key.hash, None, Some(past), now));
        assert!(verify(
            &key.plaintext,
            &key.hash,
            Some(now + chrono::Duration::hours(1)),
            None,
            now
        ));
    }
}

//! Passwords, for the appliance's local users and the cloud's accounts alike: argon2id PHC strings,
//! checks run off the async threads and at most one per core at a time (each holds ~19 MiB), a
//! check against a dummy hash when there is no account (so an unknown name takes as long as a wrong
//! password), and a short memory of successful checks, because IPP clients send Basic credentials
//! with every request.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use blake2::Digest as _;

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// Hashes `password` with a fresh random salt into an argon2id PHC string. CPU-heavy: call it off
/// the async threads.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (its own parameters apply); a malformed string
/// never matches. Slow by design: call it off the async threads.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A PHC string of a random password nobody knows.
pub fn dummy_phc() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 24];
        let _ = getrandom::fill(&mut pw);
        let pw: String = pw.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&pw).unwrap_or_default()
    })
}

/// Password checks with a memory of recent successes. Entries are keyed by a BLAKE2 digest, under
/// a random key made at start, of (PHC string, password): nothing kept helps offline guessing, and
/// a changed password (a new PHC string) simply misses. Only an optimisation: nothing depends on
/// it, and several processes (cloud instances) each keep their own.
pub struct PasswordChecks {
    key: [u8; 32],
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
    slots: tokio::sync::Semaphore,
    ttl: Duration,
    max_remembered: usize,
}

impl PasswordChecks {
    /// Remembers up to `max_remembered` successful checks for `ttl` each.
    pub fn new(ttl: Duration, max_remembered: usize) -> PasswordChecks {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without randomness the key is merely predictable: still only digests are kept.
            tracing::warn!("no system randomness for the password-check cache key");
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        PasswordChecks {
            key,
            remembered: Mutex::new(HashMap::new()),
            slots: tokio::sync::Semaphore::new(cores),
            ttl,
            max_remembered,
        }
    }

    fn digest(&self, password: &str, phc: &str) -> [u8; 32] {
        let mut h = blake2::Blake2s256::new();
        h.update(self.key);
        h.update((phc.len() as u64).to_be_bytes());
        h.update(phc.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Whether `password` matches `phc`. `None` (no such account, or no password yet) runs a check
    /// against [`dummy_phc`] and is always false.
    pub async fn check(&self, password: &str, phc: Option<&str>) -> bool {
        let digest = phc.map(|p| self.digest(password, p));
        if let Some(d) = &digest {
            let remembered = self.remembered.lock().expect("password checks");
            if remembered.get(d).is_some_and(|t| t.elapsed() < self.ttl) {
                return true;
            }
        }
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let (password, stored) = (
            password.to_string(),
            phc.unwrap_or_else(|| dummy_phc()).to_string(),
        );
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
            .await
            .unwrap_or(false)
            && phc.is_some();
        if let (true, Some(d)) = (ok, digest) {
            let mut remembered = self.remembered.lock().expect("password checks");
            if remembered.len() >= self.max_remembered {
                let ttl = self.ttl;
                remembered.retain(|_, t| t.elapsed() < ttl);
                if remembered.len() >= self.max_remembered {
                    remembered.clear();
                }
            }
            remembered.insert(d, Instant::now());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_garbage_never_matches() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert!(!verify_password("x", dummy_phc()));
    }

    #[tokio::test]
    async fn successes_are_remembered_per_hash_only() {
        let checks = PasswordChecks::new(Duration::from_secs(60), 16);
        let h = hash_password("correct horse battery").unwrap();
        let other = hash_password("another long password").unwrap();
        assert!(checks.check("correct horse battery", Some(&h)).await);
        // Now from memory; a wrong password, another hash or no account still fail.
        assert!(checks.check("correct horse battery", Some(&h)).await);
        assert!(!checks.check("correct horse batterY", Some(&h)).await);
        assert!(!checks.check("correct horse battery", Some(&other)).await);
        assert!(!checks.check("correct horse battery", None).await);
    }
}

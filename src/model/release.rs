//! Secure release (issue 18, docs/release.md), the pure part: release modes, what a PIN is hashed
//! from for each `job-password-encryption` (PWG 5100.11 §6.1), the wrong-PIN limits per job and per
//! client, the expiry decision and PIN generation from a supplied source of randomness. No I/O.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::ops::RangeInclusive;

use sha2::Digest as _;

/// A queue's `release` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseMode {
    /// Jobs print as they come.
    #[default]
    None,
    /// Jobs wait held (job-password-wait) until someone types their PIN.
    Pin,
    /// Jobs wait held (job-hold-until-specified) until their owner signs in and releases them.
    SignIn,
}

impl ReleaseMode {
    pub fn keyword(self) -> &'static str {
        match self {
            ReleaseMode::None => "none",
            ReleaseMode::Pin => "pin",
            ReleaseMode::SignIn => "sign-in",
        }
    }

    pub fn from_keyword(k: &str) -> Option<ReleaseMode> {
        Some(match k {
            "none" => ReleaseMode::None,
            "pin" => ReleaseMode::Pin,
            "sign-in" => ReleaseMode::SignIn,
            _ => return None,
        })
    }

    /// The job-state-reasons keyword a job waiting in this mode carries (PWG 5100.11 §6.3 for
    /// job-password-wait; RFC 8011 §5.3.8 job-hold-until-specified).
    pub fn hold_reason(self) -> Option<&'static str> {
        match self {
            ReleaseMode::None => None,
            ReleaseMode::Pin => Some(JOB_PASSWORD_WAIT),
            ReleaseMode::SignIn => Some("job-hold-until-specified"),
        }
    }
}

/// job-state-reasons of a job waiting for its PIN (PWG 5100.11 §6.3).
pub const JOB_PASSWORD_WAIT: &str = "job-password-wait";

/// job-password-encryption (PWG 5100.11 §6.1.2): how the client turned the password into the
/// job-password octets. Only these three are supported (job-password-encryption-supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinEncryption {
    None,
    Md5,
    Sha256,
}

impl PinEncryption {
    pub const SUPPORTED: [&'static str; 3] = ["none", "md5", "sha2-256"];

    pub fn from_keyword(k: &str) -> Option<PinEncryption> {
        Some(match k {
            "none" => PinEncryption::None,
            "md5" => PinEncryption::Md5,
            "sha2-256" => PinEncryption::Sha256,
            _ => return None,
        })
    }

    pub fn keyword(self) -> &'static str {
        match self {
            PinEncryption::None => "none",
            PinEncryption::Md5 => "md5",
            PinEncryption::Sha256 => "sha2-256",
        }
    }

    fn digest_len(self) -> Option<usize> {
        match self {
            PinEncryption::None => None,
            PinEncryption::Md5 => Some(16),
            PinEncryption::Sha256 => Some(32),
        }
    }
}

/// job-password-length-supported (PWG 5100.11 §6.2.2) for a password sent as it was typed
/// (job-password-encryption none): at least 4 octets, so that a PIN is not trivially guessed, and
/// short enough to type on a touch screen. A hashed password is as long as its digest.
pub const PIN_LENGTH_SUPPORTED: RangeInclusive<usize> = 4..=64;

/// `release_pin_length`, for PINs the appliance assigns.
pub const ASSIGNED_PIN_LENGTH: RangeInclusive<u32> = 4..=8;

/// Why a job-password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("job-password must be {min} to {max} octets long", min = PIN_LENGTH_SUPPORTED.start(), max = PIN_LENGTH_SUPPORTED.end())]
    Length,
    #[error("job-password is not a {0} digest")]
    NotADigest(&'static str),
}

/// The octets a PIN is stored (argon2-hashed) and compared as: for `none` the password itself,
/// for md5 and sha2-256 the binary digest. A client that sends the digest as hexadecimal text
/// (as some do) is accepted too: both spellings of one digest give the same secret.
pub fn secret_from_client(octets: &[u8], enc: PinEncryption) -> Result<Vec<u8>, PinError> {
    match enc.digest_len() {
        None => {
            if PIN_LENGTH_SUPPORTED.contains(&octets.len()) {
                Ok(octets.to_vec())
            } else {
                Err(PinError::Length)
            }
        }
        Some(n) if octets.len() == n => Ok(octets.to_vec()),
        Some(n) if octets.len() == 2 * n => {
            decode_hex(octets).ok_or(PinError::NotADigest(enc.keyword()))
        }
        Some(_) => Err(PinError::NotADigest(enc.keyword())),
    }
}

/// The secret a PIN typed later (release page, `printbridge release`) stands for, given how the
/// job's client sent it: hashed the same way first (PWG 5100.11 §6.1.2).
pub fn secret_from_typed(pin: &str, enc: PinEncryption) -> Vec<u8> {
    match enc {
        PinEncryption::None => pin.as_bytes().to_vec(),
        PinEncryption::Md5 => md5::Md5::digest(pin.as_bytes()).to_vec(),
        PinEncryption::Sha256 => sha2::Sha256::digest(pin.as_bytes()).to_vec(),
    }
}

/// The text the secret is argon2-hashed as (argon2's input here is a string): lower-case hex.
pub fn hash_input(secret: &[u8]) -> String {
    secret.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// A PIN of `length` decimal digits, uniform: `random` fills a buffer with random bytes, and bytes
/// of 250 and above are thrown away so that every digit is equally likely.
pub fn generate_pin(length: u32, random: &mut impl FnMut(&mut [u8])) -> String {
    let mut pin = String::with_capacity(length as usize);
    let mut buf = [0u8; 16];
    while pin.len() < length as usize {
        random(&mut buf);
        for b in buf {
            if b < 250 && pin.len() < length as usize {
                pin.push(char::from(b'0' + b % 10));
            }
        }
    }
    pin
}

/// The status message that shows an assigned PIN to the job's owner (contract, "Assigned PIN").
pub fn assigned_pin_message(pin: &str) -> String {
    format!("Release PIN {pin} at the printer")
}

// ---- wrong PINs -------------------------------------------------------------------------------

/// Wrong PINs after which a job locks.
pub const JOB_MAX_WRONG: u32 = 5;
/// How long a locked job refuses every PIN, the right one too.
pub const JOB_LOCK_SECONDS: i64 = 15 * 60;
/// Wrong PINs one client address may send, across jobs, within [`CLIENT_WINDOW_SECONDS`].
pub const CLIENT_MAX_WRONG: usize = 20;
pub const CLIENT_WINDOW_SECONDS: i64 = 10 * 60;

/// A job's wrong-PIN record, as stored with its release record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobAttempts {
    /// Wrong PINs since the job was created or its last lock ended.
    pub failed: u32,
    /// While `now` is before this, the job takes no PIN.
    pub locked_until: Option<i64>,
}

/// What a PIN check may go on to, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked { retry_after_seconds: u64 },
}

impl JobAttempts {
    /// Whether a PIN may be checked now. A lock that has run out starts a fresh count.
    pub fn gate(&self, now: i64) -> Gate {
        match self.locked_until {
            Some(until) if now < until => Gate::Locked {
                retry_after_seconds: (until - now) as u64,
            },
            _ => Gate::Open,
        }
    }

    /// The record after a wrong PIN at `now`, and how many tries are left before the lock (0: it
    /// locked now).
    pub fn after_wrong(&self, now: i64) -> (JobAttempts, u32) {
        let failed = match self.locked_until {
            Some(until) if now >= until => 1,
            _ => self.failed + 1,
        };
        if failed >= JOB_MAX_WRONG {
            (
                JobAttempts {
                    failed,
                    locked_until: Some(now + JOB_LOCK_SECONDS),
                },
                0,
            )
        } else {
            (
                JobAttempts {
                    failed,
                    locked_until: None,
                },
                JOB_MAX_WRONG - failed,
            )
        }
    }
}

/// Wrong PINs per client address, across jobs: a sliding window of [`CLIENT_WINDOW_SECONDS`]. Kept
/// in memory only (a restart forgets it; the per-job lock is on disk).
#[derive(Debug, Default)]
pub struct ClientLimiter {
    wrong: HashMap<IpAddr, VecDeque<i64>>,
}

impl ClientLimiter {
    /// Whether `client` may try a PIN now.
    pub fn gate(&mut self, client: IpAddr, now: i64) -> Gate {
        let Some(q) = self.wrong.get_mut(&client) else {
            return Gate::Open;
        };
        while q.front().is_some_and(|t| now - t >= CLIENT_WINDOW_SECONDS) {
            q.pop_front();
        }
        if q.is_empty() {
            self.wrong.remove(&client);
            return Gate::Open;
        }
        if q.len() >= CLIENT_MAX_WRONG {
            let oldest = *q.front().expect("not empty");
            return Gate::Locked {
                retry_after_seconds: (oldest + CLIENT_WINDOW_SECONDS - now).max(1) as u64,
            };
        }
        Gate::Open
    }

    /// Counts a wrong PIN of `client`.
    pub fn wrong(&mut self, client: IpAddr, now: i64) {
        // Addresses that stopped trying go, so the map stays as small as the attack.
        if self.wrong.len() > 10_000 {
            self.wrong
                .retain(|_, q| q.back().is_some_and(|t| now - t < CLIENT_WINDOW_SECONDS));
        }
        let q = self.wrong.entry(client).or_default();
        q.push_back(now);
        while q.len() > CLIENT_MAX_WRONG {
            q.pop_front();
        }
    }

    /// Takes back the last try of `client`, counted before its PIN was checked: it was right.
    pub fn forgive(&mut self, client: IpAddr) {
        if let Some(q) = self.wrong.get_mut(&client) {
            q.pop_back();
            if q.is_empty() {
                self.wrong.remove(&client);
            }
        }
    }
}

// ---- expiry -----------------------------------------------------------------------------------

/// Whether a job held for release since `created` is past `release_expire_seconds` at `now`.
pub fn expired(created: i64, now: i64, expire_seconds: u64) -> bool {
    now.saturating_sub(created) >= expire_seconds as i64
}

/// The job-state-message of a job deleted unprinted because nobody released it in time.
pub fn expiry_message(expire_seconds: u64) -> String {
    let span = match expire_seconds {
        s if s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    };
    format!("Not released within {span}; deleted unprinted")
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encryption_hashes_a_typed_pin_as_the_client_did() {
        // RFC 1321 / FIPS 180-4 test vectors of "abc".
        assert_eq!(
            hash_input(&secret_from_typed("abc", PinEncryption::Md5)),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hash_input(&secret_from_typed("abc", PinEncryption::Sha256)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for (pin, enc) in [
            ("1234", PinEncryption::None),
            ("98765432", PinEncryption::Md5),
            ("0000", PinEncryption::Sha256),
        ] {
            let typed = secret_from_typed(pin, enc);
            // What a client sends: the digest in binary, or as hex text.
            assert_eq!(secret_from_client(&typed, enc).unwrap(), typed);
            let hex = hash_input(&typed);
            if enc != PinEncryption::None {
                assert_eq!(secret_from_client(hex.as_bytes(), enc).unwrap(), typed);
                assert_eq!(
                    secret_from_client(hex.to_uppercase().as_bytes(), enc).unwrap(),
                    typed
                );
            }
        }
        assert_ne!(
            secret_from_typed("1235", PinEncryption::Md5),
            secret_from_typed("1234", PinEncryption::Md5)
        );
    }

    #[test]
    fn malformed_passwords_are_refused() {
        assert_eq!(
            secret_from_client(b"123", PinEncryption::None),
            Err(PinError::Length)
        );
        assert_eq!(
            secret_from_client(&[b'1'; 65], PinEncryption::None),
            Err(PinError::Length)
        );
        assert!(secret_from_client(&[0u8; 15], PinEncryption::Md5).is_err());
        assert!(secret_from_client(&[b'z'; 32], PinEncryption::Md5).is_err());
        assert!(secret_from_client(&[0u8; 16], PinEncryption::Sha256).is_err());
        assert!(PinEncryption::from_keyword("sha2-512").is_none());
        assert_eq!(
            ReleaseMode::from_keyword("sign-in"),
            Some(ReleaseMode::SignIn)
        );
    }

    #[test]
    fn five_wrong_pins_lock_a_job_for_a_quarter_hour_then_it_counts_afresh() {
        let mut a = JobAttempts::default();
        let t = 1_000_000;
        for left in (1..JOB_MAX_WRONG).rev() {
            assert_eq!(a.gate(t), Gate::Open);
            let (next, l) = a.after_wrong(t);
            assert_eq!(l, left);
            a = next;
        }
        let (a, left) = a.after_wrong(t + 5);
        assert_eq!(left, 0);
        assert_eq!(
            a.gate(t + 5),
            Gate::Locked {
                retry_after_seconds: JOB_LOCK_SECONDS as u64
            }
        );
        assert_eq!(
            a.gate(t + 5 + JOB_LOCK_SECONDS - 1),
            Gate::Locked {
                retry_after_seconds: 1
            }
        );
        let after = t + 5 + JOB_LOCK_SECONDS;
        assert_eq!(a.gate(after), Gate::Open);
        let (a, left) = a.after_wrong(after);
        assert_eq!((a.failed, left), (1, JOB_MAX_WRONG - 1));
    }

    #[test]
    fn a_client_gets_twenty_wrong_pins_per_ten_minutes_across_jobs() {
        let mut l = ClientLimiter::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        let t = 5_000;
        for i in 0..CLIENT_MAX_WRONG as i64 {
            assert_eq!(l.gate(ip, t + i), Gate::Open);
            l.wrong(ip, t + i);
        }
        assert_eq!(
            l.gate(ip, t + 30),
            Gate::Locked {
                retry_after_seconds: (CLIENT_WINDOW_SECONDS - 30) as u64
            }
        );
        assert_eq!(l.gate(other, t + 30), Gate::Open);
        // The oldest wrong PIN leaves the window: one more try.
        assert_eq!(l.gate(ip, t + CLIENT_WINDOW_SECONDS), Gate::Open);
        l.wrong(ip, t + CLIENT_WINDOW_SECONDS);
        assert!(matches!(
            l.gate(ip, t + CLIENT_WINDOW_SECONDS),
            Gate::Locked { .. }
        ));
    }

    #[test]
    fn expiry_and_its_message() {
        assert!(!expired(100, 100 + 14399, 14400));
        assert!(expired(100, 100 + 14400, 14400));
        assert_eq!(
            expiry_message(14400),
            "Not released within 4 hours; deleted unprinted"
        );
        assert_eq!(
            expiry_message(3600),
            "Not released within 1 hour; deleted unprinted"
        );
        assert_eq!(
            expiry_message(120),
            "Not released within 2 minutes; deleted unprinted"
        );
        assert_eq!(
            expiry_message(5),
            "Not released within 5 seconds; deleted unprinted"
        );
    }

    #[test]
    fn assigned_pins_are_digits_of_the_asked_length_and_skip_biased_bytes() {
        let mut bytes = [255u8, 250, 3, 14, 249, 0, 7, 1, 2, 3].into_iter().cycle();
        let mut random = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = bytes.next().unwrap());
        let pin = generate_pin(6, &mut random);
        assert_eq!(pin, "349071");
        for len in ASSIGNED_PIN_LENGTH {
            let mut r = |b: &mut [u8]| getrandom::fill(b).unwrap();
            let p = generate_pin(len, &mut r);
            assert_eq!(p.len(), len as usize);
            assert!(p.bytes().all(|c| c.is_ascii_digit()));
        }
        assert_eq!(
            assigned_pin_message("4821"),
            "Release PIN 4821 at the printer"
        );
    }
}

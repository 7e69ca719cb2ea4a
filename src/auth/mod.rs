//! Authentication of HTTP requests (IPP and web) against the local users: HTTP Basic
//! (RFC 7617) accepted only over TLS or from loopback, passwords checked with argon2 off the
//! async threads, a short-lived cache of successful checks (clients resend credentials with every
//! request), and per-client throttling of failed attempts.
//!
//! Secrets never reach a log: passwords live only in [`Credentials`] (whose `Debug` hides them) and
//! in the keyed digest that identifies a cached successful check.

pub mod cli;
// The hashing lives below both the users here and the spool's release PINs.
pub use crate::password;
pub mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

pub use users::{Role, UserStore, UsersError};

/// The protection space named in every challenge (`WWW-Authenticate: Basic realm="printbridge"`).
pub const REALM: &str = "printbridge";

/// The challenge header value.
pub const CHALLENGE: &str = "Basic realm=\"printbridge\", charset=\"UTF-8\"";

/// Failed attempts from one client that cost nothing; each one after that locks the client out
/// for [`FIRST_LOCKOUT`], doubling per further failure up to [`MAX_LOCKOUT`].
pub const FREE_FAILURES: u32 = 5;
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(2);
pub const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// A client's failures are forgotten after this long without a new one.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// Clients remembered at most (each entry is a few dozen bytes).
const MAX_CLIENTS: usize = 4096;
/// How long a successful password check is remembered.
const VERIFIED_TTL: Duration = Duration::from_secs(10 * 60);
const MAX_VERIFIED: usize = 256;

/// Why a request's credentials were not accepted. The `Display` text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "credentials must not be sent over plain HTTP from another machine: use ipps:// or https:// on the same port"
    )]
    Insecure,
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("the Authorization header is malformed or uses a scheme other than Basic")]
    Malformed,
    #[error("too many failed sign-in attempts from this address; try again in {} seconds", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error("the user database cannot be read")]
    Unavailable,
}

/// Who made a request, once their password was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub admin: bool,
}

/// Credentials from an Authorization header.
pub struct Credentials {
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The password, for checking it elsewhere (a cloud account's, issue 13); never logged.
    pub fn password(&self) -> &str {
        &self.password
    }
}

/// Parses `Basic base64(user:password)` (RFC 7617 §2; UTF-8 as our challenge announces).
pub fn parse_basic(header: &[u8]) -> Option<Credentials> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Checks requests' credentials against the user file of a state directory.
pub struct Authenticator {
    users: UserStore,
    throttle: Mutex<Throttle>,
    /// argon2 checks, bounded and remembered for a while (clients authenticate every request).
    checks: password::PasswordChecks,
}

impl Authenticator {
    pub fn new(state_dir: &Path) -> Authenticator {
        Authenticator {
            users: UserStore::new(state_dir),
            throttle: Mutex::new(Throttle::default()),
            checks: password::PasswordChecks::new(VERIFIED_TTL, MAX_VERIFIED),
        }
    }

    pub fn users(&self) -> &UserStore {
        &self.users
    }

    /// Whether any user can sign in (the web page says how to add one otherwise).
    pub fn has_users(&self) -> bool {
        self.users.users().map(|u| !u.is_empty()).unwrap_or(false)
    }

    /// Authenticates a request by its Authorization header. `Ok(None)`: no credentials sent.
    /// `secure`: the connection is TLS or comes from this machine.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        peer: IpAddr,
        secure: bool,
    ) -> Result<Option<Identity>, AuthError> {
        let Some(header) = authorization else {
            return Ok(None);
        };
        if !secure {
            return Err(AuthError::Insecure);
        }
        let client = client_key(peer);
        if let Some(wait) = self.throttle.lock().expect("throttle").locked(client) {
            return Err(AuthError::Throttled(wait));
        }
        let Some(creds) = parse_basic(header) else {
            self.failed(client, peer, None);
            return Err(AuthError::Malformed);
        };
        let users = self.users.users().map_err(|e| {
            tracing::error!("{e}");
            AuthError::Unavailable
        })?;
        // A user's role comes from the file every time; only the argon2 check is remembered,
        // keyed by the user's PHC string, so a changed password or a removed user never matches.
        let user = users.iter().find(|u| u.name == creds.user).cloned();
        let ok = self
            .checks
            .check(&creds.password, user.as_ref().map(|u| u.phc.as_str()))
            .await;
        match user {
            Some(u) if ok => {
                self.throttle.lock().expect("throttle").succeeded(client);
                Ok(Some(Identity {
                    name: u.name.clone(),
                    admin: u.role == Role::Admin,
                }))
            }
            _ => {
                self.failed(client, peer, Some(&creds.user));
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// For credentials checked somewhere else (a cloud queue's cloud account, checked with the
    /// cloud): refuses a client that is locked out here before anything is asked there.
    pub fn check_throttle(&self, peer: IpAddr) -> Result<(), AuthError> {
        match self
            .throttle
            .lock()
            .expect("throttle")
            .locked(client_key(peer))
        {
            Some(wait) => Err(AuthError::Throttled(wait)),
            None => Ok(()),
        }
    }

    /// Counts the outcome of such a check like a local sign-in's. The cloud throttles failed
    /// sign-ins per client address, and every check a cloud queue makes comes from this
    /// appliance's address: without a lockout here, one guesser on the LAN would lock every
    /// user of the appliance out of cloud sign-in.
    pub fn record_check(&self, peer: IpAddr, user: &str, ok: bool) {
        let client = client_key(peer);
        if ok {
            self.throttle.lock().expect("throttle").succeeded(client);
        } else {
            self.failed(client, peer, Some(user));
        }
    }

    fn failed(&self, client: IpAddr, peer: IpAddr, user: Option<&str>) {
        let lockout = self.throttle.lock().expect("throttle").failed(client);
        let who = match user {
            Some(u) if users::valid_name(u) => format!("user '{u}'"),
            Some(_) => "an invalid user name".to_string(),
            None => "a malformed Authorization header".to_string(),
        };
        match lockout {
            Some(d) => tracing::warn!(
                %peer,
                "failed sign-in for {who}; address locked out for {} s",
                d.as_secs()
            ),
            None => tracing::info!(%peer, "failed sign-in for {who}"),
        }
    }
}

/// Failed attempts are counted per address; IPv6 clients per /64, since one host can use many
/// addresses of its prefix.
fn client_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[derive(Default)]
struct Throttle {
    clients: HashMap<IpAddr, Failures>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Throttle {
    /// How long `client` must still wait, if it is locked out.
    fn locked(&self, client: IpAddr) -> Option<Duration> {
        let until = self.clients.get(&client)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    /// Records a failure; returns the lockout it starts, if any.
    fn failed(&mut self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&client) {
            self.clients
                .retain(|_, f| now.duration_since(f.last) < FAILURE_MEMORY);
            if self.clients.len() >= MAX_CLIENTS {
                if let Some(oldest) = self
                    .clients
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| *k)
                {
                    self.clients.remove(&oldest);
                }
            }
        }
        let f = self.clients.entry(client).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(f.last) >= FAILURE_MEMORY {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        let lockout = lockout_after(f.count);
        f.locked_until = lockout.map(|d| now + d);
        lockout
    }

    fn succeeded(&mut self, client: IpAddr) {
        self.clients.remove(&client);
    }
}

/// The lockout that follows the `n`th consecutive failure.
fn lockout_after(n: u32) -> Option<Duration> {
    if n < FREE_FAILURES {
        return None;
    }
    let doublings = (n - FREE_FAILURES).min(16);
    Some((FIRST_LOCKOUT * 2u32.pow(doublings)).min(MAX_LOCKOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_made_elsewhere_lock_a_guesser_out_before_they_reach_the_cloud() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::new(dir.path());
        let guesser: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert!(auth.check_throttle(guesser).is_ok());
            auth.record_check(guesser, "alice@example.com", false);
        }
        assert!(matches!(
            auth.check_throttle(guesser),
            Err(AuthError::Throttled(_))
        ));
        assert!(auth.check_throttle(other).is_ok());
        auth.record_check(other, "bob@example.com", true);
        assert!(auth.check_throttle(other).is_ok());
    }

    fn basic(user: &str, pw: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
        .into_bytes()
    }

    #[test]
    fn basic_header_parsing() {
        let c = parse_basic(&basic("bob", "a:b c")).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("bob", "a:b c"));
        assert!(parse_basic(b"basic Ym9iOng=").is_some());
        assert!(parse_basic(b"Bearer abc").is_none());
        assert!(parse_basic(b"Basic !!!").is_none());
        assert!(parse_basic(b"Basic Ym9i").is_none()); // no colon
        assert!(!format!("{c:?}").contains("a:b c"));
    }

    #[test]
    fn lockout_schedule() {
        assert_eq!(lockout_after(1), None);
        assert_eq!(lockout_after(FREE_FAILURES - 1), None);
        assert_eq!(lockout_after(FREE_FAILURES), Some(FIRST_LOCKOUT));
        assert_eq!(lockout_after(FREE_FAILURES + 1), Some(FIRST_LOCKOUT * 2));
        assert_eq!(lockout_after(1000), Some(MAX_LOCKOUT));
    }

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(m), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn authenticate_checks_transport_password_and_throttles() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::new(dir.path());
        auth.users()
            .add("admin", "secret-pass", Role::Admin)
            .unwrap();
        auth.users().add("bob", "bobs-pass1", Role::User).unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(auth.authenticate(None, remote, false).await, Ok(None));
        assert_eq!(
            auth.authenticate(Some(&basic("admin", "secret-pass")), remote, false)
                .await,
            Err(AuthError::Insecure)
        );
        let id = auth
            .authenticate(Some(&basic("admin", "secret-pass")), lo, true)
            .await
            .unwrap()
            .unwrap();
        assert!(id.admin);
        // Cached the second time; still correct.
        let id = auth
            .authenticate(Some(&basic("admin", "secret-pass")), lo, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id.name, "admin");
        let id = auth
            .authenticate(Some(&basic("bob", "bobs-pass1")), remote, true)
            .await
            .unwrap()
            .unwrap();
        assert!(!id.admin);
        for _ in 0..FREE_FAILURES {
            assert_eq!(
                auth.authenticate(Some(&basic("admin", "wrong")), remote, true)
                    .await,
                Err(AuthError::BadCredentials)
            );
        }
        match auth
            .authenticate(Some(&basic("admin", "secret-pass")), remote, true)
            .await
        {
            Err(AuthError::Throttled(d)) => assert!(d <= FIRST_LOCKOUT),
            other => panic!("expected a lockout, got {other:?}"),
        }
        // Another client is not affected.
        assert!(auth
            .authenticate(Some(&basic("admin", "secret-pass")), lo, true)
            .await
            .is_ok());
        // A removed user's cached check does not survive the change of the file.
        auth.users().remove("admin").unwrap();
        assert_eq!(
            auth.authenticate(Some(&basic("admin", "secret-pass")), lo, true)
                .await,
            Err(AuthError::BadCredentials)
        );
    }
}

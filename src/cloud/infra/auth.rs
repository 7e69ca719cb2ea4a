//! Who may use an Infrastructure Printer: HTTP authentication of users (cloud password or
//! personal access token) and devices (access token), with failed attempts throttled per client
//! address and per account and every refusal logged (never the credential); then which
//! operations a principal may use on a printer.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{AuthFailure, Ctx, Principal};
use crate::cloud::secrets::hash_secret;
use crate::cloud::Cloud;
use crate::codec::ipp::Message;
use crate::codec::ipp_attr::op_str;
use crate::codec::ipp_status::{self as status, Status};
use crate::store::infra::JobRow;
use crate::store::StoreError;

/// Throttle counters: failed sign-ins per account, and failed authentications of any kind
/// (password, token, malformed credentials) per client address.
const IPP_SIGN_IN: &str = "ipp-sign-in-account";
const IPP_SIGN_IN_CLIENT: &str = "ipp-sign-in-client";

/// Credentials: `Authorization: Bearer TOKEN` (a device's access token, or a user's personal
/// access token), or Basic with a user's address and cloud password, or Basic with user name
/// `device` and the access token as password (for clients such as ipptool that cannot send
/// bearer tokens). `Ok(Ok(None))`: no credentials.
///
/// Every failure counts against the client address, whatever the user name or scheme, so a
/// client guessing names that are not addresses, or a Proxy retrying a wrong token, is counted
/// like one guessing passwords; past the limit, no password is checked from that address and a
/// wrong token is answered as throttled. A right token still works there: tokens are random
/// and cannot be guessed, and a Proxy behind the same address as a guesser must keep printing.
/// Every refusal is logged with the client address and the kind of credential, never its value.
pub(crate) async fn authenticate(
    cloud: &Cloud,
    headers: &HeaderMap,
    client: &str,
) -> Result<Result<Option<Principal>, AuthFailure>, StoreError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(Ok(None));
    };
    let now = cloud.now();
    let limits = &cloud.config.limits;
    let window = limits.window_seconds;
    let client_throttled = cloud
        .store
        .throttle_count(IPP_SIGN_IN_CLIENT, client, now, window)
        .await?
        >= limits.sign_in_failures_per_client;
    let mut attempt =
        credentials(cloud, value.to_str().unwrap_or(""), now, client_throttled).await?;
    if client_throttled {
        if let Err(f) = &mut attempt.outcome {
            *f = AuthFailure::Throttled;
        }
    }
    if let Err(failure) = &attempt.outcome {
        if *failure != AuthFailure::Throttled {
            cloud
                .store
                .throttle_hit(IPP_SIGN_IN_CLIENT, client, now, window)
                .await?;
            if let Some(account) = &attempt.account {
                cloud
                    .store
                    .throttle_hit(IPP_SIGN_IN, account, now, window)
                    .await?;
            }
        }
        // The user name as sent, in Debug form so that control characters cannot forge log
        // lines; never the password or token.
        tracing::warn!(
            %client,
            credential = attempt.kind,
            user = ?attempt.user.as_deref().unwrap_or("-"),
            reason = ?failure,
            "infrastructure printer: authentication refused"
        );
    }
    Ok(attempt.outcome.map(Some))
}

/// One authentication attempt: what was presented (for the log) and how it went.
struct Attempt {
    /// "basic", "bearer", "device-token" or "malformed".
    kind: &'static str,
    /// The user name of a Basic sign-in, as sent (at most 64 characters), for the log.
    user: Option<String>,
    /// The account a Basic sign-in named, when it is an address: counted per account.
    account: Option<String>,
    outcome: Result<Principal, AuthFailure>,
}

/// Checks the credentials in `value` (an Authorization header). With `client_throttled`, a
/// password is not even checked (no argon2 work for a guesser); tokens still are.
async fn credentials(
    cloud: &Cloud,
    value: &str,
    now: i64,
    client_throttled: bool,
) -> Result<Attempt, StoreError> {
    let refused = |kind, user: Option<&str>, failure| Attempt {
        kind,
        user: user.map(|u| u.chars().take(64).collect()),
        account: None,
        outcome: Err(failure),
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Attempt {
            kind: "bearer",
            user: None,
            account: None,
            outcome: token(cloud, rest).await?,
        });
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(refused("malformed", None, AuthFailure::BadCredentials));
    }
    let decoded = STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|s| s.split_once(':')) else {
        return Ok(refused("malformed", None, AuthFailure::BadCredentials));
    };
    if user == "device" {
        return Ok(Attempt {
            kind: "device-token",
            user: Some(user.to_string()),
            account: None,
            outcome: token(cloud, password).await?,
        });
    }
    let Ok(email) = crate::cloud::accounts::normalize_email(user) else {
        return Ok(refused("basic", Some(user), AuthFailure::BadCredentials));
    };
    let limits = &cloud.config.limits;
    // Per account against guessing one password, per client against spraying many accounts
    // (and making us run argon2 for each).
    if client_throttled
        || cloud
            .store
            .throttle_count(IPP_SIGN_IN, &email, now, limits.window_seconds)
            .await?
            >= limits.sign_in_failures_per_account
    {
        return Ok(Attempt {
            kind: "basic",
            user: Some(email.clone()),
            account: Some(email),
            outcome: Err(AuthFailure::Throttled),
        });
    }
    let user = cloud.store.user_by_email(&email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok =
        crate::cloud::accounts::verify_blocking(&cloud.password_checks, password.to_string(), hash)
            .await
            .unwrap_or(false);
    Ok(Attempt {
        kind: "basic",
        user: Some(email.clone()),
        outcome: if ok {
            Ok(Principal::User(email.clone()))
        } else {
            Err(AuthFailure::BadCredentials)
        },
        account: Some(email),
    })
}

/// A device's access token, a user's personal access token, or the token of a user's live
/// session (`printbridge login`): specs/groups.md, "Login ... accept jobs from this PC" and
/// "Logout: stop accepting jobs from this PC" — a logged-out session's token prints no more.
async fn token(cloud: &Cloud, token: &str) -> Result<Result<Principal, AuthFailure>, StoreError> {
    if token.is_empty() || token.len() > 512 {
        return Ok(Err(AuthFailure::BadToken));
    }
    let hash = hash_secret(token);
    let now = cloud.now();
    let Some(grant) = cloud.store.access_grant(&hash, now).await? else {
        // Not a device's: perhaps a user's personal access token, or a session's.
        if let Some(email) = cloud.store.user_email_by_token(&hash, now).await? {
            return Ok(Ok(Principal::User(email)));
        }
        return Ok(match cloud.store.session(&hash, now).await? {
            Some(session) => Ok(Principal::User(session.user.email)),
            None => Err(AuthFailure::BadToken),
        });
    };
    Ok(match cloud.store.device(&grant.device_id).await? {
        Some(d) => Ok(Principal::Device(d)),
        None => Err(AuthFailure::BadToken),
    })
}

/// Proxy operations: only the device that registered the printer.
pub(super) fn require_proxy(cx: &Ctx<'_>) -> Result<(), Status> {
    match &cx.principal {
        Principal::Device(d) if d.id == cx.printer.device_id => Ok(()),
        Principal::Device(_) => Err(Status::new(
            status::NOT_AUTHORIZED,
            "this device did not register this printer",
        )),
        Principal::User(_) => Err(Status::new(
            status::FORBIDDEN,
            "only the printer's Proxy may use this operation",
        )),
    }
}

/// Client operations: a user allowed on the printer, the printer's own device, or another
/// device of the printer's organisation printing on its users' behalf (an appliance's cloud
/// queue, issue 13): which user it may print for is checked at job creation ([`requester`]),
/// which jobs it may act on by [`is_owner`].
pub(super) async fn require_client(cx: &Ctx<'_>) -> Result<(), Status> {
    match &cx.principal {
        Principal::User(email) => {
            if cx
                .cloud
                .store
                .printer_user_allowed(&cx.printer.id, email)
                .await?
            {
                Ok(())
            } else {
                Err(Status::new(
                    status::NOT_AUTHORIZED,
                    "you are not allowed to use this printer",
                ))
            }
        }
        Principal::Device(d) if d.id == cx.printer.device_id => Ok(()),
        Principal::Device(d) if d.org_id == cx.printer.org_id => Ok(()),
        Principal::Device(_) => Err(Status::new(
            status::NOT_AUTHORIZED,
            "this device is not of the printer's organisation",
        )),
    }
}

/// The job owner for a new job: the authenticated user; for a device submitting on a user's
/// behalf, requesting-user-name, which must be allowed on the printer and, for a device other
/// than the printer's own, also on that device (device_users: the users its registration got
/// approved), so a device prints only for the people its organisation let use it.
pub(super) async fn requester(cx: &Ctx<'_>, req: &Message) -> Result<String, Status> {
    match &cx.principal {
        Principal::User(e) => Ok(e.clone()),
        Principal::Device(d) => {
            let own = d.id == cx.printer.device_id;
            let refusal = || {
                Status::new(
                    status::NOT_AUTHORIZED,
                    if own {
                        "requesting-user-name must name a user allowed on this printer"
                    } else {
                        "requesting-user-name must name a user allowed on this printer and on \
                         the submitting device"
                    },
                )
            };
            let n = op_str(req, "requesting-user-name").unwrap_or("").trim();
            let email = crate::cloud::accounts::normalize_email(n).map_err(|_| refusal())?;
            if !cx
                .cloud
                .store
                .printer_user_allowed(&cx.printer.id, &email)
                .await?
            {
                return Err(refusal());
            }
            if !own && !cx.cloud.store.device_users(&d.id).await?.contains(&email) {
                return Err(refusal());
            }
            Ok(email)
        }
    }
}

/// The device a new job is submitted by on its owner's behalf, when it is not the printer's own
/// device ([`crate::store::infra::NewJob::origin_device`]).
pub(super) fn origin_device(cx: &Ctx<'_>) -> Option<String> {
    match &cx.principal {
        Principal::Device(d) if d.id != cx.printer.device_id => Some(d.id.clone()),
        _ => None,
    }
}

/// Whether the requester sees the job's private attributes and may cancel it (job-privacy-scope
/// owner, as on the appliance): its owner, the printer's device, or the device that submitted it.
pub(super) fn is_owner(cx: &Ctx<'_>, job: &JobRow) -> bool {
    match &cx.principal {
        Principal::User(e) => *e == job.owner,
        Principal::Device(d) => {
            d.id == cx.printer.device_id || job.origin_device.as_deref() == Some(d.id.as_str())
        }
    }
}

//! Enrolment of users the cloud does not know yet (registration spec A6): when an administrator
//! approves a device for an address with no account, the cloud creates the account without a
//! password and mails a one-time set-password link; the user can print (sign in with Basic
//! authentication) only after choosing a password there. Mail to one address is limited per
//! window, since anyone can type someone else's address into a device.

use std::sync::Arc;

use super::accounts::new_set_password_link;
use super::Cloud;
use crate::notify::messages::{self, EnrolmentFacts};
use crate::store::accounts::{Role, User};
use crate::store::StoreError;

/// Throttle bucket for enrolment mails, per address.
const ENROLMENT_MAIL: &str = "enrolment-mail";

/// The device a user was approved on, as the enrolment mail describes it.
#[derive(Debug, Clone, Copy)]
pub struct DeviceFacts<'a> {
    pub name: &'a str,
    pub make_and_model: &'a str,
    pub location: &'a str,
}

/// What approving `email` meant for that user's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// The user already has a password: allowed at once.
    Enrolled,
    /// A set-password link is on its way by mail.
    MailQueued,
    /// The user must enrol but no mail could be sent: mail is not configured, or this address
    /// had too many mails lately. The administrator is told to pass a link on by hand.
    MailNotSent(&'static str),
}

/// Makes sure `email` (already normalised) has an account in the approving administrator's
/// organisation, and starts the enrolment mail when it has no password yet.
pub async fn enrol(
    cloud: &Arc<Cloud>,
    admin: &User,
    email: &str,
    device: DeviceFacts<'_>,
) -> Result<Enrolment, StoreError> {
    let now = cloud.now();
    let user = match cloud.store.user_by_email(email).await? {
        Some(u) => u,
        None => {
            match cloud
                .store
                .create_user(&admin.org_name, email, None, Role::User, now)
                .await
            {
                Ok(u) => {
                    tracing::info!(user = %u.id, admin = %admin.id, "account created for enrolment");
                    u
                }
                // Another instance created it a moment ago (email is UNIQUE): use that one.
                Err(e) => match cloud.store.user_by_email(email).await? {
                    Some(u) => u,
                    None => return Err(e),
                },
            }
        }
    };
    if user.password_hash.is_some() {
        return Ok(Enrolment::Enrolled);
    }
    if !cloud.mailer.enabled() {
        return Ok(Enrolment::MailNotSent(
            "mail is not configured on this service",
        ));
    }
    let limits = &cloud.config.limits;
    let hits = cloud
        .store
        .throttle_hit(ENROLMENT_MAIL, email, now, limits.window_seconds)
        .await?;
    if hits > cloud.config.mail.max_per_address {
        tracing::warn!(user = %user.id, "enrolment mail not sent: too many mails to this address");
        return Ok(Enrolment::MailNotSent(
            "this address was sent too many mails lately",
        ));
    }
    let lifetime = cloud.config.accounts.link_seconds;
    let link =
        new_set_password_link(&cloud.public_url, &cloud.store, &user.id, now, lifetime).await?;
    let mail = messages::enrolment(
        email,
        &EnrolmentFacts {
            organisation: &admin.org_name,
            device_name: device.name,
            make_and_model: device.make_and_model,
            location: device.location,
            link: &link,
            valid_hours: (lifetime + 3599) / 3600,
        },
    );
    // Sent in the background so a slow mail server does not hold the administrator's page; the
    // outcome is logged (without the link, which is a secret).
    let mailer = cloud.mailer.clone();
    let user_id = user.id.clone();
    tokio::spawn(async move {
        match mailer.send(mail).await {
            Ok(()) => tracing::info!(user = %user_id, "enrolment mail sent"),
            Err(e) => tracing::warn!(user = %user_id, "enrolment mail failed: {e}"),
        }
    });
    Ok(Enrolment::MailQueued)
}

//! Group sign-in/sign-out in the cloud (specs/groups.md, issue 14): what a login and a logout do
//! to the account's group, carried out through the control channel. The policy is
//! [`crate::model::groups`]; the table is [`crate::store::groups`]; this module reads one, asks
//! the other and queues the instructions (`sign-in` with a fresh single-use credential,
//! `sign-out`, `power-save`, `apply-settings`).
//!
//! - [`printer_side`]: the endpoints printers call (sign-in, sign-out, the panel's list).
//! - [`api`]: the PC side's JSON API (sessions, the group, settings, settings push, admin).
//! - [`maintenance`]: restores self-disconnection when the wait is over and logs out expired
//!   sessions with a group sign-out; both are decided by the database, so any instance may run
//!   them and a restart loses nothing.

pub mod api;
pub mod printer_side;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::control::ControlError;
use super::secrets::{hash_secret, random_token};
use super::Cloud;
use crate::model::groups::{self as policy, Exclusion, SignInPlan, SignOutPlan};
use crate::store::StoreError;

/// How long a sign-in credential carried by a `sign-in` instruction is good for.
pub const CREDENTIAL_SECONDS: i64 = 120;
/// How long the one-time token of a logout's pick list is good for.
pub const CHOOSE_SECONDS: i64 = 600;
/// How often [`maintenance`] looks for restores and expired sessions.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queueing an instruction: {0}")]
    Control(#[from] ControlError),
}

/// What a login did to the account's group.
#[derive(Debug, Clone, Default)]
pub struct LoginReport {
    pub group_name: Option<String>,
    pub plan: SignInPlan,
}

/// What a logout did to the account's group.
#[derive(Debug, Clone, Default)]
pub struct LogoutReport {
    pub group_name: Option<String>,
    pub plan: SignOutPlan,
    /// With group sign-out OFF: the one-time token that lets the ended session instruct the
    /// printers the user picks (`POST /api/v1/groups/sign-out` with `choose_token`).
    pub choose_token: Option<String>,
}

impl LoginReport {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "name": self.group_name,
            "sign_in": self.plan.sign_in,
            "already_in": self.plan.already_in,
            "choose": self.plan.choose,
        })
    }
}

impl LogoutReport {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "name": self.group_name,
            "sign_out": self.plan.sign_out,
            "power_save": self.plan.power_save,
            "excluded": exclusions_json(&self.plan.excluded),
            "choose": self.plan.choose,
            "choose_token": self.choose_token,
            "restore_at": self.plan.restore_at,
        })
    }
}

fn exclusions_json(excluded: &[(String, Exclusion)]) -> serde_json::Value {
    excluded
        .iter()
        .map(|(p, e)| json!({"printer": p, "rule": e.rule(), "reason": e.reason()}))
        .collect()
}

/// Login (specs/groups.md PC side, login step 2): group sign-in of `account` as its settings
/// say. The portal's web sign-in, `POST /api/v1/session` and the CLI's login all call this
/// after authenticating.
pub async fn login_account(cloud: &Cloud, account: &str) -> Result<LoginReport, GroupError> {
    let own = cloud.store.group_records(account).await?;
    let settings = cloud.store.group_settings(account).await?;
    let plan = policy::plan_sign_in(&own, &settings, None);
    instruct_sign_in(cloud, account, &plan.sign_in).await?;
    if !plan.sign_in.is_empty() {
        tracing::info!(
            printers = plan.sign_in.len(),
            "group sign-in: sign-in instructions queued"
        );
    }
    // Print-anywhere (issue 18): "release held jobs at group sign-in" sends the follow-me
    // queue's jobs to the chosen printer. A failure is logged; it does not fail the login.
    match super::follow_me::release_at_sign_in(cloud, account).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "group sign-in: held jobs released"),
        Err(e) => tracing::warn!("group sign-in: releasing held jobs failed: {e}"),
    }
    Ok(LoginReport {
        group_name: cloud.store.group_name(account).await?,
        plan,
    })
}

/// Logout (specs/groups.md PC side, logout steps 2–4): self-disconnection ON on every record
/// of the account, then group sign-out as its settings say, power saving for exactly the
/// printers told to sign out; the restore is left to [`maintenance`] (its time is in the
/// table). The portal's web sign-out, `DELETE /api/v1/session` and the session sweeper call
/// this after ending the session.
pub async fn logout_account(cloud: &Cloud, account: &str) -> Result<LogoutReport, GroupError> {
    let now = cloud.now();
    let own = cloud.store.group_records(account).await?;
    if own.is_empty() {
        return Ok(LogoutReport::default());
    }
    let settings = cloud.store.group_settings(account).await?;
    let others = cloud.store.group_records_sharing(account).await?;
    let plan = policy::plan_sign_out(&own, &others, &settings, now, None);
    if let Some(until) = plan.restore_at {
        cloud.store.mark_self_disconnection(account, until).await?;
    }
    instruct_sign_out(cloud, account, &plan).await?;
    let choose_token = if settings.sign_out {
        None
    } else {
        let token = random_token();
        cloud
            .store
            .create_choose_token(
                &hash_secret(&token),
                account,
                "sign-out",
                now,
                now + CHOOSE_SECONDS,
            )
            .await?;
        Some(token)
    };
    tracing::info!(
        sign_out = plan.sign_out.len(),
        excluded = plan.excluded.len(),
        "group sign-out"
    );
    Ok(LogoutReport {
        group_name: cloud.store.group_name(account).await?,
        plan,
        choose_token,
    })
}

/// Manual group sign-in (group sign-in OFF): the picked OUT printers of the group.
pub async fn sign_in_picked(
    cloud: &Cloud,
    account: &str,
    picks: &[String],
) -> Result<Vec<String>, GroupError> {
    let own = cloud.store.group_records(account).await?;
    let chosen = policy::plan_manual_sign_in(&own, picks);
    instruct_sign_in(cloud, account, &chosen).await?;
    Ok(chosen)
}

/// Manual group sign-out (group sign-out OFF, or any time): the picked IN printers, marked for
/// self-disconnection (so their sign-out keeps the record) and told to enter power saving.
pub async fn sign_out_picked(
    cloud: &Cloud,
    account: &str,
    picks: &[String],
) -> Result<SignOutPlan, GroupError> {
    let now = cloud.now();
    let own = cloud.store.group_records(account).await?;
    let settings = cloud.store.group_settings(account).await?;
    let mut plan = policy::plan_manual_sign_out(&own, picks, now);
    let until = now.saturating_add(settings.wait_seconds);
    cloud
        .store
        .mark_self_disconnection_of(account, &plan.sign_out, until)
        .await?;
    plan.restore_at = Some(until);
    instruct_sign_out(cloud, account, &plan).await?;
    Ok(plan)
}

/// The device of each printer, in the order of `printers` (printers gone since are left out).
async fn devices_of(
    cloud: &Cloud,
    printers: &[String],
) -> Result<Vec<(String, String)>, GroupError> {
    let map: std::collections::HashMap<String, String> = cloud
        .store
        .printer_devices(printers)
        .await?
        .into_iter()
        .collect();
    Ok(printers
        .iter()
        .filter_map(|p| map.get(p).map(|d| (p.clone(), d.clone())))
        .collect())
}

/// Queues `items` (device, kind, payload) in one transaction and wakes the devices' polls held
/// here (a whole group's instructions commit together: one commit, not one per printer).
async fn queue_all(cloud: &Cloud, items: Vec<(String, String, String)>) -> Result<(), GroupError> {
    if items.is_empty() {
        return Ok(());
    }
    let now = cloud.now();
    for (_, kind, payload) in &items {
        super::control::validate(kind, payload)?;
    }
    let queued = cloud.store.queue_instructions(&items, now).await?;
    let mut devices: Vec<&str> = queued.iter().map(|i| i.device_id.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    for d in devices {
        cloud.control.wake(d);
    }
    tracing::info!(instructions = queued.len(), "group instructions queued");
    Ok(())
}

/// Queues a `sign-in` instruction with a fresh credential for each printer.
async fn instruct_sign_in(
    cloud: &Cloud,
    account: &str,
    printers: &[String],
) -> Result<(), GroupError> {
    let now = cloud.now();
    let expires_at = now + CREDENTIAL_SECONDS;
    let mut credentials = Vec::new();
    let mut items = Vec::new();
    for (p, device) in devices_of(cloud, printers).await? {
        let credential = random_token();
        credentials.push((hash_secret(&credential), p.clone(), account.to_string()));
        let payload = json!({
            "printer": p, "account": account, "credential": credential, "expires_at": expires_at,
        });
        items.push((device, "sign-in".to_string(), payload.to_string()));
    }
    cloud
        .store
        .create_sign_in_credentials(&credentials, now, expires_at)
        .await?;
    queue_all(cloud, items).await
}

/// Queues `sign-out` then `power-save` for the printers the plan names.
async fn instruct_sign_out(
    cloud: &Cloud,
    account: &str,
    plan: &SignOutPlan,
) -> Result<(), GroupError> {
    let mut items = Vec::new();
    for (p, device) in devices_of(cloud, &plan.sign_out).await? {
        let payload = json!({"printer": p, "account": account});
        items.push((device.clone(), "sign-out".to_string(), payload.to_string()));
        if plan.power_save.contains(&p) {
            let payload = json!({"printer": p});
            items.push((device, "power-save".to_string(), payload.to_string()));
        }
    }
    queue_all(cloud, items).await
}

/// Settings push (specs/groups.md "Settings push"): queues `apply-settings` with `settings` for
/// each of `targets` (printer ids; unknown ones are skipped) and records the push, whose answers
/// are read back from the acknowledgements. Returns the push's id and the printers instructed.
pub async fn push_settings(
    cloud: &Cloud,
    account: &str,
    settings: serde_json::Map<String, serde_json::Value>,
    targets: &[String],
) -> Result<(String, Vec<String>), GroupError> {
    let now = cloud.now();
    let mut queued = Vec::new();
    for p in targets {
        let Some(printer) = cloud.store.printer(p).await? else {
            continue;
        };
        let payload = json!({"printer": p, "settings": settings});
        let i = cloud
            .control
            .queue(
                &cloud.store,
                &printer.device_id,
                "apply-settings",
                &payload.to_string(),
                now,
            )
            .await?;
        queued.push((p.clone(), i.id));
    }
    let text = serde_json::Value::Object(settings).to_string();
    let batch = cloud
        .store
        .create_settings_push(account, &text, &queued, now)
        .await?;
    Ok((batch, queued.into_iter().map(|(p, _)| p).collect()))
}

/// Runs until `stop`: every second, self-disconnection back OFF where the wait is over, and a
/// group sign-out for every session that expired (claimed by one conditional DELETE, so with
/// several instances each session is logged out once); expired credentials are purged hourly.
pub async fn maintenance(cloud: Arc<Cloud>, mut stop: watch::Receiver<bool>) {
    let mut last_purge: Option<i64> = None;
    loop {
        let now = cloud.now();
        match cloud.store.restore_self_disconnection(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("self-disconnection restored on {n} record(s)"),
            Err(e) => tracing::warn!("restoring self-disconnection failed: {e}"),
        }
        match cloud.store.claim_expired_sessions(now, 100).await {
            Ok(accounts) => {
                for a in accounts {
                    if let Err(e) = logout_account(&cloud, &a).await {
                        tracing::warn!("group sign-out of an expired session failed: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("reading expired sessions failed: {e}"),
        }
        if last_purge.is_none_or(|t| now - t >= 3600) {
            last_purge = Some(now);
            if let Err(e) = cloud.store.purge_group_secrets(now).await {
                tracing::warn!("purging sign-in credentials failed: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

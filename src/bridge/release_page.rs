//! The cloud as the release page sees it (issue 18, docs/release.md "Sign-in release" and
//! "Print-anywhere"): [`crate::web::release::CloudAccounts`] over the registration agent (the
//! cloud's address, whether the appliance is registered, the queues' cloud printer ids) and the
//! follow-me client [`super::follow_me`]. The page stays below the bridge; this adapter is built
//! in `app.rs`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;

use super::follow_me::{self, FollowMeError, UserToken};
use super::registration::{registered_printers, Agent};
use crate::ipp_printer::Printer;
use crate::web::release::{CloudAccounts, CloudError, CloudHeld, CloudToken};

/// One queue and whether it is shared through the cloud (`cloud_share`).
pub struct SharedQueue {
    pub printer: Arc<Printer>,
    pub shared: bool,
}

pub struct ReleaseCloud {
    agent: Arc<Agent>,
    queues: Vec<SharedQueue>,
}

impl ReleaseCloud {
    pub fn new(agent: Arc<Agent>, queues: Vec<SharedQueue>) -> ReleaseCloud {
        ReleaseCloud { agent, queues }
    }
}

/// What the page may say about a refusal; the cause of anything unexpected goes to the log only
/// (the follow-me errors never carry a token).
fn page_error(e: FollowMeError, what: &str) -> CloudError {
    match e {
        FollowMeError::Unauthorized => CloudError::SignedOut,
        FollowMeError::Throttled => CloudError::Throttled,
        FollowMeError::NotFound => CloudError::NotFound,
        FollowMeError::Forbidden(_) => CloudError::Forbidden,
        FollowMeError::NotHeld => CloudError::AlreadyReleased,
        e @ (FollowMeError::Http(_)
        | FollowMeError::Unexpected { .. }
        | FollowMeError::BadAnswer(_)) => {
            tracing::warn!("release page: {what} with the cloud failed: {e}");
            CloudError::Unavailable
        }
    }
}

impl CloudAccounts for ReleaseCloud {
    fn registered(&self) -> bool {
        self.agent.session().is_some()
    }

    fn sign_in(
        &self,
        email: String,
        password: String,
    ) -> BoxFuture<'static, Result<CloudToken, CloudError>> {
        let agent = self.agent.clone();
        async move {
            let base = agent.link_config().base().to_string();
            match follow_me::sign_in(agent.http(), &base, &email, &password).await {
                Ok(t) => Ok(CloudToken::new(t.secret().to_string())),
                Err(FollowMeError::Unauthorized) => Err(CloudError::BadCredentials),
                Err(e) => Err(page_error(e, "sign-in")),
            }
        }
        .boxed()
    }

    fn sign_out(&self, token: CloudToken) -> BoxFuture<'static, ()> {
        let agent = self.agent.clone();
        async move {
            let base = agent.link_config().base().to_string();
            let token = UserToken::new(token.secret().to_string());
            if let Err(e) = follow_me::sign_out(agent.http(), &base, &token).await {
                tracing::info!("release page: ending the cloud session failed: {e}");
            }
        }
        .boxed()
    }

    fn held_jobs(
        &self,
        token: CloudToken,
    ) -> BoxFuture<'static, Result<Vec<CloudHeld>, CloudError>> {
        let agent = self.agent.clone();
        async move {
            let base = agent.link_config().base().to_string();
            let token = UserToken::new(token.secret().to_string());
            let jobs = follow_me::list_held(agent.http(), &base, &token)
                .await
                .map_err(|e| page_error(e, "listing held jobs"))?;
            Ok(jobs
                .into_iter()
                .map(|j| CloudHeld {
                    id: j.id,
                    name: j.name,
                    pages: j.pages.and_then(|p| u32::try_from(p).ok()),
                    created: j.created,
                    size: u64::try_from(j.size).unwrap_or(0),
                })
                .collect())
        }
        .boxed()
    }

    fn release(
        &self,
        token: CloudToken,
        job: i64,
        printer_id: String,
    ) -> BoxFuture<'static, Result<(), CloudError>> {
        let agent = self.agent.clone();
        async move {
            let base = agent.link_config().base().to_string();
            let token = UserToken::new(token.secret().to_string());
            follow_me::release(agent.http(), &base, &token, job, &printer_id)
                .await
                .map(|_| ())
                .map_err(|e| page_error(e, "releasing a held job"))
        }
        .boxed()
    }

    fn printer_of(&self, queue: &Printer) -> Result<String, String> {
        let name = queue.description().name;
        let shared = self
            .queues
            .iter()
            .find(|q| super::proxy::same_uuid(&q.printer.uuid, &queue.uuid))
            .is_some_and(|q| q.shared);
        if !shared {
            return Err(format!(
                "{name} does not take jobs from the cloud (its administrator has not turned on \
                 cloud sharing, cloud_share), so jobs from the cloud cannot print here."
            ));
        }
        registered_printers(self.agent.state_dir())
            .into_iter()
            .find(|p| super::proxy::same_uuid(&p.uuid, &queue.uuid))
            .map(|p| p.id)
            .ok_or_else(|| {
                format!(
                    "{name} is not registered with the cloud yet, so jobs from the cloud cannot \
                     print here."
                )
            })
    }
}

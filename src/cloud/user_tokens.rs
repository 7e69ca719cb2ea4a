//! Personal access tokens on the web (`/account/tokens`): a signed-in user makes a Bearer token
//! for a print client that cannot or should not keep the password (the Infrastructure Printer
//! takes Basic or Bearer), sees it once, and revokes it. Only its SHA-256 is stored.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::accounts::{current_session, signed_in};
use super::pages::{self, duration_text, PageError, SignedIn};
use super::secrets::{ct_eq, hash_secret, random_token};
use super::Cloud;

pub const TOKENS_PATH: &str = "/account/tokens";
/// How long a personal access token is valid.
const TOKEN_SECONDS: i64 = 90 * 86_400;
/// Live tokens one user may hold.
const MAX_TOKENS: usize = 20;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub expires_in: String,
}

#[derive(Template)]
#[template(path = "cloud/tokens.html")]
pub struct TokensPage {
    pub signed_in: Option<SignedIn>,
    pub csrf: String,
    pub lifetime: String,
    pub new_token: Option<String>,
    pub notice: Option<String>,
    pub tokens: Vec<TokenRow>,
}

async fn page(
    cloud: &Cloud,
    session: &crate::store::accounts::Session,
    status: StatusCode,
    new_token: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let now = cloud.now();
    let tokens = cloud
        .store
        .user_tokens(&session.user.id, now)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            expires_in: duration_text(t.expires_at - now),
        })
        .collect();
    let mut resp = pages::render(
        status,
        &TokensPage {
            signed_in: Some(signed_in(session)),
            csrf: session.csrf_token.clone(),
            lifetime: duration_text(TOKEN_SECONDS),
            new_token,
            notice,
            tokens,
        },
    )?;
    pages::no_store(resp.headers_mut());
    Ok(resp)
}

/// GET /account/tokens.
pub async fn tokens_get(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match current_session(&cloud, &headers).await? {
        Some(s) => page(&cloud, &s, StatusCode::OK, None, None).await,
        None => Ok(pages::redirect(&format!(
            "/signin?next={}",
            pages::query_escape(TOKENS_PATH)
        ))),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
}

/// POST /account/tokens: create or revoke.
pub async fn tokens_post(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Some(session) = current_session(&cloud, &headers).await? else {
        return Ok(pages::redirect(&format!(
            "/signin?next={}",
            pages::query_escape(TOKENS_PATH)
        )));
    };
    let Ok(Form(f)) = form else {
        return page(
            &cloud,
            &session,
            StatusCode::BAD_REQUEST,
            None,
            Some("The form could not be read.".into()),
        )
        .await;
    };
    if f.csrf.is_empty() || !ct_eq(&session.csrf_token, &f.csrf) {
        return page(
            &cloud,
            &session,
            StatusCode::FORBIDDEN,
            None,
            Some("The form expired or came from elsewhere; try again.".into()),
        )
        .await;
    }
    let user = &session.user;
    let now = cloud.now();
    match f.action.as_str() {
        "create" => {
            let name: String = f
                .name
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
                .trim()
                .to_string();
            if name.is_empty() {
                return page(
                    &cloud,
                    &session,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some("Give the token a name.".into()),
                )
                .await;
            }
            if cloud.store.user_tokens(&user.id, now).await?.len() >= MAX_TOKENS {
                return page(
                    &cloud,
                    &session,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some(format!(
                        "You have {MAX_TOKENS} tokens already; revoke one first."
                    )),
                )
                .await;
            }
            let token = random_token();
            cloud
                .store
                .create_user_token(
                    &user.id,
                    &name,
                    &hash_secret(&token),
                    now,
                    now + TOKEN_SECONDS,
                )
                .await?;
            tracing::info!(user = %user.id, "personal access token created");
            page(&cloud, &session, StatusCode::OK, Some(token), None).await
        }
        "revoke" => {
            let notice = if cloud.store.revoke_user_token(&user.id, &f.id).await? {
                tracing::info!(user = %user.id, "personal access token revoked");
                "The token was revoked."
            } else {
                "No such token."
            };
            page(&cloud, &session, StatusCode::OK, None, Some(notice.into())).await
        }
        _ => {
            page(
                &cloud,
                &session,
                StatusCode::BAD_REQUEST,
                None,
                Some("Choose create or revoke.".into()),
            )
            .await
        }
    }
}

//! `POST /api/v1/device-authorizations/notify`: the cloud mails a named administrator about a
//! pending device authorization on the device's behalf (registration spec A4), for appliances
//! without a mail relay of their own. The device proves it holds the request with its
//! device_code; the cloud mails at most once per code and `[mail] max_per_address` times per
//! address and window, and only to an administrator (of the user's organisation, when the cloud
//! knows the user), so the endpoint cannot be used to mail strangers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::accounts::normalize_email;
use super::secrets::hash_secret;
use super::Cloud;
use crate::notify::messages::{self, RegistrationFacts};
use crate::store::accounts::Role;

pub const NOTIFY_PATH: &str = "/api/v1/device-authorizations/notify";
const NOTIFY_CODE: &str = "admin-notify-code";
const NOTIFY_ADDRESS: &str = "admin-notify-address";

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut resp = (
        status,
        Json(json!({"error": code, "error_description": message})),
    )
        .into_response();
    super::pages::no_store(resp.headers_mut());
    resp
}

/// Form: `client_id`, `device_code`, `admin_email`, optional `code_number` and `codes_allowed`
/// (so the mail can say it replaces an expired code).
pub async fn notify_admin(
    State(cloud): State<Arc<Cloud>>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(p)) = form else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be a form",
        );
    };
    let get = |k: &str| p.get(k).map(|v| v.trim()).unwrap_or("");
    let (client_id, device_code) = (get("client_id"), get("device_code"));
    if client_id.is_empty() || device_code.is_empty() || device_code.len() > 512 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and device_code are required",
        );
    }
    let Ok(admin_email) = normalize_email(get("admin_email")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "admin_email is not a valid email address",
        );
    };
    let number = |k: &str| get(k).parse::<u32>().ok().filter(|n| (1..=11).contains(n));
    let code_number = number("code_number").unwrap_or(1);
    let codes_allowed = number("codes_allowed")
        .unwrap_or(code_number)
        .max(code_number);
    match notify(
        &cloud,
        client_id,
        device_code,
        &admin_email,
        code_number,
        codes_allowed,
    )
    .await
    {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!("administrator notification: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again later",
            )
        }
    }
}

async fn notify(
    cloud: &Arc<Cloud>,
    client_id: &str,
    device_code: &str,
    admin_email: &str,
    code_number: u32,
    codes_allowed: u32,
) -> Result<Response, crate::store::StoreError> {
    let now = cloud.now();
    let hash = hash_secret(device_code);
    let Some(authz) = cloud
        .store
        .pending_authorization_by_device_code_hash(&hash, now)
        .await?
        .filter(|a| super::secrets::ct_eq(&a.client_id, client_id))
    else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "no pending request with this device_code",
        ));
    };
    let admin = cloud
        .store
        .user_by_email(admin_email)
        .await?
        .filter(|u| u.role == Role::Admin);
    let Some(admin) = admin else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "unknown_administrator",
            "admin_email is not an administrator here",
        ));
    };
    if !authz.user_email.is_empty() {
        if let Some(user) = cloud.store.user_by_email(&authz.user_email).await? {
            if user.org_name != admin.org_name {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "unknown_administrator",
                    "admin_email is not an administrator of the user's organisation",
                ));
            }
        }
    }
    if !cloud.mailer.enabled() {
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "mail_not_configured",
            "this service sends no mail",
        ));
    }
    // Once per code: a device that retries after a lost answer does not mail twice.
    let lifetime = (authz.expires_at - now).max(1);
    if cloud
        .store
        .throttle_hit(NOTIFY_CODE, &hash, now, lifetime)
        .await?
        > 1
    {
        return Ok(error(
            StatusCode::CONFLICT,
            "already_notified",
            "the administrator was already mailed about this code",
        ));
    }
    let window = cloud.config.limits.window_seconds;
    if cloud
        .store
        .throttle_hit(NOTIFY_ADDRESS, admin_email, now, window)
        .await?
        > cloud.config.mail.max_per_address
    {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "this address was sent too many mails lately",
        );
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from(window));
        return Ok(resp);
    }
    let url = format!("{}/device?user_code={}", cloud.public_url, authz.user_code);
    let expires = jiff::Timestamp::from_second(authz.expires_at)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let mail = messages::registration_request(
        admin_email,
        &RegistrationFacts {
            user_email: &authz.user_email,
            user_code: &authz.user_code,
            url: &url,
            appliance_name: &authz.device_name,
            make_and_model: &authz.device_make_and_model,
            uuid: &authz.device_uuid,
            location: &authz.device_location,
            expires: &expires,
            code_number,
            codes_allowed,
        },
    );
    match cloud.mailer.send(mail).await {
        Ok(()) => {
            tracing::info!(request = %authz.id, admin = %admin.id, "administrator mailed for a device");
            Ok((StatusCode::ACCEPTED, Json(json!({"status": "sent"}))).into_response())
        }
        Err(e) => {
            tracing::warn!(request = %authz.id, "cannot mail the administrator: {e}");
            Ok(error(
                StatusCode::BAD_GATEWAY,
                "mail_failed",
                "the mail server did not take the message",
            ))
        }
    }
}

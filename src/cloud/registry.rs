//! The printer registry API (HTTPS/JSON) for approved devices: `POST /api/v1/printers` registers
//! the device's printers and answers with their ids and Infrastructure Printer URIs;
//! `GET /api/v1/printers` lists them. Authenticated by the device's bearer access token.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::device_auth::bearer_device;
use super::Cloud;
use crate::store::registry::{NewPrinter, PrinterRow};
use crate::store::StoreError;

pub const PRINTERS_PATH: &str = "/api/v1/printers";
/// Path of an Infrastructure Printer; the printer id follows.
pub const IPP_PREFIX: &str = "/ipp/print/";
/// Printers one registration request may carry.
pub const MAX_PRINTERS_PER_REQUEST: usize = 16;
const MAX_TEXT: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            RegistryError::Invalid(d) => (StatusCode::BAD_REQUEST, "invalid_request", d.clone()),
            RegistryError::Conflict(d) => (StatusCode::CONFLICT, "conflict", d.clone()),
            RegistryError::Store(cause) => {
                tracing::error!("registry request failed: {cause}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error; try again later".to_string(),
                )
            }
        };
        (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    }
}

/// A printer as the device describes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterRequest {
    /// printer-uuid, `urn:uuid:...` or bare.
    pub uuid: String,
    pub name: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub info: String,
    #[serde(default)]
    pub make_and_model: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub printers: Vec<PrinterRequest>,
}

/// The URIs one Infrastructure Printer is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterUris {
    /// `{public_url}/ipp/print/{id}`
    pub http: String,
    /// The same resource as `ipp://` (for an http public URL) or `ipps://` (https), with the
    /// port spelled out because IPP's default port is not HTTP's.
    pub ipp: String,
    /// "none" or "tls" (uri-security-supported).
    pub security: &'static str,
    /// The `ipps://` form too, when the public URL is http but the listener also speaks TLS on
    /// the same port.
    pub secure: Option<String>,
}

impl PrinterUris {
    /// printer-uri-supported with its uri-security-supported values, in order.
    pub fn supported(&self) -> Vec<(&str, &'static str)> {
        let mut v = vec![(self.ipp.as_str(), self.security)];
        if let Some(s) = &self.secure {
            v.push((s.as_str(), "tls"));
        }
        v
    }
}

/// The URIs of printer `id` of this service.
pub fn uris_for(cloud: &Cloud, id: &str) -> PrinterUris {
    let s = &cloud.config.server;
    printer_uris(
        &cloud.public_url,
        id,
        s.tls_self_signed || s.tls_certificate.is_some(),
    )
}

/// The URIs of printer `id` under `public_url` (no trailing slash); `tls` when the listener
/// speaks TLS on the same port.
pub fn printer_uris(public_url: &str, id: &str, tls: bool) -> PrinterUris {
    let http = format!("{public_url}{IPP_PREFIX}{id}");
    let (scheme, rest, port, security) = if let Some(r) = public_url.strip_prefix("https://") {
        ("ipps", r, 443, "tls")
    } else {
        let r = public_url.strip_prefix("http://").unwrap_or(public_url);
        ("ipp", r, 80, "none")
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']'));
    let authority = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{port}")
    };
    let secure =
        (tls && scheme == "ipp").then(|| format!("ipps://{authority}{path}{IPP_PREFIX}{id}"));
    PrinterUris {
        http,
        ipp: format!("{scheme}://{authority}{path}{IPP_PREFIX}{id}"),
        security,
        secure,
    }
}

/// `urn:uuid:` + the lower-cased UUID, or `None` when it is not a UUID.
pub fn normalize_uuid(input: &str) -> Option<String> {
    let bare = input
        .trim()
        .strip_prefix("urn:uuid:")
        .unwrap_or(input.trim());
    let u = uuid::Uuid::try_parse(bare).ok()?;
    Some(format!("urn:uuid:{}", u.hyphenated()))
}

fn text(field: &str, value: &str) -> Result<String, RegistryError> {
    let v = value.trim();
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(RegistryError::Invalid(format!(
            "{field} must be at most {MAX_TEXT} characters without control characters"
        )));
    }
    Ok(v.to_string())
}

fn describe(cloud: &Cloud, p: &PrinterRow, users: Vec<String>) -> Value {
    let uris = uris_for(cloud, &p.id);
    json!({
        "id": p.id,
        "uuid": p.uuid,
        "name": p.name,
        "location": p.location,
        "info": p.info,
        "make_and_model": p.make_and_model,
        "printer_uri": uris.ipp,
        "printer_uri_supported": uris.supported().iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        "url": uris.http,
        "users": users,
    })
}

/// POST /api/v1/printers: registers (or re-registers) the device's printers.
pub async fn register(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    body: Result<Json<RegisterRequest>, JsonRejection>,
) -> Result<Response, RegistryError> {
    let device = match bearer_device(&cloud, &headers).await? {
        Ok(d) => d,
        Err(resp) => return Ok(resp),
    };
    let Json(req) = body.map_err(|e| RegistryError::Invalid(e.body_text()))?;
    if req.printers.is_empty() || req.printers.len() > MAX_PRINTERS_PER_REQUEST {
        return Err(RegistryError::Invalid(format!(
            "printers must list 1 to {MAX_PRINTERS_PER_REQUEST} printers"
        )));
    }
    let mut new = Vec::new();
    for p in &req.printers {
        let uuid = normalize_uuid(&p.uuid)
            .ok_or_else(|| RegistryError::Invalid("uuid must be a UUID".into()))?;
        let name = text("name", &p.name)?;
        if name.is_empty() {
            return Err(RegistryError::Invalid("name must not be empty".into()));
        }
        new.push(NewPrinter {
            org_id: device.org_id.clone(),
            device_id: device.id.clone(),
            uuid,
            name,
            location: text("location", &p.location)?,
            info: text("info", &p.info)?,
            make_and_model: text("make_and_model", &p.make_and_model)?,
        });
    }
    let now = cloud.now();
    let mut out = Vec::new();
    for p in &new {
        let row = match cloud.store.register_printer(p, now).await {
            Ok(r) => r,
            Err(StoreError::Duplicate(_)) => {
                return Err(RegistryError::Conflict(format!(
                    "printer {} is registered by another device",
                    p.uuid
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let users = cloud.store.printer_users(&row.id).await?;
        tracing::info!(printer = %row.id, device = %device.id, "printer registered");
        out.push(describe(&cloud, &row, users));
    }
    Ok((StatusCode::OK, Json(json!({ "printers": out }))).into_response())
}

/// GET /api/v1/printers: the device's printers.
pub async fn list(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
) -> Result<Response, RegistryError> {
    let device = match bearer_device(&cloud, &headers).await? {
        Ok(d) => d,
        Err(resp) => return Ok(resp),
    };
    let mut out = Vec::new();
    for row in cloud.store.printers_of_device(&device.id).await? {
        let users = cloud.store.printer_users(&row.id).await?;
        out.push(describe(&cloud, &row, users));
    }
    Ok(Json(json!({ "printers": out })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_spell_out_the_port() {
        let u = printer_uris("http://127.0.0.1:8080", "p1", false);
        assert_eq!(u.secure, None);
        assert_eq!(u.http, "http://127.0.0.1:8080/ipp/print/p1");
        assert_eq!(u.ipp, "ipp://127.0.0.1:8080/ipp/print/p1");
        assert_eq!(u.security, "none");
        let u = printer_uris("https://print.example.com/cloud", "p2", true);
        assert_eq!(u.secure, None, "the ipps form is already the primary one");
        assert_eq!(u.http, "https://print.example.com/cloud/ipp/print/p2");
        assert_eq!(u.ipp, "ipps://print.example.com:443/cloud/ipp/print/p2");
        assert_eq!(u.security, "tls");
        let u = printer_uris("http://[::1]", "p3", true);
        assert_eq!(u.ipp, "ipp://[::1]:80/ipp/print/p3");
        assert_eq!(u.secure.as_deref(), Some("ipps://[::1]:80/ipp/print/p3"));
        assert_eq!(
            u.supported(),
            vec![
                ("ipp://[::1]:80/ipp/print/p3", "none"),
                ("ipps://[::1]:80/ipp/print/p3", "tls")
            ]
        );
    }

    #[test]
    fn uuids() {
        assert_eq!(
            normalize_uuid("6F1C2A4E-1B7D-4C3E-9A51-0E2F3D4C5B6A").as_deref(),
            Some("urn:uuid:6f1c2a4e-1b7d-4c3e-9a51-0e2f3d4c5b6a")
        );
        assert!(normalize_uuid("urn:uuid:nope").is_none());
    }
}

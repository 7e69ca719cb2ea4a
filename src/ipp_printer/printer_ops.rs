//! Printer operations: Get-Printer-Attributes, Get-Printer-Supported-Values, Set-Printer-Attributes,
//! Pause/Resume/Enable/Disable-Printer, Hold-New-Jobs, Release-Held-New-Jobs, Restart-Printer and
//! Identify-Printer (RFC 8011 §4.2.5, PWG 5100.11, PWG 5100.13 §4.1).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::{Printer, RequestContext};
use crate::codec::ipp::{date_time, encode_attribute, tag, Attribute, Message, Value};
use crate::codec::ipp_attr::{
    int, kw, name, op_attr, op_str, text, uri, PrinterAttributeSelection,
};
use crate::codec::ipp_status::{self as status, Status};
use crate::model::job::{JobEvent, JobState};

/// Free space of the output storage in percent, measured by the app (one figure for the
/// appliance, shared by its queues' [`super::ServiceConfig`]); reported as a supply.
#[derive(Debug, Clone)]
pub struct StorageFree(Arc<AtomicU8>);

impl Default for StorageFree {
    fn default() -> StorageFree {
        StorageFree(Arc::new(AtomicU8::new(100)))
    }
}

impl StorageFree {
    pub fn percent(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set_percent(&self, percent: u8) {
        self.0.store(percent.min(100), Ordering::Relaxed);
    }
}

fn or_default(s: &str, fallback: &str) -> String {
    let t = s.trim();
    if t.is_empty() {
        fallback.to_string()
    } else {
        t.to_string()
    }
}

impl Printer {
    /// Attributes that depend on the request (host in URIs) or on state.
    fn dynamic_attributes(&self, ctx: &RequestContext) -> Vec<Attribute> {
        let desc = self.description();
        let st = self.status.read().expect("printer lock").clone();
        let (state, reasons) = self.printer_state();
        let now = self.clock.now();
        let queued = self.spool.count_where(|j| !j.status.state.is_terminal());
        let web = ctx.http_url(&self.config.web_path);
        let free = self.config.storage_free.percent();
        // RFC 8011 §5.4.1-3: one entry per URI, security and authentication in step.
        let mut uris = vec![uri(&format!("ipp://{}{}", ctx.host, self.config.resource))];
        let mut security = vec![kw("none")];
        if self.config.tls {
            uris.push(uri(&format!("ipps://{}{}", ctx.host, self.config.resource)));
            security.push(kw("tls"));
        }
        // RFC 8011 §5.4.2: "basic" where printing asks for a password (over TLS; on plain ipp://
        // only when there is no TLS, since remote clients are sent to TLS before they may send
        // credentials), else requesting-user-name as CUPS says for an open queue.
        let authentication = (0..uris.len())
            .map(|i| {
                let secure = i == 1 || !self.config.tls;
                kw(if self.config.print_requires_auth && secure {
                    "basic"
                } else {
                    "requesting-user-name"
                })
            })
            .collect();
        let mut v = vec![
            Attribute::set("printer-uri-supported", uris),
            Attribute::set("uri-security-supported", security),
            Attribute::set("uri-authentication-supported", authentication),
            Attribute::new("printer-name", name(&desc.name)),
            Attribute::new("printer-info", text(&or_default(&desc.info, &desc.name))),
            Attribute::new("printer-location", text(&or_default(&desc.location, "Not configured"))),
            Attribute::new("printer-organization", text(&or_default(&desc.organization, "Not configured"))),
            Attribute::new("printer-organizational-unit", text(&or_default(&desc.organizational_unit, "Not configured"))),
            Attribute::new(
                "printer-geo-location",
                if desc.geo_location.is_empty() { Value::OutOfBand(tag::UNKNOWN) } else { uri(&desc.geo_location) },
            ),
            Attribute::new("printer-more-info", uri(&web)),
            Attribute::new("printer-supply-info-uri", uri(&web)),
            Attribute::set(
                "printer-icons",
                ["48", "128", "512"].iter().map(|s| uri(&ctx.http_url(&format!("/icons/printer-{s}.png")))).collect(),
            ),
            Attribute::new("printer-uuid", uri(&self.uuid)),
            Attribute::new("printer-state", Value::Enum(state)),
            Attribute::set("printer-state-reasons", reasons.iter().map(|r| kw(r)).collect()),
            Attribute::new(
                "printer-state-message",
                text(&super::state_message_of(&st).unwrap_or_else(|| {
                    match state {
                        3 => "Ready to print.",
                        4 => "Printing.",
                        _ => "Paused.",
                    }
                    .to_string()
                })),
            ),
            Attribute::new("printer-is-accepting-jobs", Value::Boolean(st.accepting)),
            Attribute::new("queued-job-count", int(queued as i32)),
            Attribute::new("printer-up-time", int(now as i32)),
            Attribute::new("printer-current-time", date_time(now)),
            Attribute::new("printer-state-change-time", int(st.state_change_time as i32)),
            Attribute::new("printer-state-change-date-time", date_time(st.state_change_time)),
            Attribute::new("printer-config-change-time", int(st.config_change_time as i32)),
            Attribute::new("printer-config-change-date-time", date_time(st.config_change_time)),
            Attribute::new(
                "printer-message-from-operator",
                text(&or_default(&st.message_from_operator, "No message.")),
            ),
            // PWG 5100.9: one alert line per condition; "other" while nothing is wrong.
            Attribute::new(
                "printer-alert",
                Value::OctetString(
                    b"code=other;severity=other;group=generalPrinter".to_vec(),
                ),
            ),
            Attribute::new("printer-alert-description", text(if state == 5 { "Paused." } else { "No alerts." })),
            Attribute::new(
                "printer-supply",
                Value::OctetString(
                    format!(
                        "index=1;class=receptacleThatIsFilled;type=other;unit=percent;maxcapacity=100;level={free};colorantname=unknown;"
                    )
                    .into_bytes(),
                ),
            ),
            Attribute::new("printer-supply-description", text("Spool storage (free space)")),
        ];
        v.retain(|a| !a.values.is_empty());
        v
    }

    pub(super) async fn get_printer_attributes(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        if let Some(a) = op_attr(&req, "document-format") {
            if !matches!(a.values.as_slice(), [Value::MimeMediaType(_)]) {
                return Err(Status::bad_request(
                    "document-format must be one mimeMediaType",
                ));
            }
        }
        let selection = PrinterAttributeSelection::new(&req);
        let selected = |n: &str| selection.selects(n);

        let profile = self.profile();
        // A release queue offers a PIN (docs/release.md); its job-creation-attributes-supported
        // replaces the static one.
        let release = self.spool.release_policy().mode != crate::model::release::ReleaseMode::None;
        let release_attrs = if release {
            super::attributes::release_attributes()
        } else {
            Vec::new()
        };
        let mut raw = Vec::with_capacity(16 * 1024);
        for (n, bytes) in &profile.encoded_static {
            if selected(n) && !release_attrs.iter().any(|a| &a.name == n) {
                raw.extend_from_slice(bytes);
            }
        }
        for a in self
            .dynamic_attributes(ctx)
            .into_iter()
            .chain(release_attrs)
        {
            if selected(&a.name) {
                encode_attribute(&a, &mut raw);
            }
        }
        // media-col-database only when named: it is large and most clients never need it.
        if selection.names("media-col-database") {
            raw.extend_from_slice(&profile.media_col_database);
        }
        let mut resp = Printer::ok();
        resp.encoded_groups.push((tag::PRINTER, raw));
        Ok(resp)
    }

    fn check_target_path(&self, req: &Message) -> Result<(), Status> {
        let Some(u) = op_str(req, "printer-uri") else {
            return Err(Status::bad_request(
                "missing printer-uri operation attribute",
            ));
        };
        let path = u
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_else(|| "/".into());
        if path.split('?').next() != Some(self.config.resource.as_str()) {
            return Err(Status::not_found(format!("no printer at '{u}'")));
        }
        Ok(())
    }

    /// Get-Printer-Supported-Values (RFC 3380 §4.3): the -supported attributes of settable ones.
    pub(super) async fn get_printer_supported_values(
        &self,
        req: Message,
        _ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        let mut resp = Printer::ok();
        let g = resp.group_mut(tag::PRINTER);
        for n in [
            "printer-geo-location",
            "printer-info",
            "printer-location",
            "printer-name",
            "printer-organization",
            "printer-organizational-unit",
        ] {
            let syntax = if n == "printer-geo-location" {
                tag::URI
            } else {
                tag::TEXT
            };
            g.push(Attribute::new(
                format!("{n}-supported"),
                Value::OutOfBand(tag::ADMIN_DEFINE),
            ));
            let _ = syntax;
        }
        Ok(resp)
    }

    /// Set-Printer-Attributes (RFC 3380 §4.1) for the settable description.
    pub(super) async fn set_printer_attributes(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        self.require_admin(ctx)?;
        let attrs = req
            .group(tag::PRINTER)
            .map(|g| g.attributes.clone())
            .unwrap_or_default();
        if attrs.is_empty() {
            return Err(Status::bad_request("no printer attributes to set"));
        }
        let mut desc = self.description();
        let mut bad = Vec::new();
        for a in &attrs {
            let v = match a.values.as_slice() {
                [v] => v.as_str().map(str::to_string),
                _ => None,
            };
            let text_ok = |v: &Option<String>| {
                v.as_ref()
                    .is_some_and(|s| s.len() <= 127 && !s.chars().any(char::is_control))
            };
            match (a.name.as_str(), a.first()) {
                ("printer-name", Some(Value::Name(_) | Value::NameLang { .. }))
                    if text_ok(&v) && v.as_ref().is_some_and(|s| !s.trim().is_empty()) =>
                {
                    desc.name = v.unwrap_or_default().trim().to_string()
                }
                ("printer-info", Some(Value::Text(_) | Value::TextLang { .. })) if text_ok(&v) => {
                    desc.info = v.unwrap_or_default()
                }
                ("printer-location", Some(Value::Text(_) | Value::TextLang { .. }))
                    if text_ok(&v) =>
                {
                    desc.location = v.unwrap_or_default()
                }
                ("printer-organization", Some(Value::Text(_) | Value::TextLang { .. }))
                    if text_ok(&v) =>
                {
                    desc.organization = v.unwrap_or_default()
                }
                ("printer-organizational-unit", Some(Value::Text(_) | Value::TextLang { .. }))
                    if text_ok(&v) =>
                {
                    desc.organizational_unit = v.unwrap_or_default()
                }
                ("printer-geo-location", Some(Value::Uri(g)))
                    if g.starts_with("geo:") && g.len() < 256 =>
                {
                    desc.geo_location = g.clone()
                }
                _ => bad.push(a.clone()),
            }
        }
        if !bad.is_empty() {
            // Atomic: nothing changes when anything is refused (RFC 3380 §4.1).
            let mut s = Status::new(
                status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                "these printer attributes cannot be set to those values",
            );
            s.unsupported = bad;
            return Err(s);
        }
        self.update_description(desc).await?;
        Ok(Printer::ok())
    }

    /// Replaces the description, persists what changed (those values then win over the
    /// configuration file's) and marks a configuration change.
    pub async fn update_description(
        &self,
        desc: crate::model::printer::Description,
    ) -> Result<(), Status> {
        let old = self.description();
        for (k, v, was) in [
            ("printer-name", &desc.name, &old.name),
            ("printer-info", &desc.info, &old.info),
            ("printer-location", &desc.location, &old.location),
            (
                "printer-organization",
                &desc.organization,
                &old.organization,
            ),
            (
                "printer-organizational-unit",
                &desc.organizational_unit,
                &old.organizational_unit,
            ),
            (
                "printer-geo-location",
                &desc.geo_location,
                &old.geo_location,
            ),
        ] {
            if v != was {
                self.spool.set_setting(k, v).await?;
            }
        }
        *self.desc.write().expect("printer lock") = desc;
        self.status
            .write()
            .expect("printer lock")
            .config_change_time = self.clock.now();
        self.post_printer_event("printer-config-changed");
        Ok(())
    }

    /// Printer administration needs an administrator's credentials: without any, the status is
    /// client-error-not-authenticated, which the net layer turns into HTTP 401 with a Basic
    /// challenge so that clients ask for them (as CUPS does); a signed-in user who is not an
    /// administrator gets client-error-forbidden.
    pub(crate) fn require_admin(&self, ctx: &RequestContext) -> Result<(), Status> {
        match (&ctx.authenticated_user, ctx.is_admin) {
            (_, true) => Ok(()),
            (None, false) => Err(Status::new(
                status::NOT_AUTHENTICATED,
                "this operation needs an administrator's user name and password",
            )),
            (Some(user), false) => Err(Status::new(
                status::FORBIDDEN,
                format!("user '{user}' is not an administrator"),
            )),
        }
    }

    pub(super) async fn pause_printer(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        self.require_admin(ctx)?;
        self.set_paused(true);
        self.post_printer_event("printer-state-changed");
        Ok(Printer::ok())
    }

    pub(super) async fn resume_printer(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        self.require_admin(ctx)?;
        self.set_paused(false);
        self.post_printer_event("printer-state-changed");
        Ok(Printer::ok())
    }

    /// Enable-Printer / Disable-Printer (PWG 5100.11 §4.7): printer-is-accepting-jobs.
    pub(super) async fn set_accepting(
        &self,
        req: Message,
        ctx: &RequestContext,
        accepting: bool,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        self.require_admin(ctx)?;
        {
            let mut s = self.status.write().expect("printer lock");
            s.accepting = accepting;
            s.state_change_time = self.clock.now();
        }
        tracing::info!(
            "printer {} jobs",
            if accepting { "accepts" } else { "refuses" }
        );
        self.post_printer_event("printer-state-changed");
        Ok(Printer::ok())
    }

    /// Hold-New-Jobs / Release-Held-New-Jobs (PWG 5100.11 §4.8-4.9).
    pub(super) async fn hold_new_jobs(
        &self,
        req: Message,
        ctx: &RequestContext,
        hold: bool,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        self.require_admin(ctx)?;
        {
            let mut s = self.status.write().expect("printer lock");
            s.hold_new_jobs = hold;
            s.state_change_time = self.clock.now();
        }
        if !hold {
            for job in self.spool.list() {
                if job.status.state == JobState::PendingHeld
                    && job
                        .status
                        .reasons
                        .iter()
                        .any(|r| r == "job-hold-until-specified")
                    && !job.attributes.iter().any(|a| {
                        a.name == "job-hold-until"
                            && a.first()
                                .and_then(Value::as_str)
                                .is_some_and(|v| v != "no-hold")
                    })
                {
                    let _ = self.spool.transition(job.id, JobEvent::Release).await;
                }
            }
        }
        self.post_printer_event("printer-state-changed");
        Ok(Printer::ok())
    }

    /// Restart-Printer (PWG 5100.11 §4.10): back to a clean, accepting, running state.
    pub(super) async fn restart_printer(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        self.require_admin(ctx)?;
        {
            let mut s = self.status.write().expect("printer lock");
            s.accepting = true;
            s.hold_new_jobs = false;
            s.identify_requested = false;
        }
        self.set_paused(false);
        self.post_printer_event("printer-state-changed");
        Ok(Printer::ok())
    }

    /// Identify-Printer (PWG 5100.13 §4.1): shown as printer-state-reasons and logged, since the
    /// appliance has no lamp or speaker; the web page highlights it.
    pub(super) async fn identify_printer(
        &self,
        req: Message,
        _ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_target_path(&req)?;
        if let Some(a) = op_attr(&req, "identify-actions") {
            let bad: Vec<Value> = a
                .values
                .iter()
                .filter(|v| {
                    !matches!(v.as_str(), Some("display" | "sound"))
                        || !matches!(v, Value::Keyword(_))
                })
                .cloned()
                .collect();
            if !bad.is_empty() {
                let mut s = Status::new(
                    status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                    "unsupported identify-actions",
                );
                s.unsupported.push(Attribute::set("identify-actions", bad));
                return Err(s);
            }
        }
        let message = op_str(&req, "message").map(|m| m.chars().take(127).collect::<String>());
        tracing::info!(
            "identify requested{}",
            message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        self.status
            .write()
            .expect("printer lock")
            .identify_requested = true;
        Ok(Printer::ok())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fallback_never_empty() {
        assert_eq!(super::or_default("  ", "x"), "x");
        assert_eq!(super::or_default("a", "x"), "a");
    }
}

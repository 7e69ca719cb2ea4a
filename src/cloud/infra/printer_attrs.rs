//! The attributes of an Infrastructure Printer: its own (URIs, state, what the cloud supports)
//! and those aggregated from its output devices (PWG 5100.18 §5), and how attributes are stored
//! in the database.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::Ctx;
use crate::cloud::notify::{EVENT_LIFE_SECONDS, NOTIFY_EVENTS};
use crate::codec::ipp::{
    date_time, encode_message, parse_message, Attribute, Group, Limits, Message, Value,
};
use crate::codec::ipp_attr::{en, int, kw, kws, name, text, uri};
use crate::codec::ipp_status::Status;
use crate::model::job::JobState;
use crate::store::infra::WhichJobs;

/// Printer attributes the cloud answers itself; an output device's values for them are ignored.
pub(super) const CLOUD_OWNED: &[&str] = &[
    "charset-configured",
    "charset-supported",
    "generated-natural-language-supported",
    "ipp-features-supported",
    "ipp-versions-supported",
    "ippget-event-life",
    "job-ids-supported",
    "job-privacy-attributes",
    "job-privacy-scope",
    "multiple-document-jobs-supported",
    "multiple-operation-time-out",
    "natural-language-configured",
    "notify-events-default",
    "notify-events-supported",
    "notify-lease-duration-default",
    "notify-lease-duration-supported",
    "notify-max-events-supported",
    "notify-pull-method-supported",
    "operations-supported",
    "printer-config-change-date-time",
    "printer-config-change-time",
    "printer-current-time",
    "printer-icons",
    "printer-info",
    "printer-is-accepting-jobs",
    "printer-location",
    "printer-more-info",
    "printer-name",
    "printer-state",
    "printer-state-change-date-time",
    "printer-state-change-time",
    "printer-state-message",
    "printer-state-reasons",
    "printer-supply-info-uri",
    "printer-up-time",
    "printer-uri-supported",
    "printer-uuid",
    "queued-job-count",
    "uri-authentication-supported",
    "uri-security-supported",
    "which-jobs-supported",
    "compression-supported",
    "identify-actions-default",
    "identify-actions-supported",
];

/// Attributes as stored: base64 of an IPP message with one group.
pub fn encode_attributes(group_tag: u8, attrs: &[Attribute]) -> String {
    let mut m = Message::new((2, 0), 0, 1);
    m.groups.push(Group {
        tag: group_tag,
        attributes: attrs.to_vec(),
    });
    let mut out = Vec::new();
    encode_message(&m, &mut out);
    STANDARD.encode(out)
}

pub fn decode_attributes(stored: &str) -> Vec<Attribute> {
    STANDARD
        .decode(stored)
        .ok()
        .and_then(|b| parse_message(&b, &Limits::default()).ok())
        .and_then(|(m, _)| m.groups.into_iter().next())
        .map(|g| g.attributes)
        .unwrap_or_default()
}

/// What the output devices say about their condition (PWG 5100.18 §5: the Infrastructure
/// Printer's state follows its output devices').
#[derive(Debug, Default)]
pub(super) struct DeviceCondition {
    devices: usize,
    /// Output devices reporting printer-state stopped.
    stopped: usize,
    /// Their printer-state-reasons other than "none", without duplicates.
    reasons: Vec<String>,
}

/// The printer's attributes aggregated from its output devices (PWG 5100.18 §5).
pub(super) async fn device_attributes(
    cx: &Ctx<'_>,
) -> Result<(Vec<Attribute>, DeviceCondition), Status> {
    let devices = cx.cloud.store.output_devices(&cx.printer.id).await?;
    Ok(merge_device_attributes(
        devices.iter().map(|d| decode_attributes(&d.attributes)),
    ))
}

/// Merges the output devices' attributes (PWG 5100.18 §5): a `-supported` or `-ready` attribute
/// is the union of the devices' values; any other the value of the first device that has it.
/// Attributes the cloud answers itself are left out; the devices' state goes to the condition.
fn merge_device_attributes(
    devices: impl ExactSizeIterator<Item = Vec<Attribute>>,
) -> (Vec<Attribute>, DeviceCondition) {
    let mut merged: Vec<Attribute> = Vec::new();
    let mut condition = DeviceCondition {
        devices: devices.len(),
        ..DeviceCondition::default()
    };
    for attrs in devices {
        for a in attrs {
            match (a.name.as_str(), a.values.as_slice()) {
                ("printer-state", [Value::Enum(5)]) => condition.stopped += 1,
                ("printer-state-reasons", values) => {
                    for r in values.iter().filter_map(Value::as_str) {
                        let ok = r != "none"
                            && r.len() <= 255
                            && r.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                        if ok
                            && !condition.reasons.iter().any(|x| x == r)
                            && condition.reasons.len() < 32
                        {
                            condition.reasons.push(r.to_string());
                        }
                    }
                }
                _ => {}
            }
            if CLOUD_OWNED.contains(&a.name.as_str()) {
                continue;
            }
            match merged.iter_mut().find(|m| m.name == a.name) {
                None => merged.push(a),
                Some(m) if a.name.ends_with("-supported") || a.name.ends_with("-ready") => {
                    for v in a.values {
                        if !m.values.contains(&v) && m.values.len() < 1024 {
                            m.values.push(v);
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }
    (merged, condition)
}

pub(super) fn find<'a>(attrs: &'a [Attribute], n: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == n)
}

pub(super) const DEFAULT_FORMATS: &[&str] = &[
    "application/octet-stream",
    "application/pdf",
    "image/jpeg",
    "image/pwg-raster",
    "image/urf",
];

pub(super) async fn full_printer_attributes(cx: &Ctx<'_>) -> Result<Vec<Attribute>, Status> {
    let (mut attrs, condition) = device_attributes(cx).await?;
    let p = &cx.printer;
    let now = cx.now();
    let queued = cx.cloud.store.active_job_count(&p.id).await?;
    let processing = !cx
        .cloud
        .store
        .jobs(
            &p.id,
            WhichJobs::State(JobState::Processing as i64),
            None,
            1,
        )
        .await?
        .is_empty();
    // Stopped when no output device is there or all of them are stopped; the reasons are the
    // output devices' own.
    let state = if condition.devices == 0 || condition.stopped == condition.devices {
        5
    } else if processing {
        4
    } else {
        3
    };
    let mut reasons = condition.reasons;
    if condition.devices == 0 {
        reasons.push("offline-report".into());
    }
    if reasons.is_empty() {
        reasons.push("none".into());
    }
    let mut own = vec![
        Attribute::set(
            "printer-uri-supported",
            cx.uris.supported().iter().map(|(u, _)| uri(u)).collect(),
        ),
        Attribute::set(
            "uri-security-supported",
            cx.uris.supported().iter().map(|(_, s)| kw(s)).collect(),
        ),
        Attribute::set(
            "uri-authentication-supported",
            cx.uris.supported().iter().map(|_| kw("basic")).collect(),
        ),
        Attribute::new("printer-name", name(&p.name)),
        Attribute::new("printer-location", text(&p.location)),
        Attribute::new("printer-info", text(&p.info)),
        Attribute::new("printer-uuid", uri(&p.uuid)),
        Attribute::new(
            "printer-more-info",
            uri(&format!("{}/", cx.cloud.public_url)),
        ),
        Attribute::new("printer-state", en(state)),
        Attribute::set(
            "printer-state-reasons",
            reasons.iter().map(|r| kw(r)).collect(),
        ),
        Attribute::new("printer-state-message", text("")),
        Attribute::new("printer-is-accepting-jobs", Value::Boolean(true)),
        Attribute::new("queued-job-count", int(queued.min(i32::MAX as i64) as i32)),
        Attribute::new("printer-up-time", int(up_time(now))),
        Attribute::new("printer-current-time", date_time(now)),
        Attribute::new(
            "printer-state-change-time",
            int(up_time(p.config_changed_at)),
        ),
        Attribute::new(
            "printer-state-change-date-time",
            date_time(p.config_changed_at),
        ),
        Attribute::new(
            "printer-config-change-time",
            int(up_time(p.config_changed_at)),
        ),
        Attribute::new(
            "printer-config-change-date-time",
            date_time(p.config_changed_at),
        ),
        Attribute::new("charset-configured", Value::Charset("utf-8".into())),
        Attribute::set(
            "charset-supported",
            vec![
                Value::Charset("utf-8".into()),
                Value::Charset("us-ascii".into()),
            ],
        ),
        Attribute::new(
            "natural-language-configured",
            Value::NaturalLanguage("en".into()),
        ),
        Attribute::new(
            "generated-natural-language-supported",
            Value::NaturalLanguage("en".into()),
        ),
        Attribute::set("ipp-versions-supported", kws(&["1.0", "1.1", "2.0"])),
        Attribute::set(
            "ipp-features-supported",
            kws(&["infrastructure-printer", "ipp-everywhere"]),
        ),
        Attribute::set(
            "operations-supported",
            super::OPERATIONS
                .iter()
                .map(|o| en(o.enum_value()))
                .collect(),
        ),
        Attribute::set("compression-supported", kws(&["none", "gzip", "deflate"])),
        Attribute::new("job-ids-supported", Value::Boolean(true)),
        Attribute::new("multiple-document-jobs-supported", Value::Boolean(true)),
        Attribute::new("multiple-operation-time-out", int(60)),
        Attribute::set(
            "which-jobs-supported",
            kws(&[
                "completed",
                "not-completed",
                "all",
                "aborted",
                "canceled",
                "pending",
                "processing",
                "fetchable",
            ]),
        ),
        Attribute::new("job-privacy-attributes", kw("default")),
        Attribute::new("job-privacy-scope", kw("owner")),
        Attribute::set("notify-events-supported", kws(NOTIFY_EVENTS)),
        Attribute::new("notify-events-default", kw("job-completed")),
        Attribute::new("notify-pull-method-supported", kw("ippget")),
        Attribute::new("notify-lease-duration-default", int(3600)),
        Attribute::new(
            "notify-lease-duration-supported",
            Value::Range(0, 86_400 * 7),
        ),
        Attribute::new("notify-max-events-supported", int(100)),
        Attribute::new("ippget-event-life", int(EVENT_LIFE_SECONDS as i32)),
    ];
    if find(&attrs, "printer-make-and-model").is_none() {
        let mm = if p.make_and_model.is_empty() {
            "printbridge cloud printer"
        } else {
            &p.make_and_model
        };
        own.push(Attribute::new("printer-make-and-model", text(mm)));
    }
    if find(&attrs, "document-format-supported").is_none() {
        own.push(Attribute::set(
            "document-format-supported",
            DEFAULT_FORMATS
                .iter()
                .map(|f| Value::MimeMediaType(f.to_string()))
                .collect(),
        ));
    }
    for (n, v) in [
        (
            "document-format-default",
            Value::MimeMediaType("application/octet-stream".into()),
        ),
        ("pdl-override-supported", kw("attempted")),
        ("color-supported", Value::Boolean(false)),
        ("copies-default", int(1)),
        ("copies-supported", Value::Range(1, 1)),
        ("job-creation-attributes-supported", kw("copies")),
    ] {
        if find(&attrs, n).is_none() {
            own.push(Attribute::new(n, v));
        }
    }
    attrs.extend(own);
    Ok(attrs)
}

/// printer-up-time: seconds since the epoch (an up-time that is the same on every instance and
/// never goes back), clamped to the integer range.
pub(super) fn up_time(t: i64) -> i32 {
    t.clamp(1, i32::MAX as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_devices_attributes_are_merged() {
        let a = vec![
            Attribute::set("sides-supported", vec![kw("one-sided")]),
            Attribute::new("printer-make-and-model", text("A")),
            Attribute::new("printer-state", en(5)),
            Attribute::set(
                "printer-state-reasons",
                vec![kw("media-empty-error"), kw("bad reason!")],
            ),
            Attribute::new("printer-name", name("not the cloud's")),
        ];
        let b = vec![
            Attribute::set(
                "sides-supported",
                vec![kw("one-sided"), kw("two-sided-long-edge")],
            ),
            Attribute::new("printer-make-and-model", text("B")),
            Attribute::new("printer-state", en(3)),
            Attribute::set("printer-state-reasons", vec![kw("none")]),
        ];
        let (merged, condition) = merge_device_attributes(vec![a, b].into_iter());
        let get = |n: &str| find(&merged, n).map(|a| a.values.clone());
        assert_eq!(
            get("sides-supported"),
            Some(vec![kw("one-sided"), kw("two-sided-long-edge")])
        );
        assert_eq!(get("printer-make-and-model"), Some(vec![text("A")]));
        assert_eq!(get("printer-name"), None, "the cloud names its printers");
        assert_eq!(get("printer-state"), None);
        assert_eq!(
            (condition.devices, condition.stopped, condition.reasons),
            (2, 1, vec!["media-empty-error".to_string()])
        );
    }

    #[test]
    fn stored_attributes_round_trip_and_garbage_is_empty() {
        let attrs = vec![Attribute::set(
            "media-supported",
            vec![kw("iso_a4_210x297mm")],
        )];
        assert_eq!(
            decode_attributes(&encode_attributes(crate::codec::ipp::tag::PRINTER, &attrs)),
            attrs
        );
        assert!(decode_attributes("not base64 !").is_empty());
    }
}

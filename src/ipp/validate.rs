//! Request checks shared by all operations (RFC 8011 §4.1.4, §4.1.8, §5.4.14) and validation of job
//! template attributes against the printer's capabilities (RFC 8011 §4.2.1.2, §5.2).

use crate::codec::ipp::{tag, Attribute, Message, Value};
use crate::model::printer::Capabilities;

use super::attributes::{NUMBER_UP_LAYOUTS, PAGE_DELIVERIES};
use super::status::{self, Status};

/// Checks every request must pass before its operation runs.
pub fn check_request(req: &Message) -> Result<(), Status> {
    if !status::version_supported(req.version) {
        return Err(Status::new(
            status::VERSION_NOT_SUPPORTED,
            format!(
                "IPP version {}.{} is not supported",
                req.version.0, req.version.1
            ),
        ));
    }
    if req.request_id == 0 {
        return Err(Status::bad_request(
            "request-id must not be 0 (RFC 8011 §4.1.1)",
        ));
    }
    let Some(first) = req.groups.first() else {
        return Err(Status::bad_request("missing operation attributes group"));
    };
    if first.tag != tag::OPERATION {
        return Err(Status::bad_request(
            "the first group must be the operation attributes group",
        ));
    }
    if req
        .groups
        .iter()
        .filter(|g| g.tag == tag::OPERATION)
        .count()
        > 1
    {
        return Err(Status::bad_request(
            "more than one operation attributes group",
        ));
    }
    let attrs = &first.attributes;
    let charset = attrs.first().filter(|a| a.name == "attributes-charset");
    let lang = attrs
        .get(1)
        .filter(|a| a.name == "attributes-natural-language");
    let (Some(charset), Some(lang)) = (charset, lang) else {
        return Err(Status::bad_request(
            "attributes-charset and attributes-natural-language must be the first two operation attributes",
        ));
    };
    match charset.values.as_slice() {
        [Value::Charset(c)] => {
            if !c.eq_ignore_ascii_case("utf-8") && !c.eq_ignore_ascii_case("us-ascii") {
                let mut s = Status::new(
                    status::CHARSET_NOT_SUPPORTED,
                    format!("charset '{c}' is not supported"),
                );
                s.unsupported.push(charset.clone());
                return Err(s);
            }
        }
        _ => {
            return Err(Status::bad_request(
                "attributes-charset must be one charset value",
            ))
        }
    }
    if !matches!(lang.values.as_slice(), [Value::NaturalLanguage(_)]) {
        return Err(Status::bad_request(
            "attributes-natural-language must be one naturalLanguage value",
        ));
    }
    // Every group tag other than operation may appear once (RFC 8010 §3.1.2).
    for (i, g) in req.groups.iter().enumerate() {
        if req.groups[..i].iter().any(|h| h.tag == g.tag) {
            return Err(Status::bad_request("an attribute group appears twice"));
        }
        for a in &g.attributes {
            if a.values.is_empty() {
                return Err(Status::bad_request(format!(
                    "attribute '{}' has no value",
                    a.name
                )));
            }
        }
    }
    let has_target = first.get("printer-uri").is_some() || first.get("job-uri").is_some();
    if !has_target {
        return Err(Status::bad_request(
            "missing printer-uri or job-uri operation attribute",
        ));
    }
    for target in ["printer-uri", "job-uri"] {
        if let Some(a) = first.get(target) {
            if !matches!(a.values.as_slice(), [Value::Uri(_)]) {
                return Err(Status::bad_request(format!(
                    "{target} must be a single uri value"
                )));
            }
        }
    }
    if let Some(a) = first.get("requesting-user-name") {
        if !matches!(
            a.values.as_slice(),
            [Value::Name(_) | Value::NameLang { .. }]
        ) {
            return Err(Status::bad_request(
                "requesting-user-name must be a single name value",
            ));
        }
    }
    Ok(())
}

/// The result of checking the job template attributes of a job creation request.
#[derive(Debug, Default)]
pub struct Checked {
    /// Attributes to keep with the job.
    pub accepted: Vec<Attribute>,
    /// Attributes to return in the unsupported-attributes group.
    pub unsupported: Vec<Attribute>,
    /// Attributes with a value the printer cannot honour (fidelity matters for these).
    pub conflicting: bool,
}

fn single(a: &Attribute) -> Option<&Value> {
    match a.values.as_slice() {
        [v] => Some(v),
        _ => None,
    }
}

fn is_keyword_or_name(v: &Value) -> bool {
    matches!(
        v,
        Value::Keyword(_) | Value::Name(_) | Value::NameLang { .. }
    )
}

/// Checks job template attributes (job group) against `caps`. Unknown attributes and unsupported
/// values are reported, never silently dropped.
pub fn check_job_template(job_group: &[Attribute], caps: &Capabilities) -> Checked {
    let mut out = Checked::default();
    for a in job_group {
        let ok = match a.name.as_str() {
            "copies" => matches!(single(a), Some(Value::Integer(1..=999))),
            "finishings" => a.values.iter().all(|v| matches!(v, Value::Enum(3))),
            "job-account-id" | "job-accounting-user-id" => {
                matches!(single(a), Some(v) if is_keyword_or_name(v) && v.as_str().is_some_and(|s| s.len() <= 255))
            }
            "job-hold-until" => {
                matches!(single(a), Some(v) if is_keyword_or_name(v) && matches!(v.as_str(),
                Some("no-hold" | "indefinite" | "day-time" | "evening" | "night" | "second-shift" | "third-shift" | "weekend")))
            }
            "job-priority" => matches!(single(a), Some(Value::Integer(1..=100))),
            "job-sheets" => {
                matches!(single(a), Some(v) if is_keyword_or_name(v) && matches!(v.as_str(), Some("none" | "standard")))
            }
            "media" => matches!(single(a), Some(v) if is_keyword_or_name(v)
                && v.as_str().is_some_and(|m| caps.media.iter().any(|s| s.name == m))),
            "media-col" => matches!(single(a), Some(Value::Collection(c)) if media_col_ok(c, caps)),
            "multiple-document-handling" => matches!(single(a), Some(Value::Keyword(k))
                if k == "separate-documents-uncollated-copies" || k == "separate-documents-collated-copies"),
            "number-up" => matches!(single(a), Some(Value::Integer(1 | 2 | 4 | 6 | 9 | 16))),
            // Only the values the renderer places (convert::ticket::Layout); anything else is
            // returned as unsupported (RFC 8011 §4.1.7) rather than printed in another order.
            "number-up-layout" => matches!(single(a), Some(Value::Keyword(k))
                if NUMBER_UP_LAYOUTS.contains(&k.as_str())),
            "page-delivery" => matches!(single(a), Some(Value::Keyword(k))
                if PAGE_DELIVERIES.contains(&k.as_str())),
            "orientation-requested" => matches!(single(a), Some(Value::Enum(3..=7))),
            "output-bin" => {
                matches!(single(a), Some(v) if is_keyword_or_name(v) && v.as_str() == Some("face-down"))
            }
            "page-ranges" => {
                let mut last = 0;
                a.values.iter().all(|v| match v {
                    Value::Range(lo, hi) if *lo >= 1 && lo <= hi && *lo > last => {
                        last = *hi;
                        true
                    }
                    _ => false,
                })
            }
            "print-color-mode" => matches!(single(a), Some(Value::Keyword(k))
                if caps.color_modes_supported().contains(k)),
            "print-content-optimize" => matches!(single(a), Some(Value::Keyword(k))
                if ["auto", "graphic", "photo", "text", "text-and-graphic"].contains(&k.as_str())),
            "print-quality" => matches!(single(a), Some(Value::Enum(3..=5))),
            "print-rendering-intent" => matches!(single(a), Some(Value::Keyword(k))
                if ["auto", "perceptual", "relative", "saturation"].contains(&k.as_str())),
            "print-scaling" => matches!(single(a), Some(Value::Keyword(k))
                if ["auto", "auto-fit", "fill", "fit", "none"].contains(&k.as_str())),
            "printer-resolution" => matches!(single(a), Some(Value::Resolution { x, y, units: 3 })
                if x == y && caps.resolutions_dpi.contains(x)),
            "sides" => matches!(single(a), Some(Value::Keyword(k))
                if caps.sides_supported().contains(k)),
            // Informational attributes clients send with the job; harmless to keep.
            "job-name" | "document-name-supplied" => true,
            _ => false,
        };
        if ok {
            out.accepted.push(a.clone());
        } else {
            out.conflicting = true;
            out.unsupported.push(a.clone());
        }
    }
    out
}

fn media_col_ok(members: &[Attribute], caps: &Capabilities) -> bool {
    let mut size_ok = true;
    for m in members {
        let ok = match m.name.as_str() {
            "media-size" => match single(m).and_then(Value::as_collection) {
                Some(dims) => {
                    let get = |n: &str| {
                        dims.iter()
                            .find(|d| d.name == n)
                            .and_then(|d| d.first())
                            .and_then(Value::as_int)
                    };
                    match (get("x-dimension"), get("y-dimension")) {
                        // Within 1 mm, as clients round differently (PWG 5101.1 §5).
                        (Some(x), Some(y)) => caps
                            .media
                            .iter()
                            .any(|s| (s.width - x).abs() <= 100 && (s.length - y).abs() <= 100),
                        _ => false,
                    }
                }
                None => false,
            },
            "media-size-name" => single(m)
                .and_then(Value::as_str)
                .is_some_and(|n| caps.media.iter().any(|s| s.name == n)),
            "media-source" => single(m)
                .and_then(Value::as_str)
                .is_some_and(|s| caps.media_sources.iter().any(|x| x == s)),
            "media-type" => single(m)
                .and_then(Value::as_str)
                .is_some_and(|s| caps.media_types.iter().any(|x| x == s)),
            "media-top-margin"
            | "media-bottom-margin"
            | "media-left-margin"
            | "media-right-margin" => {
                matches!(single(m), Some(Value::Integer(v)) if *v == 0 || *v == caps.margin)
            }
            _ => false,
        };
        size_ok &= ok;
    }
    size_ok
}

/// Validates a document-format value against what the printer accepts.
pub fn check_format(format: Option<&Value>, caps: &Capabilities) -> Result<String, Status> {
    match format {
        None => Ok("application/octet-stream".into()),
        Some(Value::MimeMediaType(f)) => {
            let f = f.to_ascii_lowercase();
            if caps.document_formats.contains(&f) {
                Ok(f)
            } else {
                let mut s = Status::new(
                    status::DOCUMENT_FORMAT_NOT_SUPPORTED,
                    format!("document-format '{f}' is not supported"),
                );
                s.unsupported
                    .push(Attribute::new("document-format", Value::MimeMediaType(f)));
                Err(s)
            }
        }
        Some(_) => Err(Status::bad_request(
            "document-format must be a mimeMediaType",
        )),
    }
}

/// Validates a compression value (RFC 8011 §4.2.1.1).
pub fn check_compression(value: Option<&Value>) -> Result<String, Status> {
    match value {
        None => Ok("none".into()),
        Some(Value::Keyword(k)) if k == "none" || k == "gzip" || k == "deflate" => Ok(k.clone()),
        Some(v) => {
            let mut s = Status::new(
                status::COMPRESSION_NOT_SUPPORTED,
                format!("compression '{v}' is not supported"),
            );
            s.unsupported.push(Attribute::new("compression", v.clone()));
            Err(s)
        }
    }
}

/// Sniffs a document format from its first bytes, for application/octet-stream.
pub fn sniff_format(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF") {
        Some("application/pdf")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(b"RaS2") {
        Some("image/pwg-raster")
    } else if head.starts_with(b"UNIRAST") {
        Some("image/urf")
    } else if head.starts_with(b"%!") {
        Some("application/postscript")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_values_are_checked() {
        let caps = Capabilities::default();
        let attrs = vec![
            Attribute::new("copies", Value::Integer(2)),
            Attribute::new("copies-x", Value::Integer(2)),
            Attribute::new("sides", Value::Keyword("two-sided-long-edge".into())),
            Attribute::new("media", Value::Keyword("iso_a4_210x297mm".into())),
            Attribute::new("media", Value::Keyword("bogus".into())),
            Attribute::set("page-ranges", vec![Value::Range(1, 2), Value::Range(2, 3)]),
        ];
        let c = check_job_template(&attrs, &caps);
        let names: Vec<_> = c.unsupported.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["copies-x", "media", "page-ranges"]);
        assert_eq!(c.accepted.len(), 3);
    }

    #[test]
    fn layout_and_delivery_take_only_rendered_values() {
        let caps = Capabilities::default();
        let kw = |n: &str, v: &str| Attribute::new(n, Value::Keyword(v.into()));
        let attrs = vec![
            kw("number-up-layout", "tblr"),
            kw("number-up-layout", "diagonal"),
            kw("page-delivery", "reverse-order-face-down"),
            kw("page-delivery", "reverse-order-face-up"),
            Attribute::new("page-delivery", Value::Integer(1)),
        ];
        let c = check_job_template(&attrs, &caps);
        assert_eq!(
            c.accepted,
            attrs[..1]
                .iter()
                .chain(&attrs[2..3])
                .cloned()
                .collect::<Vec<_>>()
        );
        assert_eq!(
            c.unsupported,
            attrs[1..2]
                .iter()
                .chain(&attrs[3..])
                .cloned()
                .collect::<Vec<_>>()
        );
        assert!(c.conflicting);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff_format(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(sniff_format(b"RaS2...."), Some("image/pwg-raster"));
        assert_eq!(sniff_format(b"hello"), None);
    }
}

//! Checks of IPP requests every IPP speaker applies before an operation runs: version,
//! request-id, operation group, attributes-charset and attributes-natural-language, target
//! (RFC 8011 §4.1.1-§4.1.5, §4.1.8), and the document-format and compression operands
//! (RFC 8011 §4.2.1.1).

use super::ipp::{tag, Attribute, Message, Value};
use super::ipp_status::{self as status, Status};

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
                return Err(Status::unsupported(
                    status::CHARSET_NOT_SUPPORTED,
                    format!("charset '{c}' is not supported"),
                    charset.clone(),
                ));
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

/// Checks a document-format operand against what the printer accepts (`supported`, given a
/// lower-cased MIME type); absent means application/octet-stream (RFC 8011 §4.2.1.1).
pub fn check_format(
    format: Option<&Value>,
    supported: impl Fn(&str) -> bool,
) -> Result<String, Status> {
    match format {
        None => Ok("application/octet-stream".into()),
        Some(Value::MimeMediaType(f)) => {
            let f = f.to_ascii_lowercase();
            if supported(&f) {
                Ok(f)
            } else {
                Err(Status::unsupported(
                    status::DOCUMENT_FORMAT_NOT_SUPPORTED,
                    format!("document-format '{f}' is not supported"),
                    Attribute::new("document-format", Value::MimeMediaType(f)),
                ))
            }
        }
        Some(_) => Err(Status::bad_request(
            "document-format must be a mimeMediaType",
        )),
    }
}

/// Checks a compression operand (RFC 8011 §4.2.1.1); absent means none.
pub fn check_compression(value: Option<&Value>) -> Result<String, Status> {
    match value {
        None => Ok("none".into()),
        Some(Value::Keyword(k)) if k == "none" || k == "gzip" || k == "deflate" => Ok(k.clone()),
        Some(v) => Err(Status::unsupported(
            status::COMPRESSION_NOT_SUPPORTED,
            format!("compression '{v}' is not supported"),
            Attribute::new("compression", v.clone()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(charset: &str) -> Message {
        let mut m = Message::new((2, 0), 0x000B, 1);
        let g = m.group_mut(tag::OPERATION);
        g.push(Attribute::new(
            "attributes-charset",
            Value::Charset(charset.into()),
        ));
        g.push(Attribute::new(
            "attributes-natural-language",
            Value::NaturalLanguage("en".into()),
        ));
        g.push(Attribute::new(
            "printer-uri",
            Value::Uri("ipp://h/ipp/print".into()),
        ));
        m
    }

    #[test]
    fn requests_are_checked_as_rfc_8011_section_4_1_says() {
        assert!(check_request(&request("utf-8")).is_ok());
        let e = check_request(&request("iso-8859-1")).unwrap_err();
        assert_eq!(e.code, status::CHARSET_NOT_SUPPORTED);
        assert_eq!(e.unsupported[0].name, "attributes-charset");
        let mut r = request("utf-8");
        r.request_id = 0;
        assert_eq!(check_request(&r).unwrap_err().code, status::BAD_REQUEST);
        let mut r = request("utf-8");
        r.version = (3, 0);
        assert_eq!(
            check_request(&r).unwrap_err().code,
            status::VERSION_NOT_SUPPORTED
        );
        let mut r = request("utf-8");
        r.groups[0].attributes.swap(0, 1);
        assert_eq!(check_request(&r).unwrap_err().code, status::BAD_REQUEST);
    }

    #[test]
    fn format_and_compression_operands() {
        let pdf_only = |f: &str| f == "application/pdf";
        assert_eq!(
            check_format(None, pdf_only).unwrap(),
            "application/octet-stream"
        );
        let pdf = Value::MimeMediaType("Application/PDF".into());
        assert_eq!(
            check_format(Some(&pdf), pdf_only).unwrap(),
            "application/pdf"
        );
        let png = Value::MimeMediaType("image/png".into());
        let e = check_format(Some(&png), pdf_only).unwrap_err();
        assert_eq!(e.code, status::DOCUMENT_FORMAT_NOT_SUPPORTED);
        assert_eq!(check_compression(None).unwrap(), "none");
        let e = check_compression(Some(&Value::Keyword("lzw".into()))).unwrap_err();
        assert_eq!(e.code, status::COMPRESSION_NOT_SUPPORTED);
    }
}

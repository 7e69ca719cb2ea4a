//! IPP status codes (RFC 8011 §5.4.14 and Appendix B, RFC 3995 §13.1, PWG 5100.18 §9.2) with
//! their registered names, the [`Status`] error every IPP speaker's operations return, and the
//! response builder that echoes a request's version and request-id (RFC 8011 §4.1.1, §4.1.8).

use super::ipp::{tag, Attribute, Message, Value};

/// Defines each status code once, as a constant and as a row of [`NAMES`], so the two cannot
/// disagree.
macro_rules! status_codes {
    ($( $(#[$doc:meta])* $konst:ident = $code:literal, $name:literal; )*) => {
        $( $(#[$doc])* pub const $konst: u16 = $code; )*
        /// Every status code above with its registered keyword, in numeric order.
        pub const NAMES: &[(u16, &str)] = &[ $( ($code, $name), )* ];
    };
}

status_codes! {
    OK = 0x0000, "successful-ok";
    OK_IGNORED_OR_SUBSTITUTED = 0x0001, "successful-ok-ignored-or-substituted-attributes";
    OK_CONFLICTING_ATTRIBUTES = 0x0002, "successful-ok-conflicting-attributes";
    OK_IGNORED_SUBSCRIPTIONS = 0x0003, "successful-ok-ignored-subscriptions";
    OK_TOO_MANY_EVENTS = 0x0005, "successful-ok-too-many-events";
    OK_EVENTS_COMPLETE = 0x0007, "successful-ok-events-complete";
    BAD_REQUEST = 0x0400, "client-error-bad-request";
    FORBIDDEN = 0x0401, "client-error-forbidden";
    NOT_AUTHENTICATED = 0x0402, "client-error-not-authenticated";
    NOT_AUTHORIZED = 0x0403, "client-error-not-authorized";
    NOT_POSSIBLE = 0x0404, "client-error-not-possible";
    /// The client took too long to send the request (RFC 8011 §5.4.14).
    TIMEOUT = 0x0405, "client-error-timeout";
    NOT_FOUND = 0x0406, "client-error-not-found";
    GONE = 0x0407, "client-error-gone";
    /// RFC 8011 Appendix B: 0x0408 is the entity (request or document) being too large;
    /// 0x0409 is one value being too long.
    REQUEST_ENTITY_TOO_LARGE = 0x0408, "client-error-request-entity-too-large";
    REQUEST_VALUE_TOO_LONG = 0x0409, "client-error-request-value-too-long";
    DOCUMENT_FORMAT_NOT_SUPPORTED = 0x040A, "client-error-document-format-not-supported";
    ATTRIBUTES_OR_VALUES_NOT_SUPPORTED = 0x040B, "client-error-attributes-or-values-not-supported";
    URI_SCHEME_NOT_SUPPORTED = 0x040C, "client-error-uri-scheme-not-supported";
    CHARSET_NOT_SUPPORTED = 0x040D, "client-error-charset-not-supported";
    CONFLICTING_ATTRIBUTES = 0x040E, "client-error-conflicting-attributes";
    COMPRESSION_NOT_SUPPORTED = 0x040F, "client-error-compression-not-supported";
    COMPRESSION_ERROR = 0x0410, "client-error-compression-error";
    DOCUMENT_FORMAT_ERROR = 0x0411, "client-error-document-format-error";
    DOCUMENT_ACCESS_ERROR = 0x0412, "client-error-document-access-error";
    ATTRIBUTES_NOT_SETTABLE = 0x0413, "client-error-attributes-not-settable";
    IGNORED_ALL_SUBSCRIPTIONS = 0x0414, "client-error-ignored-all-subscriptions";
    TOO_MANY_SUBSCRIPTIONS = 0x0415, "client-error-too-many-subscriptions";
    /// PWG 5100.13 §8.
    DOCUMENT_PASSWORD_ERROR = 0x0418, "client-error-document-password-error";
    DOCUMENT_PERMISSION_ERROR = 0x0419, "client-error-document-permission-error";
    DOCUMENT_SECURITY_ERROR = 0x041A, "client-error-document-security-error";
    DOCUMENT_UNPRINTABLE_ERROR = 0x041B, "client-error-document-unprintable-error";
    /// PWG 5100.16 §7 (job accounting).
    ACCOUNT_INFO_NEEDED = 0x041C, "client-error-account-info-needed";
    ACCOUNT_CLOSED = 0x041D, "client-error-account-closed";
    ACCOUNT_LIMIT_REACHED = 0x041E, "client-error-account-limit-reached";
    ACCOUNT_AUTHORIZATION_FAILED = 0x041F, "client-error-account-authorization-failed";
    /// PWG 5100.18 §9.2.
    NOT_FETCHABLE = 0x0420, "client-error-not-fetchable";
    INTERNAL_ERROR = 0x0500, "server-error-internal-error";
    OPERATION_NOT_SUPPORTED = 0x0501, "server-error-operation-not-supported";
    SERVICE_UNAVAILABLE = 0x0502, "server-error-service-unavailable";
    VERSION_NOT_SUPPORTED = 0x0503, "server-error-version-not-supported";
    DEVICE_ERROR = 0x0504, "server-error-device-error";
    TEMPORARY_ERROR = 0x0505, "server-error-temporary-error";
    NOT_ACCEPTING_JOBS = 0x0506, "server-error-not-accepting-jobs";
    BUSY = 0x0507, "server-error-busy";
    JOB_CANCELED = 0x0508, "server-error-job-canceled";
    MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED = 0x0509, "server-error-multiple-document-jobs-not-supported";
    PRINTER_IS_DEACTIVATED = 0x050A, "server-error-printer-is-deactivated";
    TOO_MANY_JOBS = 0x050B, "server-error-too-many-jobs";
    TOO_MANY_DOCUMENTS = 0x050C, "server-error-too-many-documents";
}

/// The registered keyword of a status code, for logs; `None` for codes we never send.
pub fn name(code: u16) -> Option<&'static str> {
    NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// Whether `code` is an error (RFC 8011 §5.4.14: 0x0400 and up).
pub fn is_error(code: u16) -> bool {
    code >= 0x0400
}

/// Whether `code` is in the successful class (RFC 8011 §4.1.6: 0x0000 to 0x00FF).
pub fn is_successful(code: u16) -> bool {
    code <= 0x00FF
}

/// Whether `code` is in the server-error class (RFC 8011 §4.1.6: 0x0500 to 0x05FF).
pub fn is_server_error(code: u16) -> bool {
    (0x0500..=0x05FF).contains(&code)
}

/// IPP versions we answer (RFC 8011 §4.1.8; Windows asks with 1.0, Android probes 1.1 then 2.0).
pub fn version_supported(v: (u8, u8)) -> bool {
    matches!(v, (1, 0) | (1, 1) | (2, 0) | (2, 1) | (2, 2))
}

/// A response with attributes-charset and attributes-natural-language (RFC 8011 §4.1.4.2), plus
/// status-message when given. Version and request-id are set by [`finish_response`].
pub fn response(code: u16, message: Option<&str>) -> Message {
    let mut m = Message::new((2, 0), code, 0);
    let g = m.group_mut(tag::OPERATION);
    g.push(Attribute::new(
        "attributes-charset",
        Value::Charset("utf-8".into()),
    ));
    g.push(Attribute::new(
        "attributes-natural-language",
        Value::NaturalLanguage("en".into()),
    ));
    if let Some(msg) = message {
        g.push(Attribute::new(
            "status-message",
            Value::Text(msg.to_string()),
        ));
    }
    m
}

/// Answers in the request's version when we speak it, else 1.1 (RFC 8011 §4.1.8), and echoes
/// its request-id (RFC 8011 §4.1.1).
pub fn finish_response(resp: &mut Message, version: (u8, u8), request_id: u32) {
    resp.version = if version_supported(version) {
        version
    } else {
        (1, 1)
    };
    resp.request_id = request_id;
}

/// Operation attributes of `req` outside `known` (each service knows its own set).
pub fn unknown_operation_attributes(req: &Message, known: &[&str]) -> Vec<Attribute> {
    req.group(tag::OPERATION)
        .map(|g| {
            g.attributes
                .iter()
                .filter(|a| !known.contains(&a.name.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Finishes a response to a request that carried `unknown` operation attributes: they are ignored
/// and reported (RFC 8011 §4.1.7) in the unsupported-attributes group, which belongs right after
/// the operation group, and a plain successful-ok becomes successful-ok-ignored-or-substituted.
/// Error responses are left alone.
pub fn report_unknown_operation_attributes(resp: &mut Message, unknown: Vec<Attribute>) {
    if unknown.is_empty() || is_error(resp.code) {
        return;
    }
    if resp.code == OK {
        resp.code = OK_IGNORED_OR_SUBSTITUTED;
    }
    let g = resp.group_mut(tag::UNSUPPORTED);
    for a in unknown {
        if g.get(&a.name).is_none() {
            g.push(Attribute::new(
                a.name,
                Value::OutOfBand(tag::UNSUPPORTED_VALUE),
            ));
        }
    }
    if let Some(i) = resp.groups.iter().position(|g| g.tag == tag::UNSUPPORTED) {
        let g = resp.groups.remove(i);
        resp.groups.insert(1.min(resp.groups.len()), g);
    }
}

/// Adds `unsupported` to a successful response's unsupported-attributes group and makes a plain
/// successful-ok successful-ok-ignored-or-substituted-attributes (RFC 8011 §4.1.7).
pub fn with_unsupported(mut resp: Message, unsupported: Vec<Attribute>) -> Message {
    if !unsupported.is_empty() {
        if resp.code == OK {
            resp.code = OK_IGNORED_OR_SUBSTITUTED;
        }
        resp.group_mut(tag::UNSUPPORTED)
            .attributes
            .extend(unsupported);
    }
    resp
}

/// An operation's failure: the status code, a message for the user (status-message) and attributes
/// to return in the unsupported-attributes group.
#[derive(Debug, Clone)]
pub struct Status {
    pub code: u16,
    pub message: String,
    pub unsupported: Vec<Attribute>,
}

impl Status {
    pub fn new(code: u16, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            unsupported: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::new(BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(NOT_FOUND, message)
    }

    pub fn not_possible(message: impl Into<String>) -> Status {
        Status::new(NOT_POSSIBLE, message)
    }

    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(INTERNAL_ERROR, message)
    }

    /// `code` with `attr` (the offending attribute) in the unsupported-attributes group.
    pub fn unsupported(code: u16, message: impl Into<String>, attr: Attribute) -> Status {
        let mut s = Status::new(code, message);
        s.unsupported.push(attr);
        s
    }

    pub fn into_response(self) -> Message {
        let mut m = response(self.code, Some(&self.message));
        if !self.unsupported.is_empty() {
            m.group_mut(tag::UNSUPPORTED).attributes = self.unsupported;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_one_name_each_in_numeric_order() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            name(REQUEST_ENTITY_TOO_LARGE),
            Some("client-error-request-entity-too-large")
        );
        assert_eq!(
            name(REQUEST_VALUE_TOO_LONG),
            Some("client-error-request-value-too-long")
        );
        assert_eq!(name(NOT_AUTHORIZED), Some("client-error-not-authorized"));
        assert_eq!(name(NOT_FETCHABLE), Some("client-error-not-fetchable"));
        assert_eq!(name(TIMEOUT), Some("client-error-timeout"));
        assert_eq!(name(0x0999), None);
    }

    #[test]
    fn unknown_operation_attributes_are_reported_after_the_operation_group() {
        let mut req = Message::new((2, 0), 0x000B, 7);
        req.group_mut(tag::OPERATION)
            .push(Attribute::new("printer-uri", Value::Uri("ipp://h/".into())));
        req.group_mut(tag::OPERATION)
            .push(Attribute::new("x-bogus", Value::Integer(1)));
        let unknown = unknown_operation_attributes(&req, &["printer-uri"]);
        assert_eq!(unknown.len(), 1);
        let mut resp = response(OK, None);
        resp.group_mut(tag::PRINTER);
        report_unknown_operation_attributes(&mut resp, unknown);
        assert_eq!(resp.code, OK_IGNORED_OR_SUBSTITUTED);
        assert_eq!(resp.groups[1].tag, tag::UNSUPPORTED);
        assert_eq!(resp.groups[1].attributes[0].name, "x-bogus");
        let mut err = Status::bad_request("no").into_response();
        report_unknown_operation_attributes(&mut err, vec![Attribute::new("x", Value::Integer(1))]);
        assert_eq!(err.code, BAD_REQUEST);
        assert!(err.group(tag::UNSUPPORTED).is_none());
    }

    #[test]
    fn responses_echo_a_supported_version_and_the_request_id() {
        let mut r = response(OK, Some("fine"));
        finish_response(&mut r, (1, 0), 42);
        assert_eq!((r.version, r.request_id), ((1, 0), 42));
        finish_response(&mut r, (3, 0), 43);
        assert_eq!((r.version, r.request_id), ((1, 1), 43));
    }

    #[test]
    fn classes_follow_the_code_ranges() {
        assert!(is_successful(OK) && is_successful(OK_EVENTS_COMPLETE) && is_successful(0x00FF));
        assert!(!is_successful(0x0100) && !is_successful(BAD_REQUEST));
        assert!(is_server_error(INTERNAL_ERROR) && is_server_error(TOO_MANY_DOCUMENTS));
        assert!(is_server_error(0x05FF) && !is_server_error(0x0600));
        assert!(!is_server_error(NOT_FETCHABLE) && is_error(NOT_FETCHABLE));
    }
}

//! IPP status codes (RFC 8011 §5.4.14 and the PWG registry) and the error type operations return.

use crate::codec::ipp::{tag, Attribute, Message};

pub const OK: u16 = 0x0000;
pub const OK_IGNORED_OR_SUBSTITUTED: u16 = 0x0001;
pub const OK_EVENTS_COMPLETE: u16 = 0x0007;
pub const BAD_REQUEST: u16 = 0x0400;
pub const FORBIDDEN: u16 = 0x0401;
pub const NOT_AUTHENTICATED: u16 = 0x0402;
pub const NOT_POSSIBLE: u16 = 0x0404;
pub const NOT_FOUND: u16 = 0x0406;
/// client-error-request-entity-too-large (RFC 8011 Appendix B; 0x0409 is request-value-too-long).
pub const REQUEST_ENTITY_TOO_LARGE: u16 = 0x0408;
/// client-error-request-value-too-long: a value longer than its syntax allows (RFC 8011 §5.1.3).
pub const REQUEST_VALUE_TOO_LONG: u16 = 0x0409;
pub const DOCUMENT_FORMAT_NOT_SUPPORTED: u16 = 0x040A;
pub const ATTRIBUTES_OR_VALUES_NOT_SUPPORTED: u16 = 0x040B;
pub const CHARSET_NOT_SUPPORTED: u16 = 0x040D;
pub const CONFLICTING_ATTRIBUTES: u16 = 0x040E;
pub const COMPRESSION_NOT_SUPPORTED: u16 = 0x040F;
pub const COMPRESSION_ERROR: u16 = 0x0410;
pub const DOCUMENT_FORMAT_ERROR: u16 = 0x0411;
pub const NOT_ACCEPTING_JOBS: u16 = 0x0506;
pub const INTERNAL_ERROR: u16 = 0x0500;
pub const OPERATION_NOT_SUPPORTED: u16 = 0x0501;
pub const VERSION_NOT_SUPPORTED: u16 = 0x0503;
pub const MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED: u16 = 0x0509;

/// IPP versions we answer (RFC 8011 §4.1.8; Windows asks with 1.0, Android probes 1.1 then 2.0).
pub fn version_supported(v: (u8, u8)) -> bool {
    matches!(v, (1, 0) | (1, 1) | (2, 0) | (2, 1) | (2, 2))
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
    if unknown.is_empty() || resp.code >= 0x0400 {
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
                crate::codec::ipp::Value::OutOfBand(tag::UNSUPPORTED_VALUE),
            ));
        }
    }
    if let Some(i) = resp.groups.iter().position(|g| g.tag == tag::UNSUPPORTED) {
        let g = resp.groups.remove(i);
        resp.groups.insert(1.min(resp.groups.len()), g);
    }
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

    pub fn into_response(self) -> Message {
        let mut m = super::response(self.code, Some(&self.message));
        if !self.unsupported.is_empty() {
            m.group_mut(tag::UNSUPPORTED).attributes = self.unsupported;
        }
        m
    }
}

impl From<crate::spool::SpoolError> for Status {
    fn from(e: crate::spool::SpoolError) -> Status {
        use crate::spool::SpoolError;
        match e {
            SpoolError::NotFound(id) => Status::not_found(format!("job {id} does not exist")),
            SpoolError::Transition(t) => Status::not_possible(t.to_string()),
            SpoolError::TooLarge(n) => Status::new(
                REQUEST_ENTITY_TOO_LARGE,
                format!("document larger than {n} bytes"),
            ),
            other => {
                // The cause goes to the log; the client gets a message without internals.
                tracing::error!("spool failure: {other}");
                Status::internal("the printer could not store the job")
            }
        }
    }
}

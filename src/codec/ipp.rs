//! IPP message framing (RFC 8010 §3): a bounded reader for untrusted request bytes and an encoder.
//!
//! Every request from the network passes through [`Scanner`] (find where the attribute section ends,
//! enforcing size limits while bytes are still arriving) and [`parse_message`] (decode with limits on
//! attribute count, value length, collection depth and 1setOf size) before any other code sees it.
//! Nothing here allocates in proportion to a length field before checking it against a limit, and
//! nothing panics on malformed input.

use std::fmt;

/// Delimiter tags (RFC 8010 §3.5.1).
pub mod tag {
    pub const OPERATION: u8 = 0x01;
    pub const JOB: u8 = 0x02;
    pub const END: u8 = 0x03;
    pub const PRINTER: u8 = 0x04;
    pub const UNSUPPORTED: u8 = 0x05;
    pub const SUBSCRIPTION: u8 = 0x06;
    pub const EVENT_NOTIFICATION: u8 = 0x07;
    pub const DOCUMENT: u8 = 0x09;

    // Out-of-band values (RFC 8010 §3.5.2).
    pub const UNSUPPORTED_VALUE: u8 = 0x10;
    pub const UNKNOWN: u8 = 0x12;
    pub const NO_VALUE: u8 = 0x13;
    pub const NOT_SETTABLE: u8 = 0x15;
    pub const DELETE_ATTRIBUTE: u8 = 0x16;
    pub const ADMIN_DEFINE: u8 = 0x17;

    pub const INTEGER: u8 = 0x21;
    pub const BOOLEAN: u8 = 0x22;
    pub const ENUM: u8 = 0x23;
    pub const OCTET_STRING: u8 = 0x30;
    pub const DATE_TIME: u8 = 0x31;
    pub const RESOLUTION: u8 = 0x32;
    pub const RANGE: u8 = 0x33;
    pub const BEG_COLLECTION: u8 = 0x34;
    pub const TEXT_LANG: u8 = 0x35;
    pub const NAME_LANG: u8 = 0x36;
    pub const END_COLLECTION: u8 = 0x37;
    pub const TEXT: u8 = 0x41;
    pub const NAME: u8 = 0x42;
    pub const KEYWORD: u8 = 0x44;
    pub const URI: u8 = 0x45;
    pub const URI_SCHEME: u8 = 0x46;
    pub const CHARSET: u8 = 0x47;
    pub const NATURAL_LANGUAGE: u8 = 0x48;
    pub const MIME_MEDIA_TYPE: u8 = 0x49;
    pub const MEMBER_NAME: u8 = 0x4A;
    pub const EXTENSION: u8 = 0x7F;
}

/// Limits applied to untrusted IPP bytes. Defaults are far above what any real client sends
/// (a full IPP Everywhere Print-Job is a few KiB) and far below what would hurt a Raspberry Pi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Bytes from the start of the message to the end-of-attributes tag.
    pub max_attribute_bytes: usize,
    /// Attributes across all groups, collection members included.
    pub max_attributes: usize,
    /// Length of one value (the wire allows 32767).
    pub max_value_length: usize,
    /// Nesting of collections within collections.
    pub max_collection_depth: usize,
    /// Values in one 1setOf attribute.
    pub max_values_per_attribute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attribute_bytes: 256 * 1024,
            max_attributes: 2048,
            max_value_length: 32767,
            max_collection_depth: 8,
            max_values_per_attribute: 1024,
        }
    }
}

/// Why a message was rejected. `ValueTooLong` maps to client-error-request-value-too-long, the
/// other `is_too_large` ones to client-error-request-entity-too-large (RFC 8011 Appendix
/// B.1.4.10, B.1.4.9), the rest to client-error-bad-request (RFC 8011 §4.1.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the request ended before the end-of-attributes tag")]
    Truncated,
    #[error("the attribute section exceeds {0} bytes")]
    SectionTooLarge(usize),
    #[error("more than {0} attributes")]
    TooManyAttributes(usize),
    #[error("a value of {len} bytes exceeds the limit of {limit}")]
    ValueTooLong { len: usize, limit: usize },
    #[error("collections nested deeper than {0}")]
    TooDeep(usize),
    #[error("more than {0} values in one attribute")]
    TooManyValues(usize),
    #[error("unknown or misplaced tag 0x{0:02x}")]
    BadTag(u8),
    #[error("attribute '{name}': {why}")]
    BadValue { name: String, why: &'static str },
    #[error("an additional value without a preceding attribute")]
    OrphanValue,
    #[error("attribute name is not valid UTF-8 or is empty where required")]
    BadName,
    #[error("unbalanced collection")]
    UnbalancedCollection,
}

impl FrameError {
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            FrameError::SectionTooLarge(_)
                | FrameError::TooManyAttributes(_)
                | FrameError::ValueTooLong { .. }
                | FrameError::TooManyValues(_)
        )
    }
}

/// One IPP value. Strings are validated UTF-8.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i32),
    Boolean(bool),
    Enum(i32),
    OctetString(Vec<u8>),
    DateTime([u8; 11]),
    Resolution {
        x: i32,
        y: i32,
        units: u8,
    },
    Range(i32, i32),
    Collection(Vec<Attribute>),
    TextLang {
        lang: String,
        text: String,
    },
    NameLang {
        lang: String,
        name: String,
    },
    Text(String),
    Name(String),
    Keyword(String),
    Uri(String),
    UriScheme(String),
    Charset(String),
    NaturalLanguage(String),
    MimeMediaType(String),
    /// Out-of-band values: unsupported, unknown, no-value, not-settable, delete-attribute, admin-define.
    OutOfBand(u8),
    /// A registered-but-unknown-to-us tag, kept as bytes so it can be echoed in unsupported-attributes.
    Other {
        tag: u8,
        data: Vec<u8>,
    },
}

impl Value {
    pub fn tag(&self) -> u8 {
        match self {
            Value::Integer(_) => tag::INTEGER,
            Value::Boolean(_) => tag::BOOLEAN,
            Value::Enum(_) => tag::ENUM,
            Value::OctetString(_) => tag::OCTET_STRING,
            Value::DateTime(_) => tag::DATE_TIME,
            Value::Resolution { .. } => tag::RESOLUTION,
            Value::Range(..) => tag::RANGE,
            Value::Collection(_) => tag::BEG_COLLECTION,
            Value::TextLang { .. } => tag::TEXT_LANG,
            Value::NameLang { .. } => tag::NAME_LANG,
            Value::Text(_) => tag::TEXT,
            Value::Name(_) => tag::NAME,
            Value::Keyword(_) => tag::KEYWORD,
            Value::Uri(_) => tag::URI,
            Value::UriScheme(_) => tag::URI_SCHEME,
            Value::Charset(_) => tag::CHARSET,
            Value::NaturalLanguage(_) => tag::NATURAL_LANGUAGE,
            Value::MimeMediaType(_) => tag::MIME_MEDIA_TYPE,
            Value::OutOfBand(t) => *t,
            Value::Other { tag, .. } => *tag,
        }
    }

    /// The string of any string-like value (text, name, keyword, uri, ...).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::TextLang { text: s, .. }
            | Value::NameLang { name: s, .. }
            | Value::Text(s)
            | Value::Name(s)
            | Value::Keyword(s)
            | Value::Uri(s)
            | Value::UriScheme(s)
            | Value::Charset(s)
            | Value::NaturalLanguage(s)
            | Value::MimeMediaType(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i32> {
        match self {
            Value::Integer(i) | Value::Enum(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_collection(&self) -> Option<&[Attribute]> {
        match self {
            Value::Collection(c) => Some(c),
            _ => None,
        }
    }

    pub fn is_out_of_band(&self) -> bool {
        matches!(self, Value::OutOfBand(_))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) | Value::Enum(i) => write!(f, "{i}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Range(a, b) => write!(f, "{a}-{b}"),
            Value::Resolution { x, y, units } => {
                write!(f, "{x}x{y}{}", if *units == 3 { "dpi" } else { "dpcm" })
            }
            Value::Collection(members) => {
                write!(f, "{{")?;
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{}=", m.name)?;
                    for (j, v) in m.values.iter().enumerate() {
                        if j > 0 {
                            write!(f, ",")?;
                        }
                        write!(f, "{v}")?;
                    }
                }
                write!(f, "}}")
            }
            Value::OutOfBand(t) => write!(f, "(out-of-band 0x{t:02x})"),
            Value::OctetString(b) | Value::Other { data: b, .. } => {
                write!(f, "({} bytes)", b.len())
            }
            Value::DateTime(_) => write!(f, "(dateTime)"),
            other => write!(f, "{}", other.as_str().unwrap_or("")),
        }
    }
}

/// A named attribute with one or more values (1setOf when more than one).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub values: Vec<Value>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        Attribute {
            name: name.into(),
            values: vec![value],
        }
    }

    pub fn set(name: impl Into<String>, values: Vec<Value>) -> Self {
        Attribute {
            name: name.into(),
            values,
        }
    }

    pub fn first(&self) -> Option<&Value> {
        self.values.first()
    }
}

/// One attribute group (operation, job, printer, unsupported, document, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub tag: u8,
    pub attributes: Vec<Attribute>,
}

impl Group {
    pub fn new(tag: u8) -> Self {
        Group {
            tag,
            attributes: Vec::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn push(&mut self, attr: Attribute) {
        self.attributes.push(attr);
    }
}

/// A request or response. `code` is the operation-id of a request or the status-code of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub version: (u8, u8),
    pub code: u16,
    pub request_id: u32,
    pub groups: Vec<Group>,
    /// Pre-encoded groups (tag, attribute bytes) appended after `groups` by the encoder: lets a
    /// response reuse attributes encoded once. Always empty after parsing.
    pub encoded_groups: Vec<(u8, Vec<u8>)>,
}

impl Message {
    pub fn new(version: (u8, u8), code: u16, request_id: u32) -> Self {
        Message {
            version,
            code,
            request_id,
            groups: Vec::new(),
            encoded_groups: Vec::new(),
        }
    }

    pub fn group(&self, tag: u8) -> Option<&Group> {
        self.groups.iter().find(|g| g.tag == tag)
    }

    pub fn group_mut(&mut self, tag: u8) -> &mut Group {
        if let Some(i) = self.groups.iter().position(|g| g.tag == tag) {
            &mut self.groups[i]
        } else {
            self.groups.push(Group::new(tag));
            self.groups.last_mut().expect("just pushed")
        }
    }
}

/// Finds the end of the attribute section in bytes that are still arriving, enforcing
/// `max_attribute_bytes`. Feed it the whole buffer so far each time; it resumes where it stopped.
#[derive(Debug, Default)]
pub struct Scanner {
    pos: usize,
}

impl Scanner {
    pub fn new() -> Self {
        Scanner { pos: 8 }
    }

    /// `Ok(Some(n))`: the attribute section (with the end tag) is `buf[..n]`; the document follows.
    /// `Ok(None)`: more bytes are needed. Errors are final.
    pub fn feed(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, FrameError> {
        if self.pos < 8 {
            self.pos = 8;
        }
        loop {
            if self.pos > limits.max_attribute_bytes {
                return Err(FrameError::SectionTooLarge(limits.max_attribute_bytes));
            }
            let Some(&t) = buf.get(self.pos) else {
                return if buf.len() > limits.max_attribute_bytes {
                    Err(FrameError::SectionTooLarge(limits.max_attribute_bytes))
                } else {
                    Ok(None)
                };
            };
            if t == tag::END {
                return Ok(Some(self.pos + 1));
            }
            if t < 0x10 {
                self.pos += 1;
                continue;
            }
            // value-tag, name-length, name, value-length, value
            let Some(nl) = read_u16(buf, self.pos + 1) else {
                return Ok(None);
            };
            let vl_at = self.pos + 3 + nl as usize;
            let Some(vl) = read_u16(buf, vl_at) else {
                return self.need(buf, vl_at + 2, limits);
            };
            let end = vl_at + 2 + vl as usize;
            if end > buf.len() {
                return self.need(buf, end, limits);
            }
            self.pos = end;
        }
    }

    fn need(&self, _buf: &[u8], upto: usize, limits: &Limits) -> Result<Option<usize>, FrameError> {
        if upto > limits.max_attribute_bytes + 1 {
            Err(FrameError::SectionTooLarge(limits.max_attribute_bytes))
        } else {
            Ok(None)
        }
    }
}

fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, FrameError> {
        let b = *self.buf.get(self.pos).ok_or(FrameError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        let v = read_u16(self.buf, self.pos).ok_or(FrameError::Truncated)?;
        self.pos += 2;
        Ok(v)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).ok_or(FrameError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(FrameError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
}

/// Parses a complete attribute section (as delimited by [`Scanner`]) with `limits`.
/// Returns the message and the number of bytes consumed (the document data starts there).
pub fn parse_message(buf: &[u8], limits: &Limits) -> Result<(Message, usize), FrameError> {
    let mut r = Reader { buf, pos: 0 };
    let major = r.u8()?;
    let minor = r.u8()?;
    let code = r.u16()?;
    let rid = r.bytes(4)?;
    let request_id = u32::from_be_bytes([rid[0], rid[1], rid[2], rid[3]]);
    let mut msg = Message::new((major, minor), code, request_id);
    let mut count = 0usize;

    let mut stack: Vec<Open> = Vec::new();

    loop {
        if r.pos > limits.max_attribute_bytes {
            return Err(FrameError::SectionTooLarge(limits.max_attribute_bytes));
        }
        let t = r.u8()?;
        if t == tag::END {
            if !stack.is_empty() {
                return Err(FrameError::UnbalancedCollection);
            }
            break;
        }
        if t < 0x10 {
            if !stack.is_empty() {
                return Err(FrameError::UnbalancedCollection);
            }
            if t == 0x00 || t == 0x08 || t > 0x0A {
                return Err(FrameError::BadTag(t));
            }
            msg.groups.push(Group::new(t));
            continue;
        }
        if t == tag::EXTENSION {
            return Err(FrameError::BadTag(t));
        }
        let nl = r.u16()? as usize;
        let name_bytes = r.bytes(nl)?;
        let name = std::str::from_utf8(name_bytes).map_err(|_| FrameError::BadName)?;
        let vl = r.u16()? as usize;
        if vl > limits.max_value_length {
            return Err(FrameError::ValueTooLong {
                len: vl,
                limit: limits.max_value_length,
            });
        }
        let data = r.bytes(vl)?;

        if let Some(open) = stack.last_mut() {
            // Inside a collection: memberAttrName, member values, nested begCollection, endCollection.
            match t {
                tag::MEMBER_NAME => {
                    if nl != 0 {
                        return Err(FrameError::BadName);
                    }
                    let member = std::str::from_utf8(data).map_err(|_| FrameError::BadName)?;
                    if member.is_empty() {
                        return Err(FrameError::BadName);
                    }
                    count += 1;
                    if count > limits.max_attributes {
                        return Err(FrameError::TooManyAttributes(limits.max_attributes));
                    }
                    open.pending_member = Some(member.to_string());
                    continue;
                }
                tag::END_COLLECTION => {
                    if nl != 0 || vl != 0 {
                        return Err(FrameError::UnbalancedCollection);
                    }
                    let done = stack.pop().ok_or(FrameError::UnbalancedCollection)?;
                    let value = Value::Collection(done.members);
                    add_value(&mut msg, &mut stack, &done.outer_name, true, value, limits)?;
                    continue;
                }
                tag::BEG_COLLECTION => {
                    if stack.len() >= limits.max_collection_depth {
                        return Err(FrameError::TooDeep(limits.max_collection_depth));
                    }
                    let open = stack.last_mut().expect("non-empty");
                    let outer = if nl == 0 {
                        // Additional value of the current member, or a new member value.
                        open.pending_member
                            .clone()
                            .or_else(|| open.members.last().map(|m| m.name.clone()))
                    } else {
                        None
                    }
                    .ok_or(FrameError::OrphanValue)?;
                    stack.push(Open {
                        members: Vec::new(),
                        pending_member: None,
                        outer_name: outer,
                    });
                    continue;
                }
                _ => {
                    if nl != 0 {
                        return Err(FrameError::BadName);
                    }
                    let member = open
                        .pending_member
                        .clone()
                        .or_else(|| open.members.last().map(|m| m.name.clone()))
                        .ok_or(FrameError::OrphanValue)?;
                    let value = decode_value(t, data, &member)?;
                    add_value(&mut msg, &mut stack, &member, true, value, limits)?;
                    continue;
                }
            }
        }

        // Top level: a value must belong to a group.
        if msg.groups.is_empty() {
            return Err(FrameError::BadTag(t));
        }
        if t == tag::END_COLLECTION || t == tag::MEMBER_NAME {
            return Err(FrameError::UnbalancedCollection);
        }
        let attr_name = if nl == 0 {
            let g = msg.groups.last().expect("non-empty");
            g.attributes
                .last()
                .map(|a| a.name.clone())
                .ok_or(FrameError::OrphanValue)?
        } else {
            count += 1;
            if count > limits.max_attributes {
                return Err(FrameError::TooManyAttributes(limits.max_attributes));
            }
            let g = msg.groups.last_mut().expect("non-empty");
            g.attributes.push(Attribute {
                name: name.to_string(),
                values: Vec::new(),
            });
            name.to_string()
        };
        if t == tag::BEG_COLLECTION {
            if limits.max_collection_depth == 0 {
                return Err(FrameError::TooDeep(0));
            }
            stack.push(Open {
                members: Vec::new(),
                pending_member: None,
                outer_name: attr_name,
            });
            continue;
        }
        let value = decode_value(t, data, &attr_name)?;
        add_value(&mut msg, &mut stack, &attr_name, false, value, limits)?;
    }
    Ok((msg, r.pos))
}

/// A collection being parsed: its members so far, the member name announced by the last
/// memberAttrName (not yet given a value), and the name the finished collection is a value of.
struct Open {
    members: Vec<Attribute>,
    pending_member: Option<String>,
    outer_name: String,
}

/// Appends `value` to the attribute `name`: the innermost open collection's member when `in_collection`
/// (creating the member on its first value), else the last attribute of the last group.
fn add_value(
    msg: &mut Message,
    stack: &mut [Open],
    name: &str,
    in_collection: bool,
    value: Value,
    limits: &Limits,
) -> Result<(), FrameError> {
    let values = match (in_collection, stack.last_mut()) {
        (true, Some(open)) => {
            let fresh = open.pending_member.take().is_some();
            if fresh || open.members.last().map(|m| m.name != name).unwrap_or(true) {
                open.members.push(Attribute {
                    name: name.to_string(),
                    values: Vec::new(),
                });
            }
            &mut open.members.last_mut().expect("just ensured").values
        }
        _ => {
            let g = msg.groups.last_mut().ok_or(FrameError::OrphanValue)?;
            let a = g.attributes.last_mut().ok_or(FrameError::OrphanValue)?;
            &mut a.values
        }
    };
    if values.len() >= limits.max_values_per_attribute {
        return Err(FrameError::TooManyValues(limits.max_values_per_attribute));
    }
    values.push(value);
    Ok(())
}

fn decode_value(t: u8, data: &[u8], name: &str) -> Result<Value, FrameError> {
    let bad = |why| FrameError::BadValue {
        name: name.to_string(),
        why,
    };
    let s = |d: &[u8]| -> Result<String, FrameError> {
        std::str::from_utf8(d)
            .map(str::to_string)
            .map_err(|_| bad("not valid UTF-8"))
    };
    let be32 = |d: &[u8]| i32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    Ok(match t {
        0x10..=0x1F => Value::OutOfBand(t),
        tag::INTEGER | tag::ENUM => {
            if data.len() != 4 {
                return Err(bad("integer/enum value must be 4 bytes"));
            }
            if t == tag::INTEGER {
                Value::Integer(be32(data))
            } else {
                Value::Enum(be32(data))
            }
        }
        tag::BOOLEAN => match data {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            _ => return Err(bad("boolean value must be one byte 0 or 1")),
        },
        tag::OCTET_STRING => Value::OctetString(data.to_vec()),
        tag::DATE_TIME => {
            let d: [u8; 11] = data
                .try_into()
                .map_err(|_| bad("dateTime must be 11 bytes"))?;
            Value::DateTime(d)
        }
        tag::RESOLUTION => {
            if data.len() != 9 {
                return Err(bad("resolution must be 9 bytes"));
            }
            Value::Resolution {
                x: be32(&data[0..4]),
                y: be32(&data[4..8]),
                units: data[8],
            }
        }
        tag::RANGE => {
            if data.len() != 8 {
                return Err(bad("rangeOfInteger must be 8 bytes"));
            }
            Value::Range(be32(&data[0..4]), be32(&data[4..8]))
        }
        tag::TEXT_LANG | tag::NAME_LANG => {
            // RFC 8010 §3.9: two length-prefixed strings that must exactly fill the value.
            let mut r = Reader { buf: data, pos: 0 };
            let ll = r.u16().map_err(|_| bad("truncated language"))? as usize;
            let lang = r
                .bytes(ll)
                .map_err(|_| bad("language length exceeds value"))?;
            let tl = r.u16().map_err(|_| bad("truncated text length"))? as usize;
            let text = r.bytes(tl).map_err(|_| bad("text length exceeds value"))?;
            if r.pos != data.len() {
                return Err(bad("inner lengths do not match value length"));
            }
            let (lang, text) = (s(lang)?, s(text)?);
            if t == tag::TEXT_LANG {
                Value::TextLang { lang, text }
            } else {
                Value::NameLang { lang, name: text }
            }
        }
        tag::TEXT => Value::Text(s(data)?),
        tag::NAME => Value::Name(s(data)?),
        tag::KEYWORD => Value::Keyword(s(data)?),
        tag::URI => Value::Uri(s(data)?),
        tag::URI_SCHEME => Value::UriScheme(s(data)?),
        tag::CHARSET => Value::Charset(s(data)?),
        tag::NATURAL_LANGUAGE => Value::NaturalLanguage(s(data)?),
        tag::MIME_MEDIA_TYPE => Value::MimeMediaType(s(data)?),
        0x20 | 0x24..=0x2F | 0x38..=0x3F | 0x40 | 0x43 | 0x4B..=0x5F => Value::Other {
            tag: t,
            data: data.to_vec(),
        },
        _ => return Err(FrameError::BadTag(t)),
    })
}

/// Encodes `msg` into `out` (RFC 8010 §3.1).
pub fn encode_message(msg: &Message, out: &mut Vec<u8>) {
    out.push(msg.version.0);
    out.push(msg.version.1);
    out.extend_from_slice(&msg.code.to_be_bytes());
    out.extend_from_slice(&msg.request_id.to_be_bytes());
    for g in &msg.groups {
        out.push(g.tag);
        for a in &g.attributes {
            encode_attribute(a, out);
        }
    }
    for (t, bytes) in &msg.encoded_groups {
        out.push(*t);
        out.extend_from_slice(bytes);
    }
    out.push(tag::END);
}

/// Encodes one attribute (all its values) as it appears inside a group.
pub fn encode_attribute(a: &Attribute, out: &mut Vec<u8>) {
    for (i, v) in a.values.iter().enumerate() {
        let name = if i == 0 { a.name.as_str() } else { "" };
        encode_value(name, v, out);
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    // Values longer than the wire allows are cut, never wrapped: our own values are short.
    let n = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&s[..n]);
}

fn encode_value(name: &str, v: &Value, out: &mut Vec<u8>) {
    out.push(v.tag());
    put_str(out, name.as_bytes());
    match v {
        Value::Integer(i) | Value::Enum(i) => {
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Boolean(b) => {
            out.extend_from_slice(&1u16.to_be_bytes());
            out.push(*b as u8);
        }
        Value::OctetString(d) | Value::Other { data: d, .. } => put_str(out, d),
        Value::DateTime(d) => put_str(out, d),
        Value::Resolution { x, y, units } => {
            out.extend_from_slice(&9u16.to_be_bytes());
            out.extend_from_slice(&x.to_be_bytes());
            out.extend_from_slice(&y.to_be_bytes());
            out.push(*units);
        }
        Value::Range(a, b) => {
            out.extend_from_slice(&8u16.to_be_bytes());
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&b.to_be_bytes());
        }
        Value::Collection(members) => {
            out.extend_from_slice(&0u16.to_be_bytes());
            for m in members {
                out.push(tag::MEMBER_NAME);
                out.extend_from_slice(&0u16.to_be_bytes());
                put_str(out, m.name.as_bytes());
                for mv in &m.values {
                    encode_value("", mv, out);
                }
            }
            out.push(tag::END_COLLECTION);
            out.extend_from_slice(&0u16.to_be_bytes());
            out.extend_from_slice(&0u16.to_be_bytes());
        }
        Value::TextLang { lang, text: s } | Value::NameLang { lang, name: s } => {
            let total = 4 + lang.len() + s.len();
            out.extend_from_slice(&(total.min(u16::MAX as usize) as u16).to_be_bytes());
            put_str(out, lang.as_bytes());
            put_str(out, s.as_bytes());
        }
        Value::OutOfBand(_) => out.extend_from_slice(&0u16.to_be_bytes()),
        other => put_str(out, other.as_str().unwrap_or("").as_bytes()),
    }
}

/// A dateTime value (RFC 2579) for a UTC Unix time.
pub fn date_time(unix_seconds: i64) -> Value {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    let y = y.clamp(0, 65_535) as u16;
    let mut b = [0u8; 11];
    b[0..2].copy_from_slice(&y.to_be_bytes());
    b[2] = m as u8;
    b[3] = d as u8;
    b[4] = (secs / 3600) as u8;
    b[5] = (secs / 60 % 60) as u8;
    b[6] = (secs % 60) as u8;
    b[7] = 0;
    b[8] = b'+';
    b[9] = 0;
    b[10] = 0;
    Value::DateTime(b)
}

/// Property checks on the framing code, shared by the cargo-fuzz target (`fuzz/`) and the corpus
/// replay test (`tests/fuzz_corpus.rs`) so that both check exactly the same things.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Small limits, so that arbitrary inputs reach every limit check too.
    pub const SMALL_LIMITS: Limits = Limits {
        max_attribute_bytes: 1024,
        max_attributes: 16,
        max_value_length: 128,
        max_collection_depth: 3,
        max_values_per_attribute: 8,
    };

    /// Feeds `bytes` to [`Scanner::feed`] (whole, byte by byte and in pseudo-random splits derived from
    /// the bytes) and to [`parse_message`], with the default and with small limits, and panics when:
    /// the split feeds disagree with the whole feed; the scanner and the parser disagree on where the
    /// attribute section ends; or a parsed message does not survive `encode_message` + `parse_message`
    /// unchanged (and re-encode to the same bytes). Never panicking on any input is the other property.
    pub fn check_framing(bytes: &[u8]) {
        check_with(bytes, &Limits::default());
        check_with(bytes, &SMALL_LIMITS);
    }

    fn check_with(bytes: &[u8], limits: &Limits) {
        let whole = Scanner::new().feed(bytes, limits);
        if let Err(e) = &whole {
            let _ = (e.to_string(), e.is_too_large());
        }

        // Incremental feeds must end where the whole feed ends. A byte at a time is O(n) in total
        // because the scanner resumes where it stopped; bound it anyway to keep fuzzing fast.
        if bytes.len() <= 4096 {
            assert_eq!(
                feed_in_steps(bytes, limits, &mut |_| 1),
                whole,
                "byte-by-byte feed differs"
            );
        }
        let mut x = seed(bytes);
        for _ in 0..3 {
            let got = feed_in_steps(bytes, limits, &mut |remaining| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                1 + (x % (remaining as u64).min(64)) as usize
            });
            assert_eq!(got, whole, "split feed differs");
        }

        let parsed = parse_message(bytes, limits);
        match (&parsed, &whole) {
            (Ok((_, used)), Ok(Some(end))) => {
                assert_eq!(used, end, "parser and scanner disagree on the end")
            }
            (Ok((_, used)), other) => {
                panic!("parser ended at {used} but the scanner said {other:?}")
            }
            _ => {}
        }
        // What the server does: parse only the section the scanner delimited.
        if let Ok(Some(end)) = whole {
            assert!(
                end <= bytes.len() && end >= 9,
                "scanner end {end} out of range"
            );
            assert_eq!(
                parse_message(&bytes[..end], limits),
                parsed,
                "parse of the delimited section differs"
            );
        }

        let Ok((msg, _)) = parsed else { return };
        for g in &msg.groups {
            for a in &g.attributes {
                for v in &a.values {
                    let _ = v.to_string();
                }
            }
        }
        let mut again = Vec::new();
        encode_message(&msg, &mut again);
        let reparsed = parse_message(&again, limits);
        match &reparsed {
            Ok((m, used)) => {
                assert_eq!(m, &msg, "round trip changed the message");
                assert_eq!(*used, again.len(), "re-encoded message has trailing bytes");
            }
            Err(e) => panic!("re-encoded message does not parse: {e:?}\n{msg:?}"),
        }
        assert_eq!(Scanner::new().feed(&again, limits), Ok(Some(again.len())));
        let mut third = Vec::new();
        encode_message(&reparsed.expect("checked").0, &mut third);
        assert_eq!(third, again, "encoding is not stable");
    }

    /// Feeds growing prefixes of `bytes` (the step sizes come from `step(remaining)`) until the
    /// scanner answers with an end or an error, finishing with the whole buffer.
    fn feed_in_steps(
        bytes: &[u8],
        limits: &Limits,
        step: &mut dyn FnMut(usize) -> usize,
    ) -> Result<Option<usize>, FrameError> {
        let mut scanner = Scanner::new();
        let mut upto = 0;
        loop {
            let r = scanner.feed(&bytes[..upto], limits);
            if upto == bytes.len() || !matches!(r, Ok(None)) {
                return r;
            }
            upto += step(bytes.len() - upto).clamp(1, bytes.len() - upto);
        }
    }

    fn seed(bytes: &[u8]) -> u64 {
        // FNV-1a; never zero, so xorshift does not get stuck.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h | 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(attrs: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0x0B, 0, 0, 0, 1, tag::OPERATION];
        v.extend_from_slice(attrs);
        v.push(tag::END);
        v
    }

    fn attr(t: u8, name: &str, value: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend_from_slice(&(name.len() as u16).to_be_bytes());
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn round_trip_with_collection() {
        let mut msg = Message::new((2, 0), 0x0002, 7);
        let g = msg.group_mut(tag::OPERATION);
        g.push(Attribute::new(
            "attributes-charset",
            Value::Charset("utf-8".into()),
        ));
        g.push(Attribute::set(
            "x",
            vec![Value::Integer(1), Value::Integer(-2)],
        ));
        let size = Value::Collection(vec![
            Attribute::new("x-dimension", Value::Integer(21000)),
            Attribute::new("y-dimension", Value::Integer(29700)),
        ]);
        let col = Value::Collection(vec![
            Attribute::new("media-size", size),
            Attribute::set(
                "media-type",
                vec![Value::Keyword("a".into()), Value::Keyword("b".into())],
            ),
        ]);
        msg.group_mut(tag::JOB)
            .push(Attribute::set("media-col", vec![col.clone(), col]));
        msg.group_mut(tag::JOB).push(Attribute::new(
            "job-name",
            Value::NameLang {
                lang: "en".into(),
                name: "n".into(),
            },
        ));
        let mut bytes = Vec::new();
        encode_message(&msg, &mut bytes);
        bytes.extend_from_slice(b"%PDF");
        let end = Scanner::new()
            .feed(&bytes, &Limits::default())
            .unwrap()
            .unwrap();
        let (parsed, used) = parse_message(&bytes, &Limits::default()).unwrap();
        assert_eq!(end, used);
        assert_eq!(&bytes[used..], b"%PDF");
        assert_eq!(parsed, msg);
    }

    #[test]
    fn text_with_language_bad_inner_length_is_rejected() {
        // inner text length says 200 but only 3 bytes follow: the ipp crate 8.0.0 panics on this.
        let mut inner = vec![0, 2, b'e', b'n', 0, 200];
        inner.extend_from_slice(b"abc");
        let req = request_with(&attr(tag::TEXT_LANG, "job-name", &inner));
        let err = parse_message(&req, &Limits::default()).unwrap_err();
        assert!(matches!(err, FrameError::BadValue { .. }), "{err:?}");
    }

    #[test]
    fn scanner_waits_for_more_and_enforces_size() {
        let req = request_with(&attr(tag::KEYWORD, "k", b"v"));
        let mut s = Scanner::new();
        assert_eq!(s.feed(&req[..10], &Limits::default()).unwrap(), None);
        assert_eq!(s.feed(&req, &Limits::default()).unwrap(), Some(req.len()));
        let limits = Limits {
            max_attribute_bytes: 64,
            ..Limits::default()
        };
        let big = request_with(&attr(tag::OCTET_STRING, "k", &[0u8; 100]));
        assert!(Scanner::new()
            .feed(&big, &limits)
            .unwrap_err()
            .is_too_large());
    }

    #[test]
    fn limits_are_enforced() {
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend(attr(tag::KEYWORD, "k", b"v"));
        }
        let limits = Limits {
            max_attributes: 5,
            ..Limits::default()
        };
        let err = parse_message(&request_with(&many), &limits).unwrap_err();
        assert_eq!(err, FrameError::TooManyAttributes(5));

        let mut deep = Vec::new();
        deep.extend(attr(tag::BEG_COLLECTION, "c", b""));
        for _ in 0..20 {
            deep.extend(attr(tag::MEMBER_NAME, "", b"m"));
            deep.extend(attr(tag::BEG_COLLECTION, "", b""));
        }
        let err = parse_message(&request_with(&deep), &Limits::default()).unwrap_err();
        assert!(matches!(err, FrameError::TooDeep(_)), "{err:?}");
    }

    #[test]
    fn garbage_never_panics() {
        for seed in 0u32..2000 {
            let mut x = seed.wrapping_mul(2_654_435_761);
            let len = (seed % 64) as usize + 8;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = parse_message(&bytes, &Limits::default());
            let _ = Scanner::new().feed(&bytes, &Limits::default());
        }
    }

    #[test]
    fn date_time_is_civil() {
        // 2011-12-01 12:00:00 UTC
        let Value::DateTime(b) = date_time(1_322_740_800) else {
            panic!()
        };
        assert_eq!(&b[..7], &[0x07, 0xDB, 12, 1, 12, 0, 0]);
    }
}

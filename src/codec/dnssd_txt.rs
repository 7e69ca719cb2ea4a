//! DNS-SD TXT records and service instance names for a printer (Bonjour Printing Specification
//! 1.2.1 §9, PWG 5100.14 §4.2 "IPP Everywhere DNS-SD", RFC 6763 §6). Pure: plain data in,
//! `key=value` strings out, every value bounded and every key checked.
//!
//! Every key mirrors an IPP attribute the printer reports, so a client that trusts the TXT record
//! and one that asks Get-Printer-Attributes see the same printer:
//!
//! | key | IPP attribute |
//! |-----|---------------|
//! | `rp` | the resource of printer-uri-supported, without the leading `/` |
//! | `ty`, `product` | printer-make-and-model (`product` in parentheses, as the spec asks) |
//! | `adminurl` | printer-more-info |
//! | `note` | printer-location (left out while none is configured) |
//! | `pdl` | document-format-supported, **including** application/octet-stream: the list is the attribute, joined with commas, so the two never disagree; clients look for the types they can send and ignore the rest |
//! | `URF` | urf-supported |
//! | `UUID` | printer-uuid without `urn:uuid:` |
//! | `Color`, `Duplex` | color-supported, sides-supported |
//! | `kind` | printer-kind |
//! | `PaperMax` | the widest size of media-size-supported |
//! | `air` | uri-authentication-supported (only when printing needs a password) |
//! | `printer-state`, `printer-type` | printer-state, printer-is-accepting-jobs and the capabilities, as CUPS encodes them |

/// A TXT string is one length byte and its bytes (RFC 6763 §6.1): `key=value` is at most 255.
pub const MAX_STRING: usize = 255;

/// A service instance name is one DNS label: at most 63 bytes of UTF-8 (RFC 6763 §4.1.1).
pub const MAX_INSTANCE_NAME: usize = 63;

/// CUPS printer-type bits (cups/cups.h `cups_ptype_e`), the value of the `printer-type` key.
pub mod ptype {
    pub const REMOTE: u32 = 0x0002;
    pub const BW: u32 = 0x0004;
    pub const COLOR: u32 = 0x0008;
    pub const DUPLEX: u32 = 0x0010;
    pub const COPIES: u32 = 0x0040;
    pub const COLLATE: u32 = 0x0080;
    pub const SMALL: u32 = 0x1000;
    pub const MEDIUM: u32 = 0x2000;
    pub const LARGE: u32 = 0x4000;
    pub const REJECTING: u32 = 0x0008_0000;
    pub const AUTHENTICATED: u32 = 0x0040_0000;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    #[error("TXT key {0:?} is empty, not printable US-ASCII, or contains '=' (RFC 6763 §6.4)")]
    InvalidKey(String),
    #[error("TXT key {0} has an empty value; such keys are left out")]
    EmptyValue(String),
    #[error("TXT string {0}=... is longer than 255 bytes (RFC 6763 §6.1)")]
    TooLong(String),
}

/// What the TXT record of a print service says, each field taken from the IPP attribute named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrinterFacts {
    /// The queue's resource path, e.g. `/ipp/print`.
    pub resource: String,
    /// printer-make-and-model.
    pub make_and_model: String,
    /// printer-more-info, e.g. `http://pi.local:8631/`.
    pub admin_url: String,
    /// printer-location; empty when none is configured.
    pub location: String,
    /// document-format-supported.
    pub document_formats: Vec<String>,
    /// urf-supported.
    pub urf: Vec<String>,
    /// printer-uuid, with or without `urn:uuid:`.
    pub uuid: String,
    /// color-supported.
    pub color: bool,
    /// sides-supported lists a two-sided value.
    pub duplex: bool,
    /// printer-kind.
    pub kind: Vec<String>,
    /// media-size-supported as (x-dimension, y-dimension) in hundredths of millimetres.
    pub media_sizes: Vec<(i32, i32)>,
    /// copies-supported goes above 1.
    pub copies: bool,
    /// multiple-document-handling-supported offers collated copies.
    pub collate: bool,
    /// Printing needs a user name and password (`air`, Bonjour Printing 1.2.1 §9.3).
    pub auth_required: bool,
    /// printer-state: 3 idle, 4 processing, 5 stopped.
    pub state: i32,
    /// printer-is-accepting-jobs.
    pub accepting: bool,
}

/// One `key=value` pair of a TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtEntry {
    pub key: &'static str,
    pub value: String,
}

impl TxtEntry {
    /// The wire string `key=value`, checked (RFC 6763 §6.3-6.4).
    pub fn to_bytes(&self) -> Result<Vec<u8>, TxtError> {
        check_key(self.key)?;
        if self.value.is_empty() {
            return Err(TxtError::EmptyValue(self.key.to_string()));
        }
        let s = format!("{}={}", self.key, self.value);
        if s.len() > MAX_STRING {
            return Err(TxtError::TooLong(self.key.to_string()));
        }
        Ok(s.into_bytes())
    }
}

/// RFC 6763 §6.4: a key is at least one printable US-ASCII character (0x20-0x7E) other than '='.
pub fn check_key(key: &str) -> Result<(), TxtError> {
    if key.is_empty() || !key.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'=') {
        return Err(TxtError::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// The TXT record of `_ipp._tcp` (`tls` false) or `_ipps._tcp` (`tls` true), keys in the order the
/// Bonjour Printing Specification 1.2.1 §9 lists them (txtvers first, RFC 6763 §6.7), then the
/// AirPrint and IPP Everywhere keys (PWG 5100.14 §4.2.2), then the CUPS ones.
pub fn printer_txt(f: &PrinterFacts, tls: bool) -> Vec<TxtEntry> {
    let mut out = Vec::with_capacity(20);
    let mut put = |key: &'static str, value: String| {
        let value = bounded(key, &clean(&value));
        if !value.is_empty() {
            out.push(TxtEntry { key, value });
        }
    };
    let yes_no = |b: bool| if b { "T" } else { "F" }.to_string();
    put("txtvers", "1".into());
    put("qtotal", "1".into());
    put("rp", f.resource.trim_start_matches('/').to_string());
    put("ty", f.make_and_model.clone());
    put("adminurl", f.admin_url.clone());
    put("note", f.location.clone());
    put("priority", "0".into());
    if !f.make_and_model.trim().is_empty() {
        put("product", format!("({})", f.make_and_model.trim()));
    }
    put("pdl", list("pdl", &f.document_formats));
    put("URF", list("URF", &f.urf));
    put("UUID", bare_uuid(&f.uuid).to_string());
    if tls {
        // The highest TLS version the port speaks (AirPrint; CUPS writes the same).
        put("TLS", "1.3".into());
    }
    put("Color", yes_no(f.color));
    put("Duplex", yes_no(f.duplex));
    put("kind", list("kind", &f.kind));
    put(
        "PaperMax",
        paper_max(&f.media_sizes).unwrap_or_default().into(),
    );
    put("mopria-certified", "1.3".into());
    if f.auth_required {
        put("air", "username,password".into());
    }
    put("printer-state", f.state.to_string());
    put("printer-type", format!("0x{:X}", printer_type(f)));
    out
}

/// The TXT record of the `_http._tcp` web page (DNS-SD service type registry: `path`).
pub fn http_txt(path: &str) -> Vec<TxtEntry> {
    vec![TxtEntry {
        key: "path",
        value: bounded("path", path),
    }]
}

/// The `key=value` strings of a record, each checked.
pub fn to_strings(entries: &[TxtEntry]) -> Result<Vec<Vec<u8>>, TxtError> {
    entries.iter().map(TxtEntry::to_bytes).collect()
}

/// The TXT RDATA: length-prefixed strings; an empty record is one empty string (RFC 6763 §6.1).
pub fn encode(entries: &[TxtEntry]) -> Result<Vec<u8>, TxtError> {
    let mut out = Vec::new();
    for s in to_strings(entries)? {
        out.push(s.len() as u8);
        out.extend_from_slice(&s);
    }
    if out.is_empty() {
        out.push(0);
    }
    Ok(out)
}

/// `PaperMax` (Bonjour Printing 1.2.1 §9.3.4) from the widest size, by its short edge, with the
/// boundaries libcups/PAPPL use: A4 210 mm, A3 297 mm, A2 420 mm, A1 594 mm wide.
pub fn paper_max(sizes: &[(i32, i32)]) -> Option<&'static str> {
    let widest = sizes.iter().map(|&(w, l)| w.min(l)).max()?;
    Some(match widest {
        w if w < 21000 => "<legal-A4",
        w if w < 29700 => "legal-A4",
        w if w < 42000 => "tabloid-A3",
        w if w < 59400 => "isoC-A2",
        _ => ">isoC-A2",
    })
}

/// The CUPS printer-type bits for the facts, with REMOTE set as cupsd sets it for a shared queue
/// (scheduler/dirsvc.c): clients that know CUPS read colour, duplex, copies, collation, the size
/// class, rejecting and authentication from it.
pub fn printer_type(f: &PrinterFacts) -> u32 {
    let mut t = ptype::REMOTE | ptype::BW;
    if f.color {
        t |= ptype::COLOR;
    }
    if f.duplex {
        t |= ptype::DUPLEX;
    }
    if f.copies {
        t |= ptype::COPIES;
    }
    if f.collate {
        t |= ptype::COLLATE;
    }
    for &(w, l) in &f.media_sizes {
        t |= match w.min(l) {
            w if w < 29700 => ptype::SMALL,
            w if w < 59400 => ptype::MEDIUM,
            _ => ptype::LARGE,
        };
    }
    if !f.accepting {
        t |= ptype::REJECTING;
    }
    if f.auth_required {
        t |= ptype::AUTHENTICATED;
    }
    t
}

/// printer-uuid without its `urn:uuid:` prefix (PWG 5100.14 §4.2.2: `UUID` is bare).
pub fn bare_uuid(uuid: &str) -> &str {
    let t = uuid.trim();
    match t.get(..9) {
        Some(p) if p.eq_ignore_ascii_case("urn:uuid:") => &t[9..],
        _ => t,
    }
}

/// The instance name for attempt `n` (1 = the name itself): `name`, `name (2)`, `name (3)`, ...
/// (Bonjour Printing 1.2.1 §7.2), cut to one 63-byte DNS label on a character boundary, with
/// control characters (not allowed in instance names, RFC 6763 §4.1.1) turned into spaces.
pub fn instance_name(base: &str, n: u32) -> String {
    let base = clean(base);
    let base = if base.is_empty() {
        "printbridge"
    } else {
        &base
    };
    let suffix = if n <= 1 {
        String::new()
    } else {
        format!(" ({n})")
    };
    let room = MAX_INSTANCE_NAME - suffix.len();
    format!("{}{suffix}", truncate(base, room).trim_end())
}

/// Which attempt `name` is for `base` (the inverse of [`instance_name`]), if it is one.
pub fn instance_number(base: &str, name: &str) -> Option<u32> {
    if name == instance_name(base, 1) {
        return Some(1);
    }
    let open = name.rfind(" (")?;
    let n: u32 = name[open + 2..].strip_suffix(')')?.parse().ok()?;
    (n >= 2 && instance_name(base, n) == name).then_some(n)
}

/// A host name label for `<label>.local` (RFC 1123 letters, digits and hyphens, RFC 6762 §16 one
/// label): the first label of the machine's host name with anything else turned into `-`.
pub fn host_label(raw: &str) -> String {
    let first = raw.trim().split('.').next().unwrap_or("");
    let mapped: String = first
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let label = truncate(mapped.trim_matches('-'), MAX_INSTANCE_NAME).trim_end_matches('-');
    if label.is_empty() {
        "printbridge".to_string()
    } else {
        label.to_string()
    }
}

/// Control characters become spaces; surrounding blanks go.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `value` cut so that `key=value` fits in one TXT string.
fn bounded(key: &str, value: &str) -> String {
    truncate(value, MAX_STRING - key.len() - 1).to_string()
}

/// A comma-separated list that fits in one TXT string: whole items only, later ones dropped (a
/// half MIME type would be a lie), empty and comma-containing items skipped.
fn list(key: &str, items: &[String]) -> String {
    let room = MAX_STRING - key.len() - 1;
    let mut out = String::new();
    for item in items.iter().map(|i| clean(i)) {
        if item.is_empty() || item.contains(',') {
            continue;
        }
        let extra = item.len() + usize::from(!out.is_empty());
        if out.len() + extra > room {
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&item);
    }
    out
}

/// Property checks on the TXT and instance-name code, shared by the cargo-fuzz target (`fuzz/`)
/// and the corpus replay test (`tests/fuzz_corpus.rs`). The values come from configuration, from
/// Set-Printer-Attributes and (instance names) from other responders on the network, so they are
/// as untrusted as any request.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Splits `bytes` at 0xFF bytes into fields (lossy UTF-8), builds [`PrinterFacts`] and names
    /// from them, and panics unless: every TXT string fits in 255 bytes and has a valid key, the
    /// record encodes, instance names fit one 63-byte label and [`instance_number`] recognises
    /// each [`instance_name`], and host labels hold only letters, digits and inner hyphens.
    pub fn check_txt(bytes: &[u8]) {
        let fields: Vec<String> = bytes
            .split(|&b| b == 0xFF)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
        let list = |i: usize| -> Vec<String> { field(i).split(';').map(str::to_string).collect() };
        let flags = bytes.first().copied().unwrap_or(0);
        let sizes: Vec<(i32, i32)> = bytes
            .chunks_exact(8)
            .take(8)
            .map(|c| {
                (
                    i32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                    i32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        let facts = PrinterFacts {
            resource: field(0),
            make_and_model: field(1),
            admin_url: field(2),
            location: field(3),
            document_formats: list(4),
            urf: list(5),
            uuid: field(6),
            color: flags & 1 != 0,
            duplex: flags & 2 != 0,
            kind: list(7),
            media_sizes: sizes,
            copies: flags & 4 != 0,
            collate: flags & 8 != 0,
            auth_required: flags & 16 != 0,
            state: i32::from(flags >> 5),
            accepting: flags & 128 != 0,
        };
        for tls in [false, true] {
            let entries = printer_txt(&facts, tls);
            for s in to_strings(&entries).expect("every TXT entry is valid") {
                assert!(s.len() <= MAX_STRING, "TXT string of {} bytes", s.len());
            }
            encode(&entries).expect("the record encodes");
        }
        // An empty path is refused (EmptyValue), not encoded; anything else encodes.
        let http = encode(&http_txt(&field(0)));
        assert!(http.is_ok() || field(0).is_empty(), "{http:?}");
        let base = field(8);
        for n in [1, 2, 10, u32::MAX] {
            let name = instance_name(&base, n);
            assert!(name.len() <= MAX_INSTANCE_NAME, "{name:?}");
            // A name cut to 63 bytes may be made twice (a base ending in " (2)"), so the inverse
            // is checked for consistency: the attempt it names gives the same name back.
            let m = instance_number(&base, &name).expect("an instance name is recognised");
            assert_eq!(instance_name(&base, m), name);
        }
        let _ = instance_number(&base, &field(9));
        let label = host_label(&field(9));
        assert!(!label.is_empty() && label.len() <= MAX_INSTANCE_NAME);
        assert!(label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        assert!(
            !label.starts_with('-') && !label.ends_with('-'),
            "{label:?}"
        );
        let _ = bare_uuid(&field(6));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PrinterFacts {
        PrinterFacts {
            resource: "/ipp/print".into(),
            make_and_model: "printbridge IPP Everywhere".into(),
            admin_url: "http://pi.local:8631/".into(),
            location: "2nd floor".into(),
            document_formats: vec![
                "application/pdf".into(),
                "image/jpeg".into(),
                "image/pwg-raster".into(),
                "image/urf".into(),
                "application/octet-stream".into(),
            ],
            urf: vec!["V1.4".into(), "CP1".into(), "W8".into(), "SRGB24".into()],
            uuid: "urn:uuid:1b5c1f3e-2b4a-4c5d-8e9f-0a1b2c3d4e5f".into(),
            color: true,
            duplex: true,
            kind: vec!["document".into(), "photo".into()],
            media_sizes: vec![(21000, 29700), (21590, 35560), (10160, 15240)],
            copies: true,
            collate: true,
            auth_required: false,
            state: 3,
            accepting: true,
        }
    }

    fn get<'a>(txt: &'a [TxtEntry], key: &str) -> Option<&'a str> {
        txt.iter().find(|e| e.key == key).map(|e| e.value.as_str())
    }

    #[test]
    fn ipp_record_has_the_keys_in_order() {
        let txt = printer_txt(&facts(), false);
        let keys: Vec<_> = txt.iter().map(|e| e.key).collect();
        assert_eq!(
            keys,
            [
                "txtvers",
                "qtotal",
                "rp",
                "ty",
                "adminurl",
                "note",
                "priority",
                "product",
                "pdl",
                "URF",
                "UUID",
                "Color",
                "Duplex",
                "kind",
                "PaperMax",
                "mopria-certified",
                "printer-state",
                "printer-type"
            ]
        );
        assert_eq!(get(&txt, "rp"), Some("ipp/print"));
        assert_eq!(get(&txt, "product"), Some("(printbridge IPP Everywhere)"));
        assert_eq!(
            get(&txt, "pdl"),
            Some("application/pdf,image/jpeg,image/pwg-raster,image/urf,application/octet-stream")
        );
        assert_eq!(get(&txt, "URF"), Some("V1.4,CP1,W8,SRGB24"));
        assert_eq!(
            get(&txt, "UUID"),
            Some("1b5c1f3e-2b4a-4c5d-8e9f-0a1b2c3d4e5f")
        );
        assert_eq!(get(&txt, "kind"), Some("document,photo"));
        assert_eq!(get(&txt, "PaperMax"), Some("legal-A4"));
        assert_eq!(get(&txt, "printer-type"), Some("0x10DE"));
        assert_eq!(get(&txt, "TLS"), None);
        assert_eq!(get(&txt, "air"), None);
    }

    #[test]
    fn ipps_record_adds_tls_and_auth_adds_air() {
        let mut f = facts();
        f.auth_required = true;
        f.accepting = false;
        f.color = false;
        f.duplex = false;
        let txt = printer_txt(&f, true);
        assert_eq!(get(&txt, "TLS"), Some("1.3"));
        assert_eq!(get(&txt, "air"), Some("username,password"));
        assert_eq!(get(&txt, "Color"), Some("F"));
        assert_eq!(get(&txt, "Duplex"), Some("F"));
        let t = u32::from_str_radix(
            get(&txt, "printer-type").unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        assert_ne!(t & ptype::AUTHENTICATED, 0);
        assert_ne!(t & ptype::REJECTING, 0);
        assert_eq!(t & (ptype::COLOR | ptype::DUPLEX), 0);
    }

    #[test]
    fn empty_values_are_left_out() {
        let mut f = facts();
        f.location = "  ".into();
        f.make_and_model = String::new();
        f.urf.clear();
        f.media_sizes.clear();
        let txt = printer_txt(&f, false);
        for key in ["note", "ty", "product", "URF", "PaperMax"] {
            assert_eq!(get(&txt, key), None, "{key}");
        }
        assert!(txt.iter().all(|e| !e.value.is_empty()));
        to_strings(&txt).unwrap();
    }

    #[test]
    fn values_are_bounded_and_clean() {
        let mut f = facts();
        f.location = format!("room\n{}", "é".repeat(300));
        f.document_formats = (0..40)
            .map(|i| format!("application/x-format-{i}"))
            .collect();
        let txt = printer_txt(&f, true);
        for s in to_strings(&txt).unwrap() {
            assert!(s.len() <= MAX_STRING);
            assert!(!s.iter().any(|b| *b < 0x20 || *b == 0x7f));
        }
        let note = get(&txt, "note").unwrap();
        assert!(note.starts_with("room é"));
        let pdl = get(&txt, "pdl").unwrap();
        assert!(pdl.ends_with(|c: char| c.is_ascii_digit()), "{pdl}");
        assert!(pdl
            .split(',')
            .all(|p| p.starts_with("application/x-format-")));
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("txtvers").is_ok());
        for bad in ["", "a=b", "tab\t", "é"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        let e = TxtEntry {
            key: "note",
            value: String::new(),
        };
        assert_eq!(e.to_bytes(), Err(TxtError::EmptyValue("note".into())));
        let e = TxtEntry {
            key: "note",
            value: "x".repeat(251),
        };
        assert_eq!(e.to_bytes(), Err(TxtError::TooLong("note".into())));
    }

    #[test]
    fn wire_encoding() {
        assert_eq!(encode(&[]).unwrap(), vec![0]);
        assert_eq!(encode(&http_txt("/")).unwrap(), b"\x06path=/".to_vec());
    }

    #[test]
    fn paper_max_classes() {
        assert_eq!(paper_max(&[]), None);
        assert_eq!(paper_max(&[(10160, 15240)]), Some("<legal-A4"));
        assert_eq!(paper_max(&[(21000, 29700)]), Some("legal-A4"));
        assert_eq!(paper_max(&[(29700, 42000)]), Some("tabloid-A3"));
        assert_eq!(paper_max(&[(43180, 55880)]), Some("isoC-A2"));
        assert_eq!(paper_max(&[(84100, 59400)]), Some(">isoC-A2"));
    }

    #[test]
    fn instance_names() {
        assert_eq!(instance_name("printbridge", 1), "printbridge");
        assert_eq!(instance_name("printbridge", 2), "printbridge (2)");
        assert_eq!(instance_name("", 1), "printbridge");
        assert_eq!(instance_name("a\nb", 1), "a b");
        let long = "ü".repeat(40);
        let n = instance_name(&long, 12);
        assert!(n.len() <= MAX_INSTANCE_NAME && n.ends_with("ü (12)"), "{n}");
        assert_eq!(instance_number("printbridge", "printbridge"), Some(1));
        assert_eq!(instance_number("printbridge", "printbridge (7)"), Some(7));
        assert_eq!(instance_number(&long, &n), Some(12));
        assert_eq!(instance_number("printbridge", "other (2)"), None);
        assert_eq!(instance_number("printbridge", "printbridge (1)"), None);
    }

    #[test]
    fn host_labels() {
        assert_eq!(host_label("pi.example.org"), "pi");
        assert_eq!(host_label("my_box"), "my-box");
        assert_eq!(host_label("--"), "printbridge");
        assert_eq!(host_label(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn bare_uuids() {
        assert_eq!(bare_uuid("urn:uuid:abc"), "abc");
        assert_eq!(bare_uuid("URN:UUID:abc"), "abc");
        assert_eq!(bare_uuid("abc"), "abc");
    }
}

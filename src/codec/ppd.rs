//! PPD files (Adobe PostScript Printer Description 4.3, with the CUPS extensions real files use) and
//! their mapping to IPP Everywhere capabilities.
//!
//! [`parse`] reads the syntax: main keywords, option keywords, translation strings (with `<hex>`
//! substrings), quoted values over several lines closed by an optional `*End`, symbol values
//! (`^Name`), `*%` comments, `*?` query keywords (skipped: their code is only ever sent to a printer
//! to ask it something), `*OpenUI`/`*CloseUI` (and the `JCL` forms), `*OpenGroup`/`*CloseGroup` and
//! sub-groups, `*OrderDependency`, `*UIConstraints`/`*NonUIConstraints`, `*cupsFilter` and
//! `*cupsFilter2`, `*PaperDimension`/`*ImageableArea`, `*ParamCustomPageSize`. Every other line is
//! kept as an [`Attribute`]. Files in ISO-8859-1 (what `*LanguageEncoding: ISOLatin1` means, and what
//! most PPDs are) are decoded as Latin-1 whenever the bytes are not UTF-8.
//!
//! [`capabilities`] maps what a PPD says to IPP values: `PageSize`/`PageRegion` with their
//! `*PaperDimension` and `*ImageableArea` to `media` (PWG 5101.1 self-describing names) with margins,
//! `InputSlot` to `media-source`, `MediaType` to `media-type`, `Duplex` to `sides`, `ColorModel` to
//! `print-color-mode`, `Resolution` to `printer-resolution`, and the defaults of each.
//!
//! Rules this module keeps:
//! - **Pure**: bytes in, values out. No file is ever opened, so `*Include` is refused with
//!   [`PpdError::Include`] rather than followed.
//! - **Bounded**: input size, line length, quoted value length, names, translations, options,
//!   choices per option, entries and group nesting are all limited ([`Limits`]); nothing allocates
//!   more than a small multiple of the input.
//! - **Never panics**, whatever the bytes (fuzzed by `fuzz/fuzz_targets/ppd_parser.rs` through
//!   [`fuzzing::check_parser`]).
//! - **Trust flows one way**: PPD → IPP. Every IPP keyword made here from a PPD name is sanitized
//!   to `[a-z0-9-]`. Going back from an IPP value to a PPD choice is a lookup in the mapped lists
//!   ([`find_mapped`]), which hands back the PPD's own string: a value that arrived over the network
//!   is never written into a PPD, a filter argument or a command line.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Limits on untrusted (or merely broken) PPD bytes. The defaults are far above any real PPD (the
/// largest Debian ships are a few hundred KiB, with a few hundred choices in one option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the whole file.
    pub max_bytes: usize,
    /// Bytes of one line outside quoted values.
    pub max_line: usize,
    /// Bytes of one quoted value (which may span many lines).
    pub max_value: usize,
    /// Characters of a main or option keyword.
    pub max_name: usize,
    /// Bytes of a translation string.
    pub max_text: usize,
    /// UI options (`*OpenUI`).
    pub max_options: usize,
    /// Choices in one option.
    pub max_choices: usize,
    /// Keyword lines in the file (choices, attributes, constraints, ...).
    pub max_entries: usize,
    /// Depth of `*OpenGroup`/`*OpenSubGroup`.
    pub max_group_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 * 1024 * 1024,
            max_line: 64 * 1024,
            max_value: 1024 * 1024,
            max_name: 64,
            max_text: 512,
            max_options: 1024,
            max_choices: 4096,
            max_entries: 100_000,
            max_group_depth: 8,
        }
    }
}

/// Why a PPD was rejected. Line numbers count from 1, in the file as given (CR, LF and CRLF all end
/// a line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PpdError {
    #[error("PPD is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}: not a PPD file: the first keyword must be *PPD-Adobe")]
    MissingHeader { line: usize },
    #[error("line {line}: *Include is refused: a PPD must be self-contained")]
    Include { line: usize },
    #[error("line {line}: line longer than {limit} bytes")]
    LineTooLong { line: usize, limit: usize },
    #[error("line {line}: quoted value is never closed")]
    UnterminatedQuote { line: usize },
    #[error("line {line}: quoted value longer than {limit} bytes")]
    ValueTooLong { line: usize, limit: usize },
    #[error("line {line}: bad main keyword")]
    BadKeyword { line: usize },
    #[error("line {line}: bad option keyword")]
    BadOption { line: usize },
    #[error("line {line}: bad translation string")]
    BadTranslation { line: usize },
    #[error("line {line}: *{keyword}: {reason}")]
    BadValue {
        line: usize,
        keyword: String,
        reason: &'static str,
    },
    #[error("line {line}: groups nested deeper than {limit}")]
    GroupsTooDeep { line: usize, limit: usize },
    #[error("line {line}: more than {limit} {what}")]
    TooMany {
        line: usize,
        what: &'static str,
        limit: usize,
    },
}

impl PpdError {
    /// The line the error is about, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            PpdError::TooLarge { .. } => None,
            PpdError::MissingHeader { line }
            | PpdError::Include { line }
            | PpdError::LineTooLong { line, .. }
            | PpdError::UnterminatedQuote { line }
            | PpdError::ValueTooLong { line, .. }
            | PpdError::BadKeyword { line }
            | PpdError::BadOption { line }
            | PpdError::BadTranslation { line }
            | PpdError::BadValue { line, .. }
            | PpdError::GroupsTooDeep { line, .. }
            | PpdError::TooMany { line, .. } => Some(*line),
        }
    }
}

/// A parsed PPD file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ppd {
    /// The value of `*PPD-Adobe` (`4.3`).
    pub format_version: String,
    pub manufacturer: Option<String>,
    pub model_name: Option<String>,
    pub nickname: Option<String>,
    pub short_nickname: Option<String>,
    pub language_level: Option<u32>,
    pub language_encoding: Option<String>,
    pub color_device: bool,
    /// Every `*DefaultX: value` line, as (`X`, value), in file order (also those that name no UI
    /// option, such as `DefaultResolution` or `DefaultImageableArea`).
    pub defaults: Vec<(String, String)>,
    pub options: Vec<UiOption>,
    pub constraints: Vec<Constraint>,
    pub filters: Vec<Filter>,
    /// Page sizes named by `PageSize`, `PageRegion` or `*PaperDimension`, in that order.
    pub page_sizes: Vec<PageSize>,
    /// From `*ParamCustomPageSize Width`/`Height`, when the printer takes custom sizes.
    pub custom_size: Option<CustomSizeRange>,
    /// `*HWMargins`: left, bottom, right, top in points (margins of custom sizes).
    pub hw_margins: Option<[f64; 4]>,
    /// Every other keyword line (and the special ones above too, in their raw form), in file order.
    pub attributes: Vec<Attribute>,
    /// What was wrong but could be read anyway (a missing `*CloseUI`, ...); at most 64.
    pub warnings: Vec<Warning>,
}

/// Something a PPD got wrong that the parser could work around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

const MAX_WARNINGS: usize = 64;

impl Ppd {
    /// The UI option with this keyword (without the `*`).
    pub fn option(&self, keyword: &str) -> Option<&UiOption> {
        self.options.iter().find(|o| o.keyword == keyword)
    }

    /// The first attribute with this main keyword and, when given, this option keyword.
    pub fn attribute(&self, keyword: &str, option: Option<&str>) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.keyword == keyword && (option.is_none() || a.option.as_deref() == option))
    }

    /// The value of `*Default<keyword>`, the last one when there are several.
    pub fn default_for(&self, keyword: &str) -> Option<&str> {
        self.defaults
            .iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }

    /// The page size with this PPD name.
    pub fn page_size(&self, name: &str) -> Option<&PageSize> {
        self.page_sizes.iter().find(|s| s.name == name)
    }
}

/// How a UI option is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiType {
    Boolean,
    PickOne,
    PickMany,
}

/// `*OrderDependency: order section *Keyword`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderDependency {
    pub order: f64,
    /// `ExitServer`, `Prolog`, `DocumentSetup`, `PageSetup`, `JCLSetup` or `AnySetup`.
    pub section: String,
}

/// An option between `*OpenUI` and `*CloseUI` (or one of the standard ones, such as `PageSize`,
/// whose choices appear without an `*OpenUI`, as in older PPDs).
#[derive(Debug, Clone, PartialEq)]
pub struct UiOption {
    /// Main keyword of the choices, without `*` (`PageSize`).
    pub keyword: String,
    /// Translation string, or the keyword when there is none.
    pub text: String,
    pub ui: UiType,
    /// From `*Default<keyword>`.
    pub default: Option<String>,
    pub choices: Vec<Choice>,
    /// The outermost `*OpenGroup` the option is in (`General`, `InstallableOptions`, ...).
    pub group: Option<String>,
    /// Opened by `*JCLOpenUI`.
    pub jcl: bool,
    pub order: Option<OrderDependency>,
}

impl UiOption {
    pub fn choice(&self, name: &str) -> Option<&Choice> {
        self.choices.iter().find(|c| c.name == name)
    }
}

/// One choice of an option: `*PageSize A4/A4 210 x 297 mm: "code"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    /// Translation string (hex substrings decoded), or the name when there is none.
    pub text: String,
    /// The invocation code, as written (PostScript, PJL, ... ; `<hex>` left as is).
    pub code: Value,
}

/// `*UIConstraints: *Option1 [Choice1] *Option2 [Choice2]`: the two may not be chosen together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub option1: String,
    pub choice1: Option<String>,
    pub option2: String,
    pub choice2: Option<String>,
    /// False for `*NonUIConstraints`.
    pub ui: bool,
}

/// `*cupsFilter: "source cost program"` or `*cupsFilter2: "source destination cost program"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub source: String,
    /// Only `*cupsFilter2` names the type the program produces.
    pub destination: Option<String>,
    pub cost: i32,
    /// The filter program (`-` for none). From the PPD, never from the network.
    pub program: String,
}

/// A page size with its `*PaperDimension` and `*ImageableArea`, in points (1/72 inch).
#[derive(Debug, Clone, PartialEq)]
pub struct PageSize {
    pub name: String,
    pub text: String,
    /// Width and length; `None` when the PPD gave no `*PaperDimension` for it.
    pub dimensions: Option<(f64, f64)>,
    pub imageable_area: Option<ImageableArea>,
}

/// `*ImageableArea name: "llx lly urx ury"` in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageableArea {
    pub left: f64,
    pub bottom: f64,
    pub right: f64,
    pub top: f64,
}

/// Range of custom page sizes, in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomSizeRange {
    pub min_width: f64,
    pub max_width: f64,
    pub min_length: f64,
    pub max_length: f64,
}

/// A keyword line kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub keyword: String,
    pub option: Option<String>,
    /// Translation string, hex substrings decoded.
    pub text: Option<String>,
    pub value: Value,
}

/// The value of a keyword line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `*Keyword` with no colon.
    None,
    /// `"..."`: the bytes between the quotes, line ends made `\n`, hex substrings not decoded.
    Quoted(String),
    /// An unquoted value: the rest of the line, trimmed.
    String(String),
    /// `^Name`: a reference to a `*SymbolValue ^Name`.
    Symbol(String),
}

impl Value {
    /// The text of the value (the symbol name for a symbol, empty for none).
    pub fn as_str(&self) -> &str {
        match self {
            Value::None => "",
            Value::Quoted(s) | Value::String(s) | Value::Symbol(s) => s,
        }
    }
}

/// Parses a PPD with the default [`Limits`].
pub fn parse(bytes: &[u8]) -> Result<Ppd, PpdError> {
    parse_with_limits(bytes, &Limits::default())
}

/// Parses a PPD. Never reads another file: `*Include` is an error.
pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Ppd, PpdError> {
    if bytes.len() > limits.max_bytes {
        return Err(PpdError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = decode_bytes(bytes);
    let mut lexer = Lexer {
        text: &text,
        pos: 0,
        line: 1,
        limits,
    };
    let mut parser = Parser::new(limits);
    while let Some(entry) = lexer.next_entry()? {
        parser.handle(entry)?;
    }
    // `lexer.line` is one past the last line now.
    parser.finish(lexer.line.saturating_sub(1).max(1))
}

/// UTF-8 when the bytes are UTF-8, else ISO-8859-1 (every byte is a character).
fn decode_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Decodes the `<hex>` substrings of a translation string or text value. A `<...>` whose content is
/// not an even number of hex digits is kept as written. Linear in the input.
pub fn decode_text(raw: &str) -> String {
    if !raw.contains('<') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            out.push_str(&rest[lt..]);
            return out;
        };
        let inner = &after[..gt];
        match hex_bytes(inner) {
            Some(bytes) => out.push_str(&decode_bytes(&bytes)),
            None => {
                out.push('<');
                out.push_str(inner);
                out.push('>');
            }
        }
        rest = &after[gt + 1..];
    }
    out.push_str(rest);
    out
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = s
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| c.to_digit(16))
        .collect::<Option<_>>()?;
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::try_from(p[0] * 16 + p[1]).ok())
        .collect()
}

/// One keyword line as the lexer sees it; the strings borrow from the decoded text.
struct Entry<'a> {
    line: usize,
    keyword: &'a str,
    option: Option<&'a str>,
    text: Option<&'a str>,
    value: RawValue<'a>,
}

enum RawValue<'a> {
    None,
    Quoted(&'a str),
    String(&'a str),
    Symbol(&'a str),
}

impl RawValue<'_> {
    fn as_str(&self) -> &str {
        match self {
            RawValue::None => "",
            RawValue::Quoted(s) | RawValue::String(s) | RawValue::Symbol(s) => s,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            RawValue::None => Value::None,
            RawValue::Quoted(s) => Value::Quoted(normalize_newlines(s)),
            RawValue::String(s) => Value::String((*s).to_owned()),
            RawValue::Symbol(s) => Value::Symbol((*s).to_owned()),
        }
    }
}

fn normalize_newlines(s: &str) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_owned()
    }
}

/// Number of line ends (CR, LF or CRLF) in `s`.
fn count_line_ends(s: &str) -> usize {
    let b = s.as_bytes();
    b.iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')))
        .count()
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    limits: &'a Limits,
}

impl<'a> Lexer<'a> {
    /// Moves past the line end at byte `eol` (or to the end of the text).
    fn skip_line_end(&mut self, eol: usize) {
        let b = self.text.as_bytes();
        self.pos = match b.get(eol) {
            Some(b'\r') if b.get(eol + 1) == Some(&b'\n') => eol + 2,
            Some(_) => eol + 1,
            None => eol,
        };
        self.line += 1;
    }

    /// The byte offset of the end of the line that starts at or contains `from`.
    fn line_end(&self, from: usize) -> usize {
        self.text[from..]
            .find(['\r', '\n'])
            .map_or(self.text.len(), |i| from + i)
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, PpdError> {
        let text = self.text;
        loop {
            if self.pos >= text.len() {
                return Ok(None);
            }
            let start = self.pos;
            let line_no = self.line;
            let eol = self.line_end(start);
            let line = &text[start..eol];
            if line.len() > self.limits.max_line {
                return Err(PpdError::LineTooLong {
                    line: line_no,
                    limit: self.limits.max_line,
                });
            }
            if !line.starts_with('*') || line.starts_with("*%") {
                // Comments, blank lines, and stray text between entries.
                self.skip_line_end(eol);
                continue;
            }
            let head = parse_head(line, line_no, self.limits)?;
            let value_at = start + head.value_offset;
            let value = match text[value_at..eol].chars().next() {
                None => {
                    self.skip_line_end(eol);
                    if head.has_colon {
                        RawValue::String("")
                    } else {
                        RawValue::None
                    }
                }
                Some('"') => {
                    let body_start = value_at + 1;
                    let Some(close) = text[body_start..].find('"') else {
                        return Err(PpdError::UnterminatedQuote { line: line_no });
                    };
                    let body = &text[body_start..body_start + close];
                    if body.len() > self.limits.max_value {
                        return Err(PpdError::ValueTooLong {
                            line: line_no,
                            limit: self.limits.max_value,
                        });
                    }
                    self.line += count_line_ends(body);
                    // Whatever follows the closing quote on its line is ignored.
                    let after = body_start + close + 1;
                    let end = self.line_end(after);
                    if end - after > self.limits.max_line {
                        return Err(PpdError::LineTooLong {
                            line: self.line,
                            limit: self.limits.max_line,
                        });
                    }
                    self.skip_line_end(end);
                    RawValue::Quoted(body)
                }
                Some('^') => {
                    self.skip_line_end(eol);
                    RawValue::Symbol(text[value_at + 1..eol].trim())
                }
                Some(_) => {
                    self.skip_line_end(eol);
                    RawValue::String(text[value_at..eol].trim())
                }
            };
            return Ok(Some(Entry {
                line: line_no,
                keyword: head.keyword,
                option: head.option,
                text: head.text,
                value,
            }));
        }
    }
}

/// The part of a keyword line before the value.
struct Head<'a> {
    keyword: &'a str,
    option: Option<&'a str>,
    text: Option<&'a str>,
    has_colon: bool,
    /// Byte offset of the value in the line (after the colon and blanks).
    value_offset: usize,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `*Main[ Option[/Translation]]: value` — everything up to the value.
fn parse_head<'a>(line: &'a str, line_no: usize, limits: &Limits) -> Result<Head<'a>, PpdError> {
    let body = &line[1..];
    let kend = body
        .find(|c: char| c == ':' || c == '/' || is_blank(c))
        .unwrap_or(body.len());
    let keyword = &body[..kend];
    if keyword.is_empty()
        || keyword.len() > limits.max_name
        || !keyword.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(PpdError::BadKeyword { line: line_no });
    }
    let mut i = 1 + kend; // index in `line`
    let skip_blanks = |i: usize| i + line[i..].len() - line[i..].trim_start_matches(is_blank).len();
    i = skip_blanks(i);
    let rest = &line[i..];
    if rest.is_empty() {
        return Ok(Head {
            keyword,
            option: None,
            text: None,
            has_colon: false,
            value_offset: i,
        });
    }
    let (mut option, mut text) = (None, None);
    if !rest.starts_with(':') {
        if rest.starts_with('/') {
            return Err(PpdError::BadKeyword { line: line_no });
        }
        let oend = rest
            .find(|c: char| c == ':' || c == '/' || is_blank(c))
            .unwrap_or(rest.len());
        let opt = &rest[..oend];
        if opt.chars().count() > limits.max_name || opt.chars().any(|c| c.is_ascii_control()) {
            return Err(PpdError::BadOption { line: line_no });
        }
        option = Some(opt);
        i = skip_blanks(i + oend);
        if line[i..].starts_with('/') {
            let t = &line[i + 1..];
            let Some(colon) = t.find(':') else {
                return Err(PpdError::BadTranslation { line: line_no });
            };
            let tr = &t[..colon];
            if tr.len() > limits.max_text || tr.chars().any(|c| c.is_ascii_control() && c != '\t') {
                return Err(PpdError::BadTranslation { line: line_no });
            }
            text = Some(tr);
            i += 1 + colon;
        }
        if !line[i..].starts_with(':') {
            return Err(PpdError::BadOption { line: line_no });
        }
    }
    // line[i] is the colon.
    let value_offset = skip_blanks(i + 1);
    Ok(Head {
        keyword,
        option,
        text,
        has_colon: true,
        value_offset,
    })
}

/// Keywords whose choices make an option even without `*OpenUI` (PPD 4.0 and older files).
const IMPLICIT_OPTIONS: &[&str] = &[
    "PageSize",
    "PageRegion",
    "InputSlot",
    "ManualFeed",
    "MediaType",
    "MediaColor",
    "MediaWeight",
    "OutputBin",
    "Duplex",
    "ColorModel",
    "Resolution",
];

struct Parser<'l> {
    limits: &'l Limits,
    ppd: Ppd,
    seen_header: bool,
    entries: usize,
    index: HashMap<String, usize>,
    /// (option index, choice name) of every choice, to find duplicates in constant time.
    choice_names: HashSet<(usize, String)>,
    open_ui: Option<usize>,
    groups: Vec<String>,
    orders: Vec<(String, OrderDependency)>,
    dimensions: HashMap<String, (f64, f64)>,
    areas: HashMap<String, ImageableArea>,
    /// Page-size names and translations in the order they were first seen by `*PaperDimension`.
    dimension_names: Vec<(String, String)>,
    custom_width: Option<(f64, f64)>,
    custom_length: Option<(f64, f64)>,
}

/// Exactly `N` finite numbers of sane magnitude, separated by blanks.
fn numbers<const N: usize>(s: &str) -> Option<[f64; N]> {
    let mut out = [0.0; N];
    let mut it = s.split_whitespace();
    for slot in &mut out {
        let v: f64 = it.next()?.parse().ok()?;
        if !v.is_finite() || v.abs() > 1.0e6 {
            return None;
        }
        *slot = v;
    }
    it.next().is_none().then_some(out)
}

impl<'l> Parser<'l> {
    fn new(limits: &'l Limits) -> Self {
        Parser {
            limits,
            ppd: Ppd::default(),
            seen_header: false,
            entries: 0,
            index: HashMap::new(),
            choice_names: HashSet::new(),
            open_ui: None,
            groups: Vec::new(),
            orders: Vec::new(),
            dimensions: HashMap::new(),
            areas: HashMap::new(),
            dimension_names: Vec::new(),
            custom_width: None,
            custom_length: None,
        }
    }

    fn warn(&mut self, line: usize, message: String) {
        if self.ppd.warnings.len() < MAX_WARNINGS {
            self.ppd.warnings.push(Warning { line, message });
        }
    }

    fn bad(e: &Entry<'_>, reason: &'static str) -> PpdError {
        PpdError::BadValue {
            line: e.line,
            keyword: e.keyword.to_owned(),
            reason,
        }
    }

    fn handle(&mut self, e: Entry<'_>) -> Result<(), PpdError> {
        if !self.seen_header {
            if e.keyword != "PPD-Adobe" {
                return Err(PpdError::MissingHeader { line: e.line });
            }
            self.seen_header = true;
            self.ppd.format_version = e.value.as_str().trim().to_owned();
            return Ok(());
        }
        if e.keyword == "Include" {
            return Err(PpdError::Include { line: e.line });
        }
        if e.keyword == "End" || e.keyword.starts_with('?') {
            // `*End` closes a quoted value (already consumed); queries are code for the printer.
            return Ok(());
        }
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(PpdError::TooMany {
                line: e.line,
                what: "keyword lines",
                limit: self.limits.max_entries,
            });
        }
        match e.keyword {
            "OpenUI" | "JCLOpenUI" => return self.open_ui(&e),
            "CloseUI" | "JCLCloseUI" => {
                let closing = e.value.as_str().trim().trim_start_matches('*');
                match self.open_ui.take() {
                    None => self.warn(e.line, format!("*{} with no option open", e.keyword)),
                    Some(i) if self.ppd.options[i].keyword != closing => {
                        let message = format!(
                            "*{} *{closing} closes *{}",
                            e.keyword, self.ppd.options[i].keyword
                        );
                        self.warn(e.line, message);
                    }
                    Some(_) => {}
                }
                return Ok(());
            }
            "OpenGroup" | "OpenSubGroup" => {
                if self.groups.len() >= self.limits.max_group_depth {
                    return Err(PpdError::GroupsTooDeep {
                        line: e.line,
                        limit: self.limits.max_group_depth,
                    });
                }
                let v = e.value.as_str();
                let name = v.split('/').next().unwrap_or("").trim();
                self.groups.push(name.to_owned());
                return Ok(());
            }
            "CloseGroup" | "CloseSubGroup" => {
                if self.groups.pop().is_none() {
                    self.warn(e.line, format!("*{} with no group open", e.keyword));
                }
                return Ok(());
            }
            "UIConstraints" | "NonUIConstraints" => {
                let c = parse_constraint(e.value.as_str(), e.keyword == "UIConstraints")
                    .ok_or_else(|| {
                        Self::bad(&e, "expected *Option1 [Choice1] *Option2 [Choice2]")
                    })?;
                self.ppd.constraints.push(c);
                return Ok(());
            }
            "OrderDependency" | "NonUIOrderDependency" => {
                self.order_dependency(&e);
                return Ok(());
            }
            _ => {}
        }
        self.special(&e)?;
        if let Some(opt) = e.option {
            if let Some(idx) = self.option_for(e.keyword, e.line)? {
                return self.add_choice(idx, opt, &e);
            }
        }
        self.ppd.attributes.push(Attribute {
            keyword: e.keyword.to_owned(),
            option: e.option.map(str::to_owned),
            text: e.text.map(decode_text),
            value: e.value.to_value(),
        });
        Ok(())
    }

    /// Keywords that fill a field of [`Ppd`]; they are kept as attributes too.
    fn special(&mut self, e: &Entry<'_>) -> Result<(), PpdError> {
        let v = e.value.as_str();
        match (e.keyword, e.option) {
            ("Manufacturer", None) => self.ppd.manufacturer = Some(decode_text(v.trim())),
            ("ModelName", None) => self.ppd.model_name = Some(decode_text(v.trim())),
            ("NickName", None) => self.ppd.nickname = Some(decode_text(v.trim())),
            ("ShortNickName", None) => self.ppd.short_nickname = Some(decode_text(v.trim())),
            ("LanguageEncoding", None) => self.ppd.language_encoding = Some(v.trim().to_owned()),
            ("LanguageLevel", None) => self.ppd.language_level = v.trim().parse().ok(),
            ("ColorDevice", None) => self.ppd.color_device = v.trim().eq_ignore_ascii_case("true"),
            ("PaperDimension", Some(name)) => {
                let [w, l] =
                    numbers::<2>(v).ok_or_else(|| Self::bad(e, "expected \"width length\""))?;
                if !self.dimensions.contains_key(name) {
                    if self.dimension_names.len() >= self.limits.max_choices {
                        return Err(PpdError::TooMany {
                            line: e.line,
                            what: "page sizes",
                            limit: self.limits.max_choices,
                        });
                    }
                    let text = e.text.map_or_else(|| name.to_owned(), decode_text);
                    self.dimension_names.push((name.to_owned(), text));
                }
                self.dimensions.insert(name.to_owned(), (w, l));
            }
            ("ImageableArea", Some(name)) => {
                let [left, bottom, right, top] =
                    numbers::<4>(v).ok_or_else(|| Self::bad(e, "expected \"llx lly urx ury\""))?;
                self.areas.insert(
                    name.to_owned(),
                    ImageableArea {
                        left,
                        bottom,
                        right,
                        top,
                    },
                );
            }
            ("cupsFilter" | "cupsFilter2", None) => {
                let f = parse_filter(v, e.keyword == "cupsFilter2").ok_or_else(|| {
                    Self::bad(e, "expected \"source [destination] cost program\"")
                })?;
                self.ppd.filters.push(f);
            }
            ("ParamCustomPageSize", Some(which @ ("Width" | "Height"))) => {
                // order type min max
                let t: Vec<&str> = v.split_whitespace().collect();
                if let [_, _, min, max] = t[..] {
                    if let (Some([min]), Some([max])) = (numbers::<1>(min), numbers::<1>(max)) {
                        if which == "Width" {
                            self.custom_width = Some((min, max));
                        } else {
                            self.custom_length = Some((min, max));
                        }
                    }
                }
            }
            ("HWMargins", None) => self.ppd.hw_margins = numbers::<4>(v),
            (k, None) if k.len() > "Default".len() && k.starts_with("Default") => {
                self.ppd
                    .defaults
                    .push((k["Default".len()..].to_owned(), v.trim().to_owned()));
            }
            _ => {}
        }
        Ok(())
    }

    fn open_ui(&mut self, e: &Entry<'_>) -> Result<(), PpdError> {
        let opt = e
            .option
            .ok_or_else(|| Self::bad(e, "expected *OpenUI *Keyword/Text: type"))?;
        let keyword = opt.strip_prefix('*').unwrap_or(opt);
        if keyword.is_empty() {
            return Err(PpdError::BadOption { line: e.line });
        }
        if let Some(open) = self.open_ui {
            // A missing *CloseUI (HP's LaserJet 3200M PPD has one): close it here.
            let message = format!(
                "*OpenUI *{keyword} while *{} is open: closed it",
                self.ppd.options[open].keyword
            );
            self.warn(e.line, message);
        }
        let ui = match e.value.as_str().trim() {
            t if t.eq_ignore_ascii_case("PickOne") => UiType::PickOne,
            t if t.eq_ignore_ascii_case("PickMany") => UiType::PickMany,
            t if t.eq_ignore_ascii_case("Boolean") => UiType::Boolean,
            _ => return Err(Self::bad(e, "UI type must be Boolean, PickOne or PickMany")),
        };
        let text = e.text.map_or_else(|| keyword.to_owned(), decode_text);
        let idx = match self.index.get(keyword) {
            Some(&i) => i,
            None => self.new_option(keyword, e.line)?,
        };
        let o = &mut self.ppd.options[idx];
        o.ui = ui;
        o.text = text;
        o.jcl = e.keyword == "JCLOpenUI";
        o.group = self.groups.first().cloned();
        self.open_ui = Some(idx);
        Ok(())
    }

    fn new_option(&mut self, keyword: &str, line: usize) -> Result<usize, PpdError> {
        if self.ppd.options.len() >= self.limits.max_options {
            return Err(PpdError::TooMany {
                line,
                what: "options",
                limit: self.limits.max_options,
            });
        }
        self.ppd.options.push(UiOption {
            keyword: keyword.to_owned(),
            text: keyword.to_owned(),
            ui: UiType::PickOne,
            default: None,
            choices: Vec::new(),
            group: self.groups.first().cloned(),
            jcl: false,
            order: None,
        });
        let idx = self.ppd.options.len() - 1;
        self.index.insert(keyword.to_owned(), idx);
        Ok(idx)
    }

    /// The option a `*Keyword choice: ...` line adds a choice to, if any.
    fn option_for(&mut self, keyword: &str, line: usize) -> Result<Option<usize>, PpdError> {
        if let Some(&i) = self.index.get(keyword) {
            return Ok(Some(i));
        }
        if IMPLICIT_OPTIONS.contains(&keyword) {
            return self.new_option(keyword, line).map(Some);
        }
        Ok(None)
    }

    fn add_choice(&mut self, idx: usize, name: &str, e: &Entry<'_>) -> Result<(), PpdError> {
        let limit = self.limits.max_choices;
        if !self.choice_names.insert((idx, name.to_owned())) {
            return Ok(()); // the first definition wins
        }
        let o = &mut self.ppd.options[idx];
        if o.choices.len() >= limit {
            return Err(PpdError::TooMany {
                line: e.line,
                what: "choices in one option",
                limit,
            });
        }
        o.choices.push(Choice {
            name: name.to_owned(),
            text: e.text.map_or_else(|| name.to_owned(), decode_text),
            code: e.value.to_value(),
        });
        Ok(())
    }

    /// `*OrderDependency: 10 AnySetup *Keyword [choice]`; a malformed one is ignored.
    fn order_dependency(&mut self, e: &Entry<'_>) {
        let t: Vec<&str> = e.value.as_str().split_whitespace().collect();
        let (Some(order), Some(section)) =
            (t.first().and_then(|s| s.parse::<f64>().ok()), t.get(1))
        else {
            return;
        };
        if !order.is_finite() {
            return;
        }
        let dep = OrderDependency {
            order,
            section: (*section).to_owned(),
        };
        match t.get(2).and_then(|k| k.strip_prefix('*')) {
            Some(k) => self.orders.push((k.to_owned(), dep)),
            None => {
                if let Some(i) = self.open_ui {
                    self.ppd.options[i].order = Some(dep);
                }
            }
        }
    }

    fn finish(mut self, lines: usize) -> Result<Ppd, PpdError> {
        if !self.seen_header {
            return Err(PpdError::MissingHeader { line: lines });
        }
        if let Some(i) = self.open_ui {
            let message = format!("*OpenUI *{} never closed", self.ppd.options[i].keyword);
            self.warn(lines, message);
        }
        for (k, v) in &self.ppd.defaults {
            if let Some(&i) = self.index.get(k) {
                self.ppd.options[i].default = Some(v.clone());
            }
        }
        for (k, dep) in std::mem::take(&mut self.orders) {
            if let Some(&i) = self.index.get(&k) {
                self.ppd.options[i].order = Some(dep);
            }
        }
        // Page sizes: PageSize choices, then PageRegion choices, then *PaperDimension names.
        let mut names: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for kw in ["PageSize", "PageRegion"] {
            if let Some(&i) = self.index.get(kw) {
                for c in &self.ppd.options[i].choices {
                    if seen.insert(c.name.clone()) {
                        names.push((c.name.clone(), c.text.clone()));
                    }
                }
            }
        }
        for (n, t) in std::mem::take(&mut self.dimension_names) {
            if seen.insert(n.clone()) {
                names.push((n, t));
            }
        }
        self.ppd.page_sizes = names
            .into_iter()
            .map(|(name, text)| PageSize {
                dimensions: self.dimensions.get(&name).copied(),
                imageable_area: self.areas.get(&name).copied(),
                name,
                text,
            })
            .collect();
        if let (Some((min_width, max_width)), Some((min_length, max_length))) =
            (self.custom_width, self.custom_length)
        {
            self.ppd.custom_size = Some(CustomSizeRange {
                min_width,
                max_width,
                min_length,
                max_length,
            });
        }
        Ok(self.ppd)
    }
}

fn parse_constraint(v: &str, ui: bool) -> Option<Constraint> {
    let t: Vec<&str> = v.split_whitespace().collect();
    let mut i = 0;
    let mut next = || -> Option<(String, Option<String>)> {
        let opt = t.get(i)?.strip_prefix('*')?;
        if opt.is_empty() {
            return None;
        }
        i += 1;
        let choice = match t.get(i) {
            Some(c) if !c.starts_with('*') => {
                i += 1;
                Some((*c).to_owned())
            }
            _ => None,
        };
        Some((opt.to_owned(), choice))
    };
    let (option1, choice1) = next()?;
    let (option2, choice2) = next()?;
    Some(Constraint {
        option1,
        choice1,
        option2,
        choice2,
        ui,
    })
}

fn parse_filter(v: &str, two: bool) -> Option<Filter> {
    let mut it = v.split_whitespace();
    let source = it.next()?.to_owned();
    let destination = if two {
        Some(it.next()?.to_owned())
    } else {
        None
    };
    let cost: i32 = it.next()?.parse().ok()?;
    let program = it.collect::<Vec<_>>().join(" ");
    let is_type = |t: &str| t.contains('/') && t.chars().all(|c| c.is_ascii_graphic());
    if program.is_empty()
        || !is_type(&source)
        || !destination.as_deref().is_none_or(is_type)
        || program.chars().any(char::is_control)
    {
        return None;
    }
    Some(Filter {
        source,
        destination,
        cost,
        program,
    })
}

// ---------------------------------------------------------------------------------------------
// Mapping to IPP
// ---------------------------------------------------------------------------------------------

/// What a PPD means in IPP Everywhere terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PpdCapabilities {
    /// One entry per PPD page size that has dimensions, in PPD order. Several PPD sizes may map to
    /// one PWG name (`Letter` and `Letter.Fullbleed`): see [`PpdCapabilities::media_supported`].
    pub media: Vec<Media>,
    /// PWG name of the default `PageSize`.
    pub media_default: Option<String>,
    /// `custom_min_WxHunit` and `custom_max_WxHunit` when the PPD takes custom sizes.
    pub media_custom_min: Option<String>,
    pub media_custom_max: Option<String>,
    /// `InputSlot` → `media-source`.
    pub media_sources: Vec<Mapped>,
    pub media_source_default: Option<String>,
    /// `MediaType` → `media-type`.
    pub media_types: Vec<Mapped>,
    pub media_type_default: Option<String>,
    /// `Duplex` → `sides`; just `one-sided` (with no PPD choice) when the PPD has no `Duplex`.
    pub sides: Vec<Mapped>,
    pub sides_default: Option<String>,
    /// `ColorModel` → `print-color-mode`; without a `ColorModel`, `monochrome` plus `color` on a
    /// `*ColorDevice: True` (with no PPD choice).
    pub color_modes: Vec<Mapped>,
    pub color_mode_default: Option<String>,
    /// `Resolution` (or, without the option, `*DefaultResolution`) → `printer-resolution`.
    pub resolutions: Vec<Resolution>,
    pub resolution_default: Option<Resolution>,
}

impl PpdCapabilities {
    /// The distinct PWG media names, in order (for `media-supported`).
    pub fn media_supported(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.media
            .iter()
            .map(|m| m.pwg_name.as_str())
            .filter(|n| seen.insert(*n))
            .collect()
    }
}

/// One PPD page size as IPP media. Lengths in hundredths of a millimetre (PWG units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub ppd_name: String,
    pub pwg_name: String,
    pub width: u32,
    pub length: u32,
    /// From `*ImageableArea`; `None` when the PPD gives none for this size.
    pub margins: Option<Margins>,
}

/// Margins in hundredths of a millimetre.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Margins {
    pub bottom: u32,
    pub left: u32,
    pub right: u32,
    pub top: u32,
}

impl Margins {
    pub fn is_borderless(&self) -> bool {
        self.bottom == 0 && self.left == 0 && self.right == 0 && self.top == 0
    }
}

/// An IPP keyword and the PPD choice that selects it (`None`: nothing to set in the PPD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub ppd: Option<String>,
    pub ipp: String,
}

/// A printer resolution and the `Resolution` choice that selects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub ppd: Option<String>,
    pub x_dpi: u32,
    pub y_dpi: u32,
}

/// The entry for an IPP value (one that came from a client, say) in a mapped list. Its `ppd` field
/// is the PPD's own choice name, never the value that was asked for.
pub fn find_mapped<'a>(list: &'a [Mapped], ipp_value: &str) -> Option<&'a Mapped> {
    list.iter().find(|m| m.ipp == ipp_value)
}

/// Maps a parsed PPD to IPP capabilities.
pub fn capabilities(ppd: &Ppd) -> PpdCapabilities {
    let mut caps = PpdCapabilities::default();

    for size in &ppd.page_sizes {
        let dims = size
            .dimensions
            .or_else(|| standard_by_name(&size.name).map(|(_, w, l)| (hmm_to_pt(w), hmm_to_pt(l))));
        let Some((w_pt, l_pt)) = dims else { continue };
        let (width, length) = (pt_to_hmm(w_pt), pt_to_hmm(l_pt));
        if !MEDIA_RANGE.contains(&width) || !MEDIA_RANGE.contains(&length) {
            continue;
        }
        let margins = size.imageable_area.map(|a| Margins {
            left: pt_to_hmm(a.left),
            bottom: pt_to_hmm(a.bottom),
            right: pt_to_hmm(w_pt - a.right),
            top: pt_to_hmm(l_pt - a.top),
        });
        caps.media.push(Media {
            ppd_name: size.name.clone(),
            pwg_name: pwg_media_name(&size.name, w_pt, l_pt),
            width,
            length,
            margins,
        });
    }
    let default_size = ppd
        .option("PageSize")
        .and_then(|o| o.default.as_deref())
        .or_else(|| ppd.default_for("PageSize"))
        .or_else(|| ppd.default_for("PageRegion"));
    caps.media_default = default_size
        .and_then(|d| caps.media.iter().find(|m| m.ppd_name == d))
        .or_else(|| caps.media.first())
        .map(|m| m.pwg_name.clone());
    if let Some(c) = ppd.custom_size {
        let sane = |pt: f64| MEDIA_RANGE.contains(&pt_to_hmm(pt));
        if sane(c.min_width) && sane(c.min_length) {
            caps.media_custom_min = Some(format!(
                "custom_min_{}",
                format_dimensions(c.min_width, c.min_length)
            ));
        }
        if sane(c.max_width) && sane(c.max_length) {
            caps.media_custom_max = Some(format!(
                "custom_max_{}",
                format_dimensions(c.max_width, c.max_length)
            ));
        }
    }

    (caps.media_sources, caps.media_source_default) =
        map_option(ppd, "InputSlot", media_source, true);
    (caps.media_types, caps.media_type_default) = map_option(ppd, "MediaType", media_type, true);
    (caps.sides, caps.sides_default) = map_option(ppd, "Duplex", sides, false);
    if caps.sides.is_empty() {
        caps.sides = vec![Mapped {
            ppd: None,
            ipp: "one-sided".into(),
        }];
        caps.sides_default = Some("one-sided".into());
    }
    (caps.color_modes, caps.color_mode_default) = map_option(
        ppd,
        "ColorModel",
        |c| color_mode(c).map(str::to_owned),
        false,
    );
    if caps.color_modes.is_empty() {
        caps.color_modes.push(Mapped {
            ppd: None,
            ipp: "monochrome".into(),
        });
        if ppd.color_device {
            caps.color_modes.push(Mapped {
                ppd: None,
                ipp: "color".into(),
            });
        }
        caps.color_mode_default = caps.color_modes.last().map(|m| m.ipp.clone());
    }

    if let Some(opt) = ppd.option("Resolution") {
        for c in &opt.choices {
            if let Some((x, y)) = parse_resolution(&c.name) {
                if !caps
                    .resolutions
                    .iter()
                    .any(|r| r.x_dpi == x && r.y_dpi == y)
                {
                    caps.resolutions.push(Resolution {
                        ppd: Some(c.name.clone()),
                        x_dpi: x,
                        y_dpi: y,
                    });
                }
            }
        }
        caps.resolution_default = opt
            .default
            .as_deref()
            .and_then(|d| {
                caps.resolutions
                    .iter()
                    .find(|r| r.ppd.as_deref() == Some(d))
            })
            .or_else(|| caps.resolutions.first())
            .cloned();
    }
    if caps.resolutions.is_empty() {
        if let Some((x, y)) = ppd.default_for("Resolution").and_then(parse_resolution) {
            let r = Resolution {
                ppd: None,
                x_dpi: x,
                y_dpi: y,
            };
            caps.resolutions.push(r.clone());
            caps.resolution_default = Some(r);
        }
    }
    caps
}

/// Maps the choices of one option, one PPD choice per IPP value (the option's default when it maps
/// to that value, else the first choice that does); the default is the IPP value of the PPD
/// default, else the first one.
///
/// `map` is tried on the choice name, then on its translation (`Slot1/Tray 1`); a choice neither
/// maps is left out, or with `keep_unknown` given its sanitized name.
fn map_option(
    ppd: &Ppd,
    keyword: &str,
    map: impl Fn(&str) -> Option<String>,
    keep_unknown: bool,
) -> (Vec<Mapped>, Option<String>) {
    let Some(opt) = ppd.option(keyword) else {
        return (Vec::new(), None);
    };
    let mut out: Vec<Mapped> = Vec::new();
    for c in &opt.choices {
        let ipp = map(&c.name)
            .or_else(|| map(&c.text))
            .or_else(|| keep_unknown.then(|| sanitize_keyword(&c.name)));
        let Some(ipp) = ipp else { continue };
        let is_default = opt.default.as_deref() == Some(c.name.as_str());
        match out.iter_mut().find(|m| m.ipp == ipp) {
            Some(m) if is_default => m.ppd = Some(c.name.clone()),
            Some(_) => {}
            None => out.push(Mapped {
                ppd: Some(c.name.clone()),
                ipp,
            }),
        }
    }
    let default = opt
        .default
        .as_deref()
        .and_then(|d| out.iter().find(|m| m.ppd.as_deref() == Some(d)))
        .or_else(|| out.first())
        .map(|m| m.ipp.clone());
    (out, default)
}

fn pt_to_hmm(pt: f64) -> u32 {
    // `as` saturates: negative margins become 0, absurd values u32::MAX.
    (pt * 2540.0 / 72.0).round() as u32
}

fn hmm_to_pt(hmm: u32) -> f64 {
    f64::from(hmm) * 72.0 / 2540.0
}

/// Lower-case letters, digits and single dashes: `MediaTypeAPS` → `media-type-aps`,
/// `Tray 3 (Optional)` → `tray-3-optional`. Never empty; starts with a letter (`ppd-` is put in
/// front otherwise); at most 63 characters. The result is safe as an IPP keyword and in any
/// command line.
pub fn sanitize_keyword(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if out.len() >= 63 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('-');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
    }
    out.truncate(63);
    while out.ends_with('-') {
        out.pop();
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "ppd-");
        while out.ends_with('-') {
            out.pop();
        }
    }
    out
}

/// Letters and digits only, lower case: the key the mapping tables use.
fn squash(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `InputSlot` choice name or text → `media-source` keyword (PWG 5100.7), as CUPS maps them
/// where CUPS does (`Upper` → `top`, `Lower` → `bottom`); `None` when unknown.
pub fn media_source(choice: &str) -> Option<String> {
    let squashed = squash(choice);
    let k = squashed.strip_prefix("optional").unwrap_or(&squashed);
    let known = match k {
        "auto" | "default" | "autoselect" | "automatic" | "autosource" | "autotray"
        | "autofeed" => "auto",
        "main" | "maintray" | "cassette" => "main",
        "alternate" | "alternatetray" => "alternate",
        "manual" | "manualfeed" | "manualtray" => "manual",
        "envelope" | "envelopefeed" | "envelopefeeder" | "envelopetray" | "envfeed" => "envelope",
        "multipurpose" | "multipurposetray" | "mp" | "mptray" | "bypass" | "bypasstray"
        | "manualbypass" | "multitray" => "by-pass-tray",
        "largecapacity" | "largecapacitytray" | "lct" | "lcttray" => "large-capacity",
        "photo" | "phototray" => "photo",
        "disc" | "disctray" | "cd" | "cdtray" => "disc",
        "hagaki" => "hagaki",
        "upper" | "uppertray" | "top" => "top",
        "middle" | "middletray" => "middle",
        "lower" | "lowertray" | "bottom" => "bottom",
        "side" => "side",
        "left" => "left",
        "right" => "right",
        "center" => "center",
        "rear" | "reartray" => "rear",
        "roll" | "mainroll" => "main-roll",
        "alternateroll" => "alternate-roll",
        _ => "",
    };
    if !known.is_empty() {
        return Some(known.to_owned());
    }
    tray_number(k).map(|n| format!("tray-{n}"))
}

/// `tray1`, `tray01`, `1sttray`, `2ndtray`, `cassette3` → the number, when 1..=20.
fn tray_number(k: &str) -> Option<u32> {
    let digits = if let Some(rest) = k.strip_prefix("tray") {
        rest
    } else if let Some(rest) = k.strip_prefix("cassette") {
        rest
    } else {
        let d: String = k.chars().take_while(char::is_ascii_digit).collect();
        let rest = &k[d.len()..];
        if ["sttray", "ndtray", "rdtray", "thtray", "tray"].contains(&rest) {
            return d.parse().ok().filter(|n| (1..=20).contains(n));
        }
        return None;
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|n| (1..=20).contains(n))
}

/// `MediaType` choice name or text → `media-type` keyword (PWG 5100.7) where the meaning is
/// obvious; `None` when it is not.
pub fn media_type(choice: &str) -> Option<String> {
    let k = squash(choice);
    let known = match k.as_str() {
        "plain" | "plainpaper" | "normal" | "normalpaper" | "paper" | "stationery"
        | "stationary" => "stationery",
        "glossy" | "glossypaper" | "glossyphoto" | "glossyphotopaper" | "photoglossy"
        | "photographicglossy" => "photographic-glossy",
        "highgloss" | "highglossy" | "highglossphoto" | "photohighgloss" => {
            "photographic-high-gloss"
        }
        "semigloss" | "semiglossy" | "semiglossphoto" | "photosemigloss" => {
            "photographic-semi-gloss"
        }
        "matte" | "mattepaper" | "mattephoto" | "photomatte" | "mattephotopaper" => {
            "photographic-matte"
        }
        "satin" | "satinphoto" | "photosatin" => "photographic-satin",
        "photo" | "photopaper" | "photographic" | "photographicpaper" => "photographic",
        "transparency" | "transparencies" | "ohp" | "ohpfilm" | "overhead" => "transparency",
        "envelope" | "envelopes" => "envelope",
        "label" | "labels" | "labelpaper" => "labels",
        "card" | "cards" | "cardstock" => "cardstock",
        "thick" | "thickpaper" | "heavy" | "heavyweight" | "heavypaper" => "stationery-heavyweight",
        "thin" | "thinpaper" | "light" | "lightweight" => "stationery-lightweight",
        "letterhead" => "stationery-letterhead",
        "preprinted" => "stationery-preprinted",
        "prepunched" | "prepunch" | "punched" => "stationery-prepunched",
        "inkjet" | "inkjetpaper" => "stationery-inkjet",
        "coated" | "coatedpaper" => "stationery-coated",
        "colored" | "coloured" | "coloredpaper" | "colouredpaper" => "stationery-colored",
        _ => return None,
    };
    Some(known.to_owned())
}

/// `Duplex` choice name or text → `sides`; `None` for choices that are none of the three.
pub fn sides(choice: &str) -> Option<String> {
    let k = squash(choice);
    let s = match k.as_str() {
        "none" | "off" | "false" | "simplex" | "onesided" => "one-sided",
        "duplexnotumble" | "longedge" | "duplexlongedge" | "true" | "on" | "duplex"
        | "twosidedlongedge" => "two-sided-long-edge",
        "duplextumble" | "shortedge" | "duplexshortedge" | "twosidedshortedge" => {
            "two-sided-short-edge"
        }
        _ => return None,
    };
    Some(s.to_owned())
}

/// `ColorModel` choice name or text → `print-color-mode` (`monochrome` or `color`); `None` when
/// unclear.
pub fn color_mode(choice: &str) -> Option<&'static str> {
    let k = squash(choice);
    let mono = ["gray", "grey", "mono", "black", "kgray"];
    let color = ["rgb", "cmy", "color", "colour"];
    match k.as_str() {
        "k" | "bw" | "blackwhite" | "w" => Some("monochrome"),
        _ if mono.iter().any(|m| k.contains(m)) => Some("monochrome"),
        _ if color.iter().any(|c| k.contains(c)) => Some("color"),
        _ => None,
    }
}

/// `300dpi`, `600x600dpi`, `1200x600dpi`, `720x720dpi_hq` → (x, y).
pub fn parse_resolution(name: &str) -> Option<(u32, u32)> {
    let digits = |s: &str| -> usize { s.bytes().take_while(u8::is_ascii_digit).count() };
    let n = digits(name);
    if n == 0 || n > 6 {
        return None;
    }
    let x: u32 = name[..n].parse().ok()?;
    let rest = &name[n..];
    let (y, rest) = match rest.strip_prefix(['x', 'X']) {
        Some(r) => {
            let m = digits(r);
            if m == 0 || m > 6 {
                return None;
            }
            (r[..m].parse().ok()?, &r[m..])
        }
        None => (x, rest),
    };
    let ok_suffix =
        rest.is_empty() || rest.len() >= 3 && rest.as_bytes()[..3].eq_ignore_ascii_case(b"dpi");
    (ok_suffix && (1..=100_000).contains(&x) && (1..=100_000).contains(&y)).then_some((x, y))
}

/// PWG 5101.1 names for the sizes PPDs commonly use, with the PPD names that mean them. The
/// dimensions are in the names.
const STANDARD_MEDIA: &[(&str, &[&str])] = &[
    (
        "na_letter_8.5x11in",
        &["Letter", "LetterSmall", "US-Letter"],
    ),
    ("na_legal_8.5x14in", &["Legal", "LegalSmall", "US-Legal"]),
    ("na_executive_7.25x10.5in", &["Executive"]),
    ("na_invoice_5.5x8.5in", &["Statement", "HalfLetter"]),
    ("na_ledger_11x17in", &["Tabloid", "Ledger", "11x17"]),
    ("na_foolscap_8.5x13in", &["FanFoldGermanLegal", "Foolscap"]),
    ("na_govt-letter_8x10in", &["8x10", "w576h720"]),
    ("na_index-3x5_3x5in", &["3x5", "w216h360"]),
    (
        "na_index-4x6_4x6in",
        &["4x6", "w288h432", "Photo4x6", "4x6in"],
    ),
    ("na_5x7_5x7in", &["5x7", "w360h504", "Photo5x7"]),
    ("na_index-5x8_5x8in", &["5x8", "w360h576"]),
    ("na_super-b_13x19in", &["SuperB", "13x19"]),
    ("na_arch-b_12x18in", &["ARCHB", "TabloidExtra", "12x18"]),
    ("roc_16k_7.75x10.75in", &["roc16k", "PRC16K197x273"]),
    ("om_16k_184x260mm", &["PRC16K184x260"]),
    ("om_16k_195x270mm", &["PRC16K195x270"]),
    ("na_number-10_4.125x9.5in", &["Env10", "Comm10", "COM10"]),
    ("na_number-9_3.875x8.875in", &["Env9"]),
    ("na_monarch_3.875x7.5in", &["EnvMonarch", "Monarch"]),
    ("na_personal_3.625x6.5in", &["EnvPersonal"]),
    ("oe_photo-l_3.5x5in", &["3.5x5", "w252h360", "PhotoL", "L"]),
    ("iso_a0_841x1189mm", &["A0"]),
    ("iso_a1_594x841mm", &["A1"]),
    ("iso_a2_420x594mm", &["A2"]),
    ("iso_a3_297x420mm", &["A3"]),
    ("iso_a4_210x297mm", &["A4", "A4Small"]),
    ("iso_a5_148x210mm", &["A5"]),
    ("iso_a6_105x148mm", &["A6"]),
    ("iso_a7_74x105mm", &["A7"]),
    ("iso_b4_250x353mm", &["ISOB4"]),
    ("iso_b5_176x250mm", &["ISOB5", "EnvISOB5"]),
    ("iso_b6_125x176mm", &["ISOB6", "EnvISOB6"]),
    ("jis_b4_257x364mm", &["B4", "JISB4"]),
    ("jis_b5_182x257mm", &["B5", "JISB5"]),
    ("jis_b6_128x182mm", &["B6", "JISB6"]),
    ("iso_c4_229x324mm", &["EnvC4"]),
    ("iso_c5_162x229mm", &["EnvC5"]),
    ("iso_c6_114x162mm", &["EnvC6"]),
    ("iso_c6c5_114x229mm", &["EnvC65"]),
    ("iso_dl_110x220mm", &["EnvDL", "DL"]),
    ("jpn_hagaki_100x148mm", &["Postcard", "Hagaki"]),
    (
        "jpn_oufuku_148x200mm",
        &["DoublePostcard", "DoublePostcardRotated"],
    ),
    (
        "om_small-photo_100x150mm",
        &["100x150mm", "10x15cm", "Photo10x15"],
    ),
];

/// Media lengths the mapping accepts, in hundredths of a millimetre: 1 mm to 100 m (roll media).
/// A PPD size outside is left out of the capabilities.
pub const MEDIA_RANGE: std::ops::RangeInclusive<u32> = 100..=10_000_000;

/// Width and length (hundredths of mm) from the size at the end of a PWG self-describing name,
/// when both are in [`MEDIA_RANGE`].
pub fn pwg_dimensions(name: &str) -> Option<(u32, u32)> {
    let size = name.rsplit('_').next()?;
    let (nums, per_unit) = if let Some(n) = size.strip_suffix("in") {
        (n, 2540.0)
    } else if let Some(n) = size.strip_suffix("mm") {
        (n, 100.0)
    } else {
        return None;
    };
    let (w, l) = nums.split_once('x')?;
    let conv = |s: &str| -> Option<u32> {
        let v: f64 = s.parse().ok()?;
        let hmm = (v * per_unit).round();
        (v.is_finite()
            && hmm >= f64::from(*MEDIA_RANGE.start())
            && hmm <= f64::from(*MEDIA_RANGE.end()))
        .then_some(hmm as u32)
    };
    Some((conv(w)?, conv(l)?))
}

/// The standard size a PPD name means, ignoring `.Fullbleed`-style suffixes.
fn standard_by_name(ppd_name: &str) -> Option<(&'static str, u32, u32)> {
    let find = |name: &str| {
        STANDARD_MEDIA
            .iter()
            .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|(pwg, _)| pwg_dimensions(pwg).map(|(w, l)| (*pwg, w, l)))
    };
    find(ppd_name).or_else(|| find(ppd_name.split('.').next().unwrap_or(ppd_name)))
}

/// The PWG media name for a PPD size: a standard name when the dimensions are a standard size
/// (within 1 mm, either orientation; the PPD name decides between standards of one size), else
/// `custom_<name>_<w>x<h>in` (sizes in quarter inches) or `..mm`.
pub fn pwg_media_name(ppd_name: &str, width_pt: f64, length_pt: f64) -> String {
    const TOLERANCE: u32 = 100;
    let (w, l) = (pt_to_hmm(width_pt), pt_to_hmm(length_pt));
    let (short, long) = (w.min(l), w.max(l));
    let by_name = standard_by_name(ppd_name).map(|(pwg, _, _)| pwg);
    let mut first = None;
    for (pwg, _) in STANDARD_MEDIA {
        let Some((sw, sl)) = pwg_dimensions(pwg) else {
            continue;
        };
        if short.abs_diff(sw.min(sl)) <= TOLERANCE && long.abs_diff(sw.max(sl)) <= TOLERANCE {
            if by_name == Some(*pwg) {
                return (*pwg).to_owned();
            }
            first.get_or_insert(*pwg);
        }
    }
    if let Some(pwg) = first {
        return pwg.to_owned();
    }
    let mut name = String::new();
    for c in ppd_name.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
        if name.len() >= 48 {
            break;
        }
    }
    while name.ends_with('-') {
        name.pop();
    }
    if name.is_empty() {
        name.push_str("size");
    }
    format!("custom_{name}_{}", format_dimensions(width_pt, length_pt))
}

/// `WxHin` when both lengths are whole quarter inches, else `WxHmm` (to 0.01 mm).
fn format_dimensions(width_pt: f64, length_pt: f64) -> String {
    let quarter = |pt: f64| ((pt / 18.0) - (pt / 18.0).round()).abs() < 0.01;
    if quarter(width_pt) && quarter(length_pt) {
        let inch = |pt: f64| trim_decimal(format!("{:.4}", pt / 72.0));
        format!("{}x{}in", inch(width_pt), inch(length_pt))
    } else {
        let mm = |pt: f64| {
            let h = pt_to_hmm(pt);
            trim_decimal(format!("{}.{:02}", h / 100, h % 100))
        };
        format!("{}x{}mm", mm(width_pt), mm(length_pt))
    }
}

fn trim_decimal(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// The checks of the `ppd_parser` fuzz target, here so that `tests/ppd_corpus.rs` replays the
/// corpus with exactly the same assertions under `cargo test`.
pub mod fuzzing {
    use super::*;

    fn is_keyword(s: &str) -> bool {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.len() <= 255
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    fn is_pwg_media(s: &str) -> bool {
        let parts: Vec<&str> = s.split('_').collect();
        let ok = |p: &str, extra: &[u8]| {
            p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
        };
        parts.len() == 3
            && !parts[0].is_empty()
            && ok(parts[0], b"-")
            && ok(parts[1], b"-.")
            && pwg_dimensions(s).is_some()
    }

    /// Parses `data` (no panic allowed), and when it parses, checks the result against the limits,
    /// that a second parse gives the same result, and that every IPP value made from it is well
    /// formed. Panics on any violation.
    pub fn check_parser(data: &[u8]) {
        let limits = Limits::default();
        let result = parse_with_limits(data, &limits);
        // Tight limits must fail cleanly too.
        let tight = Limits {
            max_line: 64,
            max_value: 128,
            max_name: 8,
            max_text: 16,
            max_options: 2,
            max_choices: 3,
            max_entries: 16,
            max_group_depth: 1,
            ..Limits::default()
        };
        let _ = parse_with_limits(data, &tight);
        let ppd = match result {
            Ok(ppd) => ppd,
            Err(e) => {
                let lines = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
                if let Some(line) = e.line() {
                    assert!(
                        (1..=lines).contains(&line),
                        "{e} but the input has {lines} lines"
                    );
                }
                let _ = e.to_string();
                return;
            }
        };
        assert!(ppd.options.len() <= limits.max_options);
        for o in &ppd.options {
            assert!(o.choices.len() <= limits.max_choices);
            assert!(!o.keyword.is_empty());
        }
        assert_eq!(parse_with_limits(data, &limits).as_ref(), Ok(&ppd));
        let caps = capabilities(&ppd);
        for m in &caps.media {
            assert!(is_pwg_media(&m.pwg_name), "bad media name {}", m.pwg_name);
            assert!(m.width > 0 && m.length > 0);
        }
        for name in [&caps.media_custom_min, &caps.media_custom_max]
            .into_iter()
            .flatten()
        {
            assert!(is_pwg_media(name), "bad custom media name {name}");
        }
        for list in [
            &caps.media_sources,
            &caps.media_types,
            &caps.sides,
            &caps.color_modes,
        ] {
            for m in list {
                assert!(is_keyword(&m.ipp), "bad keyword {:?}", m.ipp);
                assert_eq!(find_mapped(list, &m.ipp), Some(m), "duplicate {}", m.ipp);
            }
        }
        for d in [
            &caps.media_source_default,
            &caps.media_type_default,
            &caps.sides_default,
            &caps.color_mode_default,
        ]
        .into_iter()
        .flatten()
        {
            assert!(is_keyword(d), "bad default {d:?}");
        }
        for r in &caps.resolutions {
            assert!(r.x_dpi > 0 && r.y_dpi > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppd(body: &str) -> Ppd {
        let text = format!("*PPD-Adobe: \"4.3\"\n{body}");
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(body: &str) -> PpdError {
        let text = format!("*PPD-Adobe: \"4.3\"\n{body}");
        parse(text.as_bytes()).expect_err("should not parse")
    }

    #[test]
    fn header_is_required() {
        assert_eq!(
            parse(b"*Manufacturer: \"X\"\n"),
            Err(PpdError::MissingHeader { line: 1 })
        );
        assert_eq!(parse(b""), Err(PpdError::MissingHeader { line: 1 }));
        assert_eq!(
            parse(b"hello\nworld\n"),
            Err(PpdError::MissingHeader { line: 2 })
        );
        // A byte-order mark, blank lines and comments before it are fine.
        let p = parse(b"\xEF\xBB\xBF\n*% comment\n*PPD-Adobe: \"4.3\"\n").unwrap();
        assert_eq!(p.format_version, "4.3");
    }

    #[test]
    fn main_keywords_and_fields() {
        let p = ppd("*FormatVersion: \"4.3\"\n\
             *Manufacturer: \"ACME\"\n\
             *ModelName: \"ACME Laser 1\"\n\
             *NickName: \"ACME Laser 1 <28>PS<29>\"\n\
             *ShortNickName: \"ACME L1\"\n\
             *LanguageLevel: \"3\"\n\
             *LanguageEncoding: ISOLatin1\n\
             *ColorDevice: True\n\
             *Throughput: \"20\"\n");
        assert_eq!(p.format_version, "4.3");
        assert_eq!(p.manufacturer.as_deref(), Some("ACME"));
        assert_eq!(p.model_name.as_deref(), Some("ACME Laser 1"));
        assert_eq!(p.nickname.as_deref(), Some("ACME Laser 1 (PS)"));
        assert_eq!(p.short_nickname.as_deref(), Some("ACME L1"));
        assert_eq!(p.language_level, Some(3));
        assert_eq!(p.language_encoding.as_deref(), Some("ISOLatin1"));
        assert!(p.color_device);
        let a = p.attribute("Throughput", None).unwrap();
        assert_eq!(a.value, Value::Quoted("20".into()));
        assert_eq!(
            p.attribute("LanguageEncoding", None).unwrap().value,
            Value::String("ISOLatin1".into())
        );
    }

    #[test]
    fn option_keywords_and_translations() {
        let p = ppd("*OpenUI *Duplex/2-Sided Printing: PickOne\n\
             *DefaultDuplex: None\n\
             *Duplex None/Off: \"\"\n\
             *Duplex DuplexNoTumble/Long Edge <28>Standard<29>: \"<</Duplex true>>setpagedevice\"\n\
             *Duplex DuplexTumble: \"<</Duplex true/Tumble true>>setpagedevice\"\n\
             *CloseUI: *Duplex\n");
        let o = p.option("Duplex").unwrap();
        assert_eq!(o.text, "2-Sided Printing");
        assert_eq!(o.ui, UiType::PickOne);
        assert_eq!(o.default.as_deref(), Some("None"));
        let names: Vec<_> = o.choices.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["None", "DuplexNoTumble", "DuplexTumble"]);
        assert_eq!(o.choices[1].text, "Long Edge (Standard)");
        // No translation: the name.
        assert_eq!(o.choices[2].text, "DuplexTumble");
        // Code keeps its hex and PostScript as written.
        assert_eq!(
            o.choices[1].code,
            Value::Quoted("<</Duplex true>>setpagedevice".into())
        );
    }

    #[test]
    fn latin1_and_utf8_translations() {
        let mut bytes = b"*PPD-Adobe: \"4.3\"\n*OpenUI *InputSlot/Papierzuf\xFChrung: PickOne\n\
                          *InputSlot Tray1/Bac <E0> papier: \"\"\n*CloseUI: *InputSlot\n"
            .to_vec();
        let p = parse(&bytes).unwrap();
        let o = p.option("InputSlot").unwrap();
        assert_eq!(o.text, "Papierzuführung");
        assert_eq!(o.choices[0].text, "Bac à papier");
        // The same file in UTF-8, with a UTF-8 hex substring.
        bytes = "*PPD-Adobe: \"4.3\"\n*OpenUI *InputSlot/Papierzuführung: PickOne\n\
                 *InputSlot Tray1/Bac <C3A0> papier: \"\"\n*CloseUI: *InputSlot\n"
            .as_bytes()
            .to_vec();
        let q = parse(&bytes).unwrap();
        assert_eq!(q.option("InputSlot").unwrap().text, "Papierzuführung");
        assert_eq!(
            q.option("InputSlot").unwrap().choices[0].text,
            "Bac à papier"
        );
    }

    #[test]
    fn decode_text_keeps_what_is_not_hex() {
        assert_eq!(decode_text("a<41 42>b"), "aABb");
        assert_eq!(decode_text("x < y > z"), "x < y > z");
        assert_eq!(decode_text("<4>"), "<4>");
        assert_eq!(decode_text("open <"), "open <");
        assert_eq!(decode_text("<>"), "<>");
    }

    #[test]
    fn quoted_values_span_lines_and_end() {
        let p = ppd("*OpenUI *Duplex: PickOne\n\
             *Duplex None/Off: \"\n\
             1 dict\n\
             dup /Duplex false put\n\
             setpagedevice\n\
             \"\n\
             *End\n\
             *CloseUI: *Duplex\n\
             *JobPatchFile 0: \"\n\"\n*End\n");
        let c = &p.option("Duplex").unwrap().choices[0];
        assert_eq!(
            c.code,
            Value::Quoted("\n1 dict\ndup /Duplex false put\nsetpagedevice\n".into())
        );
        assert_eq!(
            p.attribute("JobPatchFile", Some("0")).unwrap().value,
            Value::Quoted("\n".into())
        );
    }

    #[test]
    fn line_numbers_count_lines_inside_values() {
        // Line 2 opens a value over three lines; line 5 is the bad one.
        let e = err("*Status: \"a\nb\nc\"\n*Include: \"other.ppd\"\n");
        assert_eq!(e, PpdError::Include { line: 5 });
        // CRLF and bare CR count as one line end each.
        let text = "*PPD-Adobe: \"4.3\"\r\n*Status: \"a\r\nb\rc\"\r\n*OpenUI *X: Maybe\r\n";
        assert!(matches!(
            parse(text.as_bytes()),
            Err(PpdError::BadValue { line: 5, .. })
        ));
    }

    #[test]
    fn cr_and_crlf_line_ends() {
        for eol in ["\n", "\r\n", "\r"] {
            let text = [
                "*PPD-Adobe: \"4.3\"",
                "*OpenUI *PageSize: PickOne",
                "*PageSize A4: \"a",
                "b\"",
                "*End",
                "*CloseUI: *PageSize",
                "",
            ]
            .join(eol);
            let p = parse(text.as_bytes()).unwrap();
            let o = p.option("PageSize").unwrap();
            assert_eq!(o.choices[0].code, Value::Quoted("a\nb".into()), "{eol:?}");
        }
    }

    #[test]
    fn include_is_refused() {
        assert_eq!(
            err("*Include: \"/etc/passwd\"\n"),
            PpdError::Include { line: 2 }
        );
        assert_eq!(
            err("*% fine\n*Include: common.ppd\n"),
            PpdError::Include { line: 3 }
        );
    }

    #[test]
    fn comments_and_query_keywords_are_skipped() {
        let p = ppd("*% a comment with \"quotes\n\
             *?InputSlot: \"\n\
             save currentpagedevice /InputAttributes get\n\
             \"\n\
             *End\n\
             *%another\n\
             *Product: \"(X)\"\n");
        assert_eq!(p.attributes.len(), 1);
        assert_eq!(p.attributes[0].keyword, "Product");
    }

    #[test]
    fn ui_types_and_jcl() {
        let p = ppd("*OpenUI *Collate/Collate: Boolean\n\
             *Collate True: \"\"\n*Collate False: \"\"\n*CloseUI: *Collate\n\
             *OpenUI *Finish: PickMany\n*Finish Staple: \"\"\n*CloseUI: *Finish\n\
             *JCLOpenUI *JCLEconomode/Economode: PickOne\n\
             *JCLEconomode On: \"@PJL SET ECONOMODE=ON<0A>\"\n\
             *JCLCloseUI: *JCLEconomode\n");
        assert_eq!(p.option("Collate").unwrap().ui, UiType::Boolean);
        assert_eq!(p.option("Finish").unwrap().ui, UiType::PickMany);
        let j = p.option("JCLEconomode").unwrap();
        assert!(j.jcl);
        assert_eq!(j.text, "Economode");
        assert!(matches!(
            err("*OpenUI *X: PickSome\n"),
            PpdError::BadValue { line: 2, .. }
        ));
        // A missing *CloseUI closes the open option, with a warning.
        let p = ppd(
            "*OpenUI *A: PickOne\n*A x: \"\"\n*OpenUI *B: PickOne\n*B y: \"\"\n\
             *CloseUI: *B\n*CloseGroup: G\n",
        );
        assert_eq!(p.option("A").unwrap().choices[0].name, "x");
        assert_eq!(p.option("B").unwrap().choices[0].name, "y");
        assert_eq!(
            p.warnings,
            [
                Warning {
                    line: 4,
                    message: "*OpenUI *B while *A is open: closed it".into()
                },
                Warning {
                    line: 7,
                    message: "*CloseGroup with no group open".into()
                }
            ]
        );
    }

    #[test]
    fn groups_nest_within_limits() {
        let p = ppd("*OpenGroup: InstallableOptions/Options Installed\n\
             *OpenSubGroup: Trays/Trays\n\
             *OpenUI *Option1/Tray 2: Boolean\n*Option1 True: \"\"\n*CloseUI: *Option1\n\
             *CloseSubGroup: Trays\n\
             *CloseGroup: InstallableOptions\n\
             *OpenUI *Other: PickOne\n*Other A: \"\"\n*CloseUI: *Other\n");
        assert_eq!(
            p.option("Option1").unwrap().group.as_deref(),
            Some("InstallableOptions")
        );
        assert_eq!(p.option("Other").unwrap().group, None);
        let deep = "*OpenGroup: G/G\n".repeat(9);
        assert_eq!(err(&deep), PpdError::GroupsTooDeep { line: 10, limit: 8 });
    }

    #[test]
    fn constraints() {
        let p = ppd("*UIConstraints: *PageSize A5 *Duplex DuplexNoTumble\n\
             *UIConstraints: *Option2 False *Duplex\n\
             *NonUIConstraints: *Duplex *InputSlot Envelope\n");
        assert_eq!(
            p.constraints,
            vec![
                Constraint {
                    option1: "PageSize".into(),
                    choice1: Some("A5".into()),
                    option2: "Duplex".into(),
                    choice2: Some("DuplexNoTumble".into()),
                    ui: true
                },
                Constraint {
                    option1: "Option2".into(),
                    choice1: Some("False".into()),
                    option2: "Duplex".into(),
                    choice2: None,
                    ui: true
                },
                Constraint {
                    option1: "Duplex".into(),
                    choice1: None,
                    option2: "InputSlot".into(),
                    choice2: Some("Envelope".into()),
                    ui: false
                },
            ]
        );
        assert!(matches!(
            err("*UIConstraints: *PageSize A5\n"),
            PpdError::BadValue { line: 2, .. }
        ));
        assert!(matches!(
            err("*UIConstraints: PageSize A5 Duplex\n"),
            PpdError::BadValue { .. }
        ));
    }

    #[test]
    fn order_dependency() {
        let p = ppd("*OpenUI *Duplex: PickOne\n\
             *OrderDependency: 50.0 AnySetup *Duplex\n\
             *Duplex None: \"\"\n*CloseUI: *Duplex\n\
             *OpenUI *InputSlot: PickOne\n*OrderDependency: 20 PageSetup\n\
             *InputSlot Auto: \"\"\n*CloseUI: *InputSlot\n\
             *OrderDependency: broken\n");
        let d = p.option("Duplex").unwrap().order.clone().unwrap();
        assert_eq!((d.order, d.section.as_str()), (50.0, "AnySetup"));
        let i = p.option("InputSlot").unwrap().order.clone().unwrap();
        assert_eq!((i.order, i.section.as_str()), (20.0, "PageSetup"));
    }

    #[test]
    fn cups_filters() {
        let p = ppd("*cupsFilter: \"application/vnd.cups-raster 50 rastertohp\"\n\
             *cupsFilter2: \"application/vnd.cups-raster application/vnd.hp-pcl 100 rastertopclx\"\n\
             *cupsFilter: \"application/vnd.cups-pdf 0 -\"\n");
        assert_eq!(
            p.filters,
            vec![
                Filter {
                    source: "application/vnd.cups-raster".into(),
                    destination: None,
                    cost: 50,
                    program: "rastertohp".into()
                },
                Filter {
                    source: "application/vnd.cups-raster".into(),
                    destination: Some("application/vnd.hp-pcl".into()),
                    cost: 100,
                    program: "rastertopclx".into()
                },
                Filter {
                    source: "application/vnd.cups-pdf".into(),
                    destination: None,
                    cost: 0,
                    program: "-".into()
                },
            ]
        );
        for bad in [
            "*cupsFilter: \"application/pdf\"\n",
            "*cupsFilter: \"application/pdf cheap foo\"\n",
            "*cupsFilter2: \"application/pdf 0 foo\"\n",
            "*cupsFilter: \"pdf 0 foo\"\n",
        ] {
            assert!(
                matches!(err(bad), PpdError::BadValue { line: 2, .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn symbol_values() {
        let p = ppd("*SymbolValue ^Patch: \"% patch\"\n*JobPatchFile 1: ^Patch\n");
        assert_eq!(
            p.attribute("JobPatchFile", Some("1")).unwrap().value,
            Value::Symbol("Patch".into())
        );
        assert_eq!(
            p.attribute("SymbolValue", Some("^Patch")).unwrap().value,
            Value::Quoted("% patch".into())
        );
    }

    #[test]
    fn string_values_may_hold_quotes() {
        let p = ppd("*Font Times-Roman: Standard \"(001.007S)\" Standard ROM\n");
        let a = p.attribute("Font", Some("Times-Roman")).unwrap();
        assert_eq!(
            a.value,
            Value::String("Standard \"(001.007S)\" Standard ROM".into())
        );
    }

    #[test]
    fn keyword_without_value_and_stray_end() {
        let p = ppd("*End\n*SomeFlag\n*Empty:\n");
        assert_eq!(p.attribute("SomeFlag", None).unwrap().value, Value::None);
        assert_eq!(
            p.attribute("Empty", None).unwrap().value,
            Value::String(String::new())
        );
        assert!(p.attribute("End", None).is_none());
    }

    #[test]
    fn bad_keywords() {
        assert_eq!(err("*: \"x\"\n"), PpdError::BadKeyword { line: 2 });
        assert_eq!(err("*/x: y\n"), PpdError::BadKeyword { line: 2 });
        assert_eq!(err("*K\u{1}ey: y\n"), PpdError::BadKeyword { line: 2 });
        assert_eq!(err("*Key opt extra: y\n"), PpdError::BadOption { line: 2 });
        assert_eq!(
            err("*Key opt/no colon\n"),
            PpdError::BadTranslation { line: 2 }
        );
        assert_eq!(
            err(&format!("*{}: x\n", "K".repeat(65))),
            PpdError::BadKeyword { line: 2 }
        );
    }

    #[test]
    fn defaults_apply_to_options_wherever_they_are() {
        let p = ppd("*DefaultPageSize: A4\n\
             *OpenUI *PageSize: PickOne\n*PageSize Letter: \"\"\n*PageSize A4: \"\"\n\
             *CloseUI: *PageSize\n*DefaultResolution: 600dpi\n");
        assert_eq!(p.option("PageSize").unwrap().default.as_deref(), Some("A4"));
        assert_eq!(p.default_for("Resolution"), Some("600dpi"));
        assert_eq!(
            p.defaults,
            vec![
                ("PageSize".to_owned(), "A4".to_owned()),
                ("Resolution".to_owned(), "600dpi".to_owned())
            ]
        );
    }

    #[test]
    fn implicit_options_and_duplicate_choices() {
        let p = ppd(
            "*PageSize Letter/US Letter: \"a\"\n*PageSize Letter: \"b\"\n\
             *InputSlot Upper: \"\"\n*Unknown Thing: \"\"\n",
        );
        let o = p.option("PageSize").unwrap();
        assert_eq!(o.choices.len(), 1);
        assert_eq!(o.choices[0].code, Value::Quoted("a".into()));
        assert!(p.option("InputSlot").is_some());
        assert!(p.option("Unknown").is_none());
        assert!(p.attribute("Unknown", Some("Thing")).is_some());
    }

    #[test]
    fn page_sizes_collect_dimensions_and_areas() {
        let p = ppd(
            "*OpenUI *PageSize: PickOne\n*PageSize Letter/US Letter: \"\"\n\
             *PageSize A4: \"\"\n*PageSize Odd: \"\"\n*CloseUI: *PageSize\n\
             *OpenUI *PageRegion: PickOne\n*PageRegion Legal: \"\"\n*CloseUI: *PageRegion\n\
             *ImageableArea Letter/US Letter: \"18 36 594 756\"\n\
             *ImageableArea A4: \"18.00 36.00 577.00 806.00\"\n\
             *PaperDimension Letter/US Letter: \"612 792\"\n\
             *PaperDimension A4: \"595 842\"\n\
             *PaperDimension Legal: \"612 1008\"\n\
             *PaperDimension Tiny/Tiny card: \"100 100\"\n\
             *ParamCustomPageSize Width: 1 points 36 612\n\
             *ParamCustomPageSize Height: 2 points 36 1008\n\
             *HWMargins: 18 36 18 36\n",
        );
        let names: Vec<_> = p.page_sizes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Letter", "A4", "Odd", "Legal", "Tiny"]);
        let letter = p.page_size("Letter").unwrap();
        assert_eq!(letter.text, "US Letter");
        assert_eq!(letter.dimensions, Some((612.0, 792.0)));
        assert_eq!(
            letter.imageable_area,
            Some(ImageableArea {
                left: 18.0,
                bottom: 36.0,
                right: 594.0,
                top: 756.0
            })
        );
        assert_eq!(p.page_size("Odd").unwrap().dimensions, None);
        assert_eq!(p.page_size("Tiny").unwrap().text, "Tiny card");
        assert_eq!(
            p.custom_size,
            Some(CustomSizeRange {
                min_width: 36.0,
                max_width: 612.0,
                min_length: 36.0,
                max_length: 1008.0
            })
        );
        assert_eq!(p.hw_margins, Some([18.0, 36.0, 18.0, 36.0]));
        for bad in [
            "*PaperDimension A4: \"595\"\n",
            "*PaperDimension A4: \"595 nan\"\n",
            "*ImageableArea A4: \"1 2 3\"\n",
            "*ImageableArea A4: \"1 2 3 inf\"\n",
        ] {
            assert!(
                matches!(err(bad), PpdError::BadValue { line: 2, .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_hold() {
        let limits = Limits::default();
        let big = vec![b' '; limits.max_bytes + 1];
        assert!(matches!(parse(&big), Err(PpdError::TooLarge { .. })));
        assert_eq!(
            err(&format!("*Status: {}\n", "x".repeat(70_000))),
            PpdError::LineTooLong {
                line: 2,
                limit: limits.max_line
            }
        );
        assert_eq!(
            err("*Status: \"never closed\n*Other: x\n"),
            PpdError::UnterminatedQuote { line: 2 }
        );
        let small = Limits {
            max_options: 2,
            max_choices: 2,
            max_entries: 20,
            max_value: 8,
            max_text: 4,
            ..Limits::default()
        };
        let run = |body: &str| {
            parse_with_limits(format!("*PPD-Adobe: \"4.3\"\n{body}").as_bytes(), &small)
        };
        assert!(matches!(
            run("*OpenUI *A: PickOne\n*CloseUI: *A\n*OpenUI *B: PickOne\n*CloseUI: *B\n*OpenUI *C: PickOne\n"),
            Err(PpdError::TooMany { line: 6, what: "options", .. })
        ));
        assert!(matches!(
            run("*OpenUI *A: PickOne\n*A 1: \"\"\n*A 2: \"\"\n*A 3: \"\"\n"),
            Err(PpdError::TooMany { line: 5, .. })
        ));
        assert!(matches!(
            run(&"*X: y\n".repeat(21)),
            Err(PpdError::TooMany {
                line: 22,
                what: "keyword lines",
                ..
            })
        ));
        assert_eq!(
            run("*X: \"123456789\"\n"),
            Err(PpdError::ValueTooLong { line: 2, limit: 8 })
        );
        assert_eq!(
            run("*X y/abcde: \"\"\n"),
            Err(PpdError::BadTranslation { line: 2 })
        );
    }

    #[test]
    fn errors_name_their_line() {
        let e = err("*Include: x\n");
        assert_eq!(e.line(), Some(2));
        assert_eq!(
            e.to_string(),
            "line 2: *Include is refused: a PPD must be self-contained"
        );
        assert_eq!(PpdError::TooLarge { size: 1, limit: 0 }.line(), None);
    }

    #[test]
    fn garbage_never_panics() {
        let seeds: [&[u8]; 8] = [
            b"*PPD-Adobe:",
            b"*PPD-Adobe: \"",
            b"*PPD-Adobe: \"4.3\"\n*OpenUI",
            b"*PPD-Adobe: \"4.3\"\n*OpenUI *",
            b"*PPD-Adobe: \"4.3\"\n*A b/",
            b"*PPD-Adobe: \"4.3\"\n*A \xFF\xFE: ^",
            b"*PPD-Adobe: \"4.3\"\r*PaperDimension A4: \"1e400 2\"\r",
            b"*PPD-Adobe: \"4.3\"\n*PageSize <<<<<</<<<<: \"\"\n*ParamCustomPageSize Width: 1 2 3 4\n",
        ];
        for s in seeds {
            fuzzing::check_parser(s);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            fuzzing::check_parser(&data);
        }

        #[test]
        fn keyword_soup_never_panics(lines in proptest::collection::vec(
            proptest::string::string_regex(
                "(\\*(OpenUI|CloseUI|OpenGroup|PageSize|PaperDimension|ImageableArea|Default[A-Z][a-z]+|UIConstraints|cupsFilter2?|InputSlot|Duplex|ColorModel|Resolution|MediaType|End|%|\\?Q)( [*A-Za-z0-9.^<>]{0,8}(/[ -~]{0,8})?)?(: ?(\"[ -~\n]{0,12}\"?|[ -~]{0,12}))?)?"
            ).unwrap(), 0..24)) {
            let text = format!("*PPD-Adobe: \"4.3\"\n{}", lines.join("\n"));
            fuzzing::check_parser(text.as_bytes());
        }
    }

    // --- mapping ---

    fn caps(body: &str) -> PpdCapabilities {
        capabilities(&ppd(body))
    }

    #[test]
    fn standard_media_names_parse() {
        for (pwg, names) in STANDARD_MEDIA {
            let (w, l) = pwg_dimensions(pwg).unwrap_or_else(|| panic!("{pwg}"));
            assert!(w > 0 && w <= l, "{pwg}");
            for n in *names {
                assert_eq!(standard_by_name(n).map(|s| s.0), Some(*pwg), "{n}");
            }
        }
        assert_eq!(pwg_dimensions("na_letter_8.5x11in"), Some((21590, 27940)));
        assert_eq!(pwg_dimensions("iso_a4_210x297mm"), Some((21000, 29700)));
        assert_eq!(pwg_dimensions("nonsense"), None);
    }

    #[test]
    fn media_names_from_dimensions() {
        let cases = [
            ("Letter", 612.0, 792.0, "na_letter_8.5x11in"),
            ("Legal", 612.0, 1008.0, "na_legal_8.5x14in"),
            ("A4", 595.0, 842.0, "iso_a4_210x297mm"),
            ("A5", 420.0, 595.0, "iso_a5_148x210mm"),
            ("A3", 842.0, 1191.0, "iso_a3_297x420mm"),
            ("Executive", 522.0, 756.0, "na_executive_7.25x10.5in"),
            ("Env10", 297.0, 684.0, "na_number-10_4.125x9.5in"),
            ("EnvDL", 311.0, 623.0, "iso_dl_110x220mm"),
            ("EnvDL", 312.0, 624.0, "iso_dl_110x220mm"),
            ("EnvC5", 459.0, 649.0, "iso_c5_162x229mm"),
            ("EnvMonarch", 279.0, 540.0, "na_monarch_3.875x7.5in"),
            ("B5", 516.0, 729.0, "jis_b5_182x257mm"),
            ("ISOB5", 498.0, 708.0, "iso_b5_176x250mm"),
            // A "B5" the size of ISO B5 is ISO B5: the dimensions decide.
            ("B5", 499.0, 709.0, "iso_b5_176x250mm"),
            ("4x6", 288.0, 432.0, "na_index-4x6_4x6in"),
            ("w288h432", 288.0, 432.0, "na_index-4x6_4x6in"),
            ("Letter.Fullbleed", 612.0, 792.0, "na_letter_8.5x11in"),
            ("Tabloid", 792.0, 1224.0, "na_ledger_11x17in"),
            ("Ledger", 1224.0, 792.0, "na_ledger_11x17in"),
            ("FanFoldGermanLegal", 612.0, 936.0, "na_foolscap_8.5x13in"),
            ("Postcard", 283.0, 420.0, "jpn_hagaki_100x148mm"),
            // Unknown sizes: whole quarter inches in inches, else millimetres.
            ("5x13", 360.0, 936.0, "custom_5x13_5x13in"),
            ("69x95mm", 195.0, 270.0, "custom_69x95mm_68.79x95.25mm"),
            ("My Size!", 200.0, 300.0, "custom_my-size_70.56x105.83mm"),
            ("\u{e9}\u{e9}", 216.0, 306.0, "custom_size_3x4.25in"),
        ];
        for (name, w, l, want) in cases {
            assert_eq!(pwg_media_name(name, w, l), want, "{name} {w}x{l}");
        }
    }

    #[test]
    fn media_with_margins_and_default() {
        let c = caps(
            "*OpenUI *PageSize: PickOne\n*DefaultPageSize: A4\n\
             *PageSize Letter: \"\"\n*PageSize A4: \"\"\n*PageSize A4.Fullbleed: \"\"\n\
             *PageSize Tabloid: \"\"\n*PageSize Nowhere: \"\"\n*CloseUI: *PageSize\n\
             *ImageableArea Letter: \"18 36 594 756\"\n\
             *ImageableArea A4: \"18 36 577 806\"\n\
             *ImageableArea A4.Fullbleed: \"0 0 595 842\"\n\
             *PaperDimension Letter: \"612 792\"\n*PaperDimension A4: \"595 842\"\n\
             *PaperDimension A4.Fullbleed: \"595 842\"\n\
             *ParamCustomPageSize Width: 1 points 216 612\n\
             *ParamCustomPageSize Height: 2 points 360 1008\n",
        );
        let names: Vec<_> = c.media.iter().map(|m| m.pwg_name.as_str()).collect();
        // Tabloid has no *PaperDimension: its size comes from the table. Nowhere has none at all.
        assert_eq!(
            names,
            [
                "na_letter_8.5x11in",
                "iso_a4_210x297mm",
                "iso_a4_210x297mm",
                "na_ledger_11x17in"
            ]
        );
        assert_eq!(
            c.media_supported(),
            [
                "na_letter_8.5x11in",
                "iso_a4_210x297mm",
                "na_ledger_11x17in"
            ]
        );
        let letter = &c.media[0];
        assert_eq!((letter.width, letter.length), (21590, 27940));
        assert_eq!(
            letter.margins,
            Some(Margins {
                bottom: 1270,
                left: 635,
                right: 635,
                top: 1270
            })
        );
        assert!(c.media[2].margins.unwrap().is_borderless());
        assert_eq!(c.media[3].margins, None);
        assert_eq!(c.media_default.as_deref(), Some("iso_a4_210x297mm"));
        assert_eq!(c.media_custom_min.as_deref(), Some("custom_min_3x5in"));
        assert_eq!(c.media_custom_max.as_deref(), Some("custom_max_8.5x14in"));
    }

    #[test]
    fn absurd_sizes_are_left_out() {
        // Found by the fuzzer: a 76 m x 0.35 mm "Legal" once made a name nothing could read back.
        let c = caps(
            "*PaperDimension Legal: \"612828 1\"\n*PaperDimension Big: \"284000 100\"\n\
             *PaperDimension Dot: \"2 2\"\n*PaperDimension Roll: \"612 283000\"\n\
             *ParamCustomPageSize Width: 1 points 0.001 612\n\
             *ParamCustomPageSize Height: 2 points 1 999999\n",
        );
        assert_eq!(c.media_supported(), ["custom_roll_215.9x99836.11mm"]);
        assert_eq!(c.media[0].length, 9_983_611);
        assert_eq!(c.media_custom_min, None);
        assert_eq!(c.media_custom_max, None);
        assert_eq!(pwg_dimensions("custom_x_0.001x5in"), None);
        assert_eq!(pwg_dimensions("custom_x_5x4000in"), None);
    }

    #[test]
    fn media_sources() {
        for (ppd, ipp) in [
            ("Auto", "auto"),
            ("Default", "auto"),
            ("AutoSelect", "auto"),
            ("Tray1", "tray-1"),
            ("Tray 2", "tray-2"),
            ("1stTray", "tray-1"),
            ("2ndTray", "tray-2"),
            ("Tray10", "tray-10"),
            ("Upper", "top"),
            ("Lower", "bottom"),
            ("Middle", "middle"),
            ("Manual", "manual"),
            ("ManualFeed", "manual"),
            ("Envelope", "envelope"),
            ("EnvelopeFeeder", "envelope"),
            ("MultiPurpose", "by-pass-tray"),
            ("MPTray", "by-pass-tray"),
            ("LargeCapacity", "large-capacity"),
            ("Cassette", "main"),
            ("PhotoTray", "photo"),
            ("CDTray", "disc"),
            ("Optional_Tray3", "tray-3"),
            ("MultiTray", "by-pass-tray"),
        ] {
            assert_eq!(media_source(ppd).as_deref(), Some(ipp), "{ppd}");
        }
        for unknown in ["MediaTypeAPS", "Tray99", "Tray 3 2TM", "Front", ""] {
            assert_eq!(media_source(unknown), None, "{unknown}");
        }
        // In a PPD: the name, else the translation, else the sanitized name.
        let c = caps(
            "*OpenUI *InputSlot: PickOne\n*DefaultInputSlot: MediaTypeAPS\n\
             *InputSlot MediaTypeAPS/Auto: \"\"\n*InputSlot Upper/Tray 2: \"\"\n\
             *InputSlot Slot3/Tray 3: \"\"\n*InputSlot Slot32TM/Tray 3 2TM: \"\"\n\
             *InputSlot 3Tray(Opt.): \"\"\n*CloseUI: *InputSlot\n",
        );
        let got: Vec<_> = c
            .media_sources
            .iter()
            .map(|m| (m.ppd.as_deref().unwrap(), m.ipp.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("MediaTypeAPS", "auto"),
                ("Upper", "top"),
                ("Slot3", "tray-3"),
                ("Slot32TM", "slot32-tm"),
                ("3Tray(Opt.)", "ppd-3-tray-opt"),
            ]
        );
        assert_eq!(c.media_source_default.as_deref(), Some("auto"));
    }

    #[test]
    fn sanitized_keywords_are_safe() {
        for (raw, want) in [
            ("Plain", "plain"),
            ("MediaTypeAPS", "media-type-aps"),
            ("A4Paper", "a4-paper"),
            ("$(rm -rf /)", "rm-rf"),
            ("; reboot", "reboot"),
            ("", "ppd"),
            ("___", "ppd"),
            ("\u{e9}t\u{e9}", "t"),
            ("9", "ppd-9"),
        ] {
            assert_eq!(sanitize_keyword(raw), want, "{raw:?}");
        }
        assert_eq!(sanitize_keyword(&"ab".repeat(100)).len(), 63);
    }

    #[test]
    fn sides_color_modes_and_media_types() {
        let c = caps(
            "*ColorDevice: True\n\
             *OpenUI *Duplex: PickOne\n*DefaultDuplex: DuplexNoTumble\n*Duplex None: \"\"\n\
             *Duplex DuplexNoTumble: \"\"\n*Duplex DuplexTumble: \"\"\n*Duplex Weird: \"\"\n\
             *CloseUI: *Duplex\n\
             *OpenUI *ColorModel: PickOne\n*DefaultColorModel: CMYK\n*ColorModel Gray: \"\"\n\
             *ColorModel RGB: \"\"\n*ColorModel CMYK: \"\"\n*ColorModel Fancy: \"\"\n\
             *CloseUI: *ColorModel\n\
             *OpenUI *MediaType: PickOne\n*DefaultMediaType: Plain\n*MediaType Plain: \"\"\n\
             *MediaType Glossy: \"\"\n*MediaType Photo: \"\"\n*MediaType Transparency: \"\"\n\
             *MediaType PremiumLuster/Premium Luster: \"\"\n*CloseUI: *MediaType\n",
        );
        let m = |ppd: &str, ipp: &str| Mapped {
            ppd: Some(ppd.into()),
            ipp: ipp.into(),
        };
        assert_eq!(
            c.sides,
            [
                m("None", "one-sided"),
                m("DuplexNoTumble", "two-sided-long-edge"),
                m("DuplexTumble", "two-sided-short-edge")
            ]
        );
        assert_eq!(c.sides_default.as_deref(), Some("two-sided-long-edge"));
        // RGB comes first, but CMYK is the default, so CMYK is the choice for `color`.
        assert_eq!(c.color_modes, [m("Gray", "monochrome"), m("CMYK", "color")]);
        assert_eq!(c.color_mode_default.as_deref(), Some("color"));
        assert_eq!(
            c.media_types,
            [
                m("Plain", "stationery"),
                m("Glossy", "photographic-glossy"),
                m("Photo", "photographic"),
                m("Transparency", "transparency"),
                m("PremiumLuster", "premium-luster")
            ]
        );
        assert_eq!(c.media_type_default.as_deref(), Some("stationery"));
        // The lookup back hands out the PPD's string.
        assert_eq!(
            find_mapped(&c.color_modes, "color").and_then(|m| m.ppd.as_deref()),
            Some("CMYK")
        );
        assert_eq!(find_mapped(&c.color_modes, "CMYK"), None);
    }

    #[test]
    fn without_options_the_fallbacks() {
        let mono = caps("*ColorDevice: False\n*DefaultResolution: 600dpi\n");
        assert_eq!(
            mono.sides,
            [Mapped {
                ppd: None,
                ipp: "one-sided".into()
            }]
        );
        assert_eq!(mono.sides_default.as_deref(), Some("one-sided"));
        let modes: Vec<_> = mono.color_modes.iter().map(|m| m.ipp.as_str()).collect();
        assert_eq!(modes, ["monochrome"]);
        assert_eq!(
            mono.resolutions,
            [Resolution {
                ppd: None,
                x_dpi: 600,
                y_dpi: 600
            }]
        );
        assert!(mono.media.is_empty());
        assert_eq!(mono.media_default, None);
        let color = caps("*ColorDevice: True\n");
        let modes: Vec<_> = color.color_modes.iter().map(|m| m.ipp.as_str()).collect();
        assert_eq!(modes, ["monochrome", "color"]);
        assert_eq!(color.color_mode_default.as_deref(), Some("color"));
        assert!(color.resolutions.is_empty());
    }

    #[test]
    fn resolutions() {
        for (name, want) in [
            ("300dpi", Some((300, 300))),
            ("600x600dpi", Some((600, 600))),
            ("1200x600dpi", Some((1200, 600))),
            ("720x720dpi_hq", Some((720, 720))),
            ("600", Some((600, 600))),
            ("600DPI", Some((600, 600))),
            ("Draft", None),
            ("0dpi", None),
            ("600xdpi", None),
            ("99999999dpi", None),
            ("300dots", None),
        ] {
            assert_eq!(parse_resolution(name), want, "{name}");
        }
        let c = caps(
            "*OpenUI *Resolution: PickOne\n*DefaultResolution: 600dpi\n\
             *Resolution 300dpi: \"\"\n*Resolution 600dpi: \"\"\n*Resolution 600x600dpi: \"\"\n\
             *Resolution Best: \"\"\n*CloseUI: *Resolution\n",
        );
        let got: Vec<_> = c
            .resolutions
            .iter()
            .map(|r| (r.ppd.as_deref().unwrap(), r.x_dpi, r.y_dpi))
            .collect();
        assert_eq!(got, [("300dpi", 300, 300), ("600dpi", 600, 600)]);
        assert_eq!(c.resolution_default.unwrap().x_dpi, 600);
    }

    #[test]
    fn source_defaults_and_duplicates() {
        let c = caps(
            "*OpenUI *InputSlot: PickOne\n*DefaultInputSlot: Default\n\
             *InputSlot Auto: \"\"\n*InputSlot Default: \"\"\n*InputSlot Tray1: \"\"\n\
             *InputSlot Manual: \"\"\n*CloseUI: *InputSlot\n",
        );
        let got: Vec<_> = c
            .media_sources
            .iter()
            .map(|m| (m.ppd.as_deref().unwrap(), m.ipp.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Default", "auto"),
                ("Tray1", "tray-1"),
                ("Manual", "manual")
            ]
        );
        assert_eq!(c.media_source_default.as_deref(), Some("auto"));
    }
}

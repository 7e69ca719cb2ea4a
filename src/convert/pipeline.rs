//! The job renderer: every document of a job (PDF, JPEG, PNG, PWG raster, URF, plain text;
//! compressed or not; application/octet-stream sniffed) → one PDF with the job ticket applied.
//!
//! Pure: documents arrive as readers and the PDF leaves through a writer; the caller opens files.
//! Failures carry the job-state-reasons keyword the job is aborted with (RFC 8011 §5.3.8, PWG
//! 5100.7 document-password-error / document-format-error / document-unprintable-error).

use std::io::{self, Read, Write};

use lopdf::{Document, LoadOptions};

use super::image_pdf::{self, ImageLimits};
use super::impose::{ImposeError, ImposeLimits, Imposer};
use super::raster_pdf::{self, RasterFormat, RasterToPdf};
use super::sniff::{self, DocFormat, Magic, SniffError};
use super::text_pdf::{self, TextPage};
use super::ticket::{JobTicket, Orientation};
use crate::codec::pwg::{self, RasterLimits};
use crate::codec::urf;

/// One document of a job, as spooled.
pub struct DocumentInput<'a> {
    /// document-format as the client declared it (application/octet-stream: sniffed).
    pub format: String,
    /// compression: none, gzip or deflate.
    pub compression: String,
    pub reader: Box<dyn Read + 'a>,
}

/// Bounds on one job's rendering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvertLimits {
    /// Largest decompressed document, bytes (PDF and images are held in memory whole).
    pub max_document_bytes: u64,
    /// Largest decompressed raster stream, bytes (rasters are streamed).
    pub max_raster_bytes: u64,
    pub raster: RasterLimits,
    pub image: ImageLimits,
    pub impose: ImposeLimits,
}

impl ConvertLimits {
    /// The most one document of `format` may decompress to on its way to a device as it is
    /// (raw file output, a document streamed to a printer unconverted): the limit the converters
    /// hold it to — rasters are streamed (`max_raster_bytes`), every other format is held whole
    /// (`max_document_bytes`). Without it a gzip bomb of a few MB fills the disk of a raw file
    /// queue or feeds a printer gigabytes.
    pub fn decompressed_limit(&self, format: Option<DocFormat>) -> u64 {
        match format {
            Some(DocFormat::PwgRaster | DocFormat::Urf) => self.max_raster_bytes,
            _ => self.max_document_bytes,
        }
    }
}

impl Default for ConvertLimits {
    fn default() -> Self {
        ConvertLimits {
            max_document_bytes: 512 << 20,
            max_raster_bytes: 16 << 30,
            raster: RasterLimits::default(),
            image: ImageLimits::default(),
            impose: ImposeLimits::default(),
        }
    }
}

/// What rendering a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderStats {
    pub documents: u32,
    /// Source pages selected (one copy).
    pub input_pages: u32,
    /// Pages of the PDF written.
    pub output_pages: u32,
    pub bytes_out: u64,
}

/// Why a job could not be rendered. Document numbers are 1-based.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("document {doc} is encrypted and needs a password")]
    Encrypted { doc: usize },
    #[error("document {doc} has an unknown or unsupported format ({format})")]
    UnknownFormat { doc: usize, format: String },
    /// The client declared one format and the data is another (or none we know).
    #[error("document {doc} was declared {declared} but is {found}")]
    FormatMismatch {
        doc: usize,
        declared: &'static str,
        found: String,
    },
    #[error("document {doc} is damaged: {cause}")]
    Damaged { doc: usize, cause: String },
    #[error("document {doc} decompresses to more than {limit} bytes")]
    TooLarge { doc: usize, limit: u64 },
    /// The compressed data is not valid `compression` data (as opposed to too much of it).
    #[error("document {doc} is not valid {compression} data: {cause}")]
    BadCompression {
        doc: usize,
        compression: &'static str,
        cause: String,
    },
    #[error("document {doc} cannot be printed: {cause}")]
    Unprintable { doc: usize, cause: String },
    #[error("the job cannot be printed: {0}")]
    Job(String),
    /// A converter failed where it never should (a panic): a bug, not the document's fault alone.
    #[error("the converter failed: {0}")]
    Internal(String),
    #[error("writing the rendered PDF: {0}")]
    Write(#[source] io::Error),
}

impl RenderError {
    /// The job-state-reasons keyword to abort the job with.
    pub fn job_state_reason(&self) -> &'static str {
        match self {
            RenderError::Encrypted { .. } => "document-password-error",
            RenderError::UnknownFormat { .. }
            | RenderError::FormatMismatch { .. }
            | RenderError::Damaged { .. }
            | RenderError::TooLarge { .. }
            | RenderError::BadCompression { .. } => "document-format-error",
            RenderError::Unprintable { .. } | RenderError::Job(_) | RenderError::Write(_) => {
                "document-unprintable-error"
            }
            RenderError::Internal(_) => "job-aborted-by-system",
        }
    }

    /// A local write failure (disk full): worth retrying, not the document's fault.
    pub fn is_local_failure(&self) -> bool {
        matches!(self, RenderError::Write(_))
    }

    /// The job-state-message shown to the person who printed (no file paths, no internals): what
    /// happened and what to do about it (issue 11 item 4).
    pub fn user_message(&self) -> String {
        match self {
            RenderError::Encrypted { doc } => {
                format!("Document {doc} is protected by a password; print it without protection.")
            }
            RenderError::UnknownFormat { doc, format } => format!(
                "Document {doc} ({format}) is not in a format this printer understands; send \
                 PDF, JPEG, PNG, PWG raster, Apple raster or plain text."
            ),
            RenderError::FormatMismatch {
                doc,
                declared,
                found,
            } => format!(
                "Document {doc} was sent as {declared} but the data is {found}. Send it with its \
                 real format, or as application/octet-stream to let the printer detect it."
            ),
            RenderError::Damaged { doc, cause } => {
                format!("Document {doc} is damaged ({cause}); print it again from its source.")
            }
            RenderError::TooLarge { doc, limit } => format!(
                "Document {doc} is too large once decompressed: more than {} (the limit for one \
                 document); print it in parts.",
                human_bytes(*limit)
            ),
            RenderError::BadCompression {
                doc, compression, ..
            } => format!(
                "Document {doc} was sent with compression {compression} but is not valid \
                 {compression} data; send it again, or uncompressed."
            ),
            RenderError::Unprintable { doc, cause } => {
                format!("Document {doc} cannot be printed: {cause}.")
            }
            RenderError::Job(cause) => format!("The job cannot be printed: {cause}."),
            RenderError::Internal(_) => "The printer failed while converting this job (an \
                 internal error, logged for the administrator); the job was stopped so that the \
                 jobs behind it can print."
                .into(),
            RenderError::Write(_) => "The printer could not store the rendered job.".into(),
        }
    }
}

/// `limit` bytes for people: "512 MiB", "16 GiB", "1500 bytes".
pub fn human_bytes(limit: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if limit >= size {
            return if limit.is_multiple_of(size) {
                format!("{} {unit}", limit / size)
            } else {
                format!("{:.1} {unit}", limit as f64 / size as f64)
            };
        }
    }
    format!("{limit} bytes")
}

fn sniff_error(doc: usize, e: SniffError) -> RenderError {
    match e {
        SniffError::TooLarge { limit } => RenderError::TooLarge { doc, limit },
        SniffError::UnsupportedCompression(c) => RenderError::UnknownFormat {
            doc,
            format: format!("compression {c}"),
        },
        SniffError::Corrupt {
            compression,
            source,
        } => RenderError::BadCompression {
            doc,
            compression,
            cause: source.to_string(),
        },
        other => RenderError::Damaged {
            doc,
            cause: other.to_string(),
        },
    }
}

fn read_all(
    doc: usize,
    compression: &str,
    mut r: impl Read,
    limit: u64,
) -> Result<Vec<u8>, RenderError> {
    // One byte past the limit tells "too large" apart, and nothing past it is ever held: a
    // decompression bomb costs at most `limit` bytes of memory, whatever its ratio.
    let mut data = Vec::new();
    (&mut r)
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| sniff_error(doc, sniff::read_error(compression, e)))?;
    if data.len() as u64 > limit {
        return Err(RenderError::TooLarge { doc, limit });
    }
    Ok(data)
}

/// Reads a spooled document once through its decompression, holding nothing, and fails when its
/// declared format is not what the data is, or when it is a format held whole in memory (PDF,
/// JPEG, PNG) and larger than `max_document_bytes` once decompressed. Run before [`render_job`]
/// on a second reader of the same file, it makes a decompression bomb cost CPU time but no memory,
/// whatever its ratio (issue 11 item 3): only a document that fits the limit is ever read into
/// memory. Errors of the data itself (corrupt compression) are left to [`render_job`] to report.
pub fn check_document_size(
    doc: usize,
    format: &str,
    compression: &str,
    input: impl Read,
    limits: &ConvertLimits,
) -> Result<(), RenderError> {
    let limit = limits.max_document_bytes;
    let Ok((Some(found), reader)) = sniff::open(format, compression, input, u64::MAX) else {
        return Ok(());
    };
    let reader = match DocFormat::from_mime(format) {
        // Any bytes are text (what does not decode prints as '?').
        Some(DocFormat::Text) => reader,
        Some(declared) => {
            let Ok((head, reader)) = sniff::peek(reader) else {
                return Ok(());
            };
            check_declared(doc, declared, &head)?;
            reader
        }
        None => reader,
    };
    if matches!(found, DocFormat::PwgRaster | DocFormat::Urf) {
        return Ok(());
    }
    match io::copy(&mut reader.take(limit.saturating_add(1)), &mut io::sink()) {
        Ok(n) if n > limit => Err(RenderError::TooLarge { doc, limit }),
        _ => Ok(()),
    }
}

/// Largest object or cross-reference stream, decompressed. lopdf decodes these while it loads a
/// document; they hold its structure (dictionaries, offsets), never page content or images, so
/// real ones are far smaller, and a bomb hidden in one costs at most this much memory.
const MAX_STRUCTURE_STREAM_BYTES: usize = 64 << 20;

/// Loads a PDF, refusing encrypted ones that need a password.
fn load_pdf(doc: usize, data: &[u8], limits: &ConvertLimits) -> Result<Document, RenderError> {
    let whole = limits.max_document_bytes.min(usize::MAX as u64) as usize;
    let options = LoadOptions {
        max_decompressed_size: Some(whole.min(MAX_STRUCTURE_STREAM_BYTES)),
        ..LoadOptions::default()
    };
    let loaded = Document::load_mem_with_options(data, options).map_err(|e| match e {
        lopdf::Error::InvalidPassword | lopdf::Error::Decryption(_) => {
            RenderError::Encrypted { doc }
        }
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { limit }) => {
            RenderError::Unprintable {
                doc,
                cause: format!(
                    "one of its object streams is more than {} once decompressed, the limit",
                    human_bytes(limit as u64)
                ),
            }
        }
        lopdf::Error::Decompress(_) => RenderError::Damaged {
            doc,
            cause: format!("a stream cannot be decompressed ({e})"),
        },
        other => RenderError::Damaged {
            doc,
            cause: other.to_string(),
        },
    })?;
    if loaded.is_encrypted() {
        return Err(RenderError::Encrypted { doc });
    }
    Ok(loaded)
}

fn image_error(doc: usize, e: image_pdf::ImageError) -> RenderError {
    match e {
        image_pdf::ImageError::TooLarge { .. } | image_pdf::ImageError::UnsupportedJpeg(_) => {
            RenderError::Unprintable {
                doc,
                cause: e.to_string(),
            }
        }
        other => RenderError::Damaged {
            doc,
            cause: other.to_string(),
        },
    }
}

/// What a document was before [`to_pdf`], which decides how the imposition treats its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Pdf,
    /// A photo: print-scaling auto means fit.
    Image,
    /// PWG or Apple raster: each page is the size of the medium in its header.
    Raster,
    /// Plain text, set on pages of the job's medium in its orientation.
    Text,
}

/// The page plain text is set on: the job's medium, turned for a landscape orientation-requested
/// (RFC 8011 §5.2.10), so that lines run along the long edge; the imposition then turns the page
/// onto the sheet as it does any landscape page.
fn text_page(ticket: &JobTicket) -> TextPage {
    let (w, h) = (ticket.media.width_pt, ticket.media.height_pt);
    match ticket.orientation {
        Some(Orientation::Landscape | Orientation::ReverseLandscape) => TextPage {
            width_pt: h.max(w),
            height_pt: h.min(w),
        },
        _ => TextPage {
            width_pt: w.min(h),
            height_pt: h.max(w),
        },
    }
}

/// Converts one document to a PDF document.
fn to_pdf(
    doc: usize,
    input: DocumentInput<'_>,
    ticket: &JobTicket,
    limits: &ConvertLimits,
) -> Result<(Document, Origin), RenderError> {
    let raster_limit = limits.max_raster_bytes;
    let whole_limit = limits.max_document_bytes;
    let (format, reader) = sniff::open(
        &input.format,
        &input.compression,
        input.reader,
        whole_limit.max(raster_limit),
    )
    .map_err(|e| sniff_error(doc, e))?;
    let compression = input.compression.as_str();
    // A declared format is checked against the data's first bytes before anything is decoded, so
    // a mislabelled document (or a bomb of zeros) is named for what it is after reading 1 KiB,
    // instead of being read whole and reported as damaged.
    let reader = match (format, DocFormat::from_mime(&input.format)) {
        (Some(DocFormat::Text), _) => reader,
        (Some(declared), Some(_)) => {
            let (head, reader) = sniff::peek(reader)
                .map_err(|e| sniff_error(doc, sniff::read_error(compression, e)))?;
            check_declared(doc, declared, &head)?;
            reader
        }
        _ => reader,
    };
    match format {
        None => {
            // Say what the data is (PostScript, text ...) when the sniffer can name it.
            let format = match sniff::peek(reader) {
                Ok((head, _)) => format!("{}, {}", input.format, sniff::describe(&head)),
                Err(_) => input.format.clone(),
            };
            Err(RenderError::UnknownFormat { doc, format })
        }
        Some(DocFormat::Pdf) => {
            let data = read_all(doc, compression, reader, whole_limit)?;
            Ok((load_pdf(doc, &data, limits)?, Origin::Pdf))
        }
        Some(DocFormat::Jpeg) => {
            let data = read_all(doc, compression, reader, whole_limit)?;
            let d =
                image_pdf::jpeg_document(data, &limits.image).map_err(|e| image_error(doc, e))?;
            Ok((d, Origin::Image))
        }
        Some(DocFormat::Png) => {
            let data = read_all(doc, compression, reader, whole_limit)?;
            let d = image_pdf::png_document(&data[..], &limits.image)
                .map_err(|e| image_error(doc, e))?;
            Ok((d, Origin::Image))
        }
        Some(f @ (DocFormat::PwgRaster | DocFormat::Urf)) => {
            let settings = RasterToPdf {
                limits: limits.raster,
                // The imposition step recompresses nothing it does not create: keep it fast.
                deflate_level: 1,
            };
            let rf = if f == DocFormat::PwgRaster {
                RasterFormat::Pwg
            } else {
                RasterFormat::Urf
            };
            let mut pdf = Vec::new();
            settings
                .convert(rf, reader, &mut pdf)
                .map_err(|e| raster_error(doc, compression, e))?;
            Ok((load_pdf(doc, &pdf, limits)?, Origin::Raster))
        }
        Some(DocFormat::Text) => {
            let data = read_all(doc, compression, reader, whole_limit)?;
            let charset = sniff::text_charset(&input.format).unwrap_or(sniff::Charset::Utf8);
            let (pdf, _) = text_pdf::text_to_pdf(
                &data,
                charset,
                text_page(ticket),
                limits.impose.max_input_pages,
            )
            .map_err(|e| RenderError::Unprintable {
                doc,
                cause: e.to_string(),
            })?;
            Ok((load_pdf(doc, &pdf, limits)?, Origin::Text))
        }
    }
}

/// Fails unless `head` (the first bytes of the decompressed data) looks like `declared`.
fn check_declared(doc: usize, declared: DocFormat, head: &[u8]) -> Result<(), RenderError> {
    let found = match sniff::sniff(head) {
        Some(Magic::Doc(f)) if f == declared => return Ok(()),
        // A PDF may start with up to 1 KiB of junk that happens to look like a zlib header.
        _ if declared == DocFormat::Pdf && head.windows(5).any(|w| w == b"%PDF-") => return Ok(()),
        _ => sniff::describe(head),
    };
    Err(RenderError::FormatMismatch {
        doc,
        declared: declared.mime(),
        found,
    })
}

fn raster_error(doc: usize, compression: &str, e: raster_pdf::ConvertError) -> RenderError {
    use raster_pdf::ConvertError as E;
    match e {
        E::Read(io) => sniff_error(doc, sniff::read_error(compression, io)),
        // A page over a limit is a document this printer will not print, not a damaged one: say
        // which limit, so the sender can lower the resolution or the page size.
        E::UnsupportedColorSpace(_)
        | E::ImageTooLarge(_)
        | E::Pwg(pwg::PwgError::TooLarge { .. } | pwg::PwgError::TooManyPages(_))
        | E::Urf(urf::UrfError::TooLarge { .. } | urf::UrfError::TooManyPages(_)) => {
            RenderError::Unprintable {
                doc,
                cause: e.to_string(),
            }
        }
        E::Write(io) => RenderError::Write(io),
        other => RenderError::Damaged {
            doc,
            cause: other.to_string(),
        },
    }
}

fn impose_error(e: ImposeError) -> RenderError {
    match e {
        ImposeError::Damaged { doc, message } => RenderError::Damaged {
            doc,
            cause: message,
        },
        ImposeError::BadPageSize { doc, .. } | ImposeError::TooManyInputPages { doc, .. } => {
            RenderError::Unprintable {
                doc,
                cause: e.to_string(),
            }
        }
        ImposeError::ContentTooLarge { doc, page, limit } => RenderError::Unprintable {
            doc,
            cause: format!(
                "page {page} draws more than {} once decompressed, the limit for one page",
                human_bytes(limit as u64)
            ),
        },
        ImposeError::TooManyOutputPages(_) | ImposeError::NothingSelected => {
            RenderError::Job(e.to_string())
        }
        ImposeError::Write(io) => RenderError::Write(io),
    }
}

/// A writer that counts what passes.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Renders all `documents` of a job, in order, into one PDF on `out` with `ticket` applied.
/// On error `out` may hold a partial PDF, which the caller discards.
pub fn render_job<'a>(
    documents: impl IntoIterator<Item = DocumentInput<'a>>,
    ticket: &JobTicket,
    limits: &ConvertLimits,
    out: impl Write,
) -> Result<RenderStats, RenderError> {
    let mut imposer = Imposer::new(ticket, limits.impose);
    let mut count = 0u32;
    for (i, input) in documents.into_iter().enumerate() {
        let added = match to_pdf(i + 1, input, ticket, limits)? {
            (doc, Origin::Raster) => imposer.add_raster_document(doc),
            (doc, origin) => imposer.add_document(doc, origin == Origin::Image),
        };
        added.map_err(impose_error)?;
        count += 1;
    }
    if count == 0 {
        return Err(RenderError::Job("the job has no documents".into()));
    }
    let mut out = Counting { inner: out, n: 0 };
    let stats = imposer.write(&mut out).map_err(impose_error)?;
    out.flush().map_err(RenderError::Write)?;
    Ok(RenderStats {
        documents: count,
        input_pages: stats.input_pages,
        output_pages: stats.output_pages,
        bytes_out: out.n,
    })
}

/// Property checks on the whole render, shared by the cargo-fuzz target (`fuzz/`) and the corpus
/// replay test (`tests/fuzz_corpus.rs`): the same [`render_job`] the spool's worker calls.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;
    use crate::convert::impose::ImposeLimits;

    /// Small limits, so that fuzzing stays fast and arbitrary inputs reach every limit check.
    pub fn small_limits() -> ConvertLimits {
        ConvertLimits {
            max_document_bytes: 4 << 20,
            max_raster_bytes: 16 << 20,
            raster: crate::codec::pwg::fuzzing::SMALL_LIMITS,
            image: ImageLimits {
                max_dimension: 512,
                max_pixels: 512 * 512,
            },
            impose: ImposeLimits {
                max_output_pages: 64,
                max_input_pages: 32,
                max_content_bytes: 1 << 20,
                ..ImposeLimits::default()
            },
        }
    }

    /// The declared format and compression selected by the first byte of a fuzz input.
    pub fn declared(selector: u8) -> (&'static str, &'static str) {
        const FORMATS: [&str; 6] = [
            "application/octet-stream",
            "application/pdf",
            "image/pwg-raster",
            "image/urf",
            "image/jpeg",
            "image/png",
        ];
        const COMPRESSIONS: [&str; 3] = ["none", "gzip", "deflate"];
        (
            FORMATS[usize::from(selector & 0x0F) % FORMATS.len()],
            COMPRESSIONS[usize::from(selector >> 4) % COMPRESSIONS.len()],
        )
    }

    /// Renders the document `bytes[1..]`, declared as [`declared`]`(bytes[0])`, with the default
    /// ticket and with a 2-up, two-copy, monochrome one, and panics unless the render either
    /// fails with a reason and a message or writes a PDF that loads again. Never panicking on any
    /// input is the other property.
    pub fn check_render(bytes: &[u8]) {
        let Some((&selector, document)) = bytes.split_first() else {
            return;
        };
        let (format, compression) = declared(selector);
        let limits = small_limits();
        let tickets = [
            JobTicket::default(),
            JobTicket {
                number_up: 2,
                copies: 2,
                color_mode: crate::convert::ticket::ColorMode::Monochrome,
                ..JobTicket::default()
            },
        ];
        for ticket in &tickets {
            let input = DocumentInput {
                format: format.into(),
                compression: compression.into(),
                reader: Box::new(document),
            };
            let mut pdf = Vec::new();
            match render_job([input], ticket, &limits, &mut pdf) {
                Ok(stats) => {
                    assert_eq!(stats.bytes_out, pdf.len() as u64);
                    assert!(stats.output_pages >= 1);
                    let doc = Document::load_mem(&pdf).expect("the rendered PDF loads");
                    assert_eq!(doc.get_pages().len(), stats.output_pages as usize);
                }
                Err(e) => {
                    assert!(!e.job_state_reason().is_empty());
                    assert!(!e.user_message().is_empty());
                    let _ = e.to_string();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(format: &str, data: Vec<u8>) -> DocumentInput<'static> {
        DocumentInput {
            format: format.into(),
            compression: "none".into(),
            reader: Box::new(io::Cursor::new(data)),
        }
    }

    #[test]
    fn errors_map_to_job_state_reasons() {
        let t = JobTicket::default();
        let l = ConvertLimits::default();
        let e = render_job(
            [input("application/octet-stream", vec![0, 1, 2, 0xFE])],
            &t,
            &l,
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.job_state_reason(), "document-format-error");
        assert!(e.user_message().contains("Document 1"));
        let e = render_job(
            [input("application/pdf", b"%PDF-1.4\ngarbage".to_vec())],
            &t,
            &l,
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.job_state_reason(), "document-format-error", "{e}");
        assert_eq!(
            RenderError::Encrypted { doc: 1 }.job_state_reason(),
            "document-password-error"
        );
        let e = render_job(Vec::new(), &t, &l, Vec::new()).unwrap_err();
        assert_eq!(e.job_state_reason(), "document-unprintable-error");
    }

    /// The MediaBox of every page of `pdf`.
    fn media_boxes(pdf: &[u8]) -> Vec<Vec<f32>> {
        let doc = Document::load_mem(pdf).unwrap();
        doc.page_iter()
            .map(|id| {
                let page = doc.get_dictionary(id).unwrap();
                page.get(b"MediaBox")
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o.as_float().unwrap())
                    .collect()
            })
            .collect()
    }

    /// One letter page at 10 dpi (85 x 110 pixels), black in its top-left 10 x 10 pixels.
    fn letter_raster() -> Vec<u8> {
        use crate::codec::pwg::{self, ColorSpace, PageHeader, SYNC};
        let h = PageHeader::new(85, 110, 10, ColorSpace::Sgray, 8);
        let mut ras = SYNC.to_vec();
        let rows: Vec<Vec<u8>> = (0..110)
            .map(|y| {
                (0..85)
                    .map(|x| if x < 10 && y < 10 { 0 } else { 255 })
                    .collect()
            })
            .collect();
        pwg::encode_page(&h, rows.iter().map(Vec::as_slice), &mut ras).unwrap();
        ras
    }

    #[test]
    fn a_raster_page_keeps_its_size_unless_the_job_names_media() {
        let letter = vec![0.0, 0.0, 612.0, 792.0];
        // Printer default A4, job silent: the page stays letter (PWG 5102.4 page header).
        let mut pdf = Vec::new();
        let t = JobTicket::default();
        render_job(
            [input("image/pwg-raster", letter_raster())],
            &t,
            &ConvertLimits::default(),
            &mut pdf,
        )
        .unwrap();
        assert_eq!(media_boxes(&pdf), std::slice::from_ref(&letter));
        // Also with duplex: the blank back of a one-page document is letter too.
        let t = JobTicket {
            sides: super::super::ticket::Sides::TwoSidedLongEdge,
            ..JobTicket::default()
        };
        let mut pdf = Vec::new();
        render_job(
            [input("image/pwg-raster", letter_raster())],
            &t,
            &ConvertLimits::default(),
            &mut pdf,
        )
        .unwrap();
        assert_eq!(media_boxes(&pdf), [letter.clone(), letter.clone()]);
        // The job names A4: it gets A4.
        let t = JobTicket::from_attributes(
            &[crate::codec::ipp::Attribute::new(
                "media",
                crate::codec::ipp::Value::Keyword("iso_a4_210x297mm".into()),
            )],
            "j",
            "u",
            0,
        );
        let mut pdf = Vec::new();
        render_job(
            [input("image/pwg-raster", letter_raster())],
            &t,
            &ConvertLimits::default(),
            &mut pdf,
        )
        .unwrap();
        let a4 = &media_boxes(&pdf)[0];
        assert!(
            (a4[2] - 595.3).abs() < 0.5 && (a4[3] - 841.9).abs() < 0.5,
            "{a4:?}"
        );
        // A letter PDF page is still put on the job's medium.
        let mut letter_pdf = Vec::new();
        RasterToPdf::default()
            .convert(RasterFormat::Pwg, &letter_raster()[..], &mut letter_pdf)
            .unwrap();
        assert_eq!(media_boxes(&letter_pdf), std::slice::from_ref(&letter));
        let mut pdf = Vec::new();
        render_job(
            [input("application/pdf", letter_pdf)],
            &JobTicket::default(),
            &ConvertLimits::default(),
            &mut pdf,
        )
        .unwrap();
        let a4 = &media_boxes(&pdf)[0];
        assert!((a4[2] - 595.3).abs() < 0.5, "{a4:?}");
    }

    #[test]
    fn a_raster_page_becomes_a_pdf_page() {
        use crate::codec::pwg::{self, ColorSpace, PageHeader, SYNC};
        let h = PageHeader::new(72, 36, 72, ColorSpace::Srgb, 8);
        let row = vec![0x80u8; h.bytes_per_line as usize];
        let mut ras = SYNC.to_vec();
        pwg::encode_page(&h, std::iter::repeat_n(&row[..], 36), &mut ras).unwrap();
        let t = JobTicket {
            copies: 2,
            ..JobTicket::default()
        };
        let mut pdf = Vec::new();
        let stats = render_job(
            [input("image/pwg-raster", ras)],
            &t,
            &ConvertLimits::default(),
            &mut pdf,
        )
        .unwrap();
        assert_eq!(
            (stats.documents, stats.input_pages, stats.output_pages),
            (1, 1, 2)
        );
        assert_eq!(stats.bytes_out, pdf.len() as u64);
        let doc = Document::load_mem(&pdf).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/MediaBox"));
    }
}

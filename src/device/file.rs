//! The file output device: a completed job becomes files in a directory, written under a
//! temporary name and renamed so a job printed again after a crash replaces its output instead of
//! duplicating it. In `pdf` mode (the default) the job rendered with its options (copies, n-up,
//! ...) becomes one `<job-id>-<job-name>.pdf`; in `raw` mode each document is kept as received,
//! named `<job-id>-<job-name>[-<doc>].<ext>`. The job id is zero-padded to six digits so that `ls`
//! lists jobs in the order they came (up to job 999999), and a document extension the job name
//! already ends with is not repeated (`report.pdf` prints to `000001-report.pdf`, not
//! `1-report.pdf.pdf`).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Device, DeviceDocument, DeviceError, DeviceFuture, DeviceJob};

/// What the file device writes (`[output] mode` in the configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// The rendered job: one PDF with the job's options applied.
    #[default]
    Pdf,
    /// The documents byte for byte as received (decompressed).
    Raw,
}

pub struct FileDevice {
    dir: PathBuf,
    mode: OutputMode,
}

impl FileDevice {
    /// A device writing rendered PDFs into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FileDevice> {
        Self::with_mode(dir, OutputMode::Pdf)
    }

    pub fn with_mode(dir: impl Into<PathBuf>, mode: OutputMode) -> std::io::Result<FileDevice> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileDevice { dir, mode })
    }

    /// The name of a job's rendered PDF in the output directory.
    pub fn rendered_name(job: &DeviceJob) -> String {
        format!("{:06}-{}.pdf", job.id, base_name(&job.name))
    }

    /// The name a document of a job gets in the output directory.
    pub fn output_name(job: &DeviceJob, doc: &DeviceDocument) -> String {
        let base = base_name(&job.name);
        let ext = extension(&doc.format);
        if job.documents.len() > 1 {
            format!("{:06}-{}-{}.{}", job.id, base, doc.number, ext)
        } else {
            format!("{:06}-{}.{}", job.id, base, ext)
        }
    }
}

impl Device for FileDevice {
    fn print<'a>(&'a self, job: &'a DeviceJob, cancel: Arc<AtomicBool>) -> DeviceFuture<'a> {
        Box::pin(async move {
            if let (OutputMode::Pdf, Some(rendered)) = (self.mode, &job.rendered) {
                let target = self.dir.join(Self::rendered_name(job));
                let doc = DeviceDocument {
                    path: rendered.clone(),
                    number: 1,
                    format: "application/pdf".into(),
                    compression: "none".into(),
                };
                let dir = self.dir.clone();
                return tokio::task::spawn_blocking(move || {
                    write_document(&dir, &doc, &target, &cancel)
                })
                .await
                .map_err(|e| DeviceError::Retry(format!("writer task failed: {e}")))?;
            }
            for doc in &job.documents {
                let target = self.dir.join(Self::output_name(job, doc));
                let doc = doc.clone();
                let cancel = cancel.clone();
                let dir = self.dir.clone();
                tokio::task::spawn_blocking(move || write_document(&dir, &doc, &target, &cancel))
                    .await
                    .map_err(|e| DeviceError::Retry(format!("writer task failed: {e}")))??;
            }
            Ok(())
        })
    }

    fn output_of(&self, job: &DeviceJob) -> Option<String> {
        let name = match (self.mode, &job.rendered, job.documents.as_slice()) {
            (OutputMode::Pdf, Some(_), _) => Self::rendered_name(job),
            (_, _, [doc]) => Self::output_name(job, doc),
            (_, _, [first, .., last]) => format!(
                "{} … {}",
                Self::output_name(job, first),
                Self::output_name(job, last)
            ),
            (_, _, []) => return None,
        };
        Some(self.dir.join(name).display().to_string())
    }

    fn wants_rendered_pdf(&self) -> bool {
        self.mode == OutputMode::Pdf
    }

    /// Output appears only by an atomic rename of a finished file: an interrupted attempt leaves
    /// no output, only a temporary file the next attempt replaces.
    fn interrupted(&self, _job: u32) -> super::Interruption {
        super::Interruption::SafeToResend
    }
}

fn write_document(
    dir: &Path,
    doc: &DeviceDocument,
    target: &Path,
    cancel: &AtomicBool,
) -> Result<(), DeviceError> {
    let retry = |what: &str, e: std::io::Error| failure(what, dir, e);
    let input = File::open(&doc.path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            // The spool lost the document: no retry will bring it back.
            DeviceError::Fatal {
                reason: "job-aborted-by-system",
                message: format!("document {} is missing from the spool", doc.number),
            }
        } else {
            retry("cannot open spooled document", e)
        }
    })?;
    // Bounded as the converters bound a document (a gzip bomb would fill the disk otherwise).
    let unreadable = |e: std::io::Error| {
        let (reason, message) = super::read_failure(doc, &e);
        DeviceError::Fatal { reason, message }
    };
    let mut reader = super::decompressed(doc, input).map_err(unreadable)?;
    let tmp = dir.join(temporary_name(
        target.file_name().and_then(|n| n.to_str()).unwrap_or("job"),
    ));
    let mut out = File::create(&tmp).map_err(|e| retry("cannot create output file", e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if cancel.load(Ordering::Relaxed) {
            let _ = std::fs::remove_file(&tmp);
            return Err(DeviceError::Canceled);
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(unreadable(e));
            }
        };
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| retry("cannot write output file", e))?;
    }
    out.sync_all()
        .map_err(|e| retry("cannot sync output file", e))?;
    drop(out);
    std::fs::rename(&tmp, target).map_err(|e| retry("cannot rename output file", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| retry("cannot sync output directory", e))?;
    Ok(())
}

/// Bytes of a job name kept in an output file name. Linux file names are at most 255 bytes
/// (NAME_MAX) and the longest name we build around it (`.<job-id>-<name>-<doc>.<ext>.partial`,
/// ids of up to ten digits) adds 36: cutting by characters let 80 four-byte characters through
/// and made every attempt fail with ENAMETOOLONG.
pub const NAME_BYTES: usize = 80;

/// Sorts a file-system error: one that will come back however often the job is tried (this
/// job's file name cannot exist here: too long, refused by the file system, taken by a
/// directory) ends the job; anything else (permissions, a full or read-only disk, I/O errors)
/// is the device's condition, which someone can fix, so the job waits (the queue's
/// `error_policy` decides for how long).
fn failure(what: &str, dir: &Path, e: std::io::Error) -> DeviceError {
    let message = format!("{what} in {}: {e}", dir.display());
    match e.raw_os_error() {
        Some(libc::ENAMETOOLONG | libc::EISDIR | libc::EINVAL | libc::EILSEQ) => {
            DeviceError::Fatal {
                reason: "job-aborted-by-system",
                message: format!("the file device cannot store this job: {message}"),
            }
        }
        _ => DeviceError::Retry(message),
    }
}

/// The hidden name a document is written under before it is renamed into place.
fn temporary_name(output_name: &str) -> String {
    format!(".{output_name}.partial")
}

/// A file-name-safe form of a job name: letters, digits, '-', '_' and '.' kept; everything else
/// (path separators, NUL and other control characters, spaces) becomes '_'; never empty, never
/// hidden, at most [`NAME_BYTES`] bytes, cut on a UTF-8 character boundary.
pub fn sanitize(name: &str) -> String {
    let mut s = String::with_capacity(NAME_BYTES);
    for c in name.chars() {
        let c = if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
            c
        } else {
            '_'
        };
        if s.len() + c.len_utf8() > NAME_BYTES {
            break;
        }
        s.push(c);
    }
    let s = s.trim_start_matches('.');
    if s.is_empty() {
        "job".to_string()
    } else {
        s.to_string()
    }
}

/// The job-name part of an output file name: [`sanitize`]d, without a document extension it ends
/// with (job names are often the file name: `report.pdf`, `photo.JPG`), since the output gets the
/// extension of what it holds.
fn base_name(job_name: &str) -> String {
    let s = sanitize(job_name);
    if let Some((stem, ext)) = s.rsplit_once('.') {
        let ext = ext.to_ascii_lowercase();
        let known = [
            "pdf", "jpg", "jpeg", "png", "pwg", "urf", "ps", "txt", "text",
        ];
        if !stem.is_empty() && known.contains(&ext.as_str()) {
            return stem.to_string();
        }
    }
    s
}

/// File extension for a document format.
pub fn extension(format: &str) -> &'static str {
    if crate::convert::sniff::text_charset(format).is_some() {
        return "txt";
    }
    match format {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/pwg-raster" => "pwg",
        "image/urf" => "urf",
        "application/postscript" => "ps",
        "text/plain" => "txt",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_blocks_paths_and_hidden_files() {
        assert_eq!(sanitize("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize(".hidden"), "hidden");
        assert_eq!(sanitize(""), "job");
        assert_eq!(sanitize("..."), "job");
        assert_eq!(sanitize("a\0b/c"), "a_b_c");
        assert_eq!(sanitize("Report Q3.pdf"), "Report_Q3.pdf");
        assert!(sanitize(&"x".repeat(500)).len() <= NAME_BYTES);
    }

    #[test]
    fn errors_that_cannot_go_away_end_the_job_and_others_wait() {
        let dir = Path::new("/out");
        for errno in [libc::ENAMETOOLONG, libc::EISDIR, libc::EINVAL, libc::EILSEQ] {
            let e = failure("x", dir, std::io::Error::from_raw_os_error(errno));
            assert!(matches!(e, DeviceError::Fatal { .. }), "{errno}: {e:?}");
        }
        for errno in [
            libc::EACCES,
            libc::EROFS,
            libc::ENOSPC,
            libc::EIO,
            libc::ENOENT,
        ] {
            let e = failure("x", dir, std::io::Error::from_raw_os_error(errno));
            assert!(matches!(e, DeviceError::Retry(_)), "{errno}: {e:?}");
        }
    }

    #[test]
    fn multi_byte_names_are_cut_by_bytes_on_a_character_boundary() {
        // 100 x U+1D400 (4 bytes each) and 85 CJK characters (3 bytes each): both over the
        // limit in bytes while under it in characters, the case that failed forever.
        for name in ["\u{1D400}".repeat(100), "\u{6587}".repeat(85)] {
            let s = sanitize(&name);
            assert!(s.len() <= NAME_BYTES, "{} bytes", s.len());
            assert!(s.len() > NAME_BYTES - 4, "cut too early: {} bytes", s.len());
            assert!(name.starts_with(&s), "not a prefix on a boundary");
        }
    }

    fn job_named(name: &str, documents: usize) -> DeviceJob {
        DeviceJob {
            owner: "alice".into(),
            id: u32::MAX,
            name: name.to_string(),
            documents: (1..=documents as u32)
                .map(|n| DeviceDocument {
                    path: PathBuf::from("/nonexistent"),
                    number: n,
                    format: "image/pwg-raster".into(),
                    compression: "none".into(),
                })
                .collect(),
            rendered: None,
            ticket: crate::convert::ticket::JobTicket::default(),
            attributes: Vec::new(),
            ledger: None,
        }
    }

    #[test]
    fn output_and_temporary_names_fit_the_file_name_limit() {
        let job = job_named(&"\u{1D400}".repeat(63), 2);
        let doc = &job.documents[1];
        for name in [
            FileDevice::output_name(&job, doc),
            FileDevice::rendered_name(&job),
        ] {
            let tmp = temporary_name(&name);
            assert!(tmp.len() <= 255, "{} bytes: {tmp}", tmp.len());
            assert!(!tmp.contains('/'));
        }
    }

    #[test]
    fn names_sort_by_job_id_and_carry_one_extension() {
        let mut job = job_named("report.pdf", 1);
        job.id = 7;
        assert_eq!(FileDevice::rendered_name(&job), "000007-report.pdf");
        job.documents[0].format = "application/pdf".into();
        assert_eq!(
            FileDevice::output_name(&job, &job.documents[0]),
            "000007-report.pdf"
        );
        job.name = "Scan.JPG".into();
        assert_eq!(FileDevice::rendered_name(&job), "000007-Scan.pdf");
        job.name = "notes.txt".into();
        job.documents[0].format = "text/plain; charset=iso-8859-1".into();
        assert_eq!(
            FileDevice::output_name(&job, &job.documents[0]),
            "000007-notes.txt"
        );
        // Not a document extension, or nothing before it: kept.
        job.name = "v1.2".into();
        assert_eq!(FileDevice::rendered_name(&job), "000007-v1.2.pdf");
        job.name = ".pdf".into();
        assert_eq!(FileDevice::rendered_name(&job), "000007-pdf.pdf");
        // ls (byte order) lists jobs 9, 10 and 100 in that order.
        let mut names: Vec<String> = [100, 9, 10]
            .iter()
            .map(|&id| {
                job.id = id;
                FileDevice::rendered_name(&job)
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["000009-pdf.pdf", "000010-pdf.pdf", "000100-pdf.pdf"]
        );
    }

    #[test]
    fn a_long_multi_byte_name_is_written() {
        let out = tempfile::tempdir().unwrap();
        let src = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(src.path(), b"%PDF-1.4 test").unwrap();
        let device = FileDevice::with_mode(out.path(), OutputMode::Raw).unwrap();
        let mut job = job_named(&"\u{1D400}".repeat(100), 1);
        job.id = 4_000_000_000;
        job.documents[0].path = src.path().to_path_buf();
        job.documents[0].format = "application/pdf".into();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(device.print(&job, Arc::new(AtomicBool::new(false))))
            .expect("written");
        let names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}

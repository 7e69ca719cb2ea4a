//! The file output device: a completed job becomes files in a directory, written under a
//! temporary name and renamed so a job printed again after a crash replaces its output instead of
//! duplicating it. In `pdf` mode (the default) the job rendered with its options (copies, n-up,
//! ...) becomes one `<job-id>-<job-name>.pdf`; in `raw` mode each document is kept as received,
//! named `<job-id>-<job-name>[-<doc>].<ext>`.

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
        format!("{}-{}.pdf", job.id, sanitize(&job.name))
    }

    /// The name a document of a job gets in the output directory.
    pub fn output_name(job: &DeviceJob, doc: &DeviceDocument) -> String {
        let base = sanitize(&job.name);
        let ext = extension(&doc.format);
        if job.documents.len() > 1 {
            format!("{}-{}-{}.{}", job.id, base, doc.number, ext)
        } else {
            format!("{}-{}.{}", job.id, base, ext)
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

    fn wants_rendered_pdf(&self) -> bool {
        self.mode == OutputMode::Pdf
    }
}

fn write_document(
    dir: &Path,
    doc: &DeviceDocument,
    target: &Path,
    cancel: &AtomicBool,
) -> Result<(), DeviceError> {
    let retry = |what: &str, e: std::io::Error| {
        DeviceError::Retry(format!("{what} in {}: {e}", dir.display()))
    };
    let input = File::open(&doc.path).map_err(|e| retry("cannot open spooled document", e))?;
    let mut reader: Box<dyn Read> = match doc.compression.as_str() {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(input)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(input)),
        _ => Box::new(input),
    };
    let tmp = dir.join(format!(
        ".{}.partial",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("job")
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
                return Err(DeviceError::Fatal {
                    reason: "document-format-error",
                    message: format!(
                        "document {} could not be decompressed ({}): {e}",
                        doc.number, doc.compression
                    ),
                });
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

/// A file-name-safe form of a job name: letters, digits, '-', '_' and '.' kept; everything else
/// (path separators, control characters, spaces) becomes '_'; never empty, never hidden, bounded.
pub fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.is_empty() {
        s.push_str("job");
    }
    s
}

/// File extension for a document format.
pub fn extension(format: &str) -> &'static str {
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
        assert_eq!(sanitize("Report Q3.pdf"), "Report_Q3.pdf");
        assert!(sanitize(&"x".repeat(500)).len() <= 80);
    }
}

//! Renders a spooled job into the one PDF its output device prints: the job's documents with its
//! job ticket applied (crate::convert::pipeline), written next to the spool as
//! `rendered/<job-id>.pdf` with fsync + atomic rename, so after a crash a finished rendering is
//! reused and an interrupted one is redone.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::{Job, Spool};
use crate::convert::pipeline::{self, ConvertLimits, DocumentInput, RenderError};
use crate::convert::ticket::{ColorMode, JobTicket};

/// Why a job has no rendered PDF.
#[derive(Debug, thiserror::Error)]
pub enum RenderFailure {
    /// The documents cannot be printed: abort the job with this reason and message.
    #[error("{0}")]
    Job(RenderError),
    /// A local problem (disk full, I/O error): try again later.
    #[error("cannot render the job: {0}")]
    Local(String),
}

/// Where the rendered PDF of a job lives.
pub fn rendered_path(spool: &Spool, job_id: u32) -> PathBuf {
    spool.dir.join("rendered").join(format!("{job_id}.pdf"))
}

/// The ticket of a job, from its stored job template attributes over the queue's defaults.
pub fn ticket(spool: &Spool, job: &Job) -> JobTicket {
    JobTicket::from_attributes_over(
        &spool.ticket_defaults(),
        &job.attributes,
        &job.name,
        &job.owner,
        job.time_created,
    )
}

/// A job's rendered PDF.
#[derive(Debug)]
pub struct Rendered {
    pub path: PathBuf,
    /// Document pages the PDF prints, copies included; `None` when a rendering finished before a
    /// crash was reused (the count was recorded with the job then).
    pub pages: Option<u32>,
}

/// From this size on, a spooled PDF whose ticket asks nothing of it goes to the device as it is,
/// without a rendering. Rendering loads the whole PDF (lopdf parses documents in memory: the file's
/// bytes and then its objects, image streams included), so a 400 MB PDF cost the appliance 800 MB of
/// memory (issue 13, docs/benchmarks.md). Smaller PDFs are still rendered, which also checks them
/// (encrypted or damaged ones end with a reason) at a cost memory bounds.
pub const PASS_THROUGH_BYTES: u64 = 32 << 20;

/// True when `job` prints as its one spooled PDF, streamed, without a rendering: it is a single
/// document declared application/pdf of at least [`PASS_THROUGH_BYTES`] (as spooled, so a
/// compressed one counts its compressed size), and its ticket changes nothing a rendering would
/// do: one copy, all pages, one page a sheet, no orientation, scaling or medium asked for (the
/// printer fits the pages on its default medium), no cover sheet, no reversed order, and no gray
/// layer to add. `gray_layer` is as for [`render`].
pub fn passes_through(spool: &Spool, job: &Job, gray_layer: bool) -> bool {
    let [doc] = job.documents.as_slice() else {
        return false;
    };
    if doc.format != "application/pdf" {
        return false;
    }
    let size = std::fs::metadata(spool.document_path(job.id, doc.number)).map_or(0, |m| m.len());
    if size < PASS_THROUGH_BYTES {
        return false;
    }
    let t = ticket(spool, job);
    t.copies == 1
        && t.page_ranges.is_empty()
        && t.number_up == 1
        && t.orientation.is_none()
        && t.scaling == crate::convert::ticket::Scaling::Auto
        && !t.media_from_job
        && !t.reverse_order
        && !t.cover_sheet
        && !(gray_layer && t.color_mode == ColorMode::Monochrome)
}

/// Renders `job` (or reuses a rendering finished before a crash) and returns the PDF.
/// `gray_layer`: make a monochrome job gray in the PDF itself; false when the device rasterizes
/// in gray anyway ([`crate::device::Device::makes_monochrome_itself`]).
pub async fn render(spool: &Spool, job: &Job, gray_layer: bool) -> Result<Rendered, RenderFailure> {
    let target = rendered_path(spool, job.id);
    if tokio::fs::metadata(&target).await.is_ok() {
        return Ok(Rendered {
            path: target,
            pages: None,
        });
    }
    let docs: Vec<(PathBuf, String, String)> = job
        .documents
        .iter()
        .map(|d| {
            (
                spool.document_path(job.id, d.number),
                d.format.clone(),
                d.compression.clone(),
            )
        })
        .collect();
    let mut ticket = ticket(spool, job);
    if !gray_layer && ticket.color_mode == ColorMode::Monochrome {
        ticket.color_mode = ColorMode::Auto;
    }
    let out = target.clone();
    let id = job.id;
    let copies = ticket.copies;
    let fault = injected_fault(&job.name);
    let started = std::time::Instant::now();
    let task = tokio::task::spawn_blocking(move || {
        fault.strike();
        let r = render_blocking(id, &docs, &ticket, &out);
        if r.is_ok() {
            let m = crate::metrics::global();
            m.conversion_seconds
                .observe(started.elapsed().as_secs_f64());
            if let Ok(meta) = std::fs::metadata(&out) {
                m.conversion_bytes.observe(meta.len() as f64);
            }
        }
        r
    });
    match task.await {
        Ok(result) => result.map(|stats| Rendered {
            path: target,
            pages: Some(stats.input_pages.saturating_mul(copies)),
        }),
        // A panic is a bug in a converter, met again on every retry of this job: abort the job
        // (it would otherwise go back to pending and block the queue for good, issue 11 item 8).
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            tracing::error!(job = id, "the renderer panicked: {what}");
            Err(RenderFailure::Job(RenderError::Internal(what)))
        }
        Err(e) => Err(RenderFailure::Local(format!("render task failed: {e}"))),
    }
}

/// A failure a test asks for with `PRINTBRIDGE_TEST_FAULT=panic:<job-name>` (the renderer panics)
/// or `abort:<job-name>` (the process dies 3 s into rendering, as an out-of-memory kill would), several
/// separated by commas. Only debug builds read the variable: a release build can never be made to
/// fail this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Release builds never construct the faults (see `injected_fault`): not a warning there.
#[cfg_attr(not(debug_assertions), allow(dead_code))]
enum Fault {
    None,
    Panic,
    Abort,
}

impl Fault {
    fn strike(self) {
        match self {
            Fault::None => {}
            Fault::Panic => panic!("fault injected by PRINTBRIDGE_TEST_FAULT: the renderer panics"),
            Fault::Abort => {
                // After a pause, so that a test can queue a job behind this one first.
                tracing::error!(
                    "fault injected by PRINTBRIDGE_TEST_FAULT: the process dies in 3 s"
                );
                std::thread::sleep(std::time::Duration::from_secs(3));
                std::process::abort()
            }
        }
    }
}

#[cfg(debug_assertions)]
fn injected_fault(job_name: &str) -> Fault {
    let Ok(spec) = std::env::var("PRINTBRIDGE_TEST_FAULT") else {
        return Fault::None;
    };
    spec.split(',')
        .find_map(|one| match one.split_once(':') {
            Some(("panic", name)) if name == job_name => Some(Fault::Panic),
            Some(("abort", name)) if name == job_name => Some(Fault::Abort),
            _ => None,
        })
        .unwrap_or(Fault::None)
}

#[cfg(not(debug_assertions))]
fn injected_fault(_job_name: &str) -> Fault {
    Fault::None
}

fn render_blocking(
    id: u32,
    docs: &[(PathBuf, String, String)],
    ticket: &JobTicket,
    target: &Path,
) -> Result<pipeline::RenderStats, RenderFailure> {
    let local = |what: &str, e: std::io::Error| RenderFailure::Local(format!("{what}: {e}"));
    let dir = target.parent().expect("rendered/ has a parent");
    std::fs::create_dir_all(dir).map_err(|e| local("cannot create the render directory", e))?;
    let limits = ConvertLimits::default();
    let mut inputs = Vec::with_capacity(docs.len());
    for (i, (path, format, compression)) in docs.iter().enumerate() {
        let file = File::open(path).map_err(|e| local("cannot open a spooled document", e))?;
        pipeline::check_document_size(
            i + 1,
            format,
            compression,
            std::io::BufReader::new(file),
            &limits,
        )
        .map_err(RenderFailure::Job)?;
        let file = File::open(path).map_err(|e| local("cannot open a spooled document", e))?;
        inputs.push(DocumentInput {
            format: format.clone(),
            compression: compression.clone(),
            reader: Box::new(std::io::BufReader::new(file)),
        });
    }
    let tmp = dir.join(format!(".{id}.pdf.partial"));
    let file = File::create(&tmp).map_err(|e| local("cannot create the rendered PDF", e))?;
    let mut out = BufWriter::new(file);
    let result = pipeline::render_job(inputs, ticket, &limits, &mut out);
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(if e.is_local_failure() {
                RenderFailure::Local(e.to_string())
            } else {
                RenderFailure::Job(e)
            });
        }
    };
    let file = out
        .into_inner()
        .map_err(|e| local("cannot write the rendered PDF", e.into_error()))?;
    file.sync_all()
        .map_err(|e| local("cannot sync the rendered PDF", e))?;
    drop(file);
    std::fs::rename(&tmp, target).map_err(|e| local("cannot rename the rendered PDF", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| local("cannot sync the render directory", e))?;
    tracing::info!(
        job = id,
        documents = stats.documents,
        pages = stats.output_pages,
        bytes = stats.bytes_out,
        "rendered"
    );
    Ok(stats)
}

/// Removes what an earlier run left in `rendered/`: PDFs of jobs that are gone or have ended (a
/// crash between the end of a job and [`discard`], or jobs purged since) and `.partial` files of
/// renderings that were interrupted. Called when the spool opens, before any worker runs, so no
/// rendering is in progress. Returns how many files were removed.
pub(super) fn sweep_stale(spool: &Spool) -> std::io::Result<usize> {
    let dir = spool.dir.join("rendered");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let keep = name
            .to_str()
            .and_then(|n| n.strip_suffix(".pdf"))
            .and_then(|id| id.parse::<u32>().ok())
            .and_then(|id| spool.get(id))
            .is_some_and(|job| !job.status.state.is_terminal());
        if !keep && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed stale rendered files");
    }
    Ok(removed)
}

/// Drops a job's rendered PDF once the job is finished (it is kept while the job may print again).
pub async fn discard(spool: &Spool, job_id: u32) {
    let _ = tokio::fs::remove_file(rendered_path(spool, job_id)).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::codec::ipp::{Attribute, Value};
    use crate::model::clock::SystemClock;
    use crate::model::job::JobEvent;
    use crate::model::printer::Capabilities;
    use crate::spool::{DocumentMeta, NewJob};

    async fn job(spool: &Spool, attributes: Vec<Attribute>) -> Arc<Job> {
        job_with(spool, attributes, b"%PDF-1.4").await
    }

    async fn job_with(spool: &Spool, attributes: Vec<Attribute>, document: &[u8]) -> Arc<Job> {
        let d = spool.stage_document(document, 0).await.unwrap();
        let meta = DocumentMeta {
            format: "application/pdf".into(),
            compression: "none".into(),
            name: None,
        };
        let new = NewJob {
            owner: "alice".into(),
            name: "j".into(),
            attributes,
            hold: None,
        };
        spool.create_job(new, Some((d, meta)), true).await.unwrap()
    }

    #[tokio::test]
    async fn tickets_take_the_queues_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        let plain = job(&spool, Vec::new()).await;
        let a5 = job(
            &spool,
            vec![Attribute::new(
                "media",
                Value::Keyword("iso_a5_148x210mm".into()),
            )],
        )
        .await;
        // Before the queue says otherwise: the built-in defaults (A4).
        assert_eq!(ticket(&spool, &plain).media.name, "iso_a4_210x297mm");
        let caps = Capabilities {
            media_default: "na_letter_8.5x11in".into(),
            color_mode_default: "monochrome".into(),
            ..Capabilities::default()
        };
        spool.set_ticket_defaults(JobTicket::defaults_for(&caps));
        let t = ticket(&spool, &plain);
        assert_eq!(t.media.name, "na_letter_8.5x11in");
        assert_eq!(t.color_mode, crate::convert::ticket::ColorMode::Monochrome);
        assert_eq!(t.user, "alice");
        let t = ticket(&spool, &a5);
        assert_eq!(t.media.name, "iso_a5_148x210mm", "the job's own media wins");
        assert_eq!(t.color_mode, crate::convert::ticket::ColorMode::Monochrome);
    }

    /// A one-page PDF with a blue square.
    fn blue_square_pdf() -> Vec<u8> {
        use lopdf::{dictionary, Document, Object, Stream};
        let mut doc = Document::with_version("1.4");
        let pages = doc.new_object_id();
        let content = doc.add_object(Stream::new(
            dictionary! {},
            b"0 0 1 rg 10 10 50 50 re f".to_vec(),
        ));
        let page = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages,
            "MediaBox" => vec![0.into(), 0.into(), 200.into(), 200.into()],
            "Contents" => content,
        });
        doc.objects.insert(
            pages,
            Object::Dictionary(
                dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 },
            ),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    #[tokio::test]
    async fn a_monochrome_job_gets_the_gray_layer_only_when_the_device_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        let mono = || {
            vec![Attribute::new(
                "print-color-mode",
                Value::Keyword("monochrome".into()),
            )]
        };
        let pdf = blue_square_pdf();
        let with_layer = job_with(&spool, mono(), &pdf).await;
        let without = job_with(&spool, mono(), &pdf).await;
        let colour = job_with(&spool, Vec::new(), &pdf).await;
        // The layer's graphics state is /BM /Saturation, somewhere in the page resources.
        fn saturation(o: &lopdf::Object) -> bool {
            match o {
                lopdf::Object::Dictionary(d) => d.iter().any(|(k, v)| {
                    (k == b"BM" && v.as_name().is_ok_and(|n| n == b"Saturation")) || saturation(v)
                }),
                lopdf::Object::Array(a) => a.iter().any(saturation),
                lopdf::Object::Stream(s) => saturation(&lopdf::Object::Dictionary(s.dict.clone())),
                _ => false,
            }
        }
        let has_layer = |path: PathBuf| {
            let doc = lopdf::Document::load(path).unwrap();
            doc.objects.values().any(saturation)
        };
        assert!(has_layer(
            render(&spool, &with_layer, true).await.unwrap().path
        ));
        assert!(!has_layer(
            render(&spool, &without, false).await.unwrap().path
        ));
        assert!(!has_layer(
            render(&spool, &colour, true).await.unwrap().path
        ));
    }

    #[tokio::test]
    async fn opening_the_spool_sweeps_stale_renderings() {
        let dir = tempfile::tempdir().unwrap();
        let (pending, done);
        {
            let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
                .await
                .unwrap();
            pending = job(&spool, Vec::new()).await.id;
            done = job(&spool, Vec::new()).await.id;
            spool
                .transition(done, JobEvent::StartProcessing)
                .await
                .unwrap();
            spool.transition(done, JobEvent::Completed).await.unwrap();
            let rendered = dir.path().join("rendered");
            std::fs::create_dir_all(&rendered).unwrap();
            for name in [
                format!("{pending}.pdf"),
                format!("{done}.pdf"),
                "999.pdf".to_string(),
                format!(".{pending}.pdf.partial"),
                "notes.txt".to_string(),
            ] {
                std::fs::write(rendered.join(name), b"%PDF").unwrap();
            }
            spool.close().await;
        }
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("rendered"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [format!("{pending}.pdf")],
            "only the pending job's rendering is kept"
        );
        assert_eq!(
            rendered_path(&spool, pending),
            dir.path().join("rendered").join(format!("{pending}.pdf"))
        );
        // Nothing to sweep is not an error, nor is a spool that never rendered.
        assert_eq!(sweep_stale(&spool).unwrap(), 0);
        let fresh = tempfile::tempdir().unwrap();
        Spool::open(fresh.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
    }
}

//! Renders a spooled job into the one PDF its output device prints: the job's documents with its
//! job ticket applied (crate::convert::pipeline), written next to the spool as
//! `rendered/<job-id>.pdf` with fsync + atomic rename, so after a crash a finished rendering is
//! reused and an interrupted one is redone.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::{Job, Spool};
use crate::convert::pipeline::{self, ConvertLimits, DocumentInput, RenderError};
use crate::convert::ticket::JobTicket;

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

/// The ticket of a job, from its stored job template attributes.
pub fn ticket(job: &Job) -> JobTicket {
    JobTicket::from_attributes(&job.attributes, &job.name, &job.owner, job.time_created)
}

/// Renders `job` (or reuses a rendering finished before a crash) and returns the PDF's path.
pub async fn render(spool: &Spool, job: &Job) -> Result<PathBuf, RenderFailure> {
    let target = rendered_path(spool, job.id);
    if tokio::fs::metadata(&target).await.is_ok() {
        return Ok(target);
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
    let ticket = ticket(job);
    let out = target.clone();
    let id = job.id;
    tokio::task::spawn_blocking(move || render_blocking(id, &docs, &ticket, &out))
        .await
        .map_err(|e| RenderFailure::Local(format!("render task failed: {e}")))?
        .map(|()| target)
}

fn render_blocking(
    id: u32,
    docs: &[(PathBuf, String, String)],
    ticket: &JobTicket,
    target: &Path,
) -> Result<(), RenderFailure> {
    let local = |what: &str, e: std::io::Error| RenderFailure::Local(format!("{what}: {e}"));
    let dir = target.parent().expect("rendered/ has a parent");
    std::fs::create_dir_all(dir).map_err(|e| local("cannot create the render directory", e))?;
    let mut inputs = Vec::with_capacity(docs.len());
    for (path, format, compression) in docs {
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
    let result = pipeline::render_job(inputs, ticket, &ConvertLimits::default(), &mut out);
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
    Ok(())
}

/// Drops a job's rendered PDF once the job is finished (it is kept while the job may print again).
pub async fn discard(spool: &Spool, job_id: u32) {
    let _ = tokio::fs::remove_file(rendered_path(spool, job_id)).await;
}

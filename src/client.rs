//! The command-line IPP client behind `printbridge print`, `printbridge jobs`,
//! `printbridge cancel`, `printbridge status` and `printbridge release`.
//!
//! Every command sends the local user's name as requesting-user-name ($USER, $LOGNAME, else the
//! account of the real user id), so that a job's owner can follow and cancel it. `-U USER` signs
//! in with HTTP Basic (RFC 7617) and then acts as USER; the password is asked for on the terminal
//! without echo, or read from the first line of standard input, and is only ever sent over TLS
//! (`ipps://`): over plain `ipp://` the command refuses before connecting. `--cacert FILE` trusts
//! a certificate for ipps:// (an appliance's own is `STATE_DIR/tls/certificate.pem`).
//!
//! Both commands talk plain IPP/1.1 to any IPP Everywhere printer (ours, CUPS, `ippeveprinter`, a real
//! device) through the `ipp` crate's async client:
//!
//! - `print` sends one Print-Job with the document streamed from disk (never read into memory), then,
//!   unless `--no-wait`, follows the job with Get-Job-Attributes once per second until it reaches a
//!   terminal state;
//! - `jobs` sends Get-Jobs and prints an aligned table;
//! - `status` sends Get-Printer-Attributes and Get-Jobs and says in words how the printer is, and,
//!   when the printer is a printbridge appliance, asks its `/api/v1/cloud` about the cloud.
//!
//! Everything the printer sends back is untrusted: strings are stripped of control characters before
//! they reach the terminal, and the response parser runs in its own task so that a parser panic on a
//! malformed response becomes an ordinary error.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipp::attribute::{IppAttribute, IppAttributeGroup, IppAttributeName};
use ipp::client::non_blocking::AsyncIppClient;
use ipp::error::IppError;
use ipp::model::DelimiterTag;
use ipp::operation::builder::IppOperationBuilder;
use ipp::operation::IppOperation;
use ipp::payload::IppPayload;
use ipp::prelude::Uri;
use ipp::request::IppRequestResponse;
use ipp::value::{IppKeyword, IppName, IppValue};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The printer both commands talk to unless `-d` says otherwise: the local appliance.
pub const DEFAULT_PRINTER: &str = "ipp://localhost:8631/ipp/print";

/// How often `print` asks for the job's state while following it.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Upper bound for one short request (Get-Jobs, Get-Job-Attributes). Print-Job has none: a large
/// document on a slow link may legitimately take long to upload.
const SHORT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many consecutive failed polls `print` tolerates (a printer restarting, a network blip).
const MAX_POLL_FAILURES: u32 = 5;

/// How every client command reaches the printer, and as whom.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// Printer URI (ipp://host:port/path, or ipps:// for TLS).
    #[arg(short = 'd', long = "printer", default_value = DEFAULT_PRINTER)]
    pub printer: String,
    /// Sign in as USER (HTTP Basic, over ipps:// only). The password is asked for on the
    /// terminal, or read from the first line of standard input.
    #[arg(short = 'U', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Trust this PEM certificate for ipps:// (an appliance's self-signed one is
    /// STATE_DIR/tls/certificate.pem).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// Arguments of `printbridge print`.
#[derive(clap::Args, Debug)]
pub struct PrintArgs {
    /// The document to print (PDF, JPEG, PNG, PWG raster, Apple raster, plain text).
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: Connection,
    /// Job attribute as name=value, repeatable: copies=2, sides=two-sided-long-edge,
    /// media=iso_a4_210x297mm, print-color-mode=monochrome, page-ranges=1-3,5 ...
    #[arg(short = 'o', value_name = "NAME=VALUE")]
    pub options: Vec<String>,
    /// Job name (default: the file name).
    #[arg(short = 't', long = "title")]
    pub title: Option<String>,
    /// Return as soon as the printer has accepted the job instead of following it to the end.
    #[arg(long)]
    pub no_wait: bool,
}

/// Arguments of `printbridge jobs`.
#[derive(clap::Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Which jobs to list: not-completed, completed or all.
    #[arg(long, default_value = "not-completed")]
    pub which: String,
}

/// Arguments of `printbridge status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: Connection,
}

/// Arguments of `printbridge test-page`.
#[derive(clap::Args, Debug)]
pub struct TestPageArgs {
    /// A `[[queue]]` of the appliance (its name, the last part of /ipp/print/NAME); default:
    /// the printer `-d` names.
    pub queue: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
    /// Return once the printer accepted the page instead of following it to the end.
    #[arg(long)]
    pub no_wait: bool,
}

/// Arguments of `printbridge cancel`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["job_id", "all"])))]
pub struct CancelArgs {
    /// The job to cancel.
    pub job_id: Option<u32>,
    /// Cancel every job not yet completed that you may cancel (yours; everyone's for an
    /// administrator signed in with -U).
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    #[command(flatten)]
    pub conn: Connection,
}

/// Arguments of `printbridge release` (issue 18, docs/release.md).
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["job_id", "list"])))]
pub struct ReleaseArgs {
    /// The job to release (its job id, as `printbridge release --list` shows it).
    pub job_id: Option<u32>,
    /// The job's PIN ("-": read it from the first line of standard input). Without a PIN,
    /// -U USER releases your own job (an administrator: any job).
    #[arg(long, value_name = "PIN")]
    pub pin: Option<String>,
    /// A `[[queue]]` of the appliance (the NAME of /ipp/print/NAME); default: the printer `-d`
    /// names.
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,
    /// List the jobs waiting for release instead.
    #[arg(long, conflicts_with = "pin")]
    pub list: bool,
    #[command(flatten)]
    pub conn: Connection,
}

/// Everything that can go wrong in `print` and `jobs`, worded for the person at the terminal.
#[derive(thiserror::Error, Debug)]
pub enum ClientError {
    /// The `-d` argument is not a usable printer URI.
    #[error("bad printer URI '{uri}': {reason}")]
    BadPrinterUri { uri: String, reason: String },
    /// The document cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    /// A `-o name=value` option is malformed; nothing was sent.
    #[error("bad option '{option}': {reason}")]
    BadOption { option: String, reason: String },
    /// A `--which` value this client does not know.
    #[error("bad --which value '{0}': expected not-completed, completed or all")]
    BadWhich(String),
    /// No connection to the printer, or it broke off.
    #[error("cannot reach printer {printer}: {reason}")]
    Unreachable { printer: String, reason: String },
    /// The printer answered, but with an HTTP error instead of an IPP response.
    #[error("printer {printer} answered HTTP {status}{hint}")]
    Http {
        printer: String,
        status: u16,
        hint: &'static str,
    },
    /// The printer's answer is not valid IPP.
    #[error("printer {printer} sent an invalid IPP response: {reason}")]
    Protocol { printer: String, reason: String },
    /// Print-Job was answered with an IPP error status.
    #[error("printer refused job: {0}")]
    Refused(IppStatus),
    /// Another operation was answered with an IPP error status.
    #[error("{operation} failed: {status}")]
    Ipp {
        operation: &'static str,
        status: IppStatus,
    },
    /// The job was accepted but ended canceled or aborted.
    #[error("job {id} {state}{detail}")]
    JobFailed {
        id: i32,
        state: &'static str,
        detail: String,
    },
    /// Writing to stdout failed (other than a closed pipe, which is ignored).
    #[error("cannot write output: {0}")]
    Output(io::Error),
    /// -U with a printer URI that is not ipps://: the password would travel in clear text.
    #[error(
        "refusing to send a password to {printer} over plain IPP: use an ipps:// URI (TLS), \
         e.g. {suggestion}"
    )]
    PasswordInClear { printer: String, suggestion: String },
    /// The password could not be read.
    #[error("cannot read the password: {0}")]
    Password(String),
    /// `printbridge release` was refused (the appliance's words: wrong PIN, locked, not found).
    #[error("job {id} not released: {message}")]
    NotReleased { id: u32, message: String },
}

/// An IPP status code with the printer's explanation, displayed as
/// `client-error-document-format-not-supported: Unsupported format "text/plain".`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IppStatus {
    /// The raw status code from the response header.
    pub code: u16,
    /// `status-message`, if the printer sent one (control characters removed).
    pub message: Option<String>,
    /// `name=value` of attributes the printer listed as unsupported, if any.
    pub unsupported: Vec<String>,
}

impl IppStatus {
    fn from_response(resp: &IppRequestResponse) -> IppStatus {
        let code = resp.header().operation_or_status as u16;
        let message = resp
            .attributes()
            .groups_of(DelimiterTag::OperationAttributes)
            .find_map(|g| g.get("status-message"))
            .and_then(|a| value_text(a.value()))
            .filter(|m| !m.is_empty());
        let unsupported = resp
            .attributes()
            .groups_of(DelimiterTag::UnsupportedAttributes)
            .flat_map(|g| g.attributes())
            .map(|a| {
                let value = a
                    .value()
                    .into_iter()
                    .filter_map(value_text)
                    .collect::<Vec<_>>();
                if value.is_empty() {
                    sanitize(a.name().as_str())
                } else {
                    format!("{}={}", sanitize(a.name().as_str()), value.join(","))
                }
            })
            .collect();
        IppStatus {
            code,
            message,
            unsupported,
        }
    }

    /// The registered keyword of the status code, e.g. `client-error-not-found`.
    pub fn name(&self) -> String {
        crate::codec::ipp_status::name(self.code)
            .map_or_else(|| format!("status 0x{:04x}", self.code), str::to_string)
    }
}

impl fmt::Display for IppStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if !self.unsupported.is_empty() {
            write!(f, " (unsupported: {})", self.unsupported.join(" "))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// test-page
// ---------------------------------------------------------------------------------------------

/// `printbridge test-page [QUEUE]`: asks the printer what it is (Get-Printer-Attributes),
/// composes the test page for it ([`crate::convert::test_page`]) on its default medium and prints
/// it with Print-Job, following the job like `print` does.
pub async fn test_page(args: &TestPageArgs) -> Result<(), ClientError> {
    let mut conn = args.conn.clone();
    if let Some(queue) = &args.queue {
        conn.printer = queue_uri(&conn.printer, queue)?;
    }
    let printer = Printer::connect(&conn)?;
    let user = printer.user.clone();
    let wanted = [
        "printer-name",
        "printer-make-and-model",
        "printer-location",
        "printer-uri-supported",
        "media-default",
        "media-ready",
        "sides-supported",
        "print-color-mode-supported",
        "printer-resolution-default",
        "document-format-supported",
        "copies-supported",
    ];
    let operation = IppOperationBuilder::get_printer_attributes(printer.target.clone())
        .attributes(wanted)
        .build()
        .map_err(|e| printer.protocol_error(format!("cannot build the request: {e}")))?;
    let mut request = operation.into_ipp_request();
    request.attributes_mut().add(
        DelimiterTag::OperationAttributes,
        IppAttribute::new(
            IppAttributeName::REQUESTING_USER_NAME,
            IppValue::NameWithoutLanguage(IppName::new_truncated(&user)),
        ),
    );
    let response = printer.send(request, Some(SHORT_REQUEST_TIMEOUT)).await?;
    if !response.header().status_code().is_success() {
        return Err(ClientError::Ipp {
            operation: "Get-Printer-Attributes",
            status: IppStatus::from_response(&response),
        });
    }
    let Some(attrs) = response
        .attributes()
        .groups_of(DelimiterTag::PrinterAttributes)
        .next()
    else {
        return Err(printer.protocol_error("no printer attributes in the response"));
    };
    let page = test_page_for(attrs, &printer.display);
    let pdf = crate::convert::test_page::compose(&page);
    let payload = IppPayload::new(std::io::Cursor::new(pdf));
    let operation = IppOperationBuilder::print_job(printer.target.clone(), payload)
        .user_name(&user)
        .job_title("Test page")
        .document_format("application/pdf")
        .build()
        .map_err(|e| printer.protocol_error(format!("cannot build the request: {e}")))?;
    let response = printer.send(operation.into_ipp_request(), None).await?;
    if !response.header().status_code().is_success() {
        return Err(ClientError::Refused(IppStatus::from_response(&response)));
    }
    let job = response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .next();
    let Some(id) = job.and_then(|g| int_attr(g, "job-id")) else {
        return Err(printer.protocol_error("Print-Job succeeded but the response has no job-id"));
    };
    let mut out = Output::stdout();
    out.line(&format!(
        "test page for {} ({}) submitted as job {id}",
        page.printer_name, page.media
    ))?;
    if args.no_wait {
        return Ok(());
    }
    let initial = job.map(JobStatus::from_group).unwrap_or_default();
    follow_job(&printer, id, &user, initial, &mut out).await
}

/// The URI of queue `name` on the appliance of `base` (`ipp://host:8631/ipp/print` →
/// `ipp://host:8631/ipp/print/NAME`). Queue names are what `[[queue]] name` allows.
fn queue_uri(base: &str, name: &str) -> Result<String, ClientError> {
    if !crate::config::valid_queue_name(name) {
        return Err(ClientError::BadPrinterUri {
            uri: sanitize(name),
            reason: "not a queue name (the NAME of /ipp/print/NAME in [[queue]] name)".into(),
        });
    }
    let parsed = base
        .parse::<Uri>()
        .map_err(|e| ClientError::BadPrinterUri {
            uri: sanitize(base),
            reason: e.to_string(),
        })?;
    let scheme = parsed.scheme_str().unwrap_or("ipp");
    let authority = parsed.authority().map_or("localhost:8631", |a| a.as_str());
    Ok(format!("{scheme}://{authority}/ipp/print/{name}"))
}

/// What the test page says, from the printer's Get-Printer-Attributes answer.
fn test_page_for(attrs: &IppAttributeGroup, display: &str) -> crate::convert::test_page::TestPage {
    use crate::convert::test_page::{media_points, TestPage};
    let joined = |name: &str, max: usize| {
        let v = strings_attr(attrs, name);
        let more = v.len().saturating_sub(max);
        let mut s = v.into_iter().take(max).collect::<Vec<_>>().join(", ");
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        s
    };
    // A medium whose size we cannot read (or none): A4, the most common default.
    let (media, (width_pt, height_pt)) = text_attr(attrs, "media-default")
        .and_then(|m| media_points(&m).map(|pts| (m, pts)))
        .unwrap_or_else(|| {
            let a4 = "iso_a4_210x297mm".to_string();
            let pts = media_points(&a4).unwrap_or((595.0, 842.0));
            (a4, pts)
        });
    let mut capabilities = Vec::new();
    for (label, name, max) in [
        ("Colour modes", "print-color-mode-supported", 8),
        ("Sides", "sides-supported", 4),
        ("Resolution", "printer-resolution-default", 1),
        ("Media ready", "media-ready", 6),
        ("Copies", "copies-supported", 1),
        ("Formats", "document-format-supported", 8),
    ] {
        let v = joined(name, max);
        if !v.is_empty() {
            capabilities.push(format!("{label}: {v}"));
        }
    }
    let date = jiff::Zoned::now()
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string();
    TestPage {
        printer_name: text_attr(attrs, "printer-name").unwrap_or_else(|| display.to_string()),
        make_and_model: text_attr(attrs, "printer-make-and-model").unwrap_or_default(),
        location: text_attr(attrs, "printer-location").unwrap_or_default(),
        uris: strings_attr(attrs, "printer-uri-supported")
            .into_iter()
            .take(4)
            .collect(),
        capabilities,
        media,
        width_pt,
        height_pt,
        date,
    }
}

// ---------------------------------------------------------------------------------------------
// print
// ---------------------------------------------------------------------------------------------

/// `printbridge print`: submit `args.file` with Print-Job and, unless `--no-wait`, follow the job
/// until it is completed (Ok) or canceled/aborted (Err).
pub async fn print(args: &PrintArgs) -> Result<(), ClientError> {
    // Everything that can be checked locally is checked before anything goes on the wire.
    let mut job_attributes = Vec::new();
    let mut format_override = None;
    let mut seen = Vec::new();
    for option in &args.options {
        let parsed = parse_option(option)?;
        let name = match &parsed {
            JobOption::Attribute(attr) => attr.name().as_str().to_string(),
            JobOption::DocumentFormat(_) => "document-format".to_string(),
        };
        if seen.contains(&name) {
            return Err(bad_option(
                option,
                format!("'{name}' is given more than once"),
            ));
        }
        seen.push(name);
        match parsed {
            JobOption::Attribute(attr) => job_attributes.push(attr),
            JobOption::DocumentFormat(format) => format_override = Some(format),
        }
    }
    let printer = Printer::connect(&args.conn)?;
    let document_format = format_override.unwrap_or_else(|| document_format_for(&args.file).into());
    let job_name = match &args.title {
        Some(title) => title.clone(),
        None => args.file.file_name().map_or_else(
            || args.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    let job_name = truncate_utf8(&job_name, 255);
    let user = printer.user.clone();

    let file = open_document(&args.file).await?;
    let payload = IppPayload::new_async(file.compat());
    let operation = IppOperationBuilder::print_job(printer.target.clone(), payload)
        .user_name(&user)
        .job_title(job_name)
        .document_format(&document_format)
        .attributes(job_attributes)
        .build()
        .map_err(|e| printer.protocol_error(format!("cannot build the request: {e}")))?;

    let response = printer.send(operation.into_ipp_request(), None).await?;
    let status = IppStatus::from_response(&response);
    if !response.header().status_code().is_success() {
        return Err(ClientError::Refused(status));
    }
    let mut out = Output::stdout();
    if !status.unsupported.is_empty() {
        eprintln!(
            "printbridge: warning: the printer ignored or changed: {}",
            status.unsupported.join(" ")
        );
    }
    let job = response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .next();
    let Some(id) = job.and_then(|g| int_attr(g, "job-id")) else {
        return Err(ClientError::Protocol {
            printer: printer.display.clone(),
            reason: "Print-Job succeeded but the response has no job-id".into(),
        });
    };
    let job_uri = job.and_then(|g| text_attr(g, "job-uri"));
    match &job_uri {
        Some(uri) => out.line(&format!("job {id} submitted: {uri}"))?,
        None => out.line(&format!("job {id} submitted to {}", printer.display))?,
    }
    if args.no_wait {
        return Ok(());
    }
    let initial = job.map(JobStatus::from_group).unwrap_or_default();
    follow_job(&printer, id, &user, initial, &mut out).await
}

/// Polls the job once per second, printing a progress line, until it reaches a terminal state.
async fn follow_job(
    printer: &Printer,
    id: i32,
    user: &str,
    initial: JobStatus,
    out: &mut Output,
) -> Result<(), ClientError> {
    let mut progress = Progress::new(out.is_tty);
    let result = async {
        let mut status = initial;
        let mut failures = 0;
        loop {
            if status.state.is_some() {
                progress.show(out, id, &status)?;
            }
            match status.state {
                Some(9) => return Ok(()),
                Some(state @ (7 | 8)) => {
                    return Err(ClientError::JobFailed {
                        id,
                        state: job_state_name(state),
                        detail: status.failure_detail(),
                    })
                }
                _ => {}
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            match get_job_status(printer, id, user).await {
                Ok(next) => {
                    failures = 0;
                    status = next;
                }
                // A network blip or a printer restart: keep trying for a while.
                Err(err @ (ClientError::Unreachable { .. } | ClientError::Http { .. }))
                    if failures + 1 < MAX_POLL_FAILURES =>
                {
                    failures += 1;
                    tracing::debug!("polling job {id} failed ({failures}): {err}");
                }
                Err(err) => return Err(err),
            }
        }
    }
    .await;
    progress.finish(out)?;
    result
}

async fn get_job_status(printer: &Printer, id: i32, user: &str) -> Result<JobStatus, ClientError> {
    let operation = IppOperationBuilder::get_job_attributes(printer.target.clone(), id)
        .user_name(user)
        .build()
        .map_err(|e| printer.protocol_error(format!("cannot build the request: {e}")))?;
    let mut request = operation.into_ipp_request();
    add_requested_attributes(
        &mut request,
        &[
            "job-state",
            "job-state-reasons",
            "job-state-message",
            "job-impressions-completed",
        ],
    );
    let response = printer.send(request, Some(SHORT_REQUEST_TIMEOUT)).await?;
    if !response.header().status_code().is_success() {
        return Err(ClientError::Ipp {
            operation: "Get-Job-Attributes",
            status: IppStatus::from_response(&response),
        });
    }
    let status = response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .next()
        .map(JobStatus::from_group)
        .unwrap_or_default();
    Ok(status)
}

/// The parts of a job's state the progress line shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct JobStatus {
    state: Option<i32>,
    reasons: Vec<String>,
    message: Option<String>,
    impressions: Option<i32>,
}

impl JobStatus {
    fn from_group(group: &IppAttributeGroup) -> JobStatus {
        JobStatus {
            state: int_attr(group, "job-state"),
            reasons: strings_attr(group, "job-state-reasons")
                .into_iter()
                .filter(|r| r != "none")
                .collect(),
            message: text_attr(group, "job-state-message").filter(|m| !m.is_empty()),
            impressions: int_attr(group, "job-impressions-completed"),
        }
    }

    /// e.g. `job 12: processing (job-printing) 3 pages`
    fn progress_line(&self, id: i32) -> String {
        let mut line = format!("job {id}: {}", self.state.map_or("unknown", job_state_name));
        if !self.reasons.is_empty() {
            line.push_str(&format!(" ({})", self.reasons.join(", ")));
        }
        match self.impressions {
            Some(1) => line.push_str(" 1 page"),
            Some(n) if n > 1 => line.push_str(&format!(" {n} pages")),
            _ => {}
        }
        line
    }

    /// What a canceled or aborted job says about why: `: message (reasons)`.
    fn failure_detail(&self) -> String {
        let mut detail = String::new();
        if let Some(message) = &self.message {
            detail.push_str(&format!(": {message}"));
        }
        if !self.reasons.is_empty() {
            detail.push_str(&format!(" ({})", self.reasons.join(", ")));
        }
        detail
    }
}

fn job_state_name(state: i32) -> &'static str {
    match state {
        3 => "pending",
        4 => "pending-held",
        5 => "processing",
        6 => "processing-stopped",
        7 => "canceled",
        8 => "aborted",
        9 => "completed",
        _ => "unknown",
    }
}

/// A single updating line on a terminal (`\r`), one line per change otherwise.
struct Progress {
    tty: bool,
    /// The last line written; on a terminal, also whether a line is open.
    last_line: Option<String>,
    /// State and reasons of the last line written: without a terminal only their change is news
    /// (a page count ticking up is not worth a line in a log).
    last_state: Option<(Option<i32>, Vec<String>)>,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            tty,
            last_line: None,
            last_state: None,
        }
    }

    fn show(&mut self, out: &mut Output, id: i32, status: &JobStatus) -> Result<(), ClientError> {
        let line = status.progress_line(id);
        if self.last_line.as_deref() == Some(line.as_str()) {
            return Ok(());
        }
        let state = (status.state, status.reasons.clone());
        if self.tty {
            // Back to column 0, write, clear whatever a longer previous line left behind.
            out.raw(&format!("\r{line}\x1b[K"))?;
        } else if self.last_state.as_ref() != Some(&state) {
            out.line(&line)?;
        } else {
            return Ok(());
        }
        self.last_line = Some(line);
        self.last_state = Some(state);
        Ok(())
    }

    /// Ends an open terminal line, so that whatever comes next starts on its own line.
    fn finish(&mut self, out: &mut Output) -> Result<(), ClientError> {
        if self.tty && self.last_line.take().is_some() {
            out.raw("\n")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// jobs
// ---------------------------------------------------------------------------------------------

/// `printbridge jobs`: list the printer's jobs (Get-Jobs) as a table, newest first whatever
/// `--which` (as `lpstat` and the web page), with the reason a canceled or aborted job ended, and
/// a note when the printer hid other people's job names (job privacy, PWG 5100.11 §5.3).
pub async fn jobs(args: &JobsArgs) -> Result<(), ClientError> {
    let which = args.which.as_str();
    if !matches!(which, "not-completed" | "completed" | "all") {
        return Err(ClientError::BadWhich(sanitize(which)));
    }
    let printer = Printer::connect(&args.conn)?;
    let jobs = get_jobs(
        &printer,
        which,
        &[
            "job-id",
            "job-name",
            "job-originating-user-name",
            "job-state",
            "job-state-reasons",
            "job-state-message",
            "job-impressions-completed",
            "time-at-creation",
        ],
    )
    .await?;
    let mut listed: Vec<(i32, [String; 5])> = Vec::new();
    let mut hidden = false;
    for g in &jobs {
        let id = int_attr(g, "job-id").unwrap_or(0);
        let state = int_attr(g, "job-state");
        let mut private = |name: &str| match text_attr(g, name).filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => {
                hidden = true;
                "(hidden)".to_string()
            }
        };
        let user = private("job-originating-user-name");
        let name = private("job-name");
        let status = JobStatus::from_group(g);
        let reason = match state {
            Some(7 | 8) => status.failure_detail().trim_start_matches(": ").to_string(),
            _ => String::new(),
        };
        listed.push((
            id,
            [
                if id > 0 { id.to_string() } else { "?".into() },
                state.map_or("unknown", job_state_name).to_string(),
                user,
                name,
                reason,
            ],
        ));
    }
    // Job ids grow with time (RFC 8011 §5.3.2): the highest is the newest.
    listed.sort_by_key(|row| std::cmp::Reverse(row.0));
    let rows: Vec<[String; 5]> = listed.into_iter().map(|(_, row)| row).collect();
    let mut out = Output::stdout();
    if rows.is_empty() {
        return out.line("no jobs");
    }
    for line in format_table(["ID", "STATE", "USER", "NAME", "REASON"], &rows) {
        out.line(line.trim_end())?;
    }
    if hidden {
        out.line(&format!(
            "(hidden): the printer shows the names and owners of jobs only to their owners and \
             administrators (job privacy); you are '{}'{}",
            printer.user,
            if printer.signed_in {
                ""
            } else {
                ", not signed in: an administrator sees all with -U NAME over ipps://"
            }
        ))?;
    }
    Ok(())
}

/// Get-Jobs (RFC 8011 §4.2.6) of `which` jobs with `attributes`: the job groups of the answer.
async fn get_jobs(
    printer: &Printer,
    which: &str,
    attributes: &[&str],
) -> Result<Vec<IppAttributeGroup>, ClientError> {
    let operation = IppOperationBuilder::get_jobs(printer.target.clone())
        .user_name(&printer.user)
        .build()
        .map_err(|e| printer.protocol_error(format!("cannot build the request: {e}")))?;
    let mut request = operation.into_ipp_request();
    request.attributes_mut().add(
        DelimiterTag::OperationAttributes,
        IppAttribute::new(
            IppAttributeName::WHICH_JOBS,
            IppValue::Keyword(IppKeyword::new_truncated(which)),
        ),
    );
    add_requested_attributes(&mut request, attributes);
    let response = printer.send(request, Some(SHORT_REQUEST_TIMEOUT)).await?;
    if !response.header().status_code().is_success() {
        return Err(ClientError::Ipp {
            operation: "Get-Jobs",
            status: IppStatus::from_response(&response),
        });
    }
    Ok(response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .cloned()
        .collect())
}

// ---------------------------------------------------------------------------------------------
// cancel
// ---------------------------------------------------------------------------------------------

/// `printbridge cancel JOB-ID` (Cancel-Job, RFC 8011 §4.3.3) or `printbridge cancel -a`: every
/// job not yet completed that the printer lets this user cancel. Fails when nothing could be
/// canceled that was asked for.
pub async fn cancel(args: &CancelArgs) -> Result<(), ClientError> {
    let printer = Printer::connect(&args.conn)?;
    let mut out = Output::stdout();
    if let Some(id) = args.job_id.filter(|_| !args.all) {
        let id = i32::try_from(id).map_err(|_| ClientError::BadOption {
            option: id.to_string(),
            reason: "job ids are at most 2147483647".into(),
        })?;
        cancel_job(&printer, id).await?;
        return out.line(&format!("job {id} canceled"));
    }
    let jobs = get_jobs(
        &printer,
        "not-completed",
        &["job-id", "job-originating-user-name"],
    )
    .await?;
    let mut ids: Vec<i32> = jobs.iter().filter_map(|g| int_attr(g, "job-id")).collect();
    ids.sort_unstable();
    if ids.is_empty() {
        return out.line("no jobs to cancel");
    }
    let (mut canceled, mut refused) = (0, Vec::new());
    for id in ids {
        match cancel_job(&printer, id).await {
            Ok(()) => {
                canceled += 1;
                out.line(&format!("job {id} canceled"))?;
            }
            // Someone else's job (refused, or answered with HTTP 401 asking for credentials), or
            // one that finished meanwhile: said, not fatal.
            Err(ClientError::Ipp { status, .. }) => refused.push(format!("job {id}: {status}")),
            Err(ClientError::Http {
                status: status @ (401 | 403),
                ..
            }) => refused.push(format!(
                "job {id}: HTTP {status} (not yours; an administrator signs in with -U)"
            )),
            Err(e) => return Err(e),
        }
    }
    for r in &refused {
        eprintln!("printbridge: not canceled: {r}");
    }
    if canceled == 0 {
        return Err(ClientError::Ipp {
            operation: "Cancel-Job",
            status: IppStatus {
                code: crate::codec::ipp_status::NOT_AUTHORIZED,
                message: Some(format!(
                    "none of the {} jobs could be canceled by '{}'",
                    refused.len(),
                    printer.user
                )),
                unsupported: Vec::new(),
            },
        });
    }
    Ok(())
}

async fn cancel_job(printer: &Printer, id: i32) -> Result<(), ClientError> {
    let operation = IppOperationBuilder::cancel_job(printer.target.clone(), id)
        .user_name(&printer.user)
        .build()
        .map_err(|e| printer.protocol_error(format!("cannot build the request: {e}")))?;
    let response = printer
        .send(operation.into_ipp_request(), Some(SHORT_REQUEST_TIMEOUT))
        .await?;
    if !response.header().status_code().is_success() {
        return Err(ClientError::Ipp {
            operation: "Cancel-Job",
            status: IppStatus::from_response(&response),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// release
// ---------------------------------------------------------------------------------------------

/// `printbridge release JOB --pin PIN` (or `-U USER` without a PIN): releases a job held for
/// release through the appliance's `POST /api/v1/jobs/{id}/release`; `printbridge release
/// --list`: the jobs waiting for release (Get-Jobs, so names show only to their owners).
pub async fn release(args: &ReleaseArgs) -> Result<(), ClientError> {
    let mut conn = args.conn.clone();
    if let Some(queue) = &args.queue {
        conn.printer = queue_uri(&conn.printer, queue)?;
    }
    let printer = Printer::connect(&conn)?;
    let mut out = Output::stdout();
    let Some(id) = args.job_id.filter(|_| !args.list) else {
        return list_held(&printer, &mut out).await;
    };
    let pin = match args.pin.as_deref() {
        Some("-") => {
            let mut line = String::new();
            io::stdin()
                .read_line(&mut line)
                .map_err(|e| ClientError::Password(e.to_string()))?;
            Some(line.trim_end_matches(['\r', '\n']).to_string())
        }
        other => other.map(str::to_string),
    };
    if pin.is_none() && printer.auth.is_none() {
        return Err(ClientError::BadOption {
            option: "release".into(),
            reason: "give the job's PIN with --pin PIN, or sign in with -U USER to release your \
                     own job"
                .into(),
        });
    }
    let scheme = if printer.target.scheme_str() == Some("ipps") {
        "https"
    } else {
        "http"
    };
    let unreachable = |reason: String| ClientError::Unreachable {
        printer: printer.display.clone(),
        reason,
    };
    let authority = printer
        .target
        .authority()
        .ok_or_else(|| unreachable("the URI has no host".into()))?;
    let url = format!(
        "{scheme}://{authority}{}",
        crate::web::release_api::PATH.replace("{id}", &id.to_string())
    );
    // The queue is the last part of /ipp/print/NAME; the default queue is /ipp/print.
    let queue = printer
        .target
        .path()
        .strip_prefix("/ipp/print/")
        .filter(|q| crate::config::valid_queue_name(q));
    let mut body = serde_json::json!({});
    if let Some(pin) = &pin {
        body["pin"] = pin.as_str().into();
    }
    if let Some(q) = queue {
        body["queue"] = q.into();
    }
    let http = crate::bridge::http::CloudHttp::new(
        SHORT_REQUEST_TIMEOUT,
        64 << 10,
        printer.ca_cert.as_deref(),
    )
    .map_err(|e| unreachable(e.to_string()))?;
    let answer = match (&printer.auth, pin.is_none()) {
        (Some((user, password)), true) => http.post_json_basic(&url, (user, password), &body).await,
        _ => http.post_json(&url, None, &body).await,
    }
    .map_err(|e| unreachable(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    if answer.status == 200 {
        return out.line(&format!("job {id} released: it prints now"));
    }
    let message = v["error"]
        .as_str()
        .map(sanitize)
        .unwrap_or_else(|| format!("HTTP {}{}", answer.status, http_hint(answer.status)));
    Err(ClientError::NotReleased { id, message })
}

/// The jobs of the queue waiting for release: by PIN (job-password-wait) or for their owner's
/// sign-in (job-hold-until-specified).
async fn list_held(printer: &Printer, out: &mut Output) -> Result<(), ClientError> {
    let jobs = get_jobs(
        printer,
        "not-completed",
        &[
            "job-id",
            "job-name",
            "job-originating-user-name",
            "job-state",
            "job-state-reasons",
            "job-state-message",
        ],
    )
    .await?;
    let mut rows: Vec<[String; 4]> = Vec::new();
    for g in &jobs {
        if int_attr(g, "job-state") != Some(4) {
            continue;
        }
        let reasons = strings_attr(g, "job-state-reasons");
        let waits = if reasons.iter().any(|r| r == "job-password-wait") {
            "PIN"
        } else if reasons.iter().any(|r| r == "job-hold-until-specified") {
            "sign-in"
        } else {
            continue;
        };
        let hidden = || "(hidden)".to_string();
        rows.push([
            int_attr(g, "job-id").map_or("?".into(), |i| i.to_string()),
            waits.to_string(),
            text_attr(g, "job-originating-user-name")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(hidden),
            text_attr(g, "job-name")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(hidden),
        ]);
    }
    if rows.is_empty() {
        return out.line("no jobs waiting for release");
    }
    for line in format_table(["ID", "WAITS FOR", "USER", "NAME"], &rows) {
        out.line(line.trim_end())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------------------------

/// `printbridge status`: the printer's state and reasons in words, its message, how many jobs
/// are not completed, and (for a printbridge appliance) its cloud registration.
pub async fn status(args: &StatusArgs) -> Result<(), ClientError> {
    let printer = Printer::connect(&args.conn)?;
    let user = printer.user.clone();
    let operation = IppOperationBuilder::get_printer_attributes(printer.target.clone())
        .attributes([
            "printer-name",
            "printer-state",
            "printer-state-reasons",
            "printer-state-message",
            "printer-is-accepting-jobs",
            "queued-job-count",
        ])
        .build()
        .map_err(|e| printer.protocol_error(format!("cannot build the request: {e}")))?;
    let mut request = operation.into_ipp_request();
    request.attributes_mut().add(
        DelimiterTag::OperationAttributes,
        IppAttribute::new(
            IppAttributeName::REQUESTING_USER_NAME,
            IppValue::NameWithoutLanguage(IppName::new_truncated(&user)),
        ),
    );
    let response = printer.send(request, Some(SHORT_REQUEST_TIMEOUT)).await?;
    if !response.header().status_code().is_success() {
        return Err(ClientError::Ipp {
            operation: "Get-Printer-Attributes",
            status: IppStatus::from_response(&response),
        });
    }
    let Some(attrs) = response
        .attributes()
        .groups_of(DelimiterTag::PrinterAttributes)
        .next()
    else {
        return Err(printer.protocol_error("no printer attributes in the response"));
    };
    let name = text_attr(attrs, "printer-name").unwrap_or_else(|| printer.display.clone());
    let state = int_attr(attrs, "printer-state");
    let reasons = strings_attr(attrs, "printer-state-reasons");
    let message = text_attr(attrs, "printer-state-message").filter(|m| !m.is_empty());
    let accepting = attrs
        .get("printer-is-accepting-jobs")
        .map(|a| matches!(a.value(), IppValue::Boolean(true)));
    let queued = queue_length(&printer, &user)
        .await
        .or_else(|| int_attr(attrs, "queued-job-count"));

    let mut out = Output::stdout();
    // The output device's trouble (RFC 8011 §5.4.12 keywords the appliance mirrors from it): the
    // printer may be idle and still print nothing.
    let device_trouble = reasons.iter().any(|r| {
        ["offline", "connecting-to-device", "timed-out", "other"]
            .iter()
            .any(|k| r == k || r.starts_with(&format!("{k}-")))
    });
    let state_words = match state {
        Some(3) if device_trouble => {
            "idle, but the output device cannot print now: jobs wait until it can"
        }
        Some(s) => printer_state_words(s),
        None => "in an unknown state",
    };
    out.line(&format!("printer {name}: {state_words}"))?;
    let explained: Vec<String> = reasons
        .iter()
        .filter(|r| r.as_str() != "none")
        .map(|r| reason_words(r))
        .collect();
    if !explained.is_empty() {
        out.line("  reasons:")?;
        for r in explained {
            out.line(&format!("    - {r}"))?;
        }
    }
    if let Some(m) = message {
        if device_trouble {
            out.line(&format!("  last device error: {m}"))?;
        } else {
            out.line(&format!("  message: {m}"))?;
        }
    }
    if accepting == Some(false) {
        out.line("  not accepting new jobs")?;
    }
    out.line(&match queued {
        Some(0) => "  queue: no jobs waiting or printing".to_string(),
        Some(1) => "  queue: 1 job not completed".to_string(),
        Some(n) => format!("  queue: {n} jobs not completed"),
        None => "  queue: unknown (the printer did not say)".to_string(),
    })?;
    if queued.is_some_and(|n| n > 0) {
        for line in job_lines(&printer).await {
            out.line(&line)?;
        }
    }
    if let Some(lines) = queue_lines(&printer).await {
        for line in lines {
            out.line(&line)?;
        }
    }
    if let Some(line) = cloud_status_line(&printer).await {
        out.line(&line)?;
    }
    Ok(())
}

/// Up to ten jobs not completed, one line each: id, state, owner and name (as the printer shows
/// them to this user: others' names may be hidden).
async fn job_lines(printer: &Printer) -> Vec<String> {
    let Ok(jobs) = get_jobs(
        printer,
        "not-completed",
        &[
            "job-id",
            "job-name",
            "job-originating-user-name",
            "job-state",
        ],
    )
    .await
    else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for g in jobs.iter().take(10) {
        let id = int_attr(g, "job-id").unwrap_or(0);
        let state = int_attr(g, "job-state").map_or("unknown", job_state_name);
        let mut line = format!("    job {id}: {state}");
        // Others' owners and names may be hidden (job privacy, PWG 5100.11 §5.3): say what is shown.
        if let Some(owner) = text_attr(g, "job-originating-user-name").filter(|o| !o.is_empty()) {
            line.push_str(&format!(", {}", truncate_utf8(&owner, 40)));
        }
        if let Some(name) = text_attr(g, "job-name").filter(|n| !n.is_empty()) {
            line.push_str(&format!(" \"{}\"", truncate_utf8(&name, 60)));
        }
        lines.push(line);
    }
    if jobs.len() > 10 {
        lines.push(format!(
            "    ... and {} more (printbridge jobs)",
            jobs.len() - 10
        ));
    }
    lines
}

/// The appliance's queues, from `/api/v1/queue-status` on the printer's host and port; `None` when the
/// printer is not a printbridge appliance with more than one queue.
async fn queue_lines(printer: &Printer) -> Option<Vec<String>> {
    let scheme = if printer.target.scheme_str() == Some("ipps") {
        "https"
    } else {
        "http"
    };
    let authority = printer.target.authority()?;
    let url = format!("{scheme}://{authority}{}", crate::web::metrics::QUEUES_PATH);
    let http = crate::bridge::http::CloudHttp::new(SHORT_REQUEST_TIMEOUT, 1 << 20, None).ok()?;
    let answer = http.get(&url, None).await.ok()?;
    if answer.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    let list = v.as_array()?;
    if list.len() < 2 {
        return None;
    }
    let mut lines = vec![format!("  queues of this appliance ({}):", list.len())];
    for q in list.iter().take(100) {
        let s = |k: &str| sanitize(truncate_utf8(q[k].as_str().unwrap_or_default(), 100));
        let jobs = q["jobs"].as_u64().unwrap_or(0);
        lines.push(format!(
            "    {} ({}): {}, {jobs} job{} not completed",
            s("resource"),
            s("name"),
            s("state"),
            if jobs == 1 { "" } else { "s" }
        ));
    }
    Some(lines)
}

/// How many jobs are not completed (Get-Jobs, which-jobs=not-completed: pending, held,
/// processing and stopped jobs, RFC 8011 §4.2.6.1); `None` if the printer refuses the request.
async fn queue_length(printer: &Printer, user: &str) -> Option<i32> {
    let operation = IppOperationBuilder::get_jobs(printer.target.clone())
        .user_name(user)
        .build()
        .ok()?;
    let mut request = operation.into_ipp_request();
    request.attributes_mut().add(
        DelimiterTag::OperationAttributes,
        IppAttribute::new(
            IppAttributeName::WHICH_JOBS,
            IppValue::Keyword(IppKeyword::new_truncated("not-completed")),
        ),
    );
    add_requested_attributes(&mut request, &["job-id"]);
    let response = printer
        .send(request, Some(SHORT_REQUEST_TIMEOUT))
        .await
        .ok()?;
    if !response.header().status_code().is_success() {
        return None;
    }
    let n = response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .count();
    i32::try_from(n).ok()
}

/// The cloud line of a printbridge appliance, from `/api/v1/cloud` on the printer's host and
/// port; `None` when the printer is not one (any answer other than 200 with JSON).
async fn cloud_status_line(printer: &Printer) -> Option<String> {
    let scheme = if printer.target.scheme_str() == Some("ipps") {
        "https"
    } else {
        "http"
    };
    let authority = printer.target.authority()?;
    let url = format!("{scheme}://{authority}{}", crate::bridge::api::CLOUD_PATH);
    let http = crate::bridge::http::CloudHttp::new(
        SHORT_REQUEST_TIMEOUT,
        1 << 20,
        printer.ca_cert.as_deref(),
    )
    .ok()?;
    // Signed in (-U over ipps://), the line names the allowed users: those are for
    // administrators only.
    let answer = match (&printer.auth, scheme) {
        (Some((user, password)), "https") => http.get_basic(&url, user, password).await.ok()?,
        _ => http.get(&url, None).await.ok()?,
    };
    if answer.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    let mut line = sanitize(&crate::bridge::cli::cloud_line(&v));
    if let Some(n) = v["open_requests"].as_u64() {
        line.push_str(&match n {
            0 => "; no open registration requests".to_string(),
            1 => "; 1 open registration request".to_string(),
            n => format!("; {n} open registration requests"),
        });
    }
    Some(format!("  {line}"))
}

/// `printer-state` (RFC 8011 §5.4.11) in words.
fn printer_state_words(state: i32) -> &'static str {
    match state {
        3 => "idle (ready to print)",
        4 => "processing (printing)",
        5 => "stopped",
        _ => "in an unknown state",
    }
}

/// A `printer-state-reasons` keyword in words. The keyword may carry a severity suffix
/// (-report, -warning, -error; RFC 8011 §5.4.12), said after the explanation; an unknown
/// keyword is shown as it is, so nothing the printer says is lost.
fn reason_words(keyword: &str) -> String {
    let keyword = sanitize(keyword);
    match crate::model::printer::reason_words(&keyword) {
        Some(r) => match r.words {
            Some(words) => format!("{words}{} [{keyword}]", r.severity),
            None => keyword,
        },
        None => keyword,
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn format_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: [&str; N]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        line.trim_end().to_string()
    };
    let mut lines = vec![render(header)];
    lines.extend(
        rows.iter()
            .map(|row| render(row.each_ref().map(String::as_str))),
    );
    lines
}

// ---------------------------------------------------------------------------------------------
// -o name=value
// ---------------------------------------------------------------------------------------------

/// What one `-o` option turns into.
#[derive(Debug)]
enum JobOption {
    /// A job template attribute.
    Attribute(IppAttribute),
    /// `document-format=type/subtype`: overrides the format guessed from the file extension.
    DocumentFormat(String),
}

/// How the value of a known attribute must be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// Inferred from the value: integer, rangeOfInteger, boolean or keyword.
    Auto,
    Integer,
    /// `1-3,5,7-`: 1setOf rangeOfInteger; a single page is a range of one.
    PageRanges,
    /// An enum, by number or by keyword alias.
    Enum(&'static [(&'static str, i32)]),
    /// `600dpi`, `600x300dpi`, `236dpcm`.
    Resolution,
    /// name(MAX): any printable text, sent as nameWithoutLanguage.
    Name,
    /// text(MAX): any printable text, sent as textWithoutLanguage.
    Text,
}

const ORIENTATIONS: &[(&str, i32)] = &[
    ("portrait", 3),
    ("landscape", 4),
    ("reverse-landscape", 5),
    ("reverse-portrait", 6),
    ("none", 7),
];
const QUALITIES: &[(&str, i32)] = &[("draft", 3), ("normal", 4), ("high", 5)];
const FINISHINGS: &[(&str, i32)] = &[
    ("none", 3),
    ("staple", 4),
    ("punch", 5),
    ("cover", 6),
    ("bind", 7),
    ("saddle-stitch", 8),
    ("edge-stitch", 9),
    ("fold", 10),
    ("trim", 11),
    ("bale", 12),
    ("booklet-maker", 13),
    ("jog-offset", 14),
    ("coat", 15),
    ("laminate", 16),
    ("staple-top-left", 20),
    ("staple-bottom-left", 21),
    ("staple-top-right", 22),
    ("staple-bottom-right", 23),
    ("staple-dual-left", 28),
    ("staple-dual-top", 29),
    ("staple-dual-right", 30),
    ("staple-dual-bottom", 31),
    ("punch-dual-left", 74),
    ("punch-dual-top", 75),
    ("punch-dual-right", 76),
    ("punch-dual-bottom", 77),
];

fn value_kind(name: &str) -> ValueKind {
    match name {
        "copies" | "number-up" | "job-priority" | "job-copies" | "job-pages-per-set" => {
            ValueKind::Integer
        }
        "page-ranges" => ValueKind::PageRanges,
        "orientation-requested" => ValueKind::Enum(ORIENTATIONS),
        "print-quality" => ValueKind::Enum(QUALITIES),
        "finishings" => ValueKind::Enum(FINISHINGS),
        "printer-resolution" => ValueKind::Resolution,
        "job-account-id" | "job-accounting-user-id" => ValueKind::Name,
        "job-message-to-operator" => ValueKind::Text,
        _ => ValueKind::Auto,
    }
}

/// Operation attributes the client sets itself; `-o` must not smuggle in a second copy.
fn reserved_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "job-name" => "set the job name with -t/--title",
        "requesting-user-name" => "the user name comes from $USER",
        "attributes-charset"
        | "attributes-natural-language"
        | "printer-uri"
        | "job-id"
        | "job-uri"
        | "last-document" => "this attribute is set by the client itself",
        _ => return None,
    })
}

fn bad_option(option: &str, reason: impl Into<String>) -> ClientError {
    ClientError::BadOption {
        option: sanitize(option),
        reason: reason.into(),
    }
}

fn parse_option(option: &str) -> Result<JobOption, ClientError> {
    let Some((name, value)) = option.split_once('=') else {
        return Err(bad_option(
            option,
            "expected name=value, e.g. sides=two-sided-long-edge",
        ));
    };
    if !is_attribute_name(name) {
        return Err(bad_option(
            option,
            "attribute names are lowercase letters, digits and '-', starting with a letter \
             (e.g. print-color-mode)",
        ));
    }
    if let Some(reason) = reserved_reason(name) {
        return Err(bad_option(option, reason));
    }
    if value.is_empty() {
        return Err(bad_option(option, "the value is empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad_option(option, "the value contains control characters"));
    }
    if name == "document-format" {
        let valid = value.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty()
                && !s.is_empty()
                && value.len() <= 255
                && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        });
        if !valid {
            return Err(bad_option(
                option,
                "expected a MIME type such as application/pdf",
            ));
        }
        return Ok(JobOption::DocumentFormat(value.to_string()));
    }
    let value = parse_value(name, value).map_err(|reason| bad_option(option, reason))?;
    Ok(JobOption::Attribute(IppAttribute::new(
        // Checked above: ASCII and short enough that this cannot fail.
        IppName::new(name).map_err(|e| bad_option(option, e.to_string()))?,
        value,
    )))
}

fn is_attribute_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 255
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Encodes the value of `name`; a comma-separated list becomes a 1setOf of one type.
fn parse_value(name: &str, value: &str) -> Result<IppValue, String> {
    let kind = value_kind(name);
    match kind {
        ValueKind::Name => {
            return IppValue::new_name_without_language(value).map_err(|e| e.to_string())
        }
        ValueKind::Text => {
            return IppValue::new_text_without_language(value).map_err(|e| e.to_string())
        }
        _ => {}
    }
    let mut values = value
        .split(',')
        .map(|item| parse_single_value(kind, item))
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() == 1 {
        return Ok(values.remove(0));
    }
    if values.iter().any(|v| v.to_tag() != values[0].to_tag()) {
        return Err("all values of a list must have the same type".into());
    }
    Ok(IppValue::Array(values))
}

fn parse_single_value(kind: ValueKind, item: &str) -> Result<IppValue, String> {
    if item.is_empty() {
        return Err("empty list element".into());
    }
    match kind {
        ValueKind::Integer => parse_integer(item)
            .ok_or_else(|| format!("'{item}' is not an integer"))
            .map(IppValue::Integer),
        ValueKind::PageRanges => {
            let (min, max) = if let Some(page) = parse_integer(item) {
                (page, page)
            } else {
                parse_range(item, true)
                    .ok_or_else(|| format!("'{item}' is not a page or page range such as 1-3"))?
            };
            if min < 1 {
                return Err("pages are numbered from 1".into());
            }
            Ok(IppValue::RangeOfInteger { min, max })
        }
        ValueKind::Enum(aliases) => parse_integer(item)
            .or_else(|| aliases.iter().find(|(k, _)| *k == item).map(|&(_, v)| v))
            .map(IppValue::Enum)
            .ok_or_else(|| {
                let known = aliases
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("'{item}' is neither a number nor one of {known}")
            }),
        ValueKind::Resolution => parse_resolution(item)
            .ok_or_else(|| format!("'{item}' is not a resolution such as 600dpi or 600x300dpi")),
        ValueKind::Auto | ValueKind::Name | ValueKind::Text => {
            if let Some(n) = parse_integer(item) {
                Ok(IppValue::Integer(n))
            } else if let Some((min, max)) = parse_range(item, false) {
                Ok(IppValue::RangeOfInteger { min, max })
            } else if item == "true" || item == "false" {
                Ok(IppValue::Boolean(item == "true"))
            } else if is_keyword(item) {
                IppValue::new_keyword(item).map_err(|e| e.to_string())
            } else if item.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                Err(format!("'{item}' is not an integer or a range such as 1-3"))
            } else {
                Err(format!(
                    "'{item}' is not a keyword (lowercase letters, digits, '-', '_' and '.', \
                     starting with a letter), an integer or a range"
                ))
            }
        }
    }
}

/// Digits only, fitting IPP's signed 32-bit integer.
fn parse_integer(s: &str) -> Option<i32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `N-M` with N <= M; `N-` (to the end) only when `open_end` is allowed.
fn parse_range(s: &str, open_end: bool) -> Option<(i32, i32)> {
    let (min, max) = s.split_once('-')?;
    let min = parse_integer(min)?;
    let max = if max.is_empty() && open_end {
        i32::MAX
    } else {
        parse_integer(max)?
    };
    (min <= max).then_some((min, max))
}

fn parse_resolution(s: &str) -> Option<IppValue> {
    let (number, units) = if let Some(n) = s.strip_suffix("dpi") {
        (n, 3)
    } else if let Some(n) = s.strip_suffix("dpcm") {
        (n, 4)
    } else {
        return None;
    };
    let (cross_feed, feed) = match number.split_once('x') {
        Some((x, y)) => (parse_integer(x)?, parse_integer(y)?),
        None => (parse_integer(number)?, parse_integer(number)?),
    };
    (cross_feed > 0 && feed > 0).then_some(IppValue::Resolution {
        cross_feed,
        feed,
        units,
    })
}

/// RFC 8011 keyword syntax: a lowercase letter, then lowercase letters, digits, '-', '_', '.'.
fn is_keyword(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 255
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

// ---------------------------------------------------------------------------------------------
// talking to the printer
// ---------------------------------------------------------------------------------------------

/// A printer URI, checked and normalized to the ipp/ipps form that goes into `printer-uri`.
struct Printer {
    target: Uri,
    /// What error messages call the printer: the URI as the user wrote it.
    display: String,
    /// requesting-user-name: the -U user, else the local user.
    user: String,
    /// Whether requests carry `-U`'s credentials.
    signed_in: bool,
    /// HTTP Basic credentials (sent over TLS only).
    auth: Option<(String, String)>,
    /// A PEM certificate to trust for ipps://.
    ca_cert: Option<Vec<u8>>,
}

impl Printer {
    /// The printer of `conn`, with its credentials: the password is read here (prompted on a
    /// terminal, else the first line of standard input), after the URI was found to be ipps://.
    fn connect(conn: &Connection) -> Result<Printer, ClientError> {
        let mut printer = Printer::new(&conn.printer)?;
        if let Some(path) = &conn.cacert {
            let pem = std::fs::read(path).map_err(|source| ClientError::File {
                path: path.clone(),
                source,
            })?;
            printer.ca_cert = Some(pem);
        }
        if let Some(user) = &conn.user {
            if printer.target.scheme_str() != Some("ipps") {
                let suggestion = printer.target.to_string().replacen("ipp://", "ipps://", 1);
                return Err(ClientError::PasswordInClear {
                    printer: printer.display.clone(),
                    suggestion,
                });
            }
            let user = truncate_utf8(user.trim(), 255).to_string();
            let password = read_password(&user)?;
            printer.user = user.clone();
            printer.signed_in = true;
            printer.auth = Some((user, password));
        }
        Ok(printer)
    }

    fn new(uri: &str) -> Result<Printer, ClientError> {
        let display = sanitize(uri);
        let bad = |reason: &str| ClientError::BadPrinterUri {
            uri: display.clone(),
            reason: reason.to_string(),
        };
        if !uri.contains("://") {
            return Err(bad("expected a URI such as ipp://host:631/ipp/print"));
        }
        if uri.len() > 1023 {
            return Err(bad("longer than 1023 bytes"));
        }
        let parsed = uri.parse::<Uri>().map_err(|e| bad(&e.to_string()))?;
        let (scheme, default_port) = match parsed.scheme_str() {
            Some("ipp") => ("ipp", 631),
            Some("ipps") => ("ipps", 443),
            // http(s):// on its default port means something else than ipp(s):// without a port.
            Some("http") => ("ipp", 80),
            Some("https") => ("ipps", 443),
            _ => return Err(bad("the scheme must be ipp, ipps, http or https")),
        };
        let Some(authority) = parsed.authority() else {
            return Err(bad("the host is missing"));
        };
        if authority.host().is_empty() {
            return Err(bad("the host is missing"));
        }
        if authority.as_str().contains('@') {
            return Err(bad("user names or passwords in the URI are not supported"));
        }
        let port = authority.port_u16().unwrap_or(default_port);
        let path = parsed.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        let target = format!("{scheme}://{}:{port}{path}", authority.host())
            .parse::<Uri>()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Printer {
            target,
            display,
            user: requesting_user_name(),
            signed_in: false,
            auth: None,
            ca_cert: None,
        })
    }

    fn protocol_error(&self, err: impl fmt::Display) -> ClientError {
        ClientError::Protocol {
            printer: self.display.clone(),
            reason: err.to_string(),
        }
    }

    /// Sends one request. The response is parsed in a separate task so that a panic in the `ipp`
    /// crate's parser (it has panicked on malformed values) surfaces as an error, not a crash.
    async fn send(
        &self,
        request: IppRequestResponse,
        timeout: Option<Duration>,
    ) -> Result<IppRequestResponse, ClientError> {
        install_tls_provider();
        let mut builder = AsyncIppClient::builder(self.target.clone());
        if let Some(timeout) = timeout {
            builder = builder.request_timeout(timeout);
        }
        if let Some(pem) = &self.ca_cert {
            builder = builder.ca_cert(pem);
        }
        // Never over plain IPP: `connect` refused that before reading the password.
        if let (Some((user, password)), Some("ipps")) = (&self.auth, self.target.scheme_str()) {
            builder = builder.basic_auth(user, password);
        }
        let client = builder.build();
        let result = tokio::spawn(async move { client.send(request).await })
            .await
            .map_err(|e| {
                self.protocol_error(if e.is_panic() {
                    "the response could not be parsed (parser panicked)".to_string()
                } else {
                    e.to_string()
                })
            })?;
        result.map_err(|e| self.ipp_error(e))
    }

    fn ipp_error(&self, err: IppError) -> ClientError {
        let printer = self.display.clone();
        match err {
            IppError::RequestError(status) => ClientError::Http {
                printer,
                status,
                hint: http_hint(status),
            },
            IppError::ParseError(e) => ClientError::Protocol {
                printer,
                reason: e.to_string(),
            },
            IppError::StatusError(code) => ClientError::Ipp {
                operation: "request",
                status: IppStatus {
                    code: code as u16,
                    message: None,
                    unsupported: Vec::new(),
                },
            },
            IppError::IoError(e) => ClientError::Unreachable {
                printer,
                reason: e.to_string(),
            },
            other => {
                let mut reason = error_chain(&other);
                // A self-signed printer (every appliance out of the box) is unknown to the
                // system's trust store: say how to trust it.
                if self.target.scheme_str() == Some("ipps")
                    && reason.to_ascii_lowercase().contains("certificate")
                    && self.ca_cert.is_none()
                {
                    reason.push_str(
                        " (to trust the printer's own certificate, pass it with --cacert FILE; \
                         an appliance's is STATE_DIR/tls/certificate.pem)",
                    );
                }
                ClientError::Unreachable { printer, reason }
            }
        }
    }
}

fn http_hint(status: u16) -> &'static str {
    match status {
        400 => " (Bad Request)",
        401 => " (Unauthorized: sign in with -U USER over ipps://, or check the user name and password)",
        403 => " (Forbidden)",
        404 => " (Not Found: is the path in the printer URI right? IPP Everywhere uses /ipp/print)",
        405 => " (Method Not Allowed: is this an IPP printer?)",
        413 => " (Payload Too Large: the document is too big for this printer)",
        426 => " (Upgrade Required: the printer wants TLS, try ipps://)",
        500 => " (Internal Server Error)",
        503 => " (Service Unavailable)",
        _ => "",
    }
}

/// `outer: inner: innermost`, skipping messages that merely repeat the next one, so that the root
/// cause ("Connection refused") is visible without reqwest's wrapping noise dominating.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.retain(|p| !text.contains(p.as_str()));
            parts.push(text);
        }
        current = e.source();
    }
    // reqwest's and hyper's outer layers only say which URL failed ("error sending request for
    // url (...)", "client error (Connect)"): the caller already names the printer.
    while parts.len() > 1
        && (parts[0].starts_with("error sending request") || parts[0].starts_with("client error ("))
    {
        parts.remove(0);
    }
    tracing::debug!("transport error: {}", parts.join(": "));
    sanitize(&parts.join(": "))
}

/// Adds `requested-attributes` (a 1setOf keyword) to the operation attributes.
fn add_requested_attributes(request: &mut IppRequestResponse, names: &[&str]) {
    let values = names
        .iter()
        .map(|n| IppValue::Keyword(IppKeyword::new_truncated(*n)))
        .collect();
    request.attributes_mut().add(
        DelimiterTag::OperationAttributes,
        IppAttribute::new(
            IppAttributeName::REQUESTED_ATTRIBUTES,
            IppValue::Array(values),
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------------

/// `document-format` from the file extension.
fn document_format_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "pwg" => "image/pwg-raster",
        "urf" => "image/urf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

async fn open_document(path: &Path) -> Result<tokio::fs::File, ClientError> {
    let file_error = |source| ClientError::File {
        path: path.to_path_buf(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(file_error)?;
    let metadata = file.metadata().await.map_err(file_error)?;
    if !metadata.is_file() {
        return Err(file_error(io::Error::other("not a regular file")));
    }
    Ok(file)
}

/// `requesting-user-name`: `$USER`, else `$LOGNAME`, else the name of the real user id's
/// account (what `lp` sends; systemd services, cron and `sudo -i` may set neither variable), and
/// only when there is no such account `anonymous`.
fn requesting_user_name() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .chain(account_name())
        .map(|u| truncate_utf8(u.trim(), 255).to_string())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| "anonymous".to_string())
}

/// The login name of the real user id (getpwuid_r, POSIX).
fn account_name() -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain data; getpwuid_r writes into it and into `buf` (whose length it is
    // given) and sets `result` to it on success, or to null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}

/// The password for `-U user`: asked for on the terminal without echo, else the first line of
/// standard input (for scripts: `printf '%s\n' "$PW" | printbridge print -U alice ...`).
fn read_password(user: &str) -> Result<String, ClientError> {
    use std::io::BufRead;
    let password = if io::stdin().is_terminal() {
        crate::auth::cli::prompt_hidden(&format!("Password for {user}: "))
            .map_err(|e| ClientError::Password(e.to_string()))?
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| ClientError::Password(e.to_string()))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        return Err(ClientError::Password("no password given".into()));
    }
    Ok(password)
}

/// The ipp client's HTTPS (reqwest with rustls, built without a provider of its own) uses the
/// ring provider the rest of the crate uses; installed once per process.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Already installed (by this process's other TLS users): that one is fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Printer-supplied text for the terminal: control characters (escape sequences!) become '?'.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The text of a string-like value, sanitized; None for other types.
fn value_text(value: &IppValue) -> Option<String> {
    let text = match value {
        IppValue::TextWithoutLanguage(t) => t.as_ref().to_string(),
        IppValue::TextWithLanguage { text, .. } => text.as_ref().to_string(),
        IppValue::NameWithoutLanguage(n) => n.to_string(),
        IppValue::NameWithLanguage { name, .. } => name.to_string(),
        IppValue::Keyword(k) => k.to_string(),
        IppValue::Uri(u) => u.to_string(),
        IppValue::MimeMediaType(m) => m.to_string(),
        IppValue::Integer(i) | IppValue::Enum(i) => i.to_string(),
        IppValue::Boolean(b) => b.to_string(),
        IppValue::RangeOfInteger { min, max } => format!("{min}-{max}"),
        IppValue::Resolution {
            cross_feed,
            feed,
            units,
        } => {
            let units = if *units == 4 { "dpcm" } else { "dpi" };
            if cross_feed == feed {
                format!("{cross_feed}{units}")
            } else {
                format!("{cross_feed}x{feed}{units}")
            }
        }
        _ => return None,
    };
    Some(sanitize(&text))
}

fn int_attr(group: &IppAttributeGroup, name: &str) -> Option<i32> {
    match group.get(name)?.value() {
        IppValue::Integer(i) | IppValue::Enum(i) => Some(*i),
        _ => None,
    }
}

fn text_attr(group: &IppAttributeGroup, name: &str) -> Option<String> {
    value_text(group.get(name)?.value())
}

fn strings_attr(group: &IppAttributeGroup, name: &str) -> Vec<String> {
    group
        .get(name)
        .map(|a| a.value().into_iter().filter_map(value_text).collect())
        .unwrap_or_default()
}

/// stdout that knows whether it is a terminal and treats a closed pipe (`| head`) as "stop
/// writing" rather than as an error.
struct Output {
    is_tty: bool,
    closed: bool,
}

impl Output {
    fn stdout() -> Output {
        Output {
            is_tty: io::stdout().is_terminal(),
            closed: false,
        }
    }

    fn line(&mut self, line: &str) -> Result<(), ClientError> {
        self.raw(&format!("{line}\n"))
    }

    fn raw(&mut self, text: &str) -> Result<(), ClientError> {
        if self.closed {
            return Ok(());
        }
        let mut stdout = io::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(ClientError::Output(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_state_reasons_are_explained_in_words() {
        assert_eq!(
            reason_words("media-empty-error"),
            "out of paper (error) [media-empty-error]"
        );
        assert_eq!(
            reason_words("toner-low-warning"),
            "toner is low (warning) [toner-low-warning]"
        );
        assert_eq!(
            reason_words("connecting-to-device"),
            "connecting to the output device [connecting-to-device]"
        );
        assert_eq!(
            reason_words("offline-report"),
            "the output device cannot be reached [offline-report]"
        );
        // Unknown keywords are kept as they are, control characters replaced.
        assert_eq!(reason_words("vendor-thing"), "vendor-thing");
        assert_eq!(reason_words("bad\u{1b}[2J"), "bad?[2J");
        assert_eq!(printer_state_words(5), "stopped");
    }

    fn attr(option: &str) -> IppAttribute {
        match parse_option(option).unwrap() {
            JobOption::Attribute(a) => a,
            other => panic!("{option}: {other:?}"),
        }
    }

    fn err(option: &str) -> String {
        parse_option(option).unwrap_err().to_string()
    }

    #[test]
    fn options_get_sensible_ipp_types() {
        assert_eq!(attr("copies=2").value(), &IppValue::Integer(2));
        assert_eq!(attr("number-up=4").value(), &IppValue::Integer(4));
        assert_eq!(
            attr("sides=two-sided-long-edge").value(),
            &IppValue::new_keyword("two-sided-long-edge").unwrap()
        );
        assert_eq!(
            attr("media=iso_a4_210x297mm").value(),
            &IppValue::new_keyword("iso_a4_210x297mm").unwrap()
        );
        assert_eq!(
            attr("print-color-mode=monochrome").value(),
            &IppValue::new_keyword("monochrome").unwrap()
        );
        assert_eq!(
            attr("page-ranges=1-3").value(),
            &IppValue::RangeOfInteger { min: 1, max: 3 }
        );
        assert_eq!(
            attr("page-ranges=5").value(),
            &IppValue::RangeOfInteger { min: 5, max: 5 }
        );
        assert_eq!(
            attr("page-ranges=1-3,5,7-").value(),
            &IppValue::Array(vec![
                IppValue::RangeOfInteger { min: 1, max: 3 },
                IppValue::RangeOfInteger { min: 5, max: 5 },
                IppValue::RangeOfInteger {
                    min: 7,
                    max: i32::MAX
                },
            ])
        );
        assert_eq!(
            attr("orientation-requested=landscape").value(),
            &IppValue::Enum(4)
        );
        assert_eq!(attr("print-quality=5").value(), &IppValue::Enum(5));
        assert_eq!(
            attr("finishings=staple,punch").value(),
            &IppValue::Array(vec![IppValue::Enum(4), IppValue::Enum(5)])
        );
        assert_eq!(
            attr("printer-resolution=600x300dpi").value(),
            &IppValue::Resolution {
                cross_feed: 600,
                feed: 300,
                units: 3
            }
        );
        assert_eq!(attr("fit-to-page=true").value(), &IppValue::Boolean(true));
        assert_eq!(
            attr("job-account-id=Dept 42").value(),
            &IppValue::new_name_without_language("Dept 42").unwrap()
        );
        assert_eq!(attr("copies=2").name().as_str(), "copies");
    }

    #[test]
    fn garbage_options_are_rejected_locally() {
        assert!(err("Copies=2").contains("attribute names are lowercase"));
        assert!(err("copies").contains("expected name=value"));
        assert!(err("=2").contains("attribute names"));
        assert!(err("1up=2").contains("attribute names"));
        assert!(err("co pies=2").contains("attribute names"));
        assert!(err("copies=").contains("empty"));
        assert!(err("copies=two").contains("not an integer"));
        assert!(err("copies=99999999999").contains("not an integer"));
        assert!(err("copies=-1").contains("not an integer"));
        assert!(err("page-ranges=3-1").contains("page range"));
        assert!(err("page-ranges=0-1").contains("numbered from 1"));
        assert!(err("sides=Two Sided").contains("not a keyword"));
        assert!(err("media=a4\x1b[2J").contains("control characters"));
        assert!(err("orientation-requested=sideways").contains("neither a number"));
        assert!(err("job-name=x").contains("-t/--title"));
        assert!(err("requesting-user-name=root").contains("$USER"));
        assert!(err("number-up=1,two").contains("not an integer"));
        assert!(err("foo=1,bar").contains("same type"));
        assert!(err("foo=1,,2").contains("empty list element"));
        assert!(err("document-format=pdf").contains("MIME type"));
        assert!(err("Copies=2").starts_with("bad option 'Copies=2': "));
    }

    #[test]
    fn document_format_override() {
        match parse_option("document-format=application/pdf").unwrap() {
            JobOption::DocumentFormat(f) => assert_eq!(f, "application/pdf"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn document_format_from_extension() {
        for (file, format) in [
            ("a.pdf", "application/pdf"),
            ("a.PDF", "application/pdf"),
            ("a.jpg", "image/jpeg"),
            ("a.jpeg", "image/jpeg"),
            ("a.png", "image/png"),
            ("a.pwg", "image/pwg-raster"),
            ("a.urf", "image/urf"),
            ("a.txt", "text/plain"),
            ("a.doc", "application/octet-stream"),
            ("README", "application/octet-stream"),
        ] {
            assert_eq!(document_format_for(Path::new(file)), format, "{file}");
        }
    }

    #[test]
    fn printer_uris_are_checked_and_normalized() {
        let target = |uri: &str| Printer::new(uri).unwrap().target.to_string();
        assert_eq!(
            target("ipp://localhost:8631/ipp/print"),
            "ipp://localhost:8631/ipp/print"
        );
        assert_eq!(
            target("ipp://printer.local/ipp/print"),
            "ipp://printer.local:631/ipp/print"
        );
        assert_eq!(
            target("http://10.0.0.5/ipp/print"),
            "ipp://10.0.0.5:80/ipp/print"
        );
        assert_eq!(
            target("https://10.0.0.5/ipp/print"),
            "ipps://10.0.0.5:443/ipp/print"
        );
        assert_eq!(
            target("ipp://[::1]:631/ipp/print"),
            "ipp://[::1]:631/ipp/print"
        );
        for bad in [
            "localhost:631",
            "ftp://x/y",
            "ipp:///ipp/print",
            "ipp://u:p@h/ipp/print",
            "",
        ] {
            let e = Printer::new(bad).err().unwrap().to_string();
            assert!(e.starts_with("bad printer URI"), "{bad}: {e}");
        }
    }

    #[test]
    fn status_display_has_name_and_message() {
        let status = IppStatus {
            code: crate::codec::ipp_status::DOCUMENT_FORMAT_NOT_SUPPORTED,
            message: Some("Unsupported format \"text/plain\".".into()),
            unsupported: vec![],
        };
        assert_eq!(
            ClientError::Refused(status).to_string(),
            "printer refused job: client-error-document-format-not-supported: \
             Unsupported format \"text/plain\"."
        );
        let unknown = IppStatus {
            code: 0x04ff,
            message: None,
            unsupported: vec!["x=y".into()],
        };
        assert_eq!(unknown.to_string(), "status 0x04ff (unsupported: x=y)");
    }

    #[test]
    fn progress_lines() {
        let status = JobStatus {
            state: Some(5),
            reasons: vec!["job-printing".into()],
            message: None,
            impressions: Some(3),
        };
        assert_eq!(
            status.progress_line(12),
            "job 12: processing (job-printing) 3 pages"
        );
        let aborted = JobStatus {
            state: Some(8),
            reasons: vec!["aborted-by-system".into()],
            message: Some("Unable to print".into()),
            impressions: None,
        };
        assert_eq!(
            ClientError::JobFailed {
                id: 3,
                state: "aborted",
                detail: aborted.failure_detail()
            }
            .to_string(),
            "job 3 aborted: Unable to print (aborted-by-system)"
        );
    }

    #[test]
    fn table_is_aligned() {
        let rows = vec![
            [
                "1".to_string(),
                "completed".into(),
                "alice".into(),
                "report.pdf".into(),
            ],
            [
                "12".to_string(),
                "processing".into(),
                "bob".into(),
                "x".into(),
            ],
        ];
        assert_eq!(
            format_table(["ID", "STATE", "USER", "NAME"], &rows),
            vec![
                "ID  STATE       USER   NAME",
                "1   completed   alice  report.pdf",
                "12  processing  bob    x",
            ]
        );
    }

    #[test]
    fn sanitize_strips_escape_sequences() {
        assert_eq!(sanitize("a\x1b[2Jb\nc"), "a?[2Jb?c");
        assert_eq!(truncate_utf8("héllo", 2), "h");
    }
}

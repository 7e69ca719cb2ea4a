//! The pages (askama templates in `templates/web/`) and the plain view data they show, built from
//! the printer and the spool. Job names and owners appear only on the administration page, as
//! job-privacy-scope "owner" hides them from other users over IPP.

use askama::Template;

use crate::ipp_printer::Printer;
use crate::model::job::JobState;
use crate::model::printer::Description;
use crate::spool::Job;

/// Finished jobs shown on the status page.
const RECENT_JOBS: usize = 10;

/// The printer's state as people read it.
pub struct PrinterView {
    pub state_label: &'static str,
    /// CSS class suffix: idle, processing, stopped.
    pub state_class: &'static str,
    pub reasons: Vec<String>,
    /// printer-state-message when the device has something to say (why jobs wait), else empty.
    pub message: String,
    /// Why the queue is power saving (its cloud Proxy fetches no jobs), in a sentence.
    pub power_saving: Option<String>,
    pub accepting: bool,
    pub location: String,
    pub info: String,
    pub organization: String,
    pub make_and_model: String,
    pub uris: Vec<String>,
    pub needs_password: bool,
}

impl PrinterView {
    pub fn of(printer: &Printer, host: &str) -> PrinterView {
        let desc = printer.description();
        let (state, reasons) = printer.printer_state();
        let accepting = printer.status.read().expect("printer lock").accepting;
        let (mut state_label, state_class) = state_words(state, &reasons);
        if state == 3 && state_label == "Ready" && printer.power_saving().is_some() {
            // Idle and taking local jobs; only the cloud's are not fetched.
            state_label = "Power saving";
        }
        let resource = &printer.config.resource;
        let mut uris = vec![format!("ipp://{host}{resource}")];
        if printer.config.tls {
            uris.push(format!("ipps://{host}{resource}"));
        }
        PrinterView {
            state_label,
            state_class,
            reasons: reasons.iter().filter_map(|r| reason_text(r)).collect(),
            message: printer
                .status
                .read()
                .expect("printer lock")
                .device_message
                .clone(),
            power_saving: printer
                .power_saving()
                .map(|why| crate::ipp_printer::power_saving_message(&why)),
            accepting,
            location: if desc.location.trim().is_empty() {
                "Not set".to_string()
            } else {
                desc.location
            },
            info: desc.info,
            organization: desc.organization,
            make_and_model: printer.caps().make_and_model.clone(),
            uris,
            needs_password: printer.config.print_requires_auth,
        }
    }
}

/// printer-state as people read it, and its CSS class suffix (idle, processing, warning,
/// stopped). Stopped by our own Pause-Printer reads "Paused"; stopped because the device stopped,
/// "Stopped". An idle or printing queue whose device cannot be reached is not "Ready": RFC 8011
/// §5.4.11 keeps printer-state idle then (the queue still takes jobs), and the reasons
/// (`offline-report`, `connecting-to-device`, `other-warning`) say what the people need to know.
fn state_words(state: i32, reasons: &[String]) -> (&'static str, &'static str) {
    let has = |k: &str| reasons.iter().any(|r| r == k);
    match state {
        3 | 4 if has("offline-report") => ("Cannot reach the printer", "warning"),
        3 | 4 if has("other-warning") => ("Retrying", "warning"),
        3 | 4 if has("connecting-to-device") => ("Connecting to the printer", "processing"),
        3 => ("Ready", "idle"),
        4 => ("Printing", "processing"),
        // error_policy stop-printer paused the queue, not an administrator.
        _ if has("other-error") => ("Stopped", "stopped"),
        _ if has("paused") => ("Paused", "stopped"),
        _ => ("Stopped", "stopped"),
    }
}

/// Another queue of the same appliance, as a link on a status page.
pub struct QueueLink {
    pub name: String,
    /// Its resource path, which is also its status page.
    pub path: String,
    pub state_label: &'static str,
    pub state_class: &'static str,
    /// The queue whose page this is.
    pub current: bool,
}

impl QueueLink {
    pub fn of(printer: &Printer, current: bool) -> QueueLink {
        let (state, reasons) = printer.printer_state();
        let (state_label, state_class) = state_words(state, &reasons);
        QueueLink {
            name: printer.description().name,
            path: printer.config.resource.clone(),
            state_label,
            state_class,
            current,
        }
    }
}

/// A printer-state-reasons keyword (RFC 8011 §5.4.12, PWG 5100.9) as a sentence; `None` for
/// `none`. The severity suffix (-report, -warning, -error) is said in words; a keyword not known
/// here is shown as words built from it, so nothing the device says is lost.
fn reason_text(keyword: &str) -> Option<String> {
    let r = crate::model::printer::reason_words(keyword)?;
    let words = match r.words {
        Some(w) => w.to_string(),
        None => format!("{}{}", r.base.replace('-', " "), r.severity),
    };
    let mut chars = words.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

/// One job as a table row.
pub struct JobView {
    pub id: u32,
    /// The job's own page: its job-uri path (`/ipp/print/17`), which a browser GETs.
    pub link: String,
    /// `None` where the viewer may not see it (job privacy).
    pub name: Option<String>,
    pub owner: Option<String>,
    pub state_label: &'static str,
    /// CSS class suffix.
    pub state_class: &'static str,
    pub printing: bool,
    /// Pages printed (of how many, while printing), empty when not known.
    pub pages: String,
    /// The documents' size.
    pub size: String,
    /// Why an aborted or stopped job ended or waits (its job-state-message), else empty.
    pub reason: String,
    pub created: String,
    pub finished: String,
}

impl JobView {
    fn of(job: &Job, private_visible: bool, resource: &str) -> JobView {
        let s = &job.status;
        let (state_label, state_class) = match s.state {
            JobState::Pending => ("Waiting", "pending"),
            JobState::PendingHeld => ("Held", "held"),
            JobState::Processing => ("Printing", "processing"),
            JobState::ProcessingStopped => ("Stopped", "stopped"),
            JobState::Canceled => ("Canceled", "canceled"),
            JobState::Aborted => ("Aborted", "aborted"),
            JobState::Completed => ("Completed", "completed"),
        };
        let count = |n: u32| match n {
            1 => "1 page".to_string(),
            n => format!("{n} pages"),
        };
        // job-pages-completed counts document pages (copies included); impressions are what
        // a device that reports no pages told us.
        let done = s.pages_completed.max(s.impressions_completed);
        let pages = match s.state {
            _ if s.incoming => "Receiving".to_string(),
            JobState::Processing if s.pages > 0 => format!("{done} of {}", count(s.pages)),
            JobState::Processing if done > 0 => format!("{} printed", count(done)),
            JobState::Processing => "Starting".to_string(),
            _ if done > 0 => count(done),
            _ if s.pages > 0 && !s.state.is_terminal() => count(s.pages),
            _ => String::new(),
        };
        let size = format_size(job.documents.iter().map(|d| d.size).sum());
        let reason = match s.state {
            // The message of a job waiting for its PIN may be the PIN the appliance assigned:
            // its owner's only (docs/release.md).
            JobState::PendingHeld
                if !private_visible
                    && s.reasons
                        .iter()
                        .any(|r| r == crate::model::release::JOB_PASSWORD_WAIT) =>
            {
                String::new()
            }
            JobState::Aborted | JobState::ProcessingStopped | JobState::PendingHeld => {
                s.message.clone().unwrap_or_default()
            }
            _ => String::new(),
        };
        JobView {
            id: job.id,
            link: format!("{resource}/{}", job.id),
            name: private_visible.then(|| job.name.clone()),
            owner: private_visible.then(|| job.owner.clone()),
            state_label,
            state_class,
            printing: s.state == JobState::Processing,
            pages,
            size,
            reason,
            created: format_time(job.time_created),
            finished: s.time_completed.map(format_time).unwrap_or_default(),
        }
    }
}

pub(super) fn format_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{} KiB", b.div_ceil(1024)),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn format_time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// Active jobs in print order, and the most recent finished jobs, newest first.
pub fn jobs(printer: &Printer, private_visible: bool) -> (Vec<JobView>, Vec<JobView>) {
    let resource = &printer.config.resource;
    let all = printer.spool.list();
    let queue = all
        .iter()
        .filter(|j| !j.status.state.is_terminal())
        .map(|j| JobView::of(j, private_visible, resource))
        .collect();
    let recent = finished_newest_first(&all)
        .into_iter()
        .take(RECENT_JOBS)
        .map(|j| JobView::of(j, private_visible, resource))
        .collect();
    (queue, recent)
}

fn finished_newest_first(all: &[std::sync::Arc<Job>]) -> Vec<&Job> {
    let mut finished: Vec<&Job> = all
        .iter()
        .filter(|j| j.status.state.is_terminal())
        .map(|j| j.as_ref())
        .collect();
    finished.sort_by_key(|j| std::cmp::Reverse((j.status.time_completed, j.id)));
    finished
}

/// Finished jobs per page of the history.
pub const HISTORY_PAGE: usize = 25;

/// Page `page` (1-based) of the finished jobs, newest first, and whether older ones follow.
pub fn history(printer: &Printer, page: usize) -> (Vec<JobView>, bool) {
    let resource = &printer.config.resource;
    let all = printer.spool.list();
    let finished = finished_newest_first(&all);
    let skip = page.saturating_sub(1).saturating_mul(HISTORY_PAGE);
    let jobs = finished
        .iter()
        .skip(skip)
        .take(HISTORY_PAGE)
        .map(|j| JobView::of(j, false, resource))
        .collect();
    (jobs, finished.len() > skip.saturating_add(HISTORY_PAGE))
}

#[derive(Template)]
#[template(path = "web/history.html")]
pub struct HistoryPage {
    pub printer_name: String,
    pub version: &'static str,
    /// The queue's status page.
    pub status_path: String,
    pub page: usize,
    pub jobs: Vec<JobView>,
    /// Links to the newer and older pages, when there are such.
    pub newer: Option<String>,
    pub older: Option<String>,
}

/// One job's page: what the status page's row says, and when and what.
#[derive(Template)]
#[template(path = "web/job.html")]
pub struct JobPage {
    pub printer_name: String,
    pub version: &'static str,
    pub status_path: String,
    pub job: JobView,
    /// When printing started, empty when it did not.
    pub started: String,
    /// Each document's format (names are private, as job names are).
    pub documents: Vec<String>,
    /// job-state-reasons in words.
    pub reasons: Vec<String>,
}

impl JobPage {
    pub fn of(printer: &Printer, job: &Job) -> JobPage {
        let resource = &printer.config.resource;
        JobPage {
            printer_name: printer.description().name,
            version: VERSION,
            status_path: resource.clone(),
            job: JobView::of(job, false, resource),
            started: job
                .status
                .time_processing
                .map(format_time)
                .unwrap_or_default(),
            documents: job
                .documents
                .iter()
                .map(|d| format!("{} ({})", d.format, format_size(d.size)))
                .collect(),
            reasons: job
                .status
                .reasons
                .iter()
                .filter(|r| r.as_str() != "none")
                .map(|r| job_reason_text(r))
                .collect(),
        }
    }
}

/// A job-state-reasons keyword (RFC 8011 §5.3.8) in words; others as words built from it.
fn job_reason_text(keyword: &str) -> String {
    match keyword {
        "job-completed-successfully" => "Printed".to_string(),
        "job-canceled-by-user" => "Canceled by its owner".to_string(),
        "job-canceled-by-operator" => "Canceled by an administrator".to_string(),
        "aborted-by-system" => "Stopped by the printer".to_string(),
        "job-hold-until-specified" => "Held until released".to_string(),
        "job-printing" => "Printing".to_string(),
        "job-incoming" => "Receiving the documents".to_string(),
        "document-format-error" => "A document is damaged or not what it says it is".to_string(),
        "document-unprintable-error" => "A document cannot be printed".to_string(),
        other => reason_text(other).unwrap_or_default(),
    }
}

pub struct SupplyView {
    pub name: &'static str,
    pub level: u8,
}

pub fn supplies(printer: &Printer) -> Vec<SupplyView> {
    vec![SupplyView {
        name: "Spool storage (free space)",
        level: printer.config.storage_free.percent(),
    }]
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Template)]
#[template(path = "web/status.html")]
pub struct StatusPage {
    pub printer_name: String,
    pub version: &'static str,
    pub printer: PrinterView,
    pub queue: Vec<JobView>,
    pub recent: Vec<JobView>,
    /// The queue's finished jobs, a page at a time.
    pub history_path: String,
    pub supplies: Vec<SupplyView>,
    /// Every queue of the appliance (empty when it has only one).
    pub queues: Vec<QueueLink>,
    /// An identification asked for by the cloud, shown for a while (`Printer::identify_for`).
    pub identify: Option<String>,
    /// A queue of the appliance holds jobs for release: link to the release page (issue 18).
    pub release_link: bool,
}

#[derive(Template)]
#[template(path = "web/admin.html")]
pub struct AdminPage {
    pub printer_name: String,
    pub version: &'static str,
    pub printer: PrinterView,
    pub paused: bool,
    pub queue: Vec<JobView>,
    pub desc: Description,
    pub csrf: String,
    pub user: String,
    pub notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "web/message.html")]
pub struct MessagePage {
    pub printer_name: String,
    pub version: &'static str,
    pub heading: String,
    pub text: String,
    pub hint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_reasons_read_well() {
        assert_eq!(format_size(10), "10 bytes");
        assert_eq!(format_size(1500), "2 KiB");
        assert_eq!(format_size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(reason_text("none"), None);
        assert_eq!(
            reason_text("paused").as_deref(),
            Some("Paused by an administrator")
        );
        assert_eq!(
            reason_text("offline-report").as_deref(),
            Some("The output device cannot be reached")
        );
        assert_eq!(reason_text("media-jam-error").as_deref(), Some("Paper jam"));
        // Unknown keywords become words, with their severity.
        assert_eq!(
            reason_text("fuser-over-temp-warning").as_deref(),
            Some("Fuser over temp (warning)")
        );
        let words =
            |r: &[&str]| state_words(3, &r.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["none"]), ("Ready", "idle"));
        assert_eq!(
            words(&["connecting-to-device", "offline-report"]),
            ("Cannot reach the printer", "warning")
        );
        assert_eq!(
            words(&["connecting-to-device"]),
            ("Connecting to the printer", "processing")
        );
    }

    #[test]
    fn message_page_escapes_text() {
        let page = MessagePage {
            printer_name: "<b>p</b>".into(),
            version: VERSION,
            heading: "h".into(),
            text: "<script>".into(),
            hint: None,
        }
        .render()
        .unwrap();
        assert!(!page.contains("<b>p</b>"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("p&#60;/b&#62;") || page.contains("p&lt;/b&gt;"),
            "{page}"
        );
    }
}

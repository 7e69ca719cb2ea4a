//! Helpers shared by the output-device tests (device_ipp.rs, device_socket.rs): an appliance started
//! with a device URI, and Debian's ipptool to submit jobs and read printer and job state.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{self, Appliance};

/// Starts `printbridge serve` whose queue prints on `device_uri`, with `extra` lines for the
/// `[printer]` section of its configuration file.
pub fn appliance_with_device(state: &Path, device_uri: &str, extra: &str) -> Appliance {
    let config = state.join("printbridge.toml");
    fs::create_dir_all(state).unwrap();
    // A short device timeout unless `extra` sets its own.
    let timeout = if extra.contains("device_timeout_seconds") {
        ""
    } else {
        "device_timeout_seconds = 5\n"
    };
    fs::write(
        &config,
        format!(
            "[server]\ntls = false\n\n[dnssd]\nbackend = \"off\"\n\n[printer]\n\
             device_uri = \"{device_uri}\"\n{timeout}{extra}\n"
        ),
    )
    .unwrap();
    Appliance::start(state, &["--config", config.to_str().unwrap()])
}

fn ipptool(args: &[&str], test: &str, vars: &[(&str, &str)]) -> String {
    common::ipptool::run_text(&["-t"], args, test, vars)
}

use common::ipptool::displayed;

/// Print-Job of `file` as `format` through ipptool; returns the job id.
pub fn print_job(printer_uri: &str, file: &Path, format: &str, name: &str) -> u32 {
    print_job_with(printer_uri, file, format, name, "")
}

/// Print-Job with more ipptool lines in its job-template group, e.g.
/// `ATTR keyword print-color-mode monochrome`.
pub fn print_job_with(
    printer_uri: &str,
    file: &Path,
    format: &str,
    name: &str,
    template: &str,
) -> u32 {
    let template = if template.is_empty() {
        String::new()
    } else {
        format!("  GROUP job-attributes-tag\n  {template}\n")
    };
    let test = r#"{
  NAME "Print-Job"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name tester
  ATTR name job-name $jobname
  ATTR mimeMediaType document-format $format
TEMPLATE  FILE $filename
  STATUS successful-ok
  EXPECT job-id
  DISPLAY job-id
}
"#
    .replace("TEMPLATE", &template);
    let out = ipptool(
        &["-f", file.to_str().unwrap(), printer_uri],
        &test,
        &[("jobname", name), ("format", format)],
    );
    displayed(&out, "job-id")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Print-Job to {printer_uri} failed:\n{out}"))
}

/// printer-state-reasons and printer-state-message of a printer.
pub fn printer_condition(printer_uri: &str) -> (Vec<String>, String) {
    let out = ipptool(
        &[printer_uri],
        r#"{
  NAME "Get-Printer-Attributes"
  OPERATION Get-Printer-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR keyword requested-attributes printer-state-reasons,printer-state-message
  STATUS successful-ok
  DISPLAY printer-state-reasons
  DISPLAY printer-state-message
}
"#,
        &[],
    );
    let reasons = displayed(&out, "printer-state-reasons")
        .unwrap_or_else(|| panic!("Get-Printer-Attributes of {printer_uri} failed:\n{out}"));
    (
        reasons.split(',').map(str::to_string).collect(),
        displayed(&out, "printer-state-message").unwrap_or_default(),
    )
}

/// job-state (3 pending ... 9 completed) and job-state-reasons of a job, `None` when ipptool got
/// no answer (the printer is down).
pub fn job_state(printer_uri: &str, job_id: u32) -> Option<(i32, String)> {
    let out = ipptool(
        &[printer_uri],
        r#"{
  NAME "Get-Job-Attributes"
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $jobid
  ATTR name requesting-user-name tester
  ATTR keyword requested-attributes job-state,job-state-reasons
  STATUS successful-ok
  DISPLAY job-state
  DISPLAY job-state-reasons
}
"#,
        &[("jobid", &job_id.to_string())],
    );
    let state = displayed(&out, "job-state")?;
    let state = match state.as_str() {
        "pending" => 3,
        "pending-held" => 4,
        "processing" => 5,
        "processing-stopped" => 6,
        "canceled" => 7,
        "aborted" => 8,
        "completed" => 9,
        other => other.parse().ok()?,
    };
    Some((
        state,
        displayed(&out, "job-state-reasons").unwrap_or_default(),
    ))
}

/// Waits until job `id` is terminal; returns its state and reasons.
pub fn wait_job_done(printer_uri: &str, id: u32, timeout: Duration) -> Option<(i32, String)> {
    let mut last = None;
    common::wait_until(timeout, || {
        last = job_state(printer_uri, id);
        matches!(last, Some((s, _)) if s >= 7)
    });
    last.filter(|(s, _)| *s >= 7)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Cancel-Job of job `id` as the user who submitted it; whether the printer said OK.
pub fn cancel_job(printer_uri: &str, id: u32) -> bool {
    let out = ipptool(
        &[printer_uri],
        r#"{
  NAME "Cancel-Job"
  OPERATION Cancel-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $jobid
  ATTR name requesting-user-name tester
  STATUS successful-ok
}
"#,
        &[("jobid", &id.to_string())],
    );
    out.contains("[PASS]")
}

/// Get-Printer-Attributes of `names` through ipptool: each attribute the printer returned, as
/// ipptool shows its value (the values of a 1setOf joined by commas). Panics when the printer
/// does not answer.
pub fn printer_attributes(
    printer_uri: &str,
    names: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let displays: String = names.iter().map(|n| format!("  DISPLAY {n}\n")).collect();
    let out = ipptool(
        &[printer_uri],
        &format!(
            r#"{{
  NAME "Get-Printer-Attributes"
  OPERATION Get-Printer-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR keyword requested-attributes {}
  STATUS successful-ok
{displays}}}
"#,
            names.join(",")
        ),
        &[],
    );
    assert!(
        out.contains("[PASS]"),
        "Get-Printer-Attributes of {printer_uri} failed:\n{out}"
    );
    names
        .iter()
        .filter_map(|n| displayed(&out, n).map(|v| (n.to_string(), v)))
        .collect()
}

/// A graceful stop: SIGTERM to the appliance, then waits for it to exit. Returns whether it
/// exited within `timeout` (it is killed otherwise, so the test can go on to say so).
pub fn sigterm_and_wait(appliance: &mut Appliance, timeout: Duration) -> bool {
    let pid = appliance.child.id();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -TERM {pid} failed");
    let exited = common::wait_until(timeout, || {
        matches!(appliance.child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        appliance.kill9();
    }
    exited
}

//! Documents that must not stop the printer (issue 11 items 3, 4 and 8), sent with Debian's ipptool
//! to a running appliance (`printbridge serve`, file output in PDF mode):
//!
//! - decompression bombs (gzip and deflate bodies inflating to 2 GiB and 300 MB, generated here by
//!   streaming zeros through a compressor, and a PDF whose content stream inflates to 1 GiB): the
//!   server's peak resident memory (VmHWM) stays under [`PEAK_RSS_BOUND`], each job is aborted
//!   with a reason that says what happened, and the server keeps printing;
//! - raster headers whose width × height overflowed the size arithmetic (PWG and the 47-byte URF
//!   found by fuzzing) abort their job naming the limit, and the next job prints;
//! - a render that panics aborts its job, and the next job prints;
//! - a job that kills the process every time it is processed is aborted after
//!   `[spool] max_processing_crashes` restarts, and the job queued behind it prints.
//!
//! The panic and the crash are injected with `PRINTBRIDGE_TEST_FAULT`, which only debug builds read.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use common::{ipptool, raw_ipp, wait_until, Appliance};

/// The bound on the appliance's peak RSS stated in docs/config.md ("Documents and memory"). The
/// documents here would take 1 to 2 GiB if they were decompressed into memory.
const PEAK_RSS_BOUND: u64 = 256 << 20;

/// Faults injected by job name (see src/spool/render.rs).
const FAULTS: &str = "panic:render-panics,abort:poison";

fn start(state: &Path, extra: &[&str]) -> Appliance {
    static ONCE: Once = Once::new();
    // Every test in this file uses the same value, so setting it once for the process is safe.
    ONCE.call_once(|| std::env::set_var("PRINTBRIDGE_TEST_FAULT", FAULTS));
    Appliance::start(state, extra)
}

const PRINT_JOB: &str = r#"{
  NAME "Print-Job"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name tester
  ATTR name job-name $name
  ATTR keyword compression $compression
  ATTR mimeMediaType document-format $format
  FILE $filename
  STATUS successful-ok
  DISPLAY job-id
}"#;

/// Print-Job of `file` as sent (no compression applied here): the job id, or None when ipptool
/// got no successful answer.
fn try_print(
    app: &Appliance,
    file: &Path,
    name: &str,
    format: &str,
    compression: &str,
) -> Option<u32> {
    let out = ipptool::run_text(
        &["-t"],
        &["-f", file.to_str().unwrap(), &app.uri],
        PRINT_JOB,
        &[
            ("name", name),
            ("format", format),
            ("compression", compression),
        ],
    );
    ipptool::displayed(&out, "job-id").and_then(|id| id.parse().ok())
}

fn print(app: &Appliance, file: &Path, name: &str, format: &str, compression: &str) -> u32 {
    try_print(app, file, name, format, compression)
        .unwrap_or_else(|| panic!("Print-Job of {name} was not accepted"))
}

/// Print-Job over plain HTTP/1.1 with the compressed `file` as the document, sent as it is. ipptool
/// cannot do this: it opens documents with cupsFileOpen, which decompresses gzip files, so it would
/// send the 2 GiB of zeros and only declare `compression`.
fn print_compressed(
    app: &Appliance,
    file: &Path,
    name: &str,
    format: &str,
    compression: &str,
) -> u32 {
    let request = raw_ipp::print_job_request(
        &app.uri,
        &[
            (raw_ipp::TAG_NAME, "job-name", name.as_bytes()),
            (raw_ipp::TAG_MIME, "document-format", format.as_bytes()),
            (raw_ipp::TAG_KEYWORD, "compression", compression.as_bytes()),
        ],
        &std::fs::read(file).unwrap(),
    );
    let path = &app.uri[app.uri.find("/ipp/").expect("printer path")..];
    let ipp = raw_ipp::post(app.port, path, &request, Duration::from_secs(120));
    assert_eq!(
        raw_ipp::status(&ipp),
        0,
        "{name}: IPP status {:02x?}",
        &ipp[2..4]
    );
    raw_ipp::job_id(&ipp).expect("job-id in the response")
}

/// (job-state, job-state-reasons, job-state-message) as ipptool displays them.
fn job_status(app: &Appliance, job: u32) -> (String, String, String) {
    let attrs = ipptool::job_attributes(
        &app.uri,
        job,
        &["job-state", "job-state-reasons", "job-state-message"],
    );
    let get = |name| attrs.get(name).cloned().unwrap_or_default();
    (
        get("job-state"),
        get("job-state-reasons"),
        get("job-state-message"),
    )
}

/// Waits for `job` to end and returns its status.
fn finished(app: &Appliance, job: u32) -> (String, String, String) {
    let mut last = Default::default();
    let ended = wait_until(Duration::from_secs(240), || {
        last = job_status(app, job);
        matches!(last.0.as_str(), "completed" | "aborted" | "canceled")
    });
    assert!(ended, "job {job} did not end: {last:?}");
    last
}

fn assert_aborted(app: &Appliance, job: u32, reason: &str, message_has: &[&str]) -> String {
    let (state, reasons, message) = finished(app, job);
    assert_eq!(state, "aborted", "job {job}: {reasons} / {message}");
    assert!(
        reasons.contains(reason),
        "job {job}: reasons {reasons}, message {message}"
    );
    for part in message_has {
        assert!(
            message.contains(part),
            "job {job}: the message should say {part:?}: {message}"
        );
    }
    message
}

fn assert_prints(app: &Appliance, dir: &Path, name: &str) {
    let file = dir.join(format!("{name}.pdf"));
    std::fs::write(&file, common::one_page_pdf(name)).unwrap();
    let job = print(app, &file, name, "application/pdf", "none");
    let (state, reasons, message) = finished(app, job);
    assert_eq!(state, "completed", "{name}: {reasons} / {message}");
}

/// VmHWM (peak resident set) of a process, bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

/// Streams `prefix` and then `zeros` zero bytes through Python's zlib (gzip, zlib or raw deflate) into
/// `out`, without ever holding them: the bombs are made here, never committed.
fn compress_zeros(prefix: &[u8], zeros: u64, wrapper: &str, out: &Path) {
    let python = common::require_program("python3", "python3");
    // zlib's wbits: 31 a gzip wrapper, 15 a zlib one, -15 raw RFC 1951 (IPP's deflate).
    let wbits = match wrapper {
        "gzip" => 31,
        "deflate" => -15,
        _ => 15,
    };
    let script = format!(
        "import sys, zlib\n\
         c = zlib.compressobj(9, zlib.DEFLATED, {wbits})\n\
         f = open(sys.argv[1], 'wb')\n\
         f.write(c.compress(bytes.fromhex(sys.argv[2])))\n\
         block = bytes(1 << 20)\n\
         left = {zeros}\n\
         while left > 0:\n\
         \x20   n = min(left, len(block))\n\
         \x20   f.write(c.compress(block[:n]))\n\
         \x20   left -= n\n\
         f.write(c.flush())\n"
    );
    let hex: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
    let status = Command::new(python)
        .args(["-c", &script])
        .arg(out)
        .arg(hex)
        .status()
        .expect("run python3");
    assert!(status.success(), "generating {}", out.display());
}

/// A one-page PDF with a stream (FlateDecode, made by Python's zlib) that inflates to `size` bytes
/// of spaces, with a correct cross-reference table: the page's content stream, or (`object_stream`)
/// an object stream, which PDF readers decode while they load the file.
fn pdf_with_inflating_stream(size: u64, object_stream: bool, out: &Path) {
    let python = common::require_program("python3", "python3");
    let (contents, kind) = if object_stream {
        ("", "/Type /ObjStm /N 1 /First 4 ")
    } else {
        ("/Contents 4 0 R ", "")
    };
    let script = format!(
        "import sys, zlib\n\
         c = zlib.compressobj(9)\n\
         block = b' ' * (1 << 20)\n\
         parts = []\n\
         left = {size}\n\
         while left > 0:\n\
         \x20   n = min(left, len(block))\n\
         \x20   parts.append(c.compress(block[:n]))\n\
         \x20   left -= n\n\
         parts.append(c.flush())\n\
         stream = b''.join(parts)\n\
         objs = [b'<< /Type /Catalog /Pages 2 0 R >>',\n\
         \x20       b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>',\n\
         \x20       b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] {contents}>>',\n\
         \x20       b'<< /Length %d /Filter /FlateDecode {kind}>>\\nstream\\n' % len(stream) + stream + b'\\nendstream']\n\
         out = b'%PDF-1.4\\n'\n\
         offs = []\n\
         for i, o in enumerate(objs, 1):\n\
         \x20   offs.append(len(out))\n\
         \x20   out += b'%d 0 obj\\n' % i + o + b'\\nendobj\\n'\n\
         x = len(out)\n\
         out += b'xref\\n0 5\\n0000000000 65535 f \\n' + b''.join(b'%010d 00000 n \\n' % o for o in offs)\n\
         out += b'trailer\\n<< /Size 5 /Root 1 0 R >>\\nstartxref\\n%d\\n%%%%EOF\\n' % x\n\
         open(sys.argv[1], 'wb').write(out)\n"
    );
    let status = Command::new(python)
        .args(["-c", &script])
        .arg(out)
        .status()
        .expect("run python3");
    assert!(status.success(), "generating {}", out.display());
}

fn scratch() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    (dir, state, files)
}

#[test]
fn decompression_bombs_abort_with_reasons_in_bounded_memory() {
    let (_dir, state, files) = scratch();
    let zeros_gz = files.join("zeros-2g.gz");
    compress_zeros(b"", 2 << 30, "gzip", &zeros_gz);
    let zeros_zlib = files.join("zeros-300m.zlib");
    compress_zeros(b"", 300_000_000, "zlib", &zeros_zlib);
    let pdf_gz = files.join("pdf-2g.gz");
    compress_zeros(b"%PDF-1.4\n", 2 << 30, "gzip", &pdf_gz);
    let stream_bomb = files.join("stream-1g.pdf");
    pdf_with_inflating_stream(1 << 30, false, &stream_bomb);
    let object_stream_bomb = files.join("object-stream-1g.pdf");
    pdf_with_inflating_stream(1 << 30, true, &object_stream_bomb);
    for f in [
        &zeros_gz,
        &zeros_zlib,
        &pdf_gz,
        &stream_bomb,
        &object_stream_bomb,
    ] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len < 4 << 20, "{} is {len} bytes", f.display());
    }

    let app = start(&state, &[]);
    let pid = app.child.id();
    let zeros = [
        (&zeros_gz, "gzip", "zeros-gzip-2g"),
        (&zeros_zlib, "deflate", "zeros-deflate-300m"),
    ];
    for (file, compression, name) in zeros {
        let job = print_compressed(&app, file, name, "application/pdf", compression);
        assert_aborted(
            &app,
            job,
            "document-format-error",
            &["sent as application/pdf", "only zero bytes"],
        );
    }
    let job = print_compressed(&app, &pdf_gz, "pdf-gzip-2g", "application/pdf", "gzip");
    assert_aborted(
        &app,
        job,
        "document-format-error",
        &["too large once decompressed", "512 MiB"],
    );
    let job = print(&app, &stream_bomb, "stream-1g", "application/pdf", "none");
    assert_aborted(
        &app,
        job,
        "document-unprintable-error",
        &["page 1", "64 MiB once decompressed"],
    );
    let job = print(
        &app,
        &object_stream_bomb,
        "object-stream-1g",
        "application/pdf",
        "none",
    );
    assert_aborted(
        &app,
        job,
        "document-unprintable-error",
        &["object streams", "64 MiB once decompressed"],
    );
    // A PDF declared as PWG raster is named for what it is.
    let pdf = files.join("real.pdf");
    std::fs::write(&pdf, common::one_page_pdf("mislabelled")).unwrap();
    let job = print(&app, &pdf, "pdf-as-pwg", "image/pwg-raster", "none");
    assert_aborted(
        &app,
        job,
        "document-format-error",
        &[
            "sent as image/pwg-raster",
            "a PDF document (application/pdf)",
        ],
    );

    assert_prints(&app, &files, "after-the-bombs");
    let peak = peak_rss(pid);
    eprintln!("peak RSS of the appliance: {} MiB", peak >> 20);
    assert!(
        peak < PEAK_RSS_BOUND,
        "peak RSS {} MiB is over the bound of {} MiB",
        peak >> 20,
        PEAK_RSS_BOUND >> 20
    );
}

/// `data` compressed as IPP `compression` gzip or deflate (raw RFC 1951).
fn compress(data: &[u8], compression: &str) -> Vec<u8> {
    use std::io::Write;
    let level = flate2::Compression::default();
    if compression == "gzip" {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    } else {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
}

/// `--config FILE` for a file queue in raw mode (documents written as received, decompressed).
fn raw_output_args(dir: &Path) -> [String; 2] {
    let config = dir.join("raw.toml");
    std::fs::write(&config, "[output]\nmode = \"raw\"\n").unwrap();
    ["--config".into(), config.display().to_string()]
}

/// Raw output mode decompresses documents into the output directory: a gzip or deflate bomb
/// (3 MB sent, GiBs inflated) must stop at the converters' bound (512 MiB for a PDF) with the job
/// aborted and nothing left behind, not fill the disk; honest compressed documents still arrive
/// byte for byte, and the server keeps printing.
#[test]
fn raw_output_bounds_what_a_compressed_document_inflates_to() {
    let (dir, state, files) = scratch();
    let gzip_bomb = files.join("pdf-2g.gz");
    compress_zeros(b"%PDF-1.4\n", 2 << 30, "gzip", &gzip_bomb);
    let deflate_bomb = files.join("pdf-1g.deflate");
    compress_zeros(b"%PDF-1.7\n%", 1 << 30, "deflate", &deflate_bomb);
    for f in [&gzip_bomb, &deflate_bomb] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len < 4 << 20, "{} is {len} bytes", f.display());
    }
    let args = raw_output_args(dir.path());
    let app = start(&state, &[&args[0], &args[1]]);
    let output = app.output_dir();

    let bombs = [
        (&gzip_bomb, "gzip-bomb", "application/pdf", "gzip"),
        (
            &deflate_bomb,
            "deflate-bomb",
            "application/octet-stream",
            "deflate",
        ),
    ];
    for (file, name, format, compression) in bombs {
        let job = print_compressed(&app, file, name, format, compression);
        assert_aborted(
            &app,
            job,
            "document-format-error",
            &["too large once decompressed", "512 MiB"],
        );
        // Neither the output nor its temporary file stays behind.
        let left: Vec<_> = std::fs::read_dir(&output)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{name}: left in the output: {left:?}");
    }

    // Honest compressed documents of varied sizes pass the bound and arrive as sent.
    for (size, compression) in [(40_000usize, "gzip"), (3 << 20, "deflate")] {
        let name = format!("honest-{compression}-{size}");
        let mut pdf = common::one_page_pdf(&name);
        // After %%EOF, bytes no converter would keep: only raw output passes them on.
        pdf.extend((0..size).map(|i| (i * 7 % 251) as u8));
        let packed = files.join(format!("{name}.{compression}"));
        std::fs::write(&packed, compress(&pdf, compression)).unwrap();
        let job = print_compressed(&app, &packed, &name, "application/pdf", compression);
        let (state, reasons, message) = finished(&app, job);
        assert_eq!(state, "completed", "{name}: {reasons} / {message}");
        let written = output.join(format!("{job:06}-{name}.pdf"));
        let got = std::fs::read(&written).unwrap_or_else(|e| panic!("{}: {e}", written.display()));
        assert!(
            got == pdf,
            "{name}: the output differs from the document sent"
        );
    }
    assert_prints(&app, &files, "after-the-raw-bombs");
}

#[test]
fn raster_header_overflows_abort_with_the_limit_and_the_next_job_prints() {
    let (_dir, state, files) = scratch();
    let app = start(&state, &[]);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let urf = repo.join("fuzz/regressions/urf_decoder/width-height-overflow-47-bytes.urf");
    let pwg = repo.join("fuzz/regressions/pwg_decoder/width-height-overflow.pwg");
    let urf_job = print(&app, &urf, "urf-overflow", "image/urf", "none");
    let pwg_job = print(&app, &pwg, "pwg-overflow", "image/pwg-raster", "none");
    for job in [urf_job, pwg_job] {
        assert_aborted(
            &app,
            job,
            "document-unprintable-error",
            &["20000 pixels per line"],
        );
    }
    assert_prints(&app, &files, "after-the-overflows");
}

#[test]
fn a_panicking_render_aborts_its_job_and_the_next_job_prints() {
    let (_dir, state, files) = scratch();
    let app = start(&state, &[]);
    let pdf = files.join("doc.pdf");
    std::fs::write(&pdf, common::one_page_pdf("panic")).unwrap();
    let job = print(&app, &pdf, "render-panics", "application/pdf", "none");
    assert_aborted(
        &app,
        job,
        "job-aborted-by-system",
        &["internal error", "jobs behind it can print"],
    );
    assert_prints(&app, &files, "after-the-panic");
}

#[test]
fn a_job_that_crashes_the_server_is_aborted_after_max_processing_crashes() {
    let (dir, state, files) = scratch();
    let config = dir.path().join("printbridge.toml");
    std::fs::write(&config, "[spool]\nmax_processing_crashes = 2\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let pdf = files.join("doc.pdf");
    std::fs::write(&pdf, common::one_page_pdf("poison")).unwrap();
    let behind = files.join("behind.pdf");
    std::fs::write(&behind, common::one_page_pdf("behind")).unwrap();

    // The injected crash comes 3 s into rendering: time to queue a job behind the poison one.
    let mut app = start(&state, &args);
    let poison = print(&app, &pdf, "poison", "application/pdf", "none");
    let next = print(
        &app,
        &behind,
        "behind-the-poison",
        "application/pdf",
        "none",
    );
    for crash in 1..=2 {
        let died = wait_until(Duration::from_secs(60), || {
            matches!(app.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            died,
            "crash {crash}: the server should have died on the poison job"
        );
        app = start(&state, &args);
    }
    assert_aborted(
        &app,
        poison,
        "job-aborted-by-system",
        &["stopped 2 times in a row"],
    );
    let (state_of_next, reasons, message) = finished(&app, next);
    assert_eq!(state_of_next, "completed", "{reasons} / {message}");
    assert!(
        matches!(app.child.try_wait(), Ok(None)),
        "the server keeps running"
    );
}

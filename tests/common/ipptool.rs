//! Running Debian's ipptool against a server: test documents, the run itself, and its verdict.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static DOCS_LOCK: Mutex<()> = Mutex::new(());

/// The directory with the documents the ipptool suites print (generated once by
/// scripts/make-test-docs with Ghostscript; nothing is downloaded).
pub fn test_docs() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/test-docs");
    let _guard = DOCS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join("document-a4.pdf").is_file() || !dir.join("color.jpg").is_file() {
        super::require_program("gs", "ghostscript");
        let status = Command::new(root.join("scripts/make-test-docs"))
            .arg(&dir)
            .status()
            .expect("run scripts/make-test-docs");
        assert!(status.success(), "scripts/make-test-docs failed");
    }
    dir
}

/// The outcome of one ipptool run.
pub struct IpptoolRun {
    pub output: String,
    pub passed: usize,
    pub failed: usize,
}

/// Runs `ipptool -t` with `args` (e.g. `-I`, the URI, test files) in the documents directory.
pub fn run(args: &[&str]) -> IpptoolRun {
    let ipptool = super::require_program("ipptool", "cups-ipp-utils");
    let docs = test_docs();
    let out = Command::new(ipptool)
        .current_dir(&docs)
        .arg("-t")
        .args(args)
        .output()
        .expect("run ipptool");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = output
        .lines()
        .filter(|l| l.trim_end().ends_with("[PASS]"))
        .count();
    let failed = output
        .lines()
        .filter(|l| l.trim_end().ends_with("[FAIL]"))
        .count();
    IpptoolRun {
        output,
        passed,
        failed,
    }
}

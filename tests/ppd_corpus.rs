//! The PPD parser against real files: every PPD in `ppd/` and every PPD that Debian's packages
//! installed on this machine (`/usr/share/ppd`, `/usr/share/cups/model`, plain or `.ppd.gz`) must
//! parse with 0 failures and map to at least one media size. Also replays the `ppd_parser` fuzz
//! corpus and its regressions through the fuzz target's own checks, and has `cupstestppd` (CUPS's
//! own checker) pass the PPDs we ship.
//!
//! Nothing here skips: with fewer than [`MIN_DEBIAN_PPDS`] Debian PPDs installed the test fails and
//! names the packages to install ([`DEBIAN_PACKAGES`]; `scripts/test` installs them).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use printbridge::codec::ppd::{self, capabilities, fuzzing::check_parser, Limits, PpdCapabilities};

/// Debian (bookworm, main) packages that install static PPD files, small and with no dependencies
/// beyond what CUPS already pulls in: cups-filters (6 PPDs in /usr/share/ppd/cupsfilters), hp-ppd
/// (14 HP PostScript PPDs in /usr/share/ppd/hp-ppd) and printer-driver-oki (19 OKI PPDs in
/// /usr/share/ppd/okidata).
const DEBIAN_PACKAGES: &str = "cups-filters hp-ppd printer-driver-oki";
const DEBIAN_DIRS: &[&str] = &["/usr/share/ppd", "/usr/share/cups/model"];
const MIN_DEBIAN_PPDS: usize = 10;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn is_ppd_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".ppd") || name.ends_with(".ppd.gz")
}

/// PPD files under `dir`, following symbolic links to files but not to directories (no loops).
fn find_ppds(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth < 16 {
                find_ppds(&path, depth + 1, out);
            }
        } else if is_ppd_name(&path) && path.is_file() {
            out.push(path);
        }
    }
}

/// The bytes of a PPD, gunzipped when it ends in `.gz` (never more than the parser's limit + 1, so
/// a gzip bomb is a parse error, not an out-of-memory).
fn read_ppd(path: &Path) -> Result<Vec<u8>, String> {
    let raw = fs::read(path).map_err(|e| format!("read: {e}"))?;
    if !path.to_string_lossy().ends_with(".gz") {
        return Ok(raw);
    }
    let limit = Limits::default().max_bytes as u64 + 1;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("gunzip: {e}"))?;
    Ok(out)
}

/// Parses and maps one file; an error message when it fails or maps to no media.
fn check(path: &Path) -> Result<PpdCapabilities, String> {
    let bytes = read_ppd(path)?;
    let ppd = ppd::parse(&bytes).map_err(|e| e.to_string())?;
    let caps = capabilities(&ppd);
    if caps.media.is_empty() {
        return Err(format!(
            "parsed, but no media size ({} page sizes in the PPD)",
            ppd.page_sizes.len()
        ));
    }
    if caps.media_default.is_none() {
        return Err("parsed, but no default media".into());
    }
    Ok(caps)
}

/// Checks every file, reporting all failures at once; returns the capabilities by path.
fn check_all(paths: &[PathBuf]) -> BTreeMap<PathBuf, PpdCapabilities> {
    let mut ok = BTreeMap::new();
    let mut failed = Vec::new();
    for path in paths {
        match check(path) {
            Ok(caps) => {
                ok.insert(path.clone(), caps);
            }
            Err(e) => failed.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} PPDs failed:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
    ok
}

#[test]
fn every_shipped_ppd_parses() {
    let mut paths = Vec::new();
    find_ppds(&repo("ppd"), 0, &mut paths);
    paths.sort();
    assert!(
        paths.len() >= 3,
        "expected the 3 PPDs of ppd/, found {paths:?}"
    );
    let caps = check_all(&paths);
    println!("ppd/: {} PPDs parsed, 0 failures", caps.len());
}

/// CUPS's own checker (Debian cups-client), a program nobody here wrote, passes the PPDs we ship
/// without a single warning.
#[test]
fn shipped_ppds_pass_cupstestppd() {
    let mut paths = Vec::new();
    find_ppds(&repo("ppd"), 0, &mut paths);
    paths.sort();
    let out = std::process::Command::new("cupstestppd")
        .args(&paths)
        .output()
        .unwrap_or_else(|e| panic!("cupstestppd: {e}: apt-get install -y cups-client"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "cupstestppd failed:\n{text}");
    assert!(!text.contains("WARN"), "cupstestppd warned:\n{text}");
    assert_eq!(text.matches(": PASS").count(), paths.len(), "{text}");
}

fn shipped(name: &str) -> (ppd::Ppd, PpdCapabilities) {
    let bytes = fs::read(repo("ppd").join(name)).unwrap_or_else(|e| panic!("ppd/{name}: {e}"));
    let ppd = ppd::parse(&bytes).unwrap_or_else(|e| panic!("ppd/{name}: {e}"));
    let caps = capabilities(&ppd);
    (ppd, caps)
}

fn ipp(list: &[ppd::Mapped]) -> Vec<&str> {
    list.iter().map(|m| m.ipp.as_str()).collect()
}

#[test]
fn postscript_laser_capabilities() {
    let (ppd, caps) = shipped("printbridge-postscript-laser.ppd");
    assert_eq!(ppd.language_level, Some(3));
    assert!(!ppd.color_device);
    assert!(
        ppd.filters.is_empty(),
        "a PostScript printer takes PostScript as it is"
    );
    assert_eq!(
        caps.media_supported(),
        [
            "iso_a4_210x297mm",
            "na_letter_8.5x11in",
            "na_legal_8.5x14in"
        ]
    );
    assert_eq!(caps.media_default.as_deref(), Some("iso_a4_210x297mm"));
    assert!(caps.media.iter().all(|m| m.margins.is_some()));
    assert_eq!(
        ipp(&caps.sides),
        ["one-sided", "two-sided-long-edge", "two-sided-short-edge"]
    );
    assert_eq!(
        ipp(&caps.media_sources),
        ["auto", "tray-1", "tray-2", "manual"]
    );
    assert_eq!(ipp(&caps.color_modes), ["monochrome"]);
    let res: Vec<_> = caps
        .resolutions
        .iter()
        .map(|r| (r.x_dpi, r.y_dpi))
        .collect();
    assert_eq!(res, [(600, 600)]);
    assert!(!ppd.constraints.is_empty());
}

#[test]
fn pcl_laser_capabilities() {
    let (ppd, caps) = shipped("printbridge-pcl-laser.ppd");
    assert!(!ppd.color_device);
    assert!(!ppd.filters.is_empty());
    assert!(
        ppd.filters.iter().all(|f| f.destination.is_some()),
        "cupsFilter2 only"
    );
    assert!(caps.media_supported().contains(&"na_letter_8.5x11in"));
    assert!(caps.media_supported().contains(&"iso_a4_210x297mm"));
    assert!(caps.media_supported().contains(&"na_number-10_4.125x9.5in"));
    assert!(caps.media_supported().contains(&"iso_dl_110x220mm"));
    assert!(ipp(&caps.sides).contains(&"two-sided-long-edge"));
    assert!(ipp(&caps.media_sources).contains(&"tray-1"));
    assert!(ipp(&caps.media_sources).contains(&"manual"));
    let res: Vec<_> = caps
        .resolutions
        .iter()
        .map(|r| (r.x_dpi, r.y_dpi))
        .collect();
    assert_eq!(res, [(300, 300), (600, 600)]);
    assert_eq!(caps.resolution_default.map(|r| r.x_dpi), Some(600));
}

#[test]
fn color_inkjet_capabilities() {
    let (ppd, caps) = shipped("printbridge-color-inkjet.ppd");
    assert!(ppd.color_device);
    assert_eq!(ipp(&caps.color_modes), ["color", "monochrome"]);
    assert_eq!(caps.color_mode_default.as_deref(), Some("color"));
    assert_eq!(
        ipp(&caps.media_types),
        ["stationery", "photographic-glossy", "photographic"]
    );
    let supported = caps.media_supported();
    for want in [
        "na_index-4x6_4x6in",
        "iso_a4_210x297mm",
        "na_letter_8.5x11in",
    ] {
        assert!(supported.contains(&want), "{want} in {supported:?}");
    }
    assert!(
        caps.media
            .iter()
            .any(|m| m.margins.is_some_and(|x| x.is_borderless())),
        "borderless sizes"
    );
    assert_eq!(ipp(&caps.sides), ["one-sided"]);
}

#[test]
fn every_debian_ppd_parses() {
    let mut paths = Vec::new();
    for dir in DEBIAN_DIRS {
        find_ppds(Path::new(dir), 0, &mut paths);
    }
    // One check per file, not per link to it.
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    paths.sort();
    assert!(
        paths.len() >= MIN_DEBIAN_PPDS,
        "found {} PPDs under {DEBIAN_DIRS:?}, need at least {MIN_DEBIAN_PPDS}: \
         apt-get install -y {DEBIAN_PACKAGES}",
        paths.len()
    );
    let caps = check_all(&paths);
    let mut by_dir: BTreeMap<String, usize> = BTreeMap::new();
    for p in caps.keys() {
        let dir = p
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        *by_dir.entry(dir).or_default() += 1;
    }
    let gz = caps
        .keys()
        .filter(|p| p.to_string_lossy().ends_with(".gz"))
        .count();
    let sizes: usize = caps.values().map(|c| c.media.len()).sum();
    println!(
        "Debian PPDs: {} parsed ({gz} gzipped), 0 failures, {sizes} media sizes",
        caps.len()
    );
    for (dir, n) in by_dir {
        println!("  {dir}: {n}");
    }
}

/// `.ppd.gz` files (as Debian's PPD packages often install them) are read through gunzip, and a
/// gzip bomb stops at the parser's size limit instead of filling memory.
#[test]
fn gzipped_ppds_are_read() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    let gz = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        let mut enc = GzEncoder::new(fs::File::create(&path).unwrap(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap();
        path
    };
    let plain = fs::read(repo("ppd/printbridge-pcl-laser.ppd")).unwrap();
    let path = gz("pcl.ppd.gz", &plain);
    let mut found = Vec::new();
    find_ppds(dir.path(), 0, &mut found);
    assert_eq!(found, std::slice::from_ref(&path));
    let caps = check(&path).unwrap();
    assert!(caps.media_supported().contains(&"na_letter_8.5x11in"));

    let mut bomb = b"*PPD-Adobe: \"4.3\"\n".to_vec();
    bomb.resize(Limits::default().max_bytes * 2, b'\n');
    let path = gz("bomb.ppd.gz", &bomb);
    assert_eq!(
        read_ppd(&path).unwrap().len(),
        Limits::default().max_bytes + 1
    );
    let err = check(&path).unwrap_err();
    assert!(err.contains("more than the limit"), "{err}");
}

/// Every regular file under `dir` except dotfiles (.gitkeep), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    out.sort();
    out
}

fn replay(dir: &Path) -> usize {
    let files = files(dir);
    let mut failed = Vec::new();
    for path in &files {
        let bytes = fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check_parser(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "check_parser failed on:\n{}",
        failed.join("\n")
    );
    files.len()
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    let n = replay(&repo("fuzz/corpus/ppd_parser"));
    assert!(n >= 10, "only {n} seeds in fuzz/corpus/ppd_parser");
}

#[test]
fn fuzz_regressions_replay_cleanly() {
    replay(&repo("fuzz/regressions/ppd_parser"));
}

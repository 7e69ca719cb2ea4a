//! PDF → PWG raster / Apple raster against real peers: Ghostscript writes the PDFs (colour bars at
//! known places), we rasterise with hayro, cups-filters' `rastertopdf` reads our PWG raster back
//! and poppler's `pdftoppm`/`pdfinfo` check page count, page size and pixels; our own decoders check
//! the headers. URF output is compared with `pdftoppm` of the source at the same resolution.
//! Hostile PDFs (truncated, password-protected, huge MediaBox) end with the right job-state-reason.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use printbridge::codec::pwg::{self, PageHeader, RasterLimits};
use printbridge::codec::urf::{self, UrfPageHeader};
use printbridge::convert::pdf_raster::{
    pdf_to_raster, pdf_to_raster_with, PdfRasterError, RasterColor, RasterRun, RasterSides,
    RasterTarget, SheetBack,
};
use printbridge::convert::RasterFormat;
use printbridge::model::printer::MediaSize;

use common::require_program;

// Heap held by the current thread (with one render thread the renderer runs on the calling
// thread), for the memory test.
struct ThreadHeap;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static MOST: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = HELD.try_with(|h| {
        let now = h.get() + delta;
        h.set(now);
        let _ = MOST.try_with(|m| m.set(m.get().max(now)));
    });
}

unsafe impl GlobalAlloc for ThreadHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static HEAP: ThreadHeap = ThreadHeap;

/// The most heap `f` held at once on this thread, above what was held before.
fn peak_heap(f: impl FnOnce()) -> usize {
    let before = HELD.with(Cell::get);
    MOST.with(|m| m.set(before));
    f();
    (MOST.with(Cell::get) - before).max(0) as usize
}

fn a4() -> MediaSize {
    MediaSize {
        name: "iso_a4_210x297mm".into(),
        width: 21000,
        length: 29700,
    }
}

fn letter() -> MediaSize {
    MediaSize {
        name: "na_letter_8.5x11in".into(),
        width: 21590,
        length: 27940,
    }
}

/// A4 pages with bars at known places (PostScript points, origin bottom left):
/// red across the top 100 pt, green on the left half of the middle band (y 371..471), blue on the
/// right half of the bottom 100 pt, black on x 0..100 of y 150..250, 50 % gray on x 200..400 of
/// y 150..250. Page 2 has the same bars with red and blue swapped, so the order of pages shows.
/// (`bars` takes the bottom colour, then the top one.)
const BARS_PS: &str = "%!PS
<< /PageSize [595 842] >> setpagedevice
/bars { /top exch def /bottom exch def
  top aload pop setrgbcolor 0 742 595 100 rectfill
  0 1 0 setrgbcolor 0 371 297 100 rectfill
  bottom aload pop setrgbcolor 297 0 298 100 rectfill
  0 setgray 0 150 100 100 rectfill
  0.5 setgray 200 150 200 100 rectfill } def
[0 0 1] [1 0 0] bars showpage
[1 0 0] [0 0 1] bars showpage
";

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];

/// Runs a program, failing the test with its output when it fails.
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Ghostscript's pdfwrite of a PostScript program, with extra device arguments.
fn gs_pdf(dir: &Path, name: &str, ps: &str, extra: &[&str]) -> PathBuf {
    let gs = require_program("gs", "ghostscript");
    let ps_path = dir.join(format!("{name}.ps"));
    std::fs::write(&ps_path, ps).unwrap();
    let pdf = dir.join(format!("{name}.pdf"));
    run(Command::new(gs)
        .args(["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite"])
        .args(extra)
        .arg(format!("-sOutputFile={}", pdf.display()))
        .arg(&ps_path));
    pdf
}

fn bars_pdf(dir: &Path) -> PathBuf {
    gs_pdf(dir, "bars", BARS_PS, &[])
}

fn convert(pdf: &Path, target: &RasterTarget) -> Result<Vec<u8>, PdfRasterError> {
    let data = std::fs::read(pdf).unwrap();
    let mut out = Vec::new();
    let stats = pdf_to_raster(&data[..], target, &mut out)?;
    assert_eq!(stats.bytes_out, out.len() as u64);
    Ok(out)
}

/// An image as `pdftoppm` writes it (P6 colour or P5 gray), always returned as RGB.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The pixel at a point given in PDF points from the bottom left of an A4-sized page scaled to
    /// this image.
    fn at_pt(&self, x: f64, y: f64, page_w: f64, page_h: f64) -> [u8; 3] {
        let px = (x / page_w * self.width as f64) as usize;
        let py = ((page_h - y) / page_h * self.height as f64) as usize;
        self.px(px.min(self.width - 1), py.min(self.height - 1))
    }
}

fn parse_pnm(data: &[u8]) -> Image {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while data[i].is_ascii_whitespace() {
            i += 1;
        }
        if data[i] == b'#' {
            while data[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !data[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8(data[start..i].to_vec()).unwrap());
    }
    i += 1;
    let width: usize = fields[1].parse().unwrap();
    let height: usize = fields[2].parse().unwrap();
    assert_eq!(fields[3], "255");
    let body = &data[i..];
    let rgb = match fields[0].as_str() {
        "P6" => body[..width * height * 3].to_vec(),
        "P5" => body[..width * height]
            .iter()
            .flat_map(|&g| [g, g, g])
            .collect(),
        other => panic!("unexpected PNM type {other}"),
    };
    Image { width, height, rgb }
}

/// `pdftoppm` of one page of a PDF at `dpi`.
fn pdftoppm(pdf: &Path, page: u32, dpi: u32) -> Image {
    let prog = require_program("pdftoppm", "poppler-utils");
    let data = run(Command::new(prog)
        .args(["-r", &dpi.to_string(), "-f", &page.to_string()])
        .args(["-l", &page.to_string()])
        .arg(pdf));
    parse_pnm(&data)
}

/// `pdfinfo`: page count and the first page's size in points.
fn pdfinfo(pdf: &Path) -> (u32, f64, f64) {
    let prog = require_program("pdfinfo", "poppler-utils");
    let text = String::from_utf8(run(Command::new(prog).arg(pdf))).unwrap();
    let mut pages = 0;
    let mut size = (0.0, 0.0);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Pages:") {
            pages = v.trim().parse().unwrap();
        }
        if let Some(v) = line.strip_prefix("Page size:") {
            let parts: Vec<&str> = v.split_whitespace().collect();
            size = (parts[0].parse().unwrap(), parts[2].parse().unwrap());
        }
    }
    (pages, size.0, size.1)
}

/// cups-filters' `rastertopdf` run by hand as CUPS would (job id, user, title, copies, options,
/// file); it reads PWG raster without a PPD.
fn rastertopdf(dir: &Path, raster: &[u8], name: &str) -> PathBuf {
    let filter = Path::new("/usr/lib/cups/filter/rastertopdf");
    assert!(
        filter.is_file(),
        "required peer `rastertopdf` not found: install it with `apt-get install -y cups-filters` \
         (scripts/test installs it automatically)"
    );
    let input = dir.join(format!("{name}.pwg"));
    std::fs::write(&input, raster).unwrap();
    let pdf = run(Command::new(filter)
        .args(["1", "user", "title", "1", ""])
        .arg(&input)
        .env("CONTENT_TYPE", "image/pwg-raster")
        .env("FINAL_CONTENT_TYPE", "application/pdf"));
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    path
}

/// Our PWG decoder over a whole stream: the headers and the decoded rows of every page.
fn decode_pwg(data: &[u8]) -> Vec<(PageHeader, Vec<Vec<u8>>)> {
    let mut dec = pwg::Decoder::new(RasterLimits::default());
    let mut pages: Vec<(PageHeader, Vec<Vec<u8>>)> = Vec::new();
    let mut input = data;
    loop {
        match dec
            .next(&mut input)
            .expect("our PWG decoder rejects the output")
        {
            pwg::Event::NeedInput => break,
            pwg::Event::PageStart(h) => pages.push((h.clone(), Vec::new())),
            pwg::Event::Row { data, .. } => pages.last_mut().unwrap().1.push(data.to_vec()),
            pwg::Event::PageEnd => {}
        }
    }
    assert_eq!(dec.finish().unwrap() as usize, pages.len());
    pages
}

fn decode_urf(data: &[u8]) -> Vec<(UrfPageHeader, Vec<Vec<u8>>)> {
    let mut dec = urf::UrfDecoder::new(RasterLimits::default());
    let mut pages: Vec<(UrfPageHeader, Vec<Vec<u8>>)> = Vec::new();
    let mut input = data;
    loop {
        match dec
            .next(&mut input)
            .expect("our URF decoder rejects the output")
        {
            urf::UrfEvent::NeedInput => break,
            urf::UrfEvent::PageStart(h) => pages.push((h.clone(), Vec::new())),
            urf::UrfEvent::Row { data, .. } => pages.last_mut().unwrap().1.push(data.to_vec()),
            urf::UrfEvent::PageEnd => {}
        }
    }
    assert_eq!(dec.finish().unwrap() as usize, pages.len());
    pages
}

fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

fn assert_color(img: &Image, x: f64, y: f64, want: [u8; 3], what: &str, w: f64, h: f64) {
    let got = img.at_pt(x, y, w, h);
    assert!(
        close(got, want, 40),
        "{what} at ({x}, {y}) pt: got {got:?}, want {want:?}"
    );
}

/// The generated ipptool documents (scripts/make-test-docs), made on first use.
fn test_docs() -> PathBuf {
    static DOCS: OnceLock<PathBuf> = OnceLock::new();
    DOCS.get_or_init(|| {
        let dir = std::env::var_os("PRINTBRIDGE_TEST_DOCS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-docs"));
        require_program("gs", "ghostscript");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-test-docs");
        run(Command::new("bash").arg(script).arg(&dir));
        dir
    })
    .clone()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn srgb_pwg_from_ghostscript_pdf_reads_back_in_rastertopdf_with_bars_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = bars_pdf(dir.path());
    let target = RasterTarget::new(RasterFormat::Pwg, 100, RasterColor::Srgb8, Some(a4()));
    let raster = convert(&pdf, &target).unwrap();

    // Our decoder: the headers say what the printer asked for.
    let pages = decode_pwg(&raster);
    assert_eq!(pages.len(), 2);
    for (h, rows) in &pages {
        assert_eq!(h.hw_resolution, [100, 100]);
        assert_eq!(h.color_space, 19, "cupsColorSpace srgb");
        assert_eq!((h.bits_per_color, h.bits_per_pixel), (8, 24));
        assert_eq!((h.width, h.height), (827, 1169));
        assert_eq!(h.page_size, [595, 842]);
        assert_eq!(h.total_page_count, 2);
        assert_eq!(h.page_size_name, "iso_a4_210x297mm");
        assert_eq!(rows.len(), 1169);
    }

    // An independent reader: cups-filters turns it back into PDF, poppler renders it.
    let back = rastertopdf(dir.path(), &raster, "srgb");
    let (n, w, h) = pdfinfo(&back);
    assert_eq!(n, 2);
    assert!(
        (w - 595.0).abs() < 2.0 && (h - 842.0).abs() < 2.0,
        "{w} x {h}"
    );
    for (page, top, bottom) in [(1, RED, BLUE), (2, BLUE, RED)] {
        let img = pdftoppm(&back, page, 50);
        let at = |x, y, want, what| assert_color(&img, x, y, want, what, 595.0, 842.0);
        at(300.0, 792.0, top, "top bar");
        at(150.0, 421.0, GREEN, "green bar");
        at(450.0, 421.0, WHITE, "right of the green bar");
        at(450.0, 50.0, bottom, "bottom bar");
        at(150.0, 50.0, WHITE, "left of the bottom bar");
        at(50.0, 200.0, BLACK, "black square");
        at(300.0, 600.0, WHITE, "empty middle");
    }
}

#[test]
fn gray_and_black_pwg_fit_a4_onto_letter_media() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = bars_pdf(dir.path());

    let gray = RasterTarget::new(RasterFormat::Pwg, 150, RasterColor::Sgray8, Some(letter()));
    let raster = convert(&pdf, &gray).unwrap();
    let pages = decode_pwg(&raster);
    assert_eq!(pages.len(), 2);
    let (h, rows) = &pages[0];
    assert_eq!(h.color_space, 18, "cupsColorSpace sgray");
    assert_eq!((h.bits_per_pixel, h.num_colors), (8, 1));
    assert_eq!((h.width, h.height), (1275, 1650));
    assert_eq!(h.page_size, [612, 792]);
    // A4 is taller for its width than Letter: fitted by height, centred across with white sides.
    let mid = &rows[825];
    assert_eq!(mid[3], 255, "left margin is white");
    assert_eq!(mid[1271], 255, "right margin is white");

    let back = rastertopdf(dir.path(), &raster, "gray");
    let (n, w, hgt) = pdfinfo(&back);
    assert_eq!(n, 2);
    assert!(
        (w - 612.0).abs() < 2.0 && (hgt - 792.0).abs() < 2.0,
        "{w} x {hgt}"
    );
    // Scale 792/842 and an x offset of (612 - 595 * 792/842) / 2.
    let k = 792.0 / 842.0;
    let ox = (612.0 - 595.0 * k) / 2.0;
    let at_px = |x: f64, y: f64| {
        (
            ((ox + x * k) * 150.0 / 72.0) as usize,
            ((792.0 - y * k) * 150.0 / 72.0) as usize,
        )
    };
    // Our samples: Rec. 709 luma of pure red and green; black; 50 % gray; white.
    let ours = |x: f64, y: f64| {
        let (px, py) = at_px(x, y);
        rows[py][px]
    };
    for (x, y, want, what) in [
        (300.0, 792.0, 54, "red"),
        (150.0, 421.0, 182, "green"),
        (50.0, 200.0, 0, "black"),
        (300.0, 200.0, 128, "50% gray"),
        (300.0, 600.0, 255, "white"),
    ] {
        let got = ours(x, y);
        assert!(
            got.abs_diff(want) <= 6,
            "{what} as sgray: {got}, want {want}"
        );
    }
    // What rastertopdf made of them: the same order of lightness where poppler sees it (it may
    // apply a gray profile, so only coarsely).
    let img = pdftoppm(&back, 1, 72);
    let theirs = |x: f64, y: f64| img.at_pt(ox + x * k, y * k, 612.0, 792.0)[0];
    assert!(theirs(300.0, 792.0) < 100, "red is dark gray");
    assert!(theirs(150.0, 421.0) > 150, "green is light gray");
    assert!(theirs(50.0, 200.0) < 20, "black");
    assert!((90..=170).contains(&theirs(300.0, 200.0)), "50% gray");
    assert!(theirs(300.0, 600.0) > 245, "white");

    let black = RasterTarget::new(RasterFormat::Pwg, 150, RasterColor::Black1, Some(letter()));
    let raster = convert(&pdf, &black).unwrap();
    let pages = decode_pwg(&raster);
    let (h, rows) = &pages[0];
    assert_eq!(h.color_space, 3, "cupsColorSpace black");
    assert_eq!((h.bits_per_color, h.bits_per_pixel), (1, 1));
    assert_eq!(h.bytes_per_line, 1275u32.div_ceil(8));
    // Ink density over a window (1 = ink): black square solid, gray about half, white none.
    let density = |x: f64, y: f64| {
        let cx = ((ox + x * k) * 150.0 / 72.0) as usize;
        let cy = ((792.0 - y * k) * 150.0 / 72.0) as usize;
        let mut ink = 0;
        for row in &rows[cy - 8..cy + 8] {
            for x in cx - 8..cx + 8 {
                ink += u32::from((row[x / 8] >> (7 - x % 8)) & 1);
            }
        }
        f64::from(ink) / 256.0
    };
    assert!(density(50.0, 200.0) > 0.98, "black square");
    let d = density(300.0, 200.0);
    assert!((0.35..=0.65).contains(&d), "50% gray dithered to {d}");
    assert!(density(300.0, 600.0) < 0.01, "white");
    let back = rastertopdf(dir.path(), &raster, "black");
    assert_eq!(pdfinfo(&back).0, 2);
    let img = pdftoppm(&back, 1, 72);
    assert!(img.at_pt(ox + 50.0 * k, 200.0 * k, 612.0, 792.0)[0] < 60);
    assert!(img.at_pt(ox + 300.0 * k, 600.0 * k, 612.0, 792.0)[0] > 200);
}

/// Mean absolute difference of two same-sized RGB images, per sample.
fn mean_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

#[test]
fn urf_matches_pdftoppm_of_the_source_at_the_same_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = bars_pdf(dir.path());
    // No media: each page keeps its size, so pixels line up with pdftoppm's.
    let target = RasterTarget::new(RasterFormat::Urf, 72, RasterColor::Srgb8, None);
    let raster = convert(&pdf, &target).unwrap();
    assert_eq!(&raster[..8], b"UNIRAST\0");
    assert_eq!(u32::from_be_bytes(raster[8..12].try_into().unwrap()), 2);
    let pages = decode_urf(&raster);
    assert_eq!(pages.len(), 2);
    for (i, (h, rows)) in pages.iter().enumerate() {
        assert_eq!(h.resolution, 72);
        assert_eq!(h.color_space, 1, "sRGB");
        assert_eq!(h.bits_per_pixel, 24);
        let reference = pdftoppm(&pdf, i as u32 + 1, 72);
        assert_eq!(
            (h.width as usize, h.height as usize),
            (reference.width, reference.height)
        );
        let ours: Vec<u8> = rows.concat();
        let d = mean_diff(&ours, &reference.rgb);
        assert!(d < 3.0, "page {}: mean difference {d} from pdftoppm", i + 1);
        // And the bars themselves, exactly where poppler has them.
        for (x, y) in [
            (300.0, 792.0),
            (150.0, 421.0),
            (450.0, 50.0),
            (300.0, 200.0),
        ] {
            let px = (x as usize, (842.0 - y) as usize);
            let mine = [
                ours[(px.1 * reference.width + px.0) * 3],
                ours[(px.1 * reference.width + px.0) * 3 + 1],
                ours[(px.1 * reference.width + px.0) * 3 + 2],
            ];
            assert!(
                close(mine, reference.px(px.0, px.1), 8),
                "page {} at {px:?}: {mine:?} vs {:?}",
                i + 1,
                reference.px(px.0, px.1)
            );
        }
    }

    let gray = RasterTarget::new(RasterFormat::Urf, 72, RasterColor::Sgray8, None);
    let pages = decode_urf(&convert(&pdf, &gray).unwrap());
    assert_eq!(pages[0].0.color_space, 0, "sGray");
    assert_eq!(pages[0].0.bits_per_pixel, 8);
}

#[test]
fn generated_test_documents_render_like_poppler() {
    let docs = test_docs();
    for (name, media) in [
        ("document-a4.pdf", None),
        ("document-letter.pdf", Some(letter())),
    ] {
        let pdf = docs.join(name);
        let (n, w, h) = pdfinfo(&pdf);
        let target = RasterTarget::new(RasterFormat::Pwg, 100, RasterColor::Srgb8, media);
        let raster = convert(&pdf, &target).unwrap();
        let pages = decode_pwg(&raster);
        assert_eq!(pages.len() as u32, n, "{name}");
        for (i, (hdr, rows)) in pages.iter().enumerate() {
            let reference = pdftoppm(&pdf, i as u32 + 1, 100);
            // We round the page size to whole pixels, poppler rounds up: one pixel apart at most.
            let (ww, hh) = (hdr.width as usize, hdr.height as usize);
            assert!(
                ww.abs_diff(reference.width) <= 1 && hh.abs_diff(reference.height) <= 1,
                "{name} page {} ({w} x {h} pt): {ww} x {hh} vs {} x {}",
                i + 1,
                reference.width,
                reference.height
            );
            let (cw, ch) = (ww.min(reference.width), hh.min(reference.height));
            let ours: Vec<u8> = rows[..ch]
                .iter()
                .flat_map(|r| &r[..cw * 3])
                .copied()
                .collect();
            let theirs: Vec<u8> = (0..ch)
                .flat_map(|y| &reference.rgb[y * reference.width * 3..][..cw * 3])
                .copied()
                .collect();
            // Text differs a little at glyph edges (hayro substitutes its own standard fonts,
            // poppler the system's), so the bound is on the mean, and the colour patches and
            // gray ramp are compared point by point below.
            let d = mean_diff(&ours, &theirs);
            assert!(d < 8.0, "{name} page {}: mean difference {d}", i + 1);
            if name == "document-a4.pdf" && i == 0 {
                // Centres of the seven CMYK/RGB patches (row 170 at 100 dpi) and the ramp (row 290).
                let points = [118, 216, 314, 413, 511, 609, 707]
                    .map(|x| (x, 170))
                    .into_iter()
                    .chain([100, 163, 413, 725].map(|x| (x, 290)));
                for (x, y) in points {
                    let mine = [rows[y][x * 3], rows[y][x * 3 + 1], rows[y][x * 3 + 2]];
                    assert!(
                        close(mine, reference.px(x, y), 24),
                        "{name} at ({x}, {y}): {mine:?} vs poppler's {:?}",
                        reference.px(x, y)
                    );
                }
            }
            // Not a blank page that trivially matches a mostly blank reference.
            assert!(
                ours.iter().any(|&b| b < 64),
                "{name} page {} has no dark pixels",
                i + 1
            );
        }
    }
}

#[test]
fn landscape_page_is_turned_onto_portrait_media() {
    let dir = tempfile::tempdir().unwrap();
    // A4 landscape with a red bar along the left edge and a blue one along the top.
    let pdf = gs_pdf(
        dir.path(),
        "landscape",
        "%!PS\n<< /PageSize [842 595] >> setpagedevice\n\
         1 0 0 setrgbcolor 0 0 100 595 rectfill\n\
         0 0 1 setrgbcolor 200 495 642 100 rectfill showpage\n",
        &[],
    );
    let target = RasterTarget::new(RasterFormat::Pwg, 50, RasterColor::Srgb8, Some(a4()));
    let pages = decode_pwg(&convert(&pdf, &target).unwrap());
    let (h, rows) = &pages[0];
    assert_eq!((h.width, h.height), (413, 585), "portrait A4 at 50 dpi");
    let px = |x: usize, y: usize| [rows[y][x * 3], rows[y][x * 3 + 1], rows[y][x * 3 + 2]];
    // Turned counter-clockwise: the left edge goes to the bottom, the top edge to the left.
    assert!(close(px(206, 570), RED, 30), "bottom: {:?}", px(206, 570));
    assert!(close(px(10, 200), BLUE, 30), "left: {:?}", px(10, 200));
    assert!(close(px(206, 10), WHITE, 30), "top: {:?}", px(206, 10));
}

#[test]
fn duplex_back_sides_are_flipped_when_the_printer_asks() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = bars_pdf(dir.path());
    let mut target = RasterTarget::new(RasterFormat::Pwg, 50, RasterColor::Srgb8, Some(a4()));
    target.sides = RasterSides::TwoSidedLongEdge;
    target.sheet_back = SheetBack::Flipped;
    let pages = decode_pwg(&convert(&pdf, &target).unwrap());
    let (front, back) = (&pages[0], &pages[1]);
    assert_eq!((front.0.duplex, front.0.tumble), (1, 0));
    assert_eq!(front.0.feed_transform, 1);
    assert_eq!(
        (back.0.feed_transform, back.0.cross_feed_transform),
        (-1, 1)
    );
    let px = |rows: &Vec<Vec<u8>>, x: usize, y: usize| {
        [rows[y][x * 3], rows[y][x * 3 + 1], rows[y][x * 3 + 2]]
    };
    // Page 2 has blue on top; flipped along the feed it arrives at the bottom of the raster.
    let h = back.1.len();
    assert!(close(px(&back.1, 200, h - 20), BLUE, 30));
    assert!(close(px(&back.1, 300, 20), RED, 30));
    assert!(close(px(&front.1, 200, 20), RED, 30));
}

#[test]
fn truncated_pdf_is_a_document_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(bars_pdf(dir.path())).unwrap();
    for cut in [data.len() / 2, data.len() - 40, 100] {
        let target = RasterTarget::new(RasterFormat::Pwg, 72, RasterColor::Srgb8, None);
        let mut out = Vec::new();
        let err = pdf_to_raster(&data[..cut], &target, &mut out).unwrap_err();
        assert_eq!(
            err.job_state_reason(),
            "document-format-error",
            "cut at {cut}: {err}"
        );
        assert!(out.is_empty(), "nothing written for a damaged PDF");
    }
    let err = pdf_to_raster(
        &b"GIF89a not a pdf"[..],
        &RasterTarget::new(RasterFormat::Urf, 72, RasterColor::Sgray8, None),
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.job_state_reason(), "document-format-error");
}

#[test]
fn password_protected_pdf_is_a_document_password_error() {
    let dir = tempfile::tempdir().unwrap();
    let target = RasterTarget::new(RasterFormat::Pwg, 72, RasterColor::Sgray8, None);
    let locked = gs_pdf(
        dir.path(),
        "locked",
        BARS_PS,
        &["-sOwnerPassword=owner-secret", "-sUserPassword=user-secret"],
    );
    assert!(
        String::from_utf8_lossy(&std::fs::read(&locked).unwrap()).contains("/Encrypt"),
        "Ghostscript did not encrypt"
    );
    let err = convert(&locked, &target).unwrap_err();
    assert!(matches!(err, PdfRasterError::Password), "{err}");
    assert_eq!(err.job_state_reason(), "document-password-error");

    // Only an owner password: anyone may open it (empty user password), so it prints.
    let open = gs_pdf(
        dir.path(),
        "owner",
        BARS_PS,
        &["-sOwnerPassword=owner-secret"],
    );
    assert!(String::from_utf8_lossy(&std::fs::read(&open).unwrap()).contains("/Encrypt"));
    let pages = decode_pwg(&convert(&open, &target).unwrap());
    assert_eq!(pages.len(), 2);
    // The black square is there: the content was decrypted, not rendered as garbage.
    let (_, rows) = &pages[0];
    assert!(rows[842 - 200][50] < 20);
}

#[test]
fn huge_media_box_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // 200 x 200 inches, the largest page PDF allows; at 600 dpi 120,000 pixels square.
    let pdf = gs_pdf(
        dir.path(),
        "huge",
        "%!PS\n<< /PageSize [14400 14400] >> setpagedevice\n0 0 100 100 rectfill showpage\n",
        &[],
    );
    let target = RasterTarget::new(RasterFormat::Pwg, 600, RasterColor::Srgb8, None);
    let mut out = Vec::new();
    let data = std::fs::read(&pdf).unwrap();
    let err = pdf_to_raster(&data[..], &target, &mut out).unwrap_err();
    assert!(
        matches!(err, PdfRasterError::PageTooLarge { page: 1, .. }),
        "{err}"
    );
    assert_eq!(err.job_state_reason(), "document-unprintable-error");
    assert!(out.is_empty());
    // The same page onto A4 media is fine: scaled to fit.
    let target = RasterTarget::new(RasterFormat::Pwg, 72, RasterColor::Sgray8, Some(a4()));
    let pages = decode_pwg(&convert(&pdf, &target).unwrap());
    assert_eq!((pages[0].0.width, pages[0].0.height), (595, 842));
}

#[test]
fn oversized_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(bars_pdf(dir.path())).unwrap();
    let mut target = RasterTarget::new(RasterFormat::Pwg, 72, RasterColor::Sgray8, None);
    target.limits.max_document_bytes = data.len() as u64 - 1;
    let err = pdf_to_raster(&data[..], &target, Vec::new()).unwrap_err();
    assert!(
        matches!(err, PdfRasterError::DocumentTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn memory_is_one_page_not_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let body = BARS_PS.split_once('\n').unwrap().1;
    let two = gs_pdf(dir.path(), "two", BARS_PS, &[]);
    let twenty = gs_pdf(
        dir.path(),
        "twenty",
        &format!("%!PS\n10 {{\n{body}}} repeat\n"),
        &[],
    );
    assert_eq!(pdfinfo(&twenty).0, 20);
    let target = RasterTarget::new(RasterFormat::Pwg, 100, RasterColor::Srgb8, Some(a4()));
    let run = |pdf: &Path| {
        let data = std::fs::read(pdf).unwrap();
        // One render thread: the pages are made on this thread, where the heap is counted (the
        // pool's bound with more threads: tests/raster_stream.rs).
        let one = RasterRun {
            threads: 1,
            ..RasterRun::default()
        };
        peak_heap(|| {
            let stats = pdf_to_raster_with(&data[..], &target, &one, std::io::sink()).unwrap();
            assert!(stats.pages == 2 || stats.pages == 20);
        })
    };
    let (p2, p20) = (run(&two), run(&twenty));
    // One rendered A4 page at 100 dpi is 827 x 1169 x 4 bytes = 3.9 MB.
    let page = 827 * 1169 * 4;
    assert!(p2 < 3 * page, "2 pages held {p2} bytes");
    assert!(
        p20 < p2 + page / 4,
        "20 pages held {p20} bytes, 2 pages {p2}: memory grows with the page count"
    );
}

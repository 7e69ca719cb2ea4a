//! `JobTicket`: the job template attributes of a job (RFC 8011 §5.2, PWG 5100.13/5100.14) as plain
//! data the imposition code reads, with the printer's `*-default` values where the job has none.

use crate::codec::ipp::{Attribute, Value};
use crate::model::printer::{media_by_name, standard_media, Capabilities};

/// The media the ticket falls back to when the job names none (media-default).
pub const DEFAULT_MEDIA: &str = "iso_a4_210x297mm";

/// number-up-layout (PWG 5100.13): the order in which number-up cells are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Lrtb,
    Lrbt,
    Rltb,
    Rlbt,
    Tblr,
    Tbrl,
    Btlr,
    Btrl,
}

impl Layout {
    pub fn from_keyword(k: &str) -> Option<Layout> {
        Some(match k {
            "lrtb" => Layout::Lrtb,
            "lrbt" => Layout::Lrbt,
            "rltb" => Layout::Rltb,
            "rlbt" => Layout::Rlbt,
            "tblr" => Layout::Tblr,
            "tbrl" => Layout::Tbrl,
            "btlr" => Layout::Btlr,
            "btrl" => Layout::Btrl,
            _ => return None,
        })
    }

    /// The (column, row) of cell `i` in a `cols` × `rows` grid, row 0 at the top, column 0 at
    /// the left.
    pub fn cell(self, i: u32, cols: u32, rows: u32) -> (u32, u32) {
        let (cols, rows) = (cols.max(1), rows.max(1));
        let horizontal_first = matches!(
            self,
            Layout::Lrtb | Layout::Lrbt | Layout::Rltb | Layout::Rlbt
        );
        let (col, row) = if horizontal_first {
            (i % cols, (i / cols) % rows)
        } else {
            ((i / rows) % cols, i % rows)
        };
        let right_to_left = matches!(
            self,
            Layout::Rltb | Layout::Rlbt | Layout::Tbrl | Layout::Btrl
        );
        let bottom_to_top = matches!(
            self,
            Layout::Lrbt | Layout::Rlbt | Layout::Btlr | Layout::Btrl
        );
        (
            if right_to_left { cols - 1 - col } else { col },
            if bottom_to_top { rows - 1 - row } else { row },
        )
    }
}

/// orientation-requested (RFC 8011 §5.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    Portrait,
    /// Content turned +90° (anti-clockwise) on the medium.
    Landscape,
    /// Content turned -90° (clockwise).
    ReverseLandscape,
    ReversePortrait,
}

impl Orientation {
    /// Anti-clockwise rotation of the content on the medium, degrees.
    pub fn degrees(self) -> u32 {
        match self {
            Orientation::Portrait => 0,
            Orientation::Landscape => 90,
            Orientation::ReversePortrait => 180,
            Orientation::ReverseLandscape => 270,
        }
    }
}

/// print-scaling (PWG 5100.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    Auto,
    AutoFit,
    Fit,
    Fill,
    None,
}

/// sides (RFC 8011 §5.2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    OneSided,
    TwoSidedLongEdge,
    TwoSidedShortEdge,
}

impl Sides {
    pub fn keyword(self) -> &'static str {
        match self {
            Sides::OneSided => "one-sided",
            Sides::TwoSidedLongEdge => "two-sided-long-edge",
            Sides::TwoSidedShortEdge => "two-sided-short-edge",
        }
    }
}

/// print-color-mode (PWG 5100.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    Auto,
    Color,
    Monochrome,
}

/// The output page size, in points (1/72 inch).
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub name: String,
    pub width_pt: f32,
    pub height_pt: f32,
}

impl Media {
    /// From hundredths of millimetres (IPP media-size units).
    pub fn from_hmm(name: impl Into<String>, width: i32, length: i32) -> Media {
        let pt = |v: i32| (f64::from(v) * 72.0 / 2540.0) as f32;
        Media {
            name: name.into(),
            width_pt: pt(width),
            height_pt: pt(length),
        }
    }

    /// A PWG 5101.1 media name: a known size, or a self-describing name ending in
    /// `_<w>x<h>mm` / `_<w>x<h>in`.
    pub fn from_name(name: &str) -> Option<Media> {
        if let Some(m) = media_by_name(&standard_media(), name) {
            return Some(Media::from_hmm(name, m.width, m.length));
        }
        let dims = name.rsplit('_').next()?;
        let (dims, per_unit) = if let Some(d) = dims.strip_suffix("mm") {
            (d, 100.0)
        } else if let Some(d) = dims.strip_suffix("in") {
            (d, 2540.0)
        } else {
            return None;
        };
        let (w, h) = dims.split_once('x')?;
        let w: f64 = w.parse().ok()?;
        let h: f64 = h.parse().ok()?;
        // Bounded: nothing smaller than 1 cm or larger than 5 m is paper.
        let ok = |v: f64| v.is_finite() && (1000.0..=500_000.0).contains(&(v * per_unit));
        if !ok(w) || !ok(h) {
            return None;
        }
        Some(Media::from_hmm(
            name,
            (w * per_unit).round() as i32,
            (h * per_unit).round() as i32,
        ))
    }
}

/// What the person asked for, in the terms the imposition code uses.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTicket {
    pub copies: u32,
    /// multiple-document-handling: separate-documents-collated-copies (true) or uncollated.
    pub collate: bool,
    /// page-ranges, 1-based inclusive, ascending; empty = all pages.
    pub page_ranges: Vec<(u32, u32)>,
    pub number_up: u32,
    pub layout: Layout,
    /// `None` when the job did not ask: pages are then turned to fit the medium best.
    pub orientation: Option<Orientation>,
    pub scaling: Scaling,
    pub media: Media,
    /// The job itself named `media` or `media-col`; false when `media` is the printer's default.
    /// A raster page keeps the size in its own header unless the job asked (see
    /// crate::convert::impose).
    pub media_from_job: bool,
    pub sides: Sides,
    pub output_bin: String,
    pub color_mode: ColorMode,
    /// page-delivery reverse-order-*: last page first.
    pub reverse_order: bool,
    /// job-sheets standard: a cover page with the job's name, user and time.
    pub cover_sheet: bool,
    pub job_name: String,
    pub user: String,
    /// Job creation time, Unix seconds.
    pub time: i64,
}

impl Default for JobTicket {
    fn default() -> Self {
        JobTicket {
            copies: 1,
            collate: true,
            page_ranges: Vec::new(),
            number_up: 1,
            layout: Layout::Lrtb,
            orientation: None,
            scaling: Scaling::Auto,
            media: Media::from_name(DEFAULT_MEDIA).expect("standard size"),
            media_from_job: false,
            sides: Sides::OneSided,
            output_bin: "face-down".into(),
            color_mode: ColorMode::Auto,
            reverse_order: false,
            cover_sheet: false,
            job_name: String::new(),
            user: String::new(),
            time: 0,
        }
    }
}

fn keyword(a: &Attribute) -> Option<&str> {
    a.first().and_then(Value::as_str)
}

fn member<'a>(c: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    c.iter().find(|m| m.name == name)
}

impl JobTicket {
    /// The ticket of a job that asks for nothing on a printer with `caps`: the `*-default`
    /// values the printer advertises (crate::ipp_printer::attributes), so that what a client reads as
    /// the default is what prints (RFC 8011 §5.2: a job without an attribute gets the default).
    pub fn defaults_for(caps: &Capabilities) -> JobTicket {
        let m = caps.default_media();
        JobTicket {
            media: Media::from_hmm(m.name.clone(), m.width, m.length),
            sides: match caps.sides_default.as_str() {
                "two-sided-long-edge" => Sides::TwoSidedLongEdge,
                "two-sided-short-edge" => Sides::TwoSidedShortEdge,
                _ => Sides::OneSided,
            },
            color_mode: color_mode(Some(&caps.color_mode_default)),
            ..JobTicket::default()
        }
    }

    /// Builds the ticket from a job's validated job template attributes over the built-in
    /// defaults; see [`JobTicket::from_attributes_over`].
    pub fn from_attributes(
        attrs: &[Attribute],
        job_name: &str,
        user: &str,
        time: i64,
    ) -> JobTicket {
        Self::from_attributes_over(&JobTicket::default(), attrs, job_name, user, time)
    }

    /// Builds the ticket from a job's validated job template attributes; what the job does not
    /// say comes from `defaults` (the printer's, [`JobTicket::defaults_for`]). Values the
    /// validator would not have let through fall back to the default rather than failing: the
    /// job was accepted, so it prints with what can be honoured.
    pub fn from_attributes_over(
        defaults: &JobTicket,
        attrs: &[Attribute],
        job_name: &str,
        user: &str,
        time: i64,
    ) -> JobTicket {
        let mut t = JobTicket {
            job_name: job_name.to_string(),
            user: user.to_string(),
            time,
            ..defaults.clone()
        };
        for a in attrs {
            match a.name.as_str() {
                "copies" => {
                    if let Some(n) = a.first().and_then(Value::as_int) {
                        t.copies = n.clamp(1, 999) as u32;
                    }
                }
                "multiple-document-handling" => {
                    t.collate = keyword(a) != Some("separate-documents-uncollated-copies");
                }
                "page-ranges" => {
                    t.page_ranges = a
                        .values
                        .iter()
                        .filter_map(|v| match v {
                            Value::Range(lo, hi) if *lo >= 1 && lo <= hi => {
                                Some((*lo as u32, *hi as u32))
                            }
                            _ => None,
                        })
                        .collect();
                }
                "number-up" => {
                    if let Some(n @ (1 | 2 | 4 | 6 | 9 | 16)) = a.first().and_then(Value::as_int) {
                        t.number_up = n as u32;
                    }
                }
                "number-up-layout" => {
                    if let Some(l) = keyword(a).and_then(Layout::from_keyword) {
                        t.layout = l;
                    }
                }
                "orientation-requested" => {
                    t.orientation = match a.first().and_then(Value::as_int) {
                        Some(3) => Some(Orientation::Portrait),
                        Some(4) => Some(Orientation::Landscape),
                        Some(5) => Some(Orientation::ReverseLandscape),
                        Some(6) => Some(Orientation::ReversePortrait),
                        _ => None,
                    };
                }
                "print-scaling" => {
                    t.scaling = match keyword(a) {
                        Some("auto-fit") => Scaling::AutoFit,
                        Some("fit") => Scaling::Fit,
                        Some("fill") => Scaling::Fill,
                        Some("none") => Scaling::None,
                        _ => Scaling::Auto,
                    };
                }
                "media" => {
                    if let Some(m) = keyword(a).and_then(Media::from_name) {
                        t.media = m;
                        t.media_from_job = true;
                    }
                }
                "media-col" => {
                    if let Some(m) = a
                        .first()
                        .and_then(Value::as_collection)
                        .and_then(media_from_col)
                    {
                        t.media = m;
                        t.media_from_job = true;
                    }
                }
                "sides" => {
                    t.sides = match keyword(a) {
                        Some("two-sided-long-edge") => Sides::TwoSidedLongEdge,
                        Some("two-sided-short-edge") => Sides::TwoSidedShortEdge,
                        _ => Sides::OneSided,
                    };
                }
                "output-bin" => {
                    if let Some(k) = keyword(a) {
                        t.output_bin = k.to_string();
                    }
                }
                "print-color-mode" => t.color_mode = color_mode(keyword(a)),
                "page-delivery" => {
                    t.reverse_order = keyword(a).is_some_and(|k| k.starts_with("reverse-order"));
                }
                "job-sheets" => t.cover_sheet = keyword(a) == Some("standard"),
                _ => {}
            }
        }
        t
    }

    /// Two-sided printing: each copy and document starts on a front side.
    pub fn duplex(&self) -> bool {
        self.sides != Sides::OneSided
    }

    /// Whether 1-based page `n` of a document is selected by page-ranges.
    pub fn page_selected(&self, n: u32) -> bool {
        self.page_ranges.is_empty() || self.page_ranges.iter().any(|&(lo, hi)| lo <= n && n <= hi)
    }
}

fn color_mode(keyword: Option<&str>) -> ColorMode {
    match keyword {
        Some("monochrome" | "process-monochrome" | "bi-level") => ColorMode::Monochrome,
        Some("color") => ColorMode::Color,
        _ => ColorMode::Auto,
    }
}

/// media-col: media-size (x-dimension, y-dimension) wins over media-size-name.
fn media_from_col(c: &[Attribute]) -> Option<Media> {
    let name = member(c, "media-size-name").and_then(keyword);
    if let Some(size) = member(c, "media-size")
        .and_then(Attribute::first)
        .and_then(Value::as_collection)
    {
        let dim = |n: &str| {
            member(size, n)
                .and_then(Attribute::first)
                .and_then(Value::as_int)
        };
        if let (Some(w), Some(h)) = (dim("x-dimension"), dim("y-dimension")) {
            if (1000..=500_000).contains(&w) && (1000..=500_000).contains(&h) {
                return Some(Media::from_hmm(name.unwrap_or("custom"), w, h));
            }
        }
    }
    name.and_then(Media::from_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(name: &str, v: &str) -> Attribute {
        Attribute::new(name, Value::Keyword(v.into()))
    }

    #[test]
    fn defaults_match_the_printer_defaults() {
        let t = JobTicket::from_attributes(&[], "j", "u", 5);
        assert_eq!(t.copies, 1);
        assert!(t.collate);
        assert_eq!(t.number_up, 1);
        assert_eq!(t.layout, Layout::Lrtb);
        assert_eq!(t.scaling, Scaling::Auto);
        assert_eq!(t.media.name, DEFAULT_MEDIA);
        assert!((t.media.width_pt - 595.28).abs() < 0.1);
        assert_eq!(t.sides, Sides::OneSided);
        assert_eq!(t.color_mode, ColorMode::Auto);
        assert!(!t.reverse_order && !t.cover_sheet);
        assert_eq!(
            (t.job_name.as_str(), t.user.as_str(), t.time),
            ("j", "u", 5)
        );
    }

    #[test]
    fn reads_every_option() {
        let size = Value::Collection(vec![
            Attribute::new("x-dimension", Value::Integer(21590)),
            Attribute::new("y-dimension", Value::Integer(27940)),
        ]);
        let attrs = vec![
            Attribute::new("copies", Value::Integer(3)),
            kw(
                "multiple-document-handling",
                "separate-documents-uncollated-copies",
            ),
            Attribute::set("page-ranges", vec![Value::Range(1, 2), Value::Range(5, 5)]),
            Attribute::new("number-up", Value::Integer(4)),
            kw("number-up-layout", "tbrl"),
            Attribute::new("orientation-requested", Value::Enum(4)),
            kw("print-scaling", "fill"),
            Attribute::new(
                "media-col",
                Value::Collection(vec![Attribute::new("media-size", size)]),
            ),
            kw("sides", "two-sided-long-edge"),
            kw("print-color-mode", "monochrome"),
            kw("page-delivery", "reverse-order-face-up"),
            kw("job-sheets", "standard"),
        ];
        let t = JobTicket::from_attributes(&attrs, "j", "u", 0);
        assert_eq!(t.copies, 3);
        assert!(!t.collate);
        assert!(t.page_selected(2) && !t.page_selected(3) && t.page_selected(5));
        assert_eq!(t.number_up, 4);
        assert_eq!(t.layout, Layout::Tbrl);
        assert_eq!(t.orientation, Some(Orientation::Landscape));
        assert_eq!(t.scaling, Scaling::Fill);
        assert!((t.media.width_pt - 612.0).abs() < 0.1 && (t.media.height_pt - 792.0).abs() < 0.1);
        assert!(t.media_from_job);
        assert!(t.duplex());
        assert_eq!(t.color_mode, ColorMode::Monochrome);
        assert!(t.reverse_order && t.cover_sheet);
    }

    #[test]
    fn printer_defaults_fill_what_the_job_leaves_out() {
        let caps = Capabilities {
            media_default: "na_letter_8.5x11in".into(),
            sides_default: "two-sided-long-edge".into(),
            color_mode_default: "monochrome".into(),
            ..Capabilities::default()
        };
        let d = JobTicket::defaults_for(&caps);
        let t = JobTicket::from_attributes_over(&d, &[], "j", "u", 5);
        assert_eq!(t.media.name, "na_letter_8.5x11in");
        assert!((t.media.width_pt - 612.0).abs() < 0.1 && (t.media.height_pt - 792.0).abs() < 0.1);
        assert!(
            !t.media_from_job,
            "the printer's media-default is not the job's choice"
        );
        assert_eq!(t.sides, Sides::TwoSidedLongEdge);
        assert_eq!(t.color_mode, ColorMode::Monochrome);
        assert_eq!((t.job_name.as_str(), t.time), ("j", 5));
        // What the job says wins over the printer's default.
        let attrs = [
            kw("media", "iso_a5_148x210mm"),
            kw("sides", "one-sided"),
            kw("print-color-mode", "color"),
        ];
        let t = JobTicket::from_attributes_over(&d, &attrs, "j", "u", 5);
        assert_eq!(t.media.name, "iso_a5_148x210mm");
        assert!(t.media_from_job);
        assert_eq!(t.sides, Sides::OneSided);
        assert_eq!(t.color_mode, ColorMode::Color);
        // The built-in printer's defaults are the built-in ticket's.
        assert_eq!(
            JobTicket::defaults_for(&Capabilities::default()),
            JobTicket::default()
        );
    }

    #[test]
    fn self_describing_media_names_are_bounded() {
        let m = Media::from_name("custom_foo_100x150mm").unwrap();
        assert!((m.width_pt - 283.46).abs() < 0.1);
        assert!(Media::from_name("na_huge_9999999x1in").is_none());
        assert!(Media::from_name("nonsense").is_none());
    }

    #[test]
    fn layouts_place_cells() {
        // 2 × 2 grid, cell index → (col, row).
        assert_eq!(Layout::Lrtb.cell(1, 2, 2), (1, 0));
        assert_eq!(Layout::Lrtb.cell(2, 2, 2), (0, 1));
        assert_eq!(Layout::Rltb.cell(0, 2, 2), (1, 0));
        assert_eq!(Layout::Tblr.cell(1, 2, 2), (0, 1));
        assert_eq!(Layout::Btrl.cell(0, 2, 2), (1, 1));
        assert_eq!(Layout::Lrbt.cell(0, 2, 2), (0, 1));
    }
}

//! What a printer can do (media, resolutions, formats, colour, duplex) and its settable description:
//! plain data that the IPP layer turns into attributes and job-template validation checks against.

/// One media size (PWG 5101.1 self-describing name, dimensions in hundredths of millimetres).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSize {
    pub name: String,
    pub width: i32,
    pub length: i32,
}

/// The standard sizes a print server offers by default. Printable margins follow IPP Everywhere
/// (PWG 5100.14 §5.1.6): 1/6 inch is what every client handles.
pub fn standard_media() -> Vec<MediaSize> {
    [
        ("na_letter_8.5x11in", 21590, 27940),
        ("na_legal_8.5x14in", 21590, 35560),
        ("iso_a4_210x297mm", 21000, 29700),
        ("iso_a5_148x210mm", 14800, 21000),
        ("iso_a6_105x148mm", 10500, 14800),
        ("jis_b5_182x257mm", 18200, 25700),
        ("na_index-4x6_4x6in", 10160, 15240),
        ("na_5x7_5x7in", 12700, 17780),
        ("iso_dl_110x220mm", 11000, 22000),
        ("na_number-10_4.125x9.5in", 10477, 24130),
    ]
    .into_iter()
    .map(|(n, w, l)| MediaSize {
        name: n.to_string(),
        width: w,
        length: l,
    })
    .collect()
}

/// Looks up a size by its PWG name.
pub fn media_by_name<'a>(media: &'a [MediaSize], name: &str) -> Option<&'a MediaSize> {
    media.iter().find(|m| m.name == name)
}

/// Capabilities of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    pub make_and_model: String,
    pub color: bool,
    pub duplex: bool,
    pub media: Vec<MediaSize>,
    pub media_default: String,
    /// Sizes loaded in the trays (media-ready); a subset of `media`.
    pub media_ready: Vec<String>,
    pub media_sources: Vec<String>,
    pub media_types: Vec<String>,
    /// hundredths of mm on each side
    pub margin: i32,
    pub resolutions_dpi: Vec<i32>,
    pub document_formats: Vec<String>,
    pub pages_per_minute: i32,
    pub pages_per_minute_color: i32,
    /// sides-supported; empty: derived from `duplex` (see [`Capabilities::sides_supported`]).
    pub sides: Vec<String>,
    /// sides-default, one of the supported values.
    pub sides_default: String,
    /// print-color-mode-supported; empty: derived from `color`.
    pub color_modes: Vec<String>,
    /// print-color-mode-default, one of the supported values.
    pub color_mode_default: String,
    /// The media-source and media-type of media-col-default.
    pub media_source_default: String,
    pub media_type_default: String,
    /// printer-resolution-default, dpi; one of `resolutions_dpi` (the first when it is not).
    pub resolution_default: i32,
}

impl Capabilities {
    /// sides-supported (RFC 8011 §5.2.8): the explicit list (from a PPD), else what `duplex` says.
    pub fn sides_supported(&self) -> Vec<String> {
        if !self.sides.is_empty() {
            return self.sides.clone();
        }
        let mut v = vec!["one-sided".to_string()];
        if self.duplex {
            v.extend(["two-sided-long-edge".into(), "two-sided-short-edge".into()]);
        }
        v
    }

    /// print-color-mode-supported (PWG 5100.13): the explicit list (from a PPD), else `auto`,
    /// `monochrome` and, on a colour device, `color`.
    pub fn color_modes_supported(&self) -> Vec<String> {
        if !self.color_modes.is_empty() {
            return self.color_modes.clone();
        }
        let list: &[&str] = if self.color {
            &["auto", "color", "monochrome"]
        } else {
            &["auto", "monochrome"]
        };
        list.iter().map(|s| s.to_string()).collect()
    }

    /// printer-resolution-default, always one of the supported resolutions.
    pub fn resolution_default_dpi(&self) -> i32 {
        if self.resolutions_dpi.contains(&self.resolution_default) {
            self.resolution_default
        } else {
            self.resolutions_dpi.first().copied().unwrap_or(300)
        }
    }

    /// The default media size, always one of `media`.
    pub fn default_media(&self) -> &MediaSize {
        media_by_name(&self.media, &self.media_default).unwrap_or(&self.media[0])
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            make_and_model: "printbridge IPP Everywhere".into(),
            color: true,
            duplex: true,
            media: standard_media(),
            media_default: "iso_a4_210x297mm".into(),
            media_ready: vec!["iso_a4_210x297mm".into(), "na_letter_8.5x11in".into()],
            media_sources: vec!["auto".into(), "main".into(), "manual".into()],
            media_types: vec![
                "stationery".into(),
                "photographic".into(),
                "envelope".into(),
            ],
            margin: 423,
            resolutions_dpi: vec![150, 300, 600],
            document_formats: vec![
                "application/pdf".into(),
                "image/jpeg".into(),
                "image/png".into(),
                "image/pwg-raster".into(),
                "image/urf".into(),
                "application/octet-stream".into(),
            ],
            pages_per_minute: 20,
            pages_per_minute_color: 15,
            sides: Vec::new(),
            sides_default: "one-sided".into(),
            color_modes: Vec::new(),
            color_mode_default: "auto".into(),
            media_source_default: "main".into(),
            media_type_default: "stationery".into(),
            resolution_default: 300,
        }
    }
}

/// The settable description of a printer (Set-Printer-Attributes in a later issue; config now).
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub name: String,
    pub location: String,
    pub info: String,
    pub organization: String,
    pub organizational_unit: String,
    /// `geo:` URI (RFC 5870) or empty for unknown.
    pub geo_location: String,
}

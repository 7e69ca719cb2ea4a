//! Printer attributes (RFC 8011 §5.4, PWG 5100.14 IPP Everywhere, plus what AirPrint, Mopria and
//! Windows look for). Attributes that only change with configuration are encoded once and kept as
//! bytes; the few that depend on the request (URIs) or on state are built per request.

use crate::codec::ipp::{encode_attribute, Attribute, Value};
use crate::codec::ipp_attr::{en, int, kw, kws, mime, text, JOB_TEMPLATE};
use crate::model::printer::{Capabilities, MediaSize};

/// Attributes encoded one by one, with their names, so a response can pick any subset.
pub type EncodedAttributes = Vec<(String, Vec<u8>)>;

/// number-up-layout values (PWG 5100.13): every cell order the imposition code places.
pub const NUMBER_UP_LAYOUTS: &[&str] = &[
    "btlr", "btrl", "lrbt", "lrtb", "rlbt", "rltb", "tblr", "tbrl",
];

/// page-delivery values (PWG 5100.13): the renderer honours the page order; the face is the one
/// output bin's (output-bin-supported is face-down only), so face-up values are not offered.
pub const PAGE_DELIVERIES: &[&str] = &["reverse-order-face-down", "same-order-face-down"];

pub fn media_size_col(m: &MediaSize) -> Value {
    Value::Collection(vec![
        Attribute::new("x-dimension", int(m.width)),
        Attribute::new("y-dimension", int(m.length)),
    ])
}

pub fn media_col(m: &MediaSize, source: Option<&str>, media_type: &str, margin: i32) -> Value {
    let mut members = vec![
        Attribute::new("media-bottom-margin", int(margin)),
        Attribute::new("media-left-margin", int(margin)),
        Attribute::new("media-right-margin", int(margin)),
        Attribute::new("media-size", media_size_col(m)),
        Attribute::new("media-size-name", kw(&m.name)),
    ];
    if let Some(s) = source {
        members.push(Attribute::new("media-source", kw(s)));
    }
    members.push(Attribute::new("media-top-margin", int(margin)));
    members.push(Attribute::new("media-type", kw(media_type)));
    Value::Collection(members)
}

/// URF capabilities (AirPrint): version, copies, duplex, resolutions, colour spaces, quality.
pub fn urf_supported(caps: &Capabilities) -> Vec<String> {
    let mut v = vec![
        "V1.4".to_string(),
        "CP1".into(),
        "W8".into(),
        "PQ3-4-5".into(),
    ];
    if caps.color {
        v.push("SRGB24".into());
    }
    if caps.duplex {
        v.push("DM1".into());
    }
    let mut r: Vec<i32> = caps.resolutions_dpi.clone();
    r.sort_unstable();
    v.push(format!(
        "RS{}",
        r.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("-")
    ));
    v.push("IS1".into());
    v.push("MT1-2-3".into());
    v.push("OB10".into());
    v
}

pub fn pwg_raster_types(caps: &Capabilities) -> Vec<&'static str> {
    if caps.color {
        vec!["black_1", "sgray_8", "srgb_8", "srgb_16", "cmyk_8"]
    } else {
        vec!["black_1", "sgray_8"]
    }
}

/// Attributes fixed by capabilities and the static description. `printer-name` & co. are dynamic.
pub fn static_attributes(caps: &Capabilities, multiple_operation_timeout: u32) -> Vec<Attribute> {
    let mut a: Vec<Attribute> = Vec::new();
    let mut put = |n: &str, v: Vec<Value>| a.push(Attribute::set(n, v));
    let default_media = caps.default_media();
    let ready: Vec<&MediaSize> = caps
        .media_ready
        .iter()
        .filter_map(|n| caps.media.iter().find(|m| &m.name == n))
        .collect();
    let res: Vec<Value> = caps
        .resolutions_dpi
        .iter()
        .map(|r| Value::Resolution {
            x: *r,
            y: *r,
            units: 3,
        })
        .collect();
    // The renderer and the device use the same defaults (convert::ticket::JobTicket::defaults_for).
    let default_res = caps.resolution_default_dpi();

    put("charset-configured", vec![Value::Charset("utf-8".into())]);
    put(
        "charset-supported",
        vec![
            Value::Charset("utf-8".into()),
            Value::Charset("us-ascii".into()),
        ],
    );
    // The charsets text/plain documents may be in (PWG 5100.7 §6.9 document-charset-supported);
    // the default is what a document without one is read as.
    put(
        "document-charset-default",
        vec![Value::Charset("utf-8".into())],
    );
    put(
        "document-charset-supported",
        crate::convert::sniff::Charset::SUPPORTED
            .iter()
            .map(|c| Value::Charset((*c).into()))
            .collect(),
    );
    put("color-supported", vec![Value::Boolean(caps.color)]);
    put("compression-supported", kws(&["none", "deflate", "gzip"]));
    put("copies-default", vec![int(1)]);
    put("copies-supported", vec![Value::Range(1, 999)]);
    put(
        "document-format-default",
        vec![mime("application/octet-stream")],
    );
    put("document-format-preferred", vec![mime("application/pdf")]);
    put(
        "document-format-supported",
        caps.document_formats.iter().map(|f| mime(f)).collect(),
    );
    put("document-password-supported", vec![int(0)]);
    put("feed-orientation-default", vec![kw("short-edge-first")]);
    put("feed-orientation-supported", vec![kw("short-edge-first")]);
    put("finishings-default", vec![en(3)]);
    put("finishings-supported", vec![en(3)]);
    put(
        "generated-natural-language-supported",
        vec![Value::NaturalLanguage("en".into())],
    );
    put("identify-actions-default", vec![kw("display")]);
    put("identify-actions-supported", kws(&["display", "sound"]));
    put(
        "ipp-features-supported",
        kws(&["ipp-everywhere", "ipp-everywhere-server", "page-overrides"]),
    );
    put(
        "ipp-versions-supported",
        kws(&["1.0", "1.1", "2.0", "2.1", "2.2"]),
    );
    put("ippget-event-life", vec![int(300)]);
    put(
        "job-account-id-default",
        vec![Value::OutOfBand(crate::codec::ipp::tag::NO_VALUE)],
    );
    put("job-account-id-supported", vec![Value::Boolean(true)]);
    put(
        "job-accounting-user-id-default",
        vec![Value::OutOfBand(crate::codec::ipp::tag::NO_VALUE)],
    );
    put(
        "job-accounting-user-id-supported",
        vec![Value::Boolean(true)],
    );
    let creation = job_creation_attributes(false);
    put(creation.name.as_str(), creation.values);
    put("job-hold-until-default", vec![kw("no-hold")]);
    put(
        "job-hold-until-supported",
        kws(&[
            "no-hold",
            "indefinite",
            "day-time",
            "evening",
            "night",
            "second-shift",
            "third-shift",
            "weekend",
        ]),
    );
    put("job-ids-supported", vec![Value::Boolean(true)]);
    put("job-impressions-supported", vec![Value::Range(0, 100_000)]);
    put("job-k-octets-supported", vec![Value::Range(0, i32::MAX)]);
    put("job-media-sheets-supported", vec![Value::Range(0, 100_000)]);
    put("job-priority-default", vec![int(50)]);
    put("job-priority-supported", vec![int(100)]);
    put("job-privacy-attributes", kws(&["default"]));
    put("job-privacy-scope", vec![kw("owner")]);
    put(
        "job-settable-attributes-supported",
        kws(&["job-hold-until", "job-name", "job-priority"]),
    );
    put("job-sheets-default", vec![kw("none")]);
    put("job-sheets-supported", kws(&["none", "standard"]));
    put("jpeg-k-octets-supported", vec![Value::Range(0, 16 * 1024)]);
    put("jpeg-x-dimension-supported", vec![Value::Range(0, 16384)]);
    put("jpeg-y-dimension-supported", vec![Value::Range(1, 16384)]);
    put("landscape-orientation-requested-preferred", vec![en(5)]);
    put("media-bottom-margin-supported", vec![int(caps.margin)]);
    put(
        "media-col-default",
        vec![media_col(
            default_media,
            Some(&caps.media_source_default),
            &caps.media_type_default,
            caps.margin,
        )],
    );
    put(
        "media-col-ready",
        ready
            .iter()
            .map(|m| {
                media_col(
                    m,
                    Some(&caps.media_source_default),
                    &caps.media_type_default,
                    caps.margin,
                )
            })
            .collect(),
    );
    put(
        "media-col-supported",
        kws(&[
            "media-bottom-margin",
            "media-left-margin",
            "media-right-margin",
            "media-size",
            "media-size-name",
            "media-source",
            "media-top-margin",
            "media-type",
        ]),
    );
    put("media-default", vec![kw(&default_media.name)]);
    put("media-left-margin-supported", vec![int(caps.margin)]);
    put("media-ready", ready.iter().map(|m| kw(&m.name)).collect());
    put("media-right-margin-supported", vec![int(caps.margin)]);
    put(
        "media-size-supported",
        caps.media.iter().map(media_size_col).collect(),
    );
    put(
        "media-source-supported",
        caps.media_sources.iter().map(|s| kw(s)).collect(),
    );
    put(
        "media-supported",
        caps.media.iter().map(|m| kw(&m.name)).collect(),
    );
    put("media-top-margin-supported", vec![int(caps.margin)]);
    put(
        "media-type-supported",
        caps.media_types.iter().map(|s| kw(s)).collect(),
    );
    put("mopria-certified", vec![text("1.3")]);
    put(
        "multiple-document-handling-default",
        vec![kw("separate-documents-collated-copies")],
    );
    put(
        "multiple-document-handling-supported",
        kws(&[
            "separate-documents-uncollated-copies",
            "separate-documents-collated-copies",
        ]),
    );
    put(
        "multiple-document-jobs-supported",
        vec![Value::Boolean(true)],
    );
    put(
        "multiple-operation-time-out",
        vec![int(multiple_operation_timeout as i32)],
    );
    put(
        "multiple-operation-time-out-action",
        vec![kw("process-job")],
    );
    put(
        "natural-language-configured",
        vec![Value::NaturalLanguage("en".into())],
    );
    put("notify-events-default", vec![kw("job-completed")]);
    put(
        "notify-events-supported",
        kws(&[
            "job-completed",
            "job-created",
            "job-progress",
            "job-state-changed",
            "printer-config-changed",
            "printer-state-changed",
        ]),
    );
    put("notify-lease-duration-default", vec![int(86400)]);
    put(
        "notify-lease-duration-supported",
        vec![Value::Range(0, 86400 * 7)],
    );
    put("notify-max-events-supported", vec![int(100)]);
    put("notify-pull-method-supported", vec![kw("ippget")]);
    put("number-up-default", vec![int(1)]);
    put(
        "number-up-supported",
        vec![int(1), int(2), int(4), int(6), int(9), int(16)],
    );
    put("number-up-layout-default", vec![kw("lrtb")]);
    put("number-up-layout-supported", kws(NUMBER_UP_LAYOUTS));
    put("operations-supported", super::operations_supported());
    // Without orientation-requested the renderer turns each page to fit the medium best
    // (convert::ticket::JobTicket::orientation None): that is 'none' (7, PWG 5100.13), and the
    // default is reported as no-value, as CUPS does, since RFC 8011 §5.2.10 defaults are 3..6.
    put(
        "orientation-requested-default",
        vec![Value::OutOfBand(crate::codec::ipp::tag::NO_VALUE)],
    );
    put(
        "orientation-requested-supported",
        vec![en(3), en(4), en(5), en(6), en(7)],
    );
    put("output-bin-default", vec![kw("face-down")]);
    put("output-bin-supported", vec![kw("face-down")]);
    put(
        "overrides-supported",
        kws(&["document-number", "document-numbers", "pages"]),
    );
    put("page-delivery-default", vec![kw("same-order-face-down")]);
    put("page-delivery-supported", kws(PAGE_DELIVERIES));
    put("page-ranges-supported", vec![Value::Boolean(true)]);
    put("pages-per-minute", vec![int(caps.pages_per_minute)]);
    if caps.color {
        put(
            "pages-per-minute-color",
            vec![int(caps.pages_per_minute_color)],
        );
    }
    put("pdf-k-octets-supported", vec![Value::Range(0, i32::MAX)]);
    put(
        "pdf-versions-supported",
        kws(&[
            "adobe-1.3",
            "adobe-1.4",
            "adobe-1.5",
            "adobe-1.6",
            "adobe-1.7",
            "iso-32000-1_2008",
        ]),
    );
    put("pdl-override-supported", vec![kw("attempted")]);
    put(
        "preferred-attributes-supported",
        vec![Value::Boolean(false)],
    );
    put(
        "print-color-mode-default",
        vec![kw(&caps.color_mode_default)],
    );
    put(
        "print-color-mode-supported",
        caps.color_modes_supported().iter().map(|s| kw(s)).collect(),
    );
    put("print-content-optimize-default", vec![kw("auto")]);
    put(
        "print-content-optimize-supported",
        kws(&["auto", "graphic", "photo", "text", "text-and-graphic"]),
    );
    put("print-quality-default", vec![en(4)]);
    put("print-quality-supported", vec![en(3), en(4), en(5)]);
    put("print-rendering-intent-default", vec![kw("auto")]);
    put(
        "print-rendering-intent-supported",
        kws(&["auto", "perceptual", "relative", "saturation"]),
    );
    put("print-scaling-default", vec![kw("auto")]);
    put(
        "print-scaling-supported",
        kws(&["auto", "auto-fit", "fill", "fit", "none"]),
    );
    put(
        "printer-get-attributes-supported",
        kws(&["document-format"]),
    );
    put("printer-kind", kws(&["document", "photo"]));
    put("printer-make-and-model", vec![text(&caps.make_and_model)]);
    put(
        "printer-resolution-default",
        vec![Value::Resolution {
            x: default_res,
            y: default_res,
            units: 3,
        }],
    );
    put("printer-resolution-supported", res.clone());
    put(
        "printer-settable-attributes-supported",
        kws(&[
            "printer-geo-location",
            "printer-info",
            "printer-location",
            "printer-name",
            "printer-organization",
            "printer-organizational-unit",
        ]),
    );
    put("pwg-raster-document-resolution-supported", res);
    put("pwg-raster-document-sheet-back", vec![kw("normal")]);
    put(
        "pwg-raster-document-type-supported",
        kws(&pwg_raster_types(caps)),
    );
    put(
        "reference-uri-schemes-supported",
        vec![
            Value::UriScheme("http".into()),
            Value::UriScheme("https".into()),
        ],
    );
    put("sides-default", vec![kw(&caps.sides_default)]);
    put(
        "sides-supported",
        caps.sides_supported().iter().map(|s| kw(s)).collect(),
    );
    put(
        "urf-supported",
        urf_supported(caps).iter().map(|s| kw(s)).collect(),
    );
    put(
        "which-jobs-supported",
        kws(&[
            "completed",
            "not-completed",
            "all",
            "aborted",
            "canceled",
            "pending",
            "pending-held",
            "processing",
            "processing-stopped",
            "proof-print",
        ]),
    );
    let cmd = "PDF,PWGRaster,URF,JPEG,PNG";
    put(
        "printer-device-id",
        vec![text(&format!(
            "MFG:printbridge;MDL:{};CMD:{cmd};CLS:PRINTER;",
            caps.make_and_model.replace([';', ':'], " ")
        ))],
    );
    a.sort_by(|x, y| x.name.cmp(&y.name));
    a
}

/// `media-col-database` (PWG 5100.7): every supported size with every source and type, borderless
/// photo sizes included. Only sent when asked for by name, as its size dwarfs everything else.
/// job-creation-attributes-supported (PWG 5100.11 §5.4.3); a release queue (docs/release.md)
/// takes job-password and job-password-encryption too.
pub fn job_creation_attributes(release: bool) -> Attribute {
    let mut creation: Vec<&str> = JOB_TEMPLATE.to_vec();
    creation.extend(["ipp-attribute-fidelity", "job-name", "document-name"]);
    if release {
        creation.extend(["job-password", "job-password-encryption"]);
    }
    creation.sort_unstable();
    Attribute::set(
        "job-creation-attributes-supported",
        creation
            .iter()
            .map(|k| Value::Keyword(k.to_string()))
            .collect(),
    )
}

/// What a release queue adds to its printer attributes so that print dialogs offer a PIN
/// (PWG 5100.11 §5.4: job-password-supported is the longest job-password in octets,
/// job-password-length-supported the range, job-password-encryption-supported the hashes taken).
pub fn release_attributes() -> Vec<Attribute> {
    use crate::model::release::{PinEncryption, PIN_LENGTH_SUPPORTED};
    let (min, max) = (
        *PIN_LENGTH_SUPPORTED.start() as i32,
        *PIN_LENGTH_SUPPORTED.end() as i32,
    );
    vec![
        Attribute::new("job-password-supported", Value::Integer(max)),
        Attribute::new("job-password-length-supported", Value::Range(min, max)),
        Attribute::set(
            "job-password-encryption-supported",
            PinEncryption::SUPPORTED
                .iter()
                .map(|k| Value::Keyword(k.to_string()))
                .collect(),
        ),
        job_creation_attributes(true),
    ]
}

pub fn media_col_database(caps: &Capabilities) -> Attribute {
    let mut v = Vec::new();
    for m in &caps.media {
        v.push(media_col(m, None, &caps.media_types[0], caps.margin));
    }
    Attribute::set("media-col-database", v)
}

/// Encodes attributes one by one so a response can pick any subset without re-encoding.
pub fn encode_each(attrs: &[Attribute]) -> EncodedAttributes {
    attrs
        .iter()
        .map(|a| {
            let mut b = Vec::new();
            encode_attribute(a, &mut b);
            (a.name.clone(), b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::ticket::{ColorMode, JobTicket, Layout, Scaling};

    /// RFC 8011 §5.2: a job without an attribute is printed as its `*-default` says; the
    /// renderer's ticket for such a job must therefore say the same as the attributes.
    #[test]
    fn advertised_defaults_are_what_the_renderer_uses() {
        let ppd_like = Capabilities {
            media_default: "na_letter_8.5x11in".into(),
            sides_default: "two-sided-long-edge".into(),
            color_mode_default: "monochrome".into(),
            ..Capabilities::default()
        };
        for caps in [Capabilities::default(), ppd_like] {
            let attrs = static_attributes(&caps, 300);
            let get = |n: &str| {
                attrs
                    .iter()
                    .find(|a| a.name == n)
                    .and_then(|a| a.first())
                    .unwrap_or_else(|| panic!("{n} missing"))
                    .clone()
            };
            let kw_of = |n: &str| get(n).as_str().unwrap().to_string();
            let t = JobTicket::defaults_for(&caps);
            assert_eq!(kw_of("media-default"), t.media.name);
            assert_eq!(kw_of("sides-default"), t.sides.keyword());
            let mode = match t.color_mode {
                ColorMode::Auto => "auto",
                ColorMode::Color => "color",
                ColorMode::Monochrome => "monochrome",
            };
            assert_eq!(kw_of("print-color-mode-default"), mode);
            assert_eq!(kw_of("number-up-layout-default"), "lrtb");
            assert_eq!(t.layout, Layout::Lrtb);
            assert_eq!(kw_of("page-delivery-default"), "same-order-face-down");
            assert!(!t.reverse_order);
            assert_eq!(kw_of("print-scaling-default"), "auto");
            assert_eq!(t.scaling, Scaling::Auto);
            assert_eq!(kw_of("output-bin-default"), t.output_bin);
            assert_eq!(kw_of("job-sheets-default"), "none");
            assert!(!t.cover_sheet);
            assert_eq!(
                kw_of("multiple-document-handling-default"),
                "separate-documents-collated-copies"
            );
            assert!(t.collate);
            assert_eq!(get("copies-default").as_int(), Some(t.copies as i32));
            assert_eq!(get("number-up-default").as_int(), Some(t.number_up as i32));
            assert!(matches!(
                get("orientation-requested-default"),
                Value::OutOfBand(_)
            ));
            assert_eq!(t.orientation, None);
        }
    }
}

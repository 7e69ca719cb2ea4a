//! `printbridge convert IN OUT`: the appliance's document conversions as a command (PDF, PWG
//! raster, URF, JPEG, PNG in; PDF, PWG raster or URF out; job options with `-o name=value`), for
//! people checking what a printer will receive and for scripts/bench-convert.
//!
//! The files are opened here; the conversions themselves are the pure ones in [`crate::convert`].
//! A raster → PDF or PDF → raster run without options streams straight from the input file to
//! the output; with options the job renderer (n-up, page ranges, ...) makes the PDF first.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::codec::ipp::{Attribute, Value};
use crate::convert::pdf_raster::{
    pdf_to_raster_with, PdfRasterError, RasterColor, RasterRun, RasterTarget,
};
use crate::convert::pipeline::{render_job, ConvertLimits, DocumentInput, RenderError};
use crate::convert::sniff::{self, DocFormat};
use crate::convert::ticket::JobTicket;
use crate::convert::{ConvertError, RasterFormat, RasterToPdf};
use crate::model::printer::MediaSize;

/// Arguments of `printbridge convert`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConvertArgs {
    /// Input document (PDF, PWG raster, URF, JPEG or PNG; sniffed).
    pub input: PathBuf,
    /// Output file.
    pub output: PathBuf,
    /// Output format; by default from OUT's extension (.pwg, .urf), else pdf.
    #[arg(long, value_parser = ["pdf", "pwg", "urf"])]
    pub to: Option<String>,
    /// Raster output resolution in dots per inch.
    #[arg(long, default_value_t = 300)]
    pub resolution: u32,
    /// Raster output colour: sgray_8, srgb_8 or black_1 (PWG only).
    #[arg(long, default_value = "srgb_8")]
    pub color: String,
    /// zlib level (0-9) for the page images of a raster → PDF conversion: 1 is faster with files
    /// about three times larger, 6 makes the smallest files; the default is 5.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=9),
        default_value_t = crate::convert::raster_pdf::DEFAULT_DEFLATE_LEVEL)]
    pub deflate_level: u32,
    /// Threads rendering PDF pages into raster; 0 (the default): the machine's available cores,
    /// as the appliance does with `[convert] threads` unset.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Job template attribute as name=value, repeatable: number-up=2, page-ranges=1-3,
    /// media=iso_a4_210x297mm, sides=two-sided-long-edge, print-color-mode=monochrome, ...
    #[arg(short = 'o', value_name = "NAME=VALUE")]
    pub options: Vec<String>,
}

/// Why a conversion command failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertCmdError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Raster(#[from] ConvertError),
    #[error(transparent)]
    PdfRaster(#[from] PdfRasterError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ConvertCmdError + '_ {
    move |source| ConvertCmdError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `-o name=value` as an IPP attribute: integers, `a-b` ranges (page-ranges), booleans, else a
/// keyword.
fn parse_option(option: &str) -> Result<Attribute, ConvertCmdError> {
    let (name, value) = option
        .split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| ConvertCmdError::Usage(format!("-o {option}: expected name=value")))?;
    let values = value
        .split(',')
        .map(|v| {
            if let Ok(n) = v.parse::<i32>() {
                if name == "page-ranges" {
                    return Value::Range(n, n);
                }
                return Value::Integer(n);
            }
            if let Some((a, b)) = v.split_once('-') {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    return Value::Range(a, b);
                }
            }
            match v {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => Value::Keyword(v.to_string()),
            }
        })
        .collect();
    Ok(Attribute::set(name, values))
}

/// Runs `printbridge convert`; returns the number of pages written.
pub fn run(args: &ConvertArgs) -> Result<u32, ConvertCmdError> {
    let to = match args.to.as_deref() {
        Some(t) => t.to_string(),
        None => match args.output.extension().and_then(|e| e.to_str()) {
            Some("pwg") => "pwg".into(),
            Some("urf") => "urf".into(),
            _ => "pdf".into(),
        },
    };
    let attrs = args
        .options
        .iter()
        .map(|o| parse_option(o))
        .collect::<Result<Vec<_>, _>>()?;
    let mut input = BufReader::with_capacity(
        64 * 1024,
        File::open(&args.input).map_err(io_err(&args.input))?,
    );
    let kind = {
        let head = io::BufRead::fill_buf(&mut input).map_err(io_err(&args.input))?;
        sniff::printable_format(head)
    };
    let out_file = File::create(&args.output).map_err(io_err(&args.output))?;
    let mut out = BufWriter::with_capacity(256 * 1024, out_file);
    let result = convert(args, &to, &attrs, kind, &mut input, &mut out).and_then(|pages| {
        out.flush().map_err(io_err(&args.output))?;
        Ok(pages)
    });
    if result.is_err() {
        drop(out);
        let _ = std::fs::remove_file(&args.output);
    }
    result
}

fn convert(
    args: &ConvertArgs,
    to: &str,
    attrs: &[Attribute],
    kind: Option<DocFormat>,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<u32, ConvertCmdError> {
    let ticket = JobTicket::from_attributes(attrs, "convert", "", 0);
    let render = |input: &mut dyn Read, out: &mut dyn Write| {
        let doc = DocumentInput {
            format: "application/octet-stream".into(),
            compression: "none".into(),
            reader: Box::new(input),
        };
        render_job([doc], &ticket, &ConvertLimits::default(), out).map(|s| s.output_pages)
    };
    if to == "pdf" {
        let raster = match kind {
            Some(DocFormat::PwgRaster) => Some(RasterFormat::Pwg),
            Some(DocFormat::Urf) => Some(RasterFormat::Urf),
            _ => None,
        };
        return match raster {
            Some(format) if attrs.is_empty() => {
                let settings = RasterToPdf {
                    deflate_level: args.deflate_level,
                    ..RasterToPdf::default()
                };
                Ok(settings.convert(format, input, out)?.pages)
            }
            _ => Ok(render(input, out)?),
        };
    }

    let format = if to == "urf" {
        RasterFormat::Urf
    } else {
        RasterFormat::Pwg
    };
    let color = RasterColor::from_keyword(&args.color)
        .ok_or_else(|| ConvertCmdError::Usage(format!("unknown --color {}", args.color)))?;
    // The media of the output: the one asked for, else each page's own size.
    let media = attrs
        .iter()
        .any(|a| a.name == "media" || a.name == "media-col")
        .then(|| MediaSize {
            name: ticket.media.name.clone(),
            width: (f64::from(ticket.media.width_pt) * 2540.0 / 72.0).round() as i32,
            length: (f64::from(ticket.media.height_pt) * 2540.0 / 72.0).round() as i32,
        });
    let target = RasterTarget::new(format, args.resolution, color, media);
    let run = RasterRun {
        threads: args.threads,
        ..RasterRun::default()
    };
    if kind == Some(DocFormat::Pdf) && attrs.is_empty() {
        return Ok(pdf_to_raster_with(input, &target, &run, out)?.pages);
    }
    let mut pdf = Vec::new();
    render(input, &mut pdf)?;
    Ok(pdf_to_raster_with(&pdf[..], &target, &run, out)?.pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_ipp_values() {
        assert_eq!(
            parse_option("number-up=2").unwrap(),
            Attribute::new("number-up", Value::Integer(2))
        );
        assert_eq!(
            parse_option("page-ranges=1-3,5").unwrap(),
            Attribute::set("page-ranges", vec![Value::Range(1, 3), Value::Range(5, 5)])
        );
        assert_eq!(
            parse_option("sides=two-sided-long-edge").unwrap(),
            Attribute::new("sides", Value::Keyword("two-sided-long-edge".into()))
        );
        assert!(parse_option("number-up").is_err());
        assert!(parse_option("=2").is_err());
    }
}

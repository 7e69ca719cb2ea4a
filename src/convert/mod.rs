//! Document conversion to the canonical format, PDF. Reaches the outside only through
//! `std::io::Read`/`Write` given by the caller; the wire formats themselves live in [`crate::codec`].

pub mod pdf_raster;
pub mod raster_pdf;

pub use raster_pdf::{
    pwg_to_pdf, urf_to_pdf, ConvertError, ConvertStats, RasterFormat, RasterToPdf,
};

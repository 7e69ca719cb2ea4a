//! Document conversion to the canonical format, PDF. Reaches the outside only through
//! `std::io::Read`/`Write` given by the caller; the wire formats themselves live in [`crate::codec`].

pub mod image_pdf;
pub mod impose;
pub mod page_pool;
pub mod parallel_deflate;
pub mod pdf_raster;
pub mod pipeline;
pub mod raster_pdf;
pub mod sniff;
pub mod test_page;
pub mod text_pdf;
pub mod ticket;

pub use raster_pdf::{
    pwg_to_pdf, urf_to_pdf, ConvertError, ConvertStats, RasterFormat, RasterToPdf,
};

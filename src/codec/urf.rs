//! Apple raster (URF, "UNIRAST") codec: a pure, incremental decoder and an encoder.
//!
//! A URF stream is a 12-byte file header (`UNIRAST\0` and the page count as a big-endian u32, 0 when
//! the writer did not know it) followed by pages. Each page is a 32-byte header and `height` lines
//! compressed exactly like PWG raster (see [`super::pwg`]): a line repeat byte, then PackBits-like
//! runs in units of one pixel, with code 128 filling the rest of the line with white.
//!
//! Page header layout (integers big-endian):
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0      | bits per pixel: 8 or 16 per color (gray 8/16, RGB 24/48, CMYK 32/64) |
//! | 1      | color space: 0 sGray, 1 sRGB, 2 CIELab, 3 Adobe RGB, 4 device gray, 5 device RGB, 6 device CMYK |
//! | 2      | duplex: 0 auto, 1 one-sided, 2 short edge, 3 long edge |
//! | 3      | quality: 0 default, 3 draft, 4 normal, 5 best |
//! | 4..8   | media type, input slot, output bin, copies (0 = default) |
//! | 8..12  | finishings |
//! | 12..16 | width in pixels |
//! | 16..20 | height in lines |
//! | 20..24 | resolution in dots per inch (the same in both directions) |
//! | 24..32 | reserved, zero |
//!
//! CIELab pages are rejected: white there is not one repeated byte, and no IPP Everywhere or
//! AirPrint client sends Lab unless the printer's `urf-supported` lists it (ours does not).

use super::pwg::{
    check_size, fill, line_bytes, run_unit, PageLimit, RasterLimits, RowDataError, RowDecoder,
    RowEncoder, RowStep, SizeError,
};

/// The first 8 bytes of a URF stream.
pub const MAGIC: [u8; 8] = *b"UNIRAST\0";
/// Length of the file header (magic and page count).
pub const FILE_HEADER_LEN: usize = 12;
/// Length of a page header.
pub const PAGE_HEADER_LEN: usize = 32;

/// Everything that can be wrong with a URF stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrfError {
    #[error("not Apple raster: the stream starts with {0:02x?}, not \"UNIRAST\\0\"")]
    BadMagic([u8; 8]),
    #[error("the input ends inside {0}")]
    Truncated(&'static str),
    #[error("URF color space {0} is not supported")]
    UnsupportedColorSpace(u8),
    #[error("{bits} bits per pixel does not fit color space {color_space} ({colors} colors at 8 or 16 bits)")]
    BitsPerPixel {
        bits: u8,
        color_space: u8,
        colors: u32,
    },
    #[error("a page of {width} x {height} pixels is empty")]
    Empty { width: u32, height: u32 },
    #[error("a page of {width} x {height} pixels exceeds {limit}")]
    TooLarge {
        width: u32,
        height: u32,
        limit: PageLimit,
    },
    #[error("resolution {0} dpi is out of range")]
    Resolution(u32),
    #[error("more than {0} pages")]
    TooManyPages(u32),
    #[error("the file header declares {declared} pages but {found} were found")]
    PageCount { declared: u32, found: u32 },
    #[error(transparent)]
    RowData(#[from] RowDataError),
    #[error("the decoder was used after an error")]
    Failed,
}

/// URF color spaces (page header byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrfColorSpace {
    /// 0: sRGB grayscale (luminance, gamma 2.2).
    Sgray,
    /// 1: sRGB.
    Srgb,
    /// 2: CIE L*a*b* (recognised, not supported by the decoder).
    CieLab,
    /// 3: Adobe RGB (1998).
    AdobeRgb,
    /// 4: device gray (luminance).
    DeviceGray,
    /// 5: device RGB.
    DeviceRgb,
    /// 6: device CMYK.
    DeviceCmyk,
}

impl UrfColorSpace {
    pub fn from_u8(v: u8) -> Option<UrfColorSpace> {
        Some(match v {
            0 => UrfColorSpace::Sgray,
            1 => UrfColorSpace::Srgb,
            2 => UrfColorSpace::CieLab,
            3 => UrfColorSpace::AdobeRgb,
            4 => UrfColorSpace::DeviceGray,
            5 => UrfColorSpace::DeviceRgb,
            6 => UrfColorSpace::DeviceCmyk,
            _ => return None,
        })
    }

    pub fn to_u8(self) -> u8 {
        match self {
            UrfColorSpace::Sgray => 0,
            UrfColorSpace::Srgb => 1,
            UrfColorSpace::CieLab => 2,
            UrfColorSpace::AdobeRgb => 3,
            UrfColorSpace::DeviceGray => 4,
            UrfColorSpace::DeviceRgb => 5,
            UrfColorSpace::DeviceCmyk => 6,
        }
    }

    /// Colors (samples) per pixel.
    pub fn num_colors(self) -> u32 {
        match self {
            UrfColorSpace::Sgray | UrfColorSpace::DeviceGray => 1,
            UrfColorSpace::DeviceCmyk => 4,
            _ => 3,
        }
    }

    /// The byte code 128 fills with: white (0x00 for CMYK, which counts colorant).
    pub fn white_byte(self) -> u8 {
        match self {
            UrfColorSpace::DeviceCmyk => 0x00,
            _ => 0xFF,
        }
    }
}

/// A URF page header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrfPageHeader {
    pub bits_per_pixel: u8,
    /// The color space byte as found; [`UrfPageHeader::color_space`] decodes it.
    pub color_space: u8,
    pub duplex: u8,
    pub quality: u8,
    pub media_type: u8,
    pub input_slot: u8,
    pub output_bin: u8,
    pub copies: u8,
    pub finishings: u32,
    pub width: u32,
    pub height: u32,
    pub resolution: u32,
}

impl Default for UrfPageHeader {
    fn default() -> Self {
        UrfPageHeader::new(1, 1, 72, UrfColorSpace::Sgray, 8)
    }
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

impl UrfPageHeader {
    /// A header for `width` x `height` pixels at `dpi`, `bits_per_color` 8 or 16, defaults elsewhere.
    pub fn new(
        width: u32,
        height: u32,
        dpi: u32,
        color_space: UrfColorSpace,
        bits_per_color: u32,
    ) -> UrfPageHeader {
        UrfPageHeader {
            bits_per_pixel: (bits_per_color * color_space.num_colors()).min(255) as u8,
            color_space: color_space.to_u8(),
            duplex: 0,
            quality: 0,
            media_type: 0,
            input_slot: 0,
            output_bin: 0,
            copies: 0,
            finishings: 0,
            width,
            height,
            resolution: dpi,
        }
    }

    pub fn parse(b: &[u8; PAGE_HEADER_LEN]) -> UrfPageHeader {
        UrfPageHeader {
            bits_per_pixel: b[0],
            color_space: b[1],
            duplex: b[2],
            quality: b[3],
            media_type: b[4],
            input_slot: b[5],
            output_bin: b[6],
            copies: b[7],
            finishings: be32(b, 8),
            width: be32(b, 12),
            height: be32(b, 16),
            resolution: be32(b, 20),
        }
    }

    pub fn encode(&self) -> [u8; PAGE_HEADER_LEN] {
        let mut b = [0u8; PAGE_HEADER_LEN];
        b[..8].copy_from_slice(&[
            self.bits_per_pixel,
            self.color_space,
            self.duplex,
            self.quality,
            self.media_type,
            self.input_slot,
            self.output_bin,
            self.copies,
        ]);
        b[8..12].copy_from_slice(&self.finishings.to_be_bytes());
        b[12..16].copy_from_slice(&self.width.to_be_bytes());
        b[16..20].copy_from_slice(&self.height.to_be_bytes());
        b[20..24].copy_from_slice(&self.resolution.to_be_bytes());
        b
    }

    pub fn color_space(&self) -> Option<UrfColorSpace> {
        UrfColorSpace::from_u8(self.color_space)
    }

    /// Bits per color (8 or 16 once validated).
    pub fn bits_per_color(&self) -> u32 {
        let colors = self.color_space().map_or(1, UrfColorSpace::num_colors);
        u32::from(self.bits_per_pixel) / colors
    }

    /// Bytes in one decoded line.
    pub fn bytes_per_line(&self) -> u64 {
        line_bytes(self.width, u32::from(self.bits_per_pixel))
    }

    /// Checks the header against the format and `limits`.
    pub fn validate(&self, limits: &RasterLimits) -> Result<UrfColorSpace, UrfError> {
        let cs = match self.color_space() {
            Some(UrfColorSpace::CieLab) | None => {
                return Err(UrfError::UnsupportedColorSpace(self.color_space))
            }
            Some(cs) => cs,
        };
        let colors = cs.num_colors();
        let bpp = u32::from(self.bits_per_pixel);
        if bpp != 8 * colors && bpp != 16 * colors {
            return Err(UrfError::BitsPerPixel {
                bits: self.bits_per_pixel,
                color_space: self.color_space,
                colors,
            });
        }
        if !(1..=limits.max_resolution).contains(&self.resolution) {
            return Err(UrfError::Resolution(self.resolution));
        }
        check_size(self.width, self.height, bpp, limits).map_err(|e| match e {
            SizeError::Empty => UrfError::Empty {
                width: self.width,
                height: self.height,
            },
            SizeError::TooLarge(limit) => UrfError::TooLarge {
                width: self.width,
                height: self.height,
                limit,
            },
        })?;
        Ok(cs)
    }
}

/// The file header for `page_count` pages (0 when not known in advance).
pub fn encode_file_header(page_count: u32) -> [u8; FILE_HEADER_LEN] {
    let mut b = [0u8; FILE_HEADER_LEN];
    b[..8].copy_from_slice(&MAGIC);
    b[8..].copy_from_slice(&page_count.to_be_bytes());
    b
}

/// Encodes one page (header and rows) onto `out`; `rows` must hold exactly `header.height` lines of
/// [`UrfPageHeader::bytes_per_line`] bytes.
pub fn encode_page<'r>(
    header: &UrfPageHeader,
    rows: impl IntoIterator<Item = &'r [u8]>,
    out: &mut Vec<u8>,
) -> Result<(), RowDataError> {
    out.extend_from_slice(&header.encode());
    let mut enc = RowEncoder::new(
        header.bytes_per_line() as usize,
        run_unit(u32::from(header.bits_per_pixel)),
        header.height,
    );
    for row in rows {
        enc.push_row(row, out)?;
    }
    enc.finish(out)
}

/// What the decoder produced.
#[derive(Debug, PartialEq, Eq)]
pub enum UrfEvent<'a> {
    /// All input given was consumed; give more (or call [`UrfDecoder::finish`] at the end).
    NeedInput,
    /// A page begins; its header has been validated.
    PageStart(&'a UrfPageHeader),
    /// Row `y` of the current page.
    Row { y: u32, data: &'a [u8] },
    /// The current page is complete.
    PageEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FileHeader,
    PageHeader,
    Rows,
    Failed,
}

enum Step {
    NeedInput,
    PageStart,
    Row(u32),
    PageEnd,
}

/// An incremental URF decoder, the twin of [`super::pwg::Decoder`].
#[derive(Debug, Clone)]
pub struct UrfDecoder {
    limits: RasterLimits,
    state: State,
    buf: Vec<u8>,
    declared_pages: u32,
    header: UrfPageHeader,
    rows: RowDecoder,
    pages: u32,
}

impl UrfDecoder {
    pub fn new(limits: RasterLimits) -> UrfDecoder {
        UrfDecoder {
            limits,
            state: State::FileHeader,
            buf: Vec::new(),
            declared_pages: 0,
            header: UrfPageHeader::default(),
            rows: RowDecoder::default(),
            pages: 0,
        }
    }

    /// Consumes bytes from the front of `input` and returns the next event. [`UrfEvent::NeedInput`]
    /// means `input` is empty. After an error every call fails with [`UrfError::Failed`].
    pub fn next<'a>(&'a mut self, input: &mut &[u8]) -> Result<UrfEvent<'a>, UrfError> {
        let step = match self.step(input) {
            Ok(step) => step,
            Err(e) => {
                self.state = State::Failed;
                return Err(e);
            }
        };
        Ok(match step {
            Step::NeedInput => UrfEvent::NeedInput,
            Step::PageStart => UrfEvent::PageStart(&self.header),
            Step::Row(y) => UrfEvent::Row {
                y,
                data: self.rows.row(),
            },
            Step::PageEnd => UrfEvent::PageEnd,
        })
    }

    fn step(&mut self, input: &mut &[u8]) -> Result<Step, UrfError> {
        match self.state {
            State::Failed => Err(UrfError::Failed),
            State::FileHeader => {
                if !fill(&mut self.buf, FILE_HEADER_LEN, input) {
                    return Ok(Step::NeedInput);
                }
                let mut magic = [0u8; 8];
                magic.copy_from_slice(&self.buf[..8]);
                if magic != MAGIC {
                    return Err(UrfError::BadMagic(magic));
                }
                self.declared_pages = be32(&self.buf, 8);
                self.buf.clear();
                self.state = State::PageHeader;
                self.step(input)
            }
            State::PageHeader => {
                if input.is_empty() {
                    return Ok(Step::NeedInput);
                }
                if !fill(&mut self.buf, PAGE_HEADER_LEN, input) {
                    return Ok(Step::NeedInput);
                }
                let mut bytes = [0u8; PAGE_HEADER_LEN];
                bytes.copy_from_slice(&self.buf);
                let header = UrfPageHeader::parse(&bytes);
                let cs = header.validate(&self.limits)?;
                if self.pages >= self.limits.max_pages {
                    return Err(UrfError::TooManyPages(self.limits.max_pages));
                }
                if self.declared_pages != 0 && self.pages >= self.declared_pages {
                    return Err(UrfError::PageCount {
                        declared: self.declared_pages,
                        found: self.pages + 1,
                    });
                }
                self.buf.clear();
                self.rows = RowDecoder::new(
                    header.bytes_per_line() as usize,
                    run_unit(u32::from(header.bits_per_pixel)),
                    cs.white_byte(),
                    header.height,
                );
                self.header = header;
                self.pages += 1;
                self.state = State::Rows;
                Ok(Step::PageStart)
            }
            State::Rows => match self.rows.step(input)? {
                RowStep::NeedInput => Ok(Step::NeedInput),
                RowStep::Row(y) => Ok(Step::Row(y)),
                RowStep::PageDone => {
                    self.rows = RowDecoder::default();
                    self.state = State::PageHeader;
                    Ok(Step::PageEnd)
                }
            },
        }
    }

    /// Call at the end of input: the number of pages, or an error if the input ended inside a header
    /// or a page, or with fewer pages than the file header declared.
    pub fn finish(&self) -> Result<u32, UrfError> {
        match self.state {
            State::Failed => Err(UrfError::Failed),
            State::FileHeader => Err(UrfError::Truncated("the file header")),
            State::PageHeader if !self.buf.is_empty() => Err(UrfError::Truncated("a page header")),
            State::PageHeader => {
                if self.declared_pages != 0 && self.pages != self.declared_pages {
                    return Err(UrfError::PageCount {
                        declared: self.declared_pages,
                        found: self.pages,
                    });
                }
                Ok(self.pages)
            }
            State::Rows => Err(UrfError::Truncated("the row data of a page")),
        }
    }

    /// Pages started so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// The page count from the file header (0 = not declared).
    pub fn declared_pages(&self) -> u32 {
        self.declared_pages
    }

    /// The current (last started) page's header.
    pub fn header(&self) -> &UrfPageHeader {
        &self.header
    }

    /// Bytes held in buffers (partial header, line buffer).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.capacity() + self.rows.buffered_bytes()
    }
}

/// Property checks on the Apple raster decoder, shared by the cargo-fuzz target (`fuzz/`) and the
/// corpus replay test (`tests/fuzz_corpus.rs`) so that both run exactly the same code.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;
    pub use crate::codec::pwg::fuzzing::{
        check_split_invariance, seed, OUTPUT_BUDGET, SMALL_LIMITS,
    };

    /// What a decode produced: the pages' headers and a digest of their rows, and how it ended.
    #[derive(Debug, PartialEq)]
    pub struct Summary {
        pub headers: Vec<UrfPageHeader>,
        pub rows: u64,
        pub digest: u64,
        pub end: Result<u32, UrfError>,
    }

    /// Decodes `bytes` with the default and with small limits, whole, a byte at a time and in
    /// pseudo-random pieces, and panics if the pieces change the outcome; every error is
    /// formatted. Never panicking on any input is the other property.
    pub fn check_decoder(bytes: &[u8]) {
        check_split_invariance(bytes, decode, |s: &Summary| {
            if let Err(e) = &s.end {
                let _ = e.to_string();
            }
        });
    }

    /// Decodes `bytes` in pieces of `piece(remaining)` bytes.
    pub fn decode(
        bytes: &[u8],
        limits: &RasterLimits,
        piece: &mut dyn FnMut(usize) -> usize,
    ) -> Summary {
        let mut dec = UrfDecoder::new(*limits);
        let mut s = Summary {
            headers: Vec::new(),
            rows: 0,
            digest: 0xcbf2_9ce4_8422_2325,
            end: Ok(0),
        };
        let mut out = 0u64;
        let mut bpl = 0usize;
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = piece(rest.len()).clamp(1, rest.len());
            let (mut input, tail) = rest.split_at(n);
            rest = tail;
            loop {
                match dec.next(&mut input) {
                    Ok(UrfEvent::NeedInput) => break,
                    Ok(UrfEvent::PageStart(h)) => {
                        bpl = h.bytes_per_line() as usize;
                        s.headers.push(h.clone());
                    }
                    Ok(UrfEvent::Row { y, data }) => {
                        assert_eq!(data.len(), bpl);
                        s.rows += 1;
                        s.digest = data.iter().fold(s.digest ^ u64::from(y), |h, &b| {
                            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
                        });
                        out += data.len() as u64;
                        if out > OUTPUT_BUDGET {
                            s.end = Ok(u32::MAX);
                            return s;
                        }
                    }
                    Ok(UrfEvent::PageEnd) => {}
                    Err(e) => {
                        s.end = Err(e);
                        return s;
                    }
                }
            }
        }
        s.end = dec.finish();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pages = Vec<(UrfPageHeader, Vec<Vec<u8>>)>;

    fn decode_all(bytes: &[u8], chunk: usize) -> Result<Pages, UrfError> {
        let mut dec = UrfDecoder::new(RasterLimits::default());
        let mut pages: Pages = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            let mut input = piece;
            loop {
                match dec.next(&mut input)? {
                    UrfEvent::NeedInput => break,
                    UrfEvent::PageStart(h) => pages.push((h.clone(), Vec::new())),
                    UrfEvent::Row { y, data } => {
                        let page = pages.last_mut().unwrap();
                        assert_eq!(y as usize, page.1.len());
                        page.1.push(data.to_vec());
                    }
                    UrfEvent::PageEnd => {}
                }
            }
        }
        dec.finish()?;
        Ok(pages)
    }

    /// Built by hand from the format description: a 2-page file, sRGB then gray.
    #[test]
    fn decodes_hand_built_file() {
        let mut b = Vec::new();
        b.extend_from_slice(b"UNIRAST\0");
        b.extend_from_slice(&[0, 0, 0, 2]); // 2 pages
                                            // Page 1: 24 bpp, sRGB, one-sided, normal quality, 3 x 2 pixels at 300 dpi.
        b.extend_from_slice(&[24, 1, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]); // finishings
        b.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 1, 44]);
        b.extend_from_slice(&[0; 8]);
        // Line 0: literal red, green; then fill white.
        b.extend_from_slice(&[0x00, 0xFF, 255, 0, 0, 0, 255, 0, 0x80]);
        // Line 1: blue repeated 3 times.
        b.extend_from_slice(&[0x00, 0x02, 0, 0, 255]);
        // Page 2: 8 bpp sGray 2 x 3, one line repeated 3 times: gray 0x40, then white by fill.
        b.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 72]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&[0x02, 0x00, 0x40, 0x80]);
        for chunk in [1, 5, b.len()] {
            let pages = decode_all(&b, chunk).unwrap();
            assert_eq!(pages.len(), 2);
            let (h1, rows1) = &pages[0];
            assert_eq!(
                (
                    h1.width,
                    h1.height,
                    h1.resolution,
                    h1.color_space(),
                    h1.quality
                ),
                (3, 2, 300, Some(UrfColorSpace::Srgb), 4)
            );
            assert_eq!(rows1[0], vec![255, 0, 0, 0, 255, 0, 255, 255, 255]);
            assert_eq!(rows1[1], vec![0, 0, 255, 0, 0, 255, 0, 0, 255]);
            assert_eq!(pages[1].1, vec![vec![0x40, 0xFF]; 3]);
        }
    }

    #[test]
    fn round_trip() {
        for (cs, bits) in [
            (UrfColorSpace::Sgray, 8),
            (UrfColorSpace::Srgb, 8),
            (UrfColorSpace::AdobeRgb, 16),
            (UrfColorSpace::DeviceCmyk, 8),
            (UrfColorSpace::DeviceGray, 16),
        ] {
            let mut h = UrfPageHeader::new(45, 9, 600, cs, bits);
            h.duplex = 3;
            let bpl = h.bytes_per_line() as usize;
            let rows: Vec<Vec<u8>> = (0..9)
                .map(|y| {
                    (0..bpl)
                        .map(|x| if y < 4 { 7 } else { (x * y) as u8 })
                        .collect()
                })
                .collect();
            let mut b = encode_file_header(1).to_vec();
            encode_page(&h, rows.iter().map(|r| &r[..]), &mut b).unwrap();
            let pages = decode_all(&b, 3).unwrap();
            assert_eq!(pages, vec![(h, rows)]);
        }
    }

    fn one_page(h: &UrfPageHeader, data: &[u8]) -> Vec<u8> {
        let mut b = encode_file_header(0).to_vec();
        b.extend_from_slice(&h.encode());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn hostile_inputs_are_errors() {
        let h = UrfPageHeader::new(4, 2, 300, UrfColorSpace::Sgray, 8);
        assert_eq!(
            decode_all(b"", 1).unwrap_err(),
            UrfError::Truncated("the file header")
        );
        assert!(matches!(
            decode_all(b"UNIRAS\0\0\0\0\0\0", 1),
            Err(UrfError::BadMagic(_))
        ));
        let ok = one_page(&h, &[0x01, 0x03, 0x00]);
        assert_eq!(decode_all(&ok, 4).unwrap().len(), 1);
        assert_eq!(
            decode_all(&ok[..20], 4).unwrap_err(),
            UrfError::Truncated("a page header")
        );
        assert_eq!(
            decode_all(&ok[..ok.len() - 2], 4).unwrap_err(),
            UrfError::Truncated("the row data of a page")
        );
        assert!(matches!(
            decode_all(&one_page(&h, &[0x01, 0x05, 0x00]), 4),
            Err(UrfError::RowData(RowDataError::RunPastLine { .. }))
        ));
        assert!(matches!(
            decode_all(&one_page(&h, &[0x05, 0x03, 0x00]), 4),
            Err(UrfError::RowData(RowDataError::LineRepeatPastPage { .. }))
        ));
        let mut bad = h.clone();
        bad.width = 0x7FFF_FFFF;
        bad.height = 0x7FFF_FFFF;
        assert!(matches!(
            decode_all(&one_page(&bad, &[]), 4),
            Err(UrfError::TooLarge { .. })
        ));
        let mut bad = h.clone();
        bad.width = 0;
        assert!(matches!(
            decode_all(&one_page(&bad, &[]), 4),
            Err(UrfError::Empty { .. })
        ));
        let mut bad = h.clone();
        bad.bits_per_pixel = 24;
        assert!(matches!(
            decode_all(&one_page(&bad, &[]), 4),
            Err(UrfError::BitsPerPixel { .. })
        ));
        let mut bad = h.clone();
        bad.bits_per_pixel = 1;
        assert!(matches!(
            decode_all(&one_page(&bad, &[]), 4),
            Err(UrfError::BitsPerPixel { .. })
        ));
        for cs in [2u8, 7, 255] {
            let mut bad = h.clone();
            bad.color_space = cs;
            assert_eq!(
                decode_all(&one_page(&bad, &[]), 4).unwrap_err(),
                UrfError::UnsupportedColorSpace(cs)
            );
        }
        let mut bad = h.clone();
        bad.resolution = 0;
        assert_eq!(
            decode_all(&one_page(&bad, &[]), 4).unwrap_err(),
            UrfError::Resolution(0)
        );
        // Declared page count: fewer and more pages than declared.
        let mut two = ok.clone();
        two[8..12].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(
            decode_all(&two, 4).unwrap_err(),
            UrfError::PageCount {
                declared: 2,
                found: 1
            }
        );
        let mut extra = ok.clone();
        extra[8..12].copy_from_slice(&1u32.to_be_bytes());
        extra.extend_from_slice(&h.encode());
        assert_eq!(
            decode_all(&extra, 4).unwrap_err(),
            UrfError::PageCount {
                declared: 1,
                found: 2
            }
        );
    }
}

//! The printer icons that printer-icons points to (PNG, drawn at start). The pages themselves are
//! in [`crate::web`].

use bytes::Bytes;

/// PNG icons at the sizes printer-icons lists (PWG 5100.13 §6.5.1: 48, 128 and 512 pixels).
pub struct Icons {
    icons: Vec<(String, Bytes)>,
}

impl Icons {
    pub fn new() -> Icons {
        let icons = [48u32, 128, 512]
            .iter()
            .map(|s| {
                (
                    format!("/icons/printer-{s}.png"),
                    Bytes::from(draw_icon(*s)),
                )
            })
            .collect();
        Icons { icons }
    }

    pub fn get(&self, path: &str) -> Option<Bytes> {
        self.icons
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
    }
}

impl Default for Icons {
    fn default() -> Self {
        Icons::new()
    }
}

/// A simple printer glyph: body, paper tray on top, output sheet below, on transparency.
fn draw_icon(size: u32) -> Vec<u8> {
    let s = size as f32;
    let mut rgba = vec![0u8; (size * size * 4) as usize];
    let mut fill = |x0: f32, y0: f32, x1: f32, y1: f32, c: [u8; 4]| {
        for y in (y0 * s) as u32..((y1 * s) as u32).min(size) {
            for x in (x0 * s) as u32..((x1 * s) as u32).min(size) {
                let i = ((y * size + x) * 4) as usize;
                rgba[i..i + 4].copy_from_slice(&c);
            }
        }
    };
    fill(0.25, 0.08, 0.75, 0.40, [250, 250, 250, 255]); // paper in
    fill(0.08, 0.35, 0.92, 0.75, [60, 90, 140, 255]); // body
    fill(0.15, 0.45, 0.25, 0.50, [120, 220, 120, 255]); // status light
    fill(0.22, 0.62, 0.78, 0.95, [255, 255, 255, 255]); // paper out
    fill(0.30, 0.72, 0.70, 0.74, [150, 150, 150, 255]); // a line of text
    fill(0.30, 0.80, 0.62, 0.82, [150, 150, 150, 255]);
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size, size);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        // Writing into a Vec cannot fail.
        let mut w = enc.write_header().expect("png header into memory");
        w.write_image_data(&rgba).expect("png data into memory");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn icons_are_png() {
        let icons = super::Icons::new();
        let png = icons.get("/icons/printer-48.png").unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(icons.get("/icons/../etc").is_none());
    }
}

//! Fake camera videos: a Y4M file Chromium plays as the camera
//! (`--use-file-for-fake-video-capture=FILE`), showing one QR code or one Code 128 barcode,
//! black on white, still for 30 frames (Chromium loops the file).
//!
//! The format (what Chromium's file capturer accepts): the header line
//! `YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420` (`C420`, not `C420mpeg2`), then per frame `FRAME\n`,
//! the luma plane (640 × 480 bytes) and the two chroma planes (320 × 240 bytes each) at 128,
//! which is no colour.

use std::io::Write;
use std::path::Path;

pub const WIDTH: usize = 640;
pub const HEIGHT: usize = 480;
pub const FRAMES: usize = 30;
pub const HEADER: &str = "YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420\n";

const WHITE: u8 = 255;
const BLACK: u8 = 0;

/// Writes a video of the QR code of `text` (8 px a module, 4-module quiet zone; smaller modules
/// only if a large code would not fit 480 px), centred on white.
pub fn y4m_qr(text: &str, path: &Path) {
    let code = qrcode::QrCode::new(text.as_bytes()).expect("text fits in a QR code");
    let modules = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    let side = modules + 2 * quiet;
    let px = (HEIGHT / side).min(8);
    assert!(
        px >= 2,
        "a QR code of {modules} modules does not fit the 640×480 video"
    );
    let mut luma = vec![WHITE; WIDTH * HEIGHT];
    let left = (WIDTH - side * px) / 2 + quiet * px;
    let top = (HEIGHT - side * px) / 2 + quiet * px;
    for my in 0..modules {
        for mx in 0..modules {
            if colors[my * modules + mx] == qrcode::Color::Dark {
                fill(&mut luma, left + mx * px, top + my * px, px, px);
            }
        }
    }
    write_y4m(&luma, path);
}

/// Writes a video of the Code 128 barcode of `digits` (set C, which packs two digits a
/// symbol; an odd last digit goes in set B), up to 4 px a module with a 10-module quiet zone,
/// bars over the middle half of the frame.
pub fn y4m_code128(digits: &str, path: &Path) {
    assert!(
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        "Code 128 set C takes ASCII digits, got {digits:?}"
    );
    let split = digits.len() - digits.len() % 2;
    let mut data = String::from("Ć");
    data.push_str(&digits[..split]);
    if split < digits.len() {
        data.push('Ɓ');
        data.push_str(&digits[split..]);
    }
    if split == 0 {
        // One digit: set B from the start.
        data = format!("Ɓ{digits}");
    }
    let modules = barcoders::sym::code128::Code128::new(&data)
        .expect("Code 128 accepts digits")
        .encode();
    let quiet = 10;
    let total = modules.len() + 2 * quiet;
    let px = (WIDTH / total).min(4);
    assert!(
        px >= 1,
        "a Code 128 of {} modules does not fit 640 px",
        modules.len()
    );
    let mut row = [WHITE; WIDTH];
    let left = (WIDTH - total * px) / 2 + quiet * px;
    for (i, bar) in modules.iter().enumerate() {
        if *bar == 1 {
            row[left + i * px..left + (i + 1) * px].fill(BLACK);
        }
    }
    let mut luma = vec![WHITE; WIDTH * HEIGHT];
    for y in HEIGHT / 4..HEIGHT * 3 / 4 {
        luma[y * WIDTH..(y + 1) * WIDTH].copy_from_slice(&row);
    }
    write_y4m(&luma, path);
}

fn fill(luma: &mut [u8], x: usize, y: usize, w: usize, h: usize) {
    for row in y..y + h {
        luma[row * WIDTH + x..row * WIDTH + x + w].fill(BLACK);
    }
}

/// The header, then [`FRAMES`] copies of `luma` with neutral chroma.
fn write_y4m(luma: &[u8], path: &Path) {
    assert_eq!(luma.len(), WIDTH * HEIGHT);
    let chroma = vec![128u8; (WIDTH / 2) * (HEIGHT / 2) * 2];
    let file = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(file);
    out.write_all(HEADER.as_bytes()).unwrap();
    for _ in 0..FRAMES {
        out.write_all(b"FRAME\n").unwrap();
        out.write_all(luma).unwrap();
        out.write_all(&chroma).unwrap();
    }
    out.flush().unwrap();
}

/// The size of a file [`y4m_qr`] or [`y4m_code128`] writes.
pub const FILE_BYTES: usize = HEADER.len() + FRAMES * (6 + WIDTH * HEIGHT * 3 / 2);

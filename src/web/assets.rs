//! The pages' files (styles, scripts, vendored libraries), embedded in the binary and served
//! from `/assets/{version}/…`, where the version is a hash of every file's content: a page names
//! the files of the build that rendered it, so browsers may keep them forever
//! (`Cache-Control: immutable`) and a new build is fetched afresh. One version for all files
//! keeps the scripts' relative imports (`./code.js`) working.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub bytes: &'static [u8],
    pub content_type: &'static str,
}

macro_rules! assets {
    ($($name:literal => $type:literal,)*) => {
        /// Every file the pages may load.
        pub static ASSETS: &[Asset] = &[
            $(Asset { name: $name, bytes: include_bytes!(concat!("assets/", $name)), content_type: $type },)*
        ];
    };
}

assets! {
    "app.css" => "text/css; charset=utf-8",
    "print-58.css" => "text/css; charset=utf-8",
    "print-80.css" => "text/css; charset=utf-8",
    "print-card.css" => "text/css; charset=utf-8",
    "till.js" => "text/javascript; charset=utf-8",
    "resident.js" => "text/javascript; charset=utf-8",
    "code.js" => "text/javascript; charset=utf-8",
    "code128.js" => "text/javascript; charset=utf-8",
    "scan.js" => "text/javascript; charset=utf-8",
    "check.js" => "text/javascript; charset=utf-8",
    "vendor/qrcode-generator/qrcode.mjs" => "text/javascript; charset=utf-8",
    "vendor/ponyfill.js" => "text/javascript; charset=utf-8",
    "vendor/zxing-exported.js" => "text/javascript; charset=utf-8",
    "vendor/zxing_reader.wasm" => "application/wasm",
}

/// The hash of every embedded file (12 hex digits), the path segment of this build's files.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for asset in ASSETS {
            hash.update(asset.name.as_bytes());
            hash.update((asset.bytes.len() as u64).to_be_bytes());
            hash.update(asset.bytes);
        }
        hex::encode(&hash.finalize()[..6])
    })
}

/// The path a page uses for `name` (which must be embedded: a typo fails every page test).
pub fn path(name: &str) -> String {
    debug_assert!(ASSETS.iter().any(|a| a.name == name), "no asset {name}");
    format!("/assets/{}/{name}", version())
}

/// `GET /assets/{version}/{*name}`.
pub async fn serve(Path((version, name)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|a| a.name == name);
    match found {
        Some(asset) if version == self::version() => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.bytes,
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response(),
    }
}

//! The browser harness proves itself on pages this test serves (the real pages have their own
//! tests built on the same helpers): the vendored barcode-detector ponyfill decodes a QR code
//! and a Code 128 barcode from the fake camera under the pages' CSP; key actions arrive at
//! scanner and at typing speed; a 5.8 cm receipt prints on one page; axe-core and the target
//! measurement report what they should; screenshots land in `target/screenshots/`.
//!
//! Skipped (loudly) only when Chromium or chromedriver is not installed and neither `CI` nor
//! `AIXIN_REQUIRE_BROWSER=1` is set.

#[path = "browser/mod.rs"]
mod browser;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use browser::*;
use fantoccini::Locator;
use serde_json::Value;

/// The CSP the real pages will send: no inline script or style, wasm allowed.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";

/// The files the harness serves from `src/web/assets/vendor/`, with their types.
const VENDOR: [(&str, &str); 3] = [
    ("ponyfill.js", "text/javascript; charset=utf-8"),
    ("zxing-exported.js", "text/javascript; charset=utf-8"),
    ("zxing_reader.wasm", "application/wasm"),
];

#[derive(Clone, Default)]
struct Counters {
    wasm: Arc<AtomicUsize>,
}

fn with_type(kind: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

fn html(body: &'static str) -> Response {
    with_type("text/html; charset=utf-8", body)
}

fn js(body: &'static str) -> Response {
    with_type("text/javascript; charset=utf-8", body)
}

async fn vendor(State(counters): State<Counters>, Path(file): Path<String>) -> Response {
    let Some((name, kind)) = VENDOR.iter().find(|(name, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if name.ends_with(".wasm") {
        counters.wasm.fetch_add(1, Ordering::SeqCst);
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/web/assets/vendor")
        .join(name);
    with_type(kind, std::fs::read(path).expect("vendored file"))
}

/// The test pages, merged beside the app's own routes.
fn harness_routes(counters: Counters) -> Router {
    Router::new()
        .route("/harness/vendor/{file}", get(vendor))
        .route("/harness/camera", get(|| async { html(CAMERA_HTML) }))
        .route("/harness/camera.js", get(|| async { js(CAMERA_JS) }))
        .route("/harness/keys", get(|| async { html(KEYS_HTML) }))
        .route("/harness/keys.js", get(|| async { js(KEYS_JS) }))
        .route(
            "/harness/page.css",
            get(|| async { with_type("text/css", PAGE_CSS) }),
        )
        .route("/harness/bad", get(|| async { html(BAD_HTML) }))
        .with_state(counters)
}

const CAMERA_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Camera</title>
<script type="module" src="/harness/camera.js"></script></head>
<body><main><h1>Camera</h1><video id="video" muted playsinline></video>
<p>Decoded: <output id="result"></output></p><p id="status">loading</p></main></body></html>"#;

/// How a page initialises the ponyfill (see src/web/assets/vendor/README.md): the wasm's
/// location first, awaited, then the detector.
const CAMERA_JS: &str = r#"
import { BarcodeDetector, prepareZXingModule, ZXING_WASM_SHA256 } from "/harness/vendor/ponyfill.js";

const VENDOR = new URL("/harness/vendor/", location.href).href;
const status = document.getElementById("status");
const result = document.getElementById("result");
const format = new URLSearchParams(location.search).get("format") || "qr_code";
try {
  await prepareZXingModule({
    overrides: {
      locateFile: (path, prefix) => (path.endsWith(".wasm") ? VENDOR + path : prefix + path),
    },
    fireImmediately: true,
  });
  status.textContent = "wasm ready " + ZXING_WASM_SHA256;
  const detector = new BarcodeDetector({ formats: [format] });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  const video = document.getElementById("video");
  video.srcObject = stream;
  await video.play();
  const playing = performance.now();
  for (let attempt = 1; attempt <= 100; attempt++) {
    const codes = await detector.detect(video);
    if (codes.length > 0) {
      result.dataset.format = codes[0].format;
      result.dataset.attempts = String(attempt);
      result.dataset.msFromPlay = String(Math.round(performance.now() - playing));
      result.dataset.msFromLoad = String(Math.round(performance.now()));
      result.textContent = codes[0].rawValue;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!result.textContent) status.textContent = "error: nothing decoded in 100 attempts";
} catch (e) {
  status.textContent = "error: " + e;
}
"#;

const KEYS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keys</title>
<script type="module" src="/harness/keys.js"></script></head>
<body><main><h1>Keys</h1><label for="code">Code</label> <input id="code" inputmode="numeric" autocomplete="off">
<p>Submitted: <output id="submitted"></output></p></main></body></html>"#;

/// Records every keydown's key and time; Enter copies the input to the output.
const KEYS_JS: &str = r#"
window.keys = [];
const input = document.getElementById("code");
input.addEventListener("keydown", (e) => {
  window.keys.push({ key: e.key, t: e.timeStamp });
  if (e.key === "Enter") document.getElementById("submitted").textContent = input.value;
});
input.focus();
"#;

/// A receipt page 5.8 cm wide with Chinese text, the app's clock, and targets of known sizes.
const PAGE_CSS: &str = r#"
@page { size: 58mm auto; margin: 0; }
html { color: #000; background: #fff; font: 16px/1.4 "WenQuanYi Micro Hei", sans-serif; }
body { margin: 0; padding: 2mm; max-width: 54mm; }
h1 { font-size: 20px; margin: 0 0 4px; }
.big { display: inline-block; width: 60px; height: 60px; margin: 8px 8px 0 0; }
.tiny { display: inline-block; width: 20px; height: 20px; padding: 0; margin: 0; border: 0; }
"#;

const RECEIPT_HTML: &str = r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>收据</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/harness/page.css"></head>
<body><main><h1>爱心积分收据</h1><p>王*英 兑换 大米一袋</p><p>积分 −12.00</p>
<p>时间 <time id="now">NOW</time></p>
<button class="big" type="button">打印</button><a class="big" href="/harness/receipt">再看</a>
</main></body></html>"#;

/// Three known violations: an image without alt text, a button without a name, and two 20 px
/// buttons side by side (too small, and too close for the spacing exception).
const BAD_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bad</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/harness/page.css"></head>
<body><main><h1>Bad</h1><img id="logo" src="/harness/none.png" width="10" height="10">
<div><button id="small" class="tiny" type="button"></button><button id="next" class="tiny" type="button" aria-label="next"></button></div></main></body></html>"#;

async fn start_server() -> (Server, Counters) {
    let counters = Counters::default();
    let routes = harness_routes(counters.clone());
    let server = Server::start_with(move |app| {
        let clock = app.clock.clone();
        // The receipt shows the app's clock, to prove a test controls the time pages see.
        let receipt = Router::new().route(
            "/harness/receipt",
            get(move || {
                let now = clock.now_micros().to_string();
                async move {
                    let page = RECEIPT_HTML.replace("NOW", &now);
                    with_type("text/html; charset=utf-8", page)
                }
            }),
        );
        aixin::http::router(app).merge(routes).merge(receipt)
    })
    .await;
    (server, counters)
}

/// Plays `video` to the camera page with the detector set to `format`; returns the decoded
/// text and the page's timings.
async fn decode_from_camera(video: &std::path::Path, format: &str) -> Option<(String, Value)> {
    let (server, counters) = start_server().await;
    let browser = Browser::start(BrowserOptions::till().camera(video)).await?;
    let started = Instant::now();
    browser
        .goto(&server.url(&format!("/harness/camera?format={format}")))
        .await
        .unwrap();
    let outcome = wait_for_js(
        &browser,
        "document.getElementById('result').textContent \
         || (document.getElementById('status').textContent.startsWith('error') \
             && document.getElementById('status').textContent)",
        WAIT,
    )
    .await;
    let status: String = serde_json::from_value(
        browser
            .execute(
                "return document.getElementById('status').textContent",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!status.starts_with("error"), "camera page: {status}");
    let details = browser
        .execute(
            "const r = document.getElementById('result'); return { format: r.dataset.format, \
             attempts: r.dataset.attempts, msFromPlay: r.dataset.msFromPlay, \
             msFromLoad: r.dataset.msFromLoad, \
             resources: performance.getEntriesByType('resource').map((e) => e.name) };",
            vec![],
        )
        .await
        .unwrap();
    // The wasm came from our route, once (a wrong type makes Chromium fetch it twice), and
    // nothing was fetched from anywhere else (the ponyfill's default is a CDN).
    assert_eq!(counters.wasm.load(Ordering::SeqCst), 1, "wasm fetches");
    for resource in details["resources"].as_array().unwrap() {
        assert!(
            resource.as_str().unwrap().starts_with(&server.url),
            "fetched from elsewhere: {resource}"
        );
    }
    assert!(
        status.contains("2ebda08a93eea3efcd8399cda6b276e6a0b1de4fec60b4d8988a047de4c6d1ba"),
        "the ponyfill's ZXING_WASM_SHA256: {status}"
    );
    eprintln!(
        "camera {format}: decoded in {:?} from goto; page says {details}",
        started.elapsed()
    );
    browser.close().await;
    Some((outcome.as_str().unwrap().to_owned(), details))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ponyfill_decodes_a_qr_code_from_the_fake_camera() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("qr.y4m");
    let text = "AX1-7Q3K-M2PD-9WXR";
    let started = Instant::now();
    y4m_qr(text, &video);
    eprintln!("wrote the QR video in {:?}", started.elapsed());
    let Some((decoded, details)) = decode_from_camera(&video, "qr_code").await else {
        return;
    };
    assert_eq!(decoded, text);
    assert_eq!(details["format"], "qr_code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ponyfill_decodes_a_code_128_barcode_from_the_fake_camera() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("code128.y4m");
    // An odd number of digits: set C pairs, then the last digit in set B.
    let digits = "9100123456789012345";
    let started = Instant::now();
    y4m_code128(digits, &video);
    eprintln!("wrote the Code 128 video in {:?}", started.elapsed());
    let Some((decoded, details)) = decode_from_camera(&video, "code_128").await else {
        return;
    };
    assert_eq!(decoded, digits);
    assert_eq!(details["format"], "code_128");
}

/// The gaps between successive keydowns, in milliseconds.
fn gaps(keys: &Value) -> Vec<f64> {
    let times: Vec<f64> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["t"].as_f64().unwrap())
        .collect();
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_arrive_at_scanner_and_at_typing_speed() {
    let (server, _) = start_server().await;
    let Some(browser) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let input_value = "return document.getElementById('code').value";
    let reset = "document.getElementById('code').value = ''; \
                 document.getElementById('submitted').textContent = ''; window.keys = [];";

    // A scanner gun: 18 digits 5 ms apart, then Enter, into the focused input.
    browser.goto(&server.url("/harness/keys")).await.unwrap();
    wait_for_js(&browser, "document.activeElement.id === 'code'", WAIT).await;
    let code = "910012345678901234";
    type_like_scanner(&browser, None, code, SCANNER_MS, true).await;
    let submitted = wait_for_js(
        &browser,
        "document.getElementById('submitted').textContent",
        WAIT,
    )
    .await;
    assert_eq!(submitted, code);
    let keys = browser.execute("return window.keys", vec![]).await.unwrap();
    assert_eq!(keys.as_array().unwrap().len(), code.len() + 1);
    assert_eq!(keys[code.len()]["key"], "Enter");
    let scanner = gaps(&keys);
    let mut sorted = scanner.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    eprintln!("scanner gaps (ms): {scanner:?}");
    assert!(
        sorted.iter().all(|g| *g >= 4.0),
        "pauses are kept: {scanner:?}"
    );
    // The driver adds 2-5 ms a key, more on a loaded machine (7-20 ms gaps seen for a 5 ms
    // pause with 2 busy cores): far from a person, but not always under a real scanner's 10 ms.
    assert!(
        median < 30.0,
        "a scanner's keys come in a burst: {scanner:?}"
    );

    // A person, into an element named explicitly, full-width digits, no Enter.
    browser.execute(reset, vec![]).await.unwrap();
    let input = browser.find(Locator::Id("code")).await.unwrap();
    let wide = "１２３４５６";
    type_like_scanner(&browser, Some(&input), wide, PERSON_MS, false).await;
    let value = browser.execute(input_value, vec![]).await.unwrap();
    assert_eq!(value, wide);
    let keys = browser.execute("return window.keys", vec![]).await.unwrap();
    let keyed: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keyed, ["１", "２", "３", "４", "５", "６"]);
    let person = gaps(&keys);
    eprintln!("person gaps (ms): {person:?}");
    assert!(
        person.iter().all(|g| *g >= 100.0),
        "a person's keys are {PERSON_MS} ms apart: {person:?}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_prints_on_one_page_and_the_checks_report_what_they_should() {
    let (server, _) = start_server().await;
    let Some(browser) = Browser::start(BrowserOptions::phone()).await else {
        return;
    };
    // The page sees the test's clock.
    server.clock.set(common::T0 + 90_000_000);
    browser.goto(&server.url("/harness/receipt")).await.unwrap();
    let viewport = browser
        .execute(
            "return [innerWidth, innerHeight, matchMedia('(pointer: coarse)').matches]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        viewport,
        serde_json::json!([PHONE.0, PHONE.1, true]),
        "a phone's viewport"
    );
    let now = browser.find(Locator::Id("now")).await.unwrap();
    assert_eq!(
        now.text().await.unwrap(),
        (common::T0 + 90_000_000).to_string()
    );

    // One page at 5.8 cm.
    let pdf = artifact("harness-receipt.pdf");
    let started = Instant::now();
    print_pdf(&browser, 5.8, &pdf).await;
    assert_eq!(pdf_page_count(&pdf), 1, "the receipt prints on one page");
    eprintln!("print to PDF: {:?}", started.elapsed());

    // No WCAG A/AA violations; every target measured at its CSS size.
    let started = Instant::now();
    assert_accessible(&browser, "the receipt").await;
    eprintln!("axe-core on the receipt: {:?}", started.elapsed());
    let targets = min_target_size(&browser).await;
    assert_eq!(
        targets,
        [
            ("body > main > button".to_owned(), 60.0, 60.0),
            ("body > main > a".to_owned(), 60.0, 60.0)
        ]
    );

    let shot = screenshot(&browser, "harness-receipt").await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        shot.display()
    );

    // A page with known faults: axe names the rules and the elements; the tiny button is
    // measured as it is.
    browser.goto(&server.url("/harness/bad")).await.unwrap();
    let violations = axe_check(&browser).await;
    let found: Vec<(&str, Vec<&str>)> = violations
        .iter()
        .map(|v| (v.id.as_str(), v.targets()))
        .collect();
    assert!(
        found.contains(&("image-alt", vec!["#logo"])),
        "image-alt on #logo: {found:?}"
    );
    assert!(
        found.contains(&("button-name", vec!["#small"])),
        "button-name on #small: {found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(id, targets)| *id == "target-size" && targets.contains(&"#small")),
        "target-size on #small: {found:?}"
    );
    assert_eq!(
        min_target_size(&browser).await,
        [
            ("#small".to_owned(), 20.0, 20.0),
            ("#next".to_owned(), 20.0, 20.0)
        ]
    );
    browser.close().await;
}

#[test]
fn the_fake_camera_videos_have_the_layout_chromium_reads() {
    let dir = tempfile::tempdir().unwrap();
    for (name, write) in [
        (
            "qr.y4m",
            &(|p: &std::path::Path| y4m_qr("AX1-TEST", p)) as &dyn Fn(&std::path::Path),
        ),
        ("c128.y4m", &|p: &std::path::Path| y4m_code128("1234567", p)),
    ] {
        let path = dir.path().join(name);
        write(&path);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), browser::y4m::FILE_BYTES, "{name}");
        assert!(bytes.starts_with(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420\nFRAME\n"));
        let frame = 6 + 640 * 480 * 3 / 2;
        let first = &bytes[browser::y4m::HEADER.len()..][..frame];
        let (luma, chroma) = first[6..].split_at(640 * 480);
        assert!(
            luma.contains(&0) && luma.contains(&255),
            "{name}: black on white"
        );
        assert!(chroma.iter().all(|&c| c == 128), "{name}: no colour");
        assert!(bytes[browser::y4m::HEADER.len()..]
            .chunks(frame)
            .all(|f| f == first));
    }
}

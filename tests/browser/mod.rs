//! The real-browser test harness: the aixin app served in-process on a socket, a headless
//! Chromium driven over WebDriver (a chromedriver of the test's own), and the helpers page tests
//! need (scanner-speed typing, screenshots, axe-core, target sizes, print to PDF, fake camera
//! videos).
//!
//! A test file uses it with (both lines: this module builds on `tests/common`):
//!
//! ```ignore
//! mod common;
//! #[path = "browser/mod.rs"]
//! mod browser;
//! ```
//!
//! (`#[path]` because `tests/browser.rs` is itself a test target: a plain `mod browser;` would
//! find both `tests/browser.rs` and `tests/browser/mod.rs`.)
//!
//! Skipping: without Chromium or chromedriver installed, [`Browser::start`] prints a loud
//! SKIPPED line and returns `None` — unless `CI` is set (non-empty, not `0`/`false`) or
//! `AIXIN_REQUIRE_BROWSER=1` (set by `.ci/run`), when it fails the test. Anything else going
//! wrong (a driver that does not start, a session refused) always fails.
//!
//! Binaries: `AIXIN_CHROMEDRIVER` / `AIXIN_CHROMIUM` if set, else `chromedriver` and
//! `chromium` (or `chromium-browser`, `google-chrome`) on the `PATH`.
#![allow(dead_code)]

pub mod y4m;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::ops::Deref;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aixin::app::App;
use aixin::clock::ManualClock;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::wd::{PrintConfiguration, PrintMargins, PrintSize};
use fantoccini::{Client, ClientBuilder};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::Harness;

#[allow(unused_imports)] // not every page test shows a barcode to the camera
pub use y4m::{y4m_code128, y4m_qr};

/// How long any wait in this harness lasts before it fails the test.
pub const WAIT: Duration = Duration::from_secs(10);
/// The longest a browser lives: then a watchdog ends chromedriver and Chromium, so a hung
/// WebDriver command fails the test instead of hanging the suite.
pub const BROWSER_LIFETIME: Duration = Duration::from_secs(120);
/// A phone's viewport (CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);
/// A shop till's screen.
pub const TILL: (u32, u32) = (1280, 800);
/// Milliseconds between keys: a scanner gun (< 10 ms apart) and a person (> 30 ms).
pub const SCANNER_MS: u64 = 5;
pub const PERSON_MS: u64 = 120;
/// The WCAG levels `axe_check` runs: 2.0, 2.1 and 2.2, A and AA.
pub const AXE_TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---- The server ----

/// The aixin HTTP app on `127.0.0.1:<free port>` in this process, over a fresh SQLite file
/// (or a fresh PostgreSQL schema when `AIXIN_BROWSER_BACKEND=postgres`)
/// (the [`Harness`] of `tests/common`: ledger `test`, a [`ManualClock`] at `common::T0`, seeded
/// entropy). The server task ends when this is dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    pub app: App,
    /// The app's clock: `set` / `advance` it; every request after that sees the new time.
    pub clock: Arc<ManualClock>,
    /// The database under the app (store, tokens, accounts, a second store...).
    pub harness: Harness,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// `aixin::http::router(app)` served.
    pub async fn start() -> Server {
        Server::start_with(aixin::http::router).await
    }

    /// The router `build` makes from the app served (to add test-only routes:
    /// `|app| aixin::http::router(app).merge(extra)`).
    pub async fn start_with(build: impl FnOnce(App) -> axum::Router) -> Server {
        let harness = match std::env::var("AIXIN_BROWSER_BACKEND").as_deref() {
            // `.ci/run` runs the browser suite a second time on PostgreSQL.
            Ok("postgres") => Harness::postgres()
                .await
                .expect("AIXIN_BROWSER_BACKEND=postgres needs AIXIN_TEST_POSTGRES_URL"),
            Ok("sqlite") | Err(_) => Harness::sqlite().await,
            Ok(other) => panic!("AIXIN_BROWSER_BACKEND={other}: sqlite or postgres"),
        };
        let app = App::new(
            harness.stores.clone(),
            harness.clock.clone(),
            harness.entropy.clone(),
        );
        let router = build(app.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Server {
            url: format!("http://{addr}"),
            clock: harness.clock.clone(),
            app,
            harness,
            task,
        }
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---- The browser ----

/// How to start the browser.
#[derive(Clone, Debug)]
pub struct BrowserOptions {
    /// The viewport in CSS pixels: [`PHONE`] or [`TILL`].
    pub window: (u32, u32),
    /// Emulate a phone (chromedriver's `mobileEmulation`: the viewport set to `window` with
    /// touch events, and `<meta name="viewport">` honoured as on a phone, so a page without one
    /// lays out 980 px wide). Needed below 500 px: Chromium's windows are never narrower.
    pub mobile: bool,
    /// A Y4M file the fake camera plays (see [`y4m_qr`], [`y4m_code128`]); `None`: no camera
    /// flags at all.
    pub camera: Option<PathBuf>,
    /// The UI and `Accept-Language` language.
    pub lang: String,
    /// More Chromium flags.
    pub extra_args: Vec<String>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            window: TILL,
            mobile: false,
            camera: None,
            lang: "zh-CN".to_owned(),
            extra_args: Vec::new(),
        }
    }
}

impl BrowserOptions {
    pub fn phone() -> Self {
        BrowserOptions {
            window: PHONE,
            mobile: true,
            ..Default::default()
        }
    }
    pub fn till() -> Self {
        BrowserOptions::default()
    }
    /// The fake camera playing `y4m` (and camera permission granted without a prompt).
    pub fn camera(mut self, y4m: impl Into<PathBuf>) -> Self {
        self.camera = Some(y4m.into());
        self
    }
}

/// Whether a missing browser must fail the test instead of skipping it.
pub fn browser_required() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    ci || std::env::var("AIXIN_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// `name` as given (a path) or found on the `PATH`.
fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A headless Chromium under a chromedriver of its own, with a WebDriver session open.
/// Derefs to the fantoccini [`Client`]. Dropping it ends chromedriver and the Chromium it
/// started (one process group); [`Browser::close`] ends the session politely first.
pub struct Browser {
    pub client: Client,
    driver: Driver,
}

/// The chromedriver process and the directories it and its Chromium write to.
struct Driver {
    child: Child,
    /// The user-data dir, `XDG_CONFIG_HOME`, `XDG_CACHE_HOME` and `HOME` of this browser, and
    /// chromedriver's log.
    dir: tempfile::TempDir,
    /// Dropping it stops the watchdog.
    watchdog: Option<std::sync::mpsc::Sender<()>>,
}

impl Driver {
    /// The driver's log and stderr, for failure messages.
    fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- chromedriver.log (tail) ---\n{}\n--- chromedriver stderr (tail) ---\n{}",
            tail(read("chromedriver.log")),
            tail(read("chromedriver.stderr"))
        )
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the process group this test created (the driver's pid is its id):
        // chromedriver and the Chromium processes it started, nothing else.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Deref for Browser {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session; `None` (after a loud SKIPPED
    /// line) only when Chromium or chromedriver is not installed and [`browser_required`] is
    /// false.
    pub async fn start(options: BrowserOptions) -> Option<Browser> {
        let driver_bin = find_binary("AIXIN_CHROMEDRIVER", &["chromedriver"]);
        let chromium_bin = find_binary(
            "AIXIN_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let (Some(driver_bin), Some(chromium_bin)) = (driver_bin, chromium_bin) else {
            let message = "chromium and chromedriver are needed for the browser tests \
                           (Debian: apt-get install chromium chromium-driver fonts-wqy-microhei \
                           poppler-utils)";
            if browser_required() {
                panic!("{message}; CI / AIXIN_REQUIRE_BROWSER=1 requires them");
            }
            eprintln!("\n*** SKIPPED: {message} ***\n");
            return None;
        };

        let dir = tempfile::tempdir().expect("browser temp dir");
        for sub in ["profile", "config", "cache", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let log = dir.path().join("chromedriver.log");
        let stderr = std::fs::File::create(dir.path().join("chromedriver.stderr")).unwrap();
        let mut child = Command::new(&driver_bin)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .arg("--log-level=WARNING")
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("HOME", dir.path().join("home"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own process group: Chromium and its helpers join it, and Drop ends them all.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));

        // chromedriver prints "... started successfully on port N." on stdout; read it, then
        // keep draining stdout so the driver never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let port: Option<u16> = rest.trim_end_matches('.').trim().parse().ok();
                    if let (Some(tx), Some(port)) = (port_tx.take(), port) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let (watchdog, stop) = std::sync::mpsc::channel::<()>();
        let group = child.id() as libc::pid_t;
        std::thread::spawn(move || {
            if stop.recv_timeout(BROWSER_LIFETIME) == Err(RecvTimeoutError::Timeout) {
                eprintln!("*** the browser outlived {BROWSER_LIFETIME:?}; ending it ***");
                // SAFETY: kill(2) on this browser's own process group, still running (its
                // Driver, whose drop stops this thread first, is alive).
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
        });
        let driver = Driver {
            child,
            dir,
            watchdog: Some(watchdog),
        };
        let port = match tokio::time::timeout(WAIT, port_rx).await {
            Ok(Ok(port)) => port,
            _ => panic!(
                "chromedriver did not report its port within {WAIT:?}\n{}",
                driver.logs()
            ),
        };

        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            // Containers often give /dev/shm 64 MB, where Chromium crashes; use /tmp.
            "--disable-dev-shm-usage",
            "--force-device-scale-factor=1",
            // Nothing leaves the machine: every host name but 127.0.0.1 fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(format!(
            "--user-data-dir={}",
            driver.dir.path().join("profile").display()
        ));
        args.push(format!(
            "--window-size={},{}",
            options.window.0, options.window.1
        ));
        args.push(format!("--lang={}", options.lang));
        if let Some(video) = &options.camera {
            assert!(video.is_file(), "no camera video at {}", video.display());
            args.push("--use-fake-ui-for-media-stream".to_owned());
            args.push("--use-fake-device-for-media-stream".to_owned());
            args.push(format!(
                "--use-file-for-fake-video-capture={}",
                video.display()
            ));
        }
        args.extend(options.extra_args.iter().cloned());
        let mut capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "script": 30_000, "pageLoad": WAIT.as_millis() as u64, "implicit": 0 },
            "goog:chromeOptions": {
                "binary": chromium_bin,
                "args": args,
                "prefs": { "intl.accept_languages": options.lang },
            },
        });
        if options.mobile {
            capabilities["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": options.window.0,
                    "height": options.window.1,
                    "pixelRatio": 1.0,
                    "touch": true,
                    "mobile": true,
                },
            });
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        let connect = builder.capabilities(capabilities).connect(&webdriver);
        let client = match tokio::time::timeout(WAIT * 2, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("WebDriver session refused: {e}\n{}", driver.logs()),
            Err(_) => panic!(
                "no WebDriver session within {:?}\n{}",
                WAIT * 2,
                driver.logs()
            ),
        };
        Some(Browser { client, driver })
    }

    /// Ends the session (Chromium quits), then the driver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
    }

    /// The driver's log and stderr, for failure messages.
    pub fn logs(&self) -> String {
        self.driver.logs()
    }
}

// ---- Helpers ----

/// Runs `return (EXPR);` every 50 ms until it is truthy (not `null`, `false`, `0`, `""`) and
/// returns that value; fails the test after `timeout` with the expression and its last value.
pub async fn wait_for_js(client: &Client, expr: &str, timeout: Duration) -> Value {
    let script = format!("return ({expr});");
    let start = Instant::now();
    loop {
        let value = client
            .execute(&script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return value;
        }
        if start.elapsed() > timeout {
            panic!("waited {timeout:?} for `{expr}`; it is still {value}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Types `text` as keyboard events (WebDriver key actions: key down, key up, then a pause of
/// `per_key_ms`, per character), then Enter if `enter`. [`SCANNER_MS`] (5 ms) is a scanner
/// gun, [`PERSON_MS`] (120 ms) a person. `target` is focused first (with `focus()`, no click);
/// `None` types into whatever has focus. Any character works, full-width digits
/// (U+FF10–FF19) included: each is one key whose `key` is that character.
pub async fn type_like_scanner(
    client: &Client,
    target: Option<&Element>,
    text: &str,
    per_key_ms: u64,
    enter: bool,
) {
    if let Some(element) = target {
        let element = serde_json::to_value(element).unwrap();
        client
            .execute("arguments[0].focus();", vec![element])
            .await
            .expect("focus the target");
    }
    let pause = Duration::from_millis(per_key_ms);
    let mut keys = KeyActions::new("keyboard".to_owned());
    let enter_key: char = fantoccini::key::Key::Enter.into();
    let chars = text.chars().chain(enter.then_some(enter_key));
    for (i, value) in chars.enumerate() {
        if i > 0 && per_key_ms > 0 {
            keys = keys.pause(pause);
        }
        keys = keys
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
    }
    client
        .perform_actions(keys)
        .await
        .expect("perform key actions");
}

/// `target/screenshots/FILE` (`$CARGO_TARGET_DIR/screenshots/FILE` if set); the directory is
/// created. Screenshots go there, and anything else worth looking at after a run (a PDF).
pub fn artifact(file: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir.join(file)
}

/// Saves a screenshot of the viewport as `target/screenshots/NAME.png` and returns its path.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    let path = artifact(&format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    path
}

/// One axe-core rule the page breaks.
#[derive(Clone, Debug, Deserialize)]
pub struct Violation {
    /// The rule, e.g. `color-contrast`, `image-alt`, `target-size`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    pub nodes: Vec<ViolationNode>,
}

/// One element breaking a rule.
#[derive(Clone, Debug, Deserialize)]
pub struct ViolationNode {
    /// axe's CSS selector of the element (parts inside iframes or shadow roots joined by
    /// ` >>> `).
    pub target: String,
    /// The element's opening HTML.
    pub html: String,
    /// What to fix, in axe's words.
    pub summary: String,
}

impl Violation {
    /// The selectors of the elements breaking the rule.
    pub fn targets(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.target.as_str()).collect()
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} ({}): {} <{}>",
            self.id,
            self.impact.as_deref().unwrap_or("?"),
            self.help,
            self.help_url
        )?;
        for node in &self.nodes {
            writeln!(f, "    {}  {}", node.target, node.html)?;
            for line in node.summary.lines() {
                writeln!(f, "        {line}")?;
            }
        }
        Ok(())
    }
}

fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = manifest_dir().join("tests/browser/vendor/axe.min.js");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    })
}

/// Injects axe-core (`tests/browser/vendor/axe.min.js`, through WebDriver, so the page's CSP
/// does not apply) into the current page and runs the WCAG 2.0/2.1/2.2 A and AA rules
/// ([`AXE_TAGS`]) on the whole document. Returns the violations (empty: none found).
pub async fn axe_check(client: &Client) -> Vec<Violation> {
    let loaded = client
        .execute(
            &format!("{}\n;return typeof window.axe;", axe_source()),
            vec![],
        )
        .await
        .expect("inject axe-core");
    assert_eq!(loaded, json!("object"), "axe-core did not load");
    let result = client
        .execute_async(
            r#"
            const [tags, done] = arguments;
            const joined = (target) =>
                target.map((t) => (Array.isArray(t) ? t.join(" ") : t)).join(" >>> ");
            axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] })
                .then((r) => done({ violations: r.violations.map((v) => ({
                    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                    nodes: v.nodes.map((n) => ({
                        target: joined(n.target), html: n.html, summary: n.failureSummary || "",
                    })),
                })) }))
                .catch((e) => done({ error: String(e && e.stack || e) }));
            "#,
            vec![json!(AXE_TAGS)],
        )
        .await
        .expect("run axe-core");
    if let Some(error) = result.get("error") {
        panic!("axe-core failed: {error}");
    }
    serde_json::from_value(result["violations"].clone()).expect("axe-core's violations")
}

/// [`axe_check`], failing the test with every violation listed if there is one.
pub async fn assert_accessible(client: &Client, what: &str) {
    let violations = axe_check(client).await;
    if !violations.is_empty() {
        let list: String = violations.iter().map(ToString::to_string).collect();
        panic!("{what}: {} axe-core violations\n{list}", violations.len());
    }
}

/// Every rendered interactive element (`a, button, input, select, textarea, summary,
/// [role=button]`; `input type=hidden` and elements without a box skipped) as
/// `(selector, width, height)` in CSS pixels from `getBoundingClientRect`. The selector is
/// `#id` when the element has one, else a `tag:nth-of-type(n)` path from the nearest ancestor
/// with an id (or `body`).
pub async fn min_target_size(client: &Client) -> Vec<(String, f64, f64)> {
    let value = client
        .execute(
            r##"
            const path = (el) => {
                const parts = [];
                for (let e = el; e && e !== document.body; e = e.parentElement) {
                    if (e.id) { parts.unshift("#" + CSS.escape(e.id)); return parts.join(" > "); }
                    const same = [...e.parentElement.children].filter((c) => c.tagName === e.tagName);
                    const tag = e.tagName.toLowerCase();
                    parts.unshift(same.length > 1 ? `${tag}:nth-of-type(${same.indexOf(e) + 1})` : tag);
                }
                parts.unshift("body");
                return parts.join(" > ");
            };
            const selector = "a, button, input, select, textarea, summary, [role=button]";
            return [...document.querySelectorAll(selector)]
                .filter((el) => !(el.tagName === "INPUT" && el.type === "hidden"))
                .filter((el) => el.getClientRects().length > 0)
                .map((el) => { const r = el.getBoundingClientRect(); return [path(el), r.width, r.height]; });
            "##,
            vec![],
        )
        .await
        .expect("measure targets");
    serde_json::from_value(value).expect("[selector, width, height] triples")
}

/// Prints the current page to PDF through WebDriver's print command — `width_cm` wide, 27.94
/// cm high (the WebDriver default), no margins, backgrounds printed, no shrinking to fit (a
/// receipt too wide for the paper shows as cut off instead of quietly scaled) — and writes it
/// to `path`. Returns the PDF.
pub async fn print_pdf(client: &Client, width_cm: f64, path: &Path) -> Vec<u8> {
    let config = PrintConfiguration::builder()
        .size(PrintSize {
            width: width_cm,
            height: 27.94,
        })
        .margins(PrintMargins {
            top: 0.0,
            bottom: 0.0,
            left: 0.0,
            right: 0.0,
        })
        .background(true)
        .shrink_to_fit(false)
        .build()
        .expect("print configuration");
    let pdf = client.print(config).await.expect("print to PDF");
    assert!(pdf.starts_with(b"%PDF-"), "the print command gave no PDF");
    std::fs::write(path, &pdf).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    pdf
}

/// The number of pages of the PDF at `path`, from `pdfinfo` (poppler-utils). Without
/// `pdfinfo` (and not [`browser_required`]) it counts `/Type /Page` objects instead, after a
/// loud note.
pub fn pdf_page_count(path: &Path) -> usize {
    match Command::new("pdfinfo").arg(path).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines()
                .find_map(|l| l.strip_prefix("Pages:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("pdfinfo gave no page count:\n{text}"))
        }
        Ok(out) => panic!(
            "pdfinfo {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            if browser_required() {
                panic!("pdfinfo (poppler-utils) is required: {e}");
            }
            eprintln!("*** pdfinfo not found ({e}); counting /Type /Page in the PDF instead ***");
            let pdf = std::fs::read(path).unwrap();
            let needle = b"/Type /Page";
            pdf.windows(needle.len() + 1)
                .filter(|w| &w[..needle.len()] == needle && w[needle.len()] != b's')
                .count()
        }
    }
}

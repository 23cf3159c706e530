//! The auditor's pages proven in Chromium (the harness is `tests/browser/`): an auditor signs
//! in with a name and password, exports a bundle by date range from the page, and the built
//! `aixin audit verify` accepts the downloaded file; the download is byte-identical to what
//! `aixin audit export` writes for the same range (every file, and the tar made of them); the
//! checkpoints and a report's CSV are downloaded (UTF-8 BOM, CRLF, exact decimals); every page
//! passes axe-core (WCAG 2.2 A/AA) in the standard mode and in 长辈模式, with screenshots in
//! `target/screenshots/`.
//!
//! Downloads are fetched from the URL the page links to (or its form submits to) with the
//! browser's own session cookie.
//!
//! Skipped (loudly) only when Chromium or chromedriver is not installed and neither `CI` nor
//! `AIXIN_REQUIRE_BROWSER=1` is set.

#[allow(unused_imports)]
#[path = "browser/mod.rs"]
mod browser;
mod common;

use std::process::Command;
use std::time::Duration;

use aixin::app::App;
use aixin::auth::{Principal, Role};
use aixin::earning::service::{NewOrgUnit, NewResident};
use aixin::keys::{KeyRing, SharedKeys};
use aixin::ledger::{Amount, EntryKind, Unit};
use aixin::model::ExpiryPolicy;
use aixin::redeem::service::{NewItem, NewShop, Shown, StaffRole};
use browser::*;
use common::{transfer, Target, T0};
use fantoccini::{Client, Locator};
use serde_json::Value;

const LEDGER: &str = "test";
const DAY: i64 = 86_400_000_000;
const PASSWORD: &str = "audit password 2026";
const WAIT: Duration = Duration::from_secs(10);

struct World {
    server: Server,
    app: App,
    key_file: std::path::PathBuf,
    database_url: String,
    shop: uuid::Uuid,
    _dir: tempfile::TempDir,
}

/// A community with a resident who earns on three days and spends at a shop, a signed
/// checkpoint, and an auditor with a password; the server signs with a key file.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("aixin-keys.json");
    let entropy = aixin::clock::SeededEntropy::new(11);
    let (ring, _) = KeyRing::load_or_create(&key_file, entropy.as_ref(), T0).unwrap();
    let keys = SharedKeys::from_file(key_file.clone(), ring);
    let server_keys = keys.clone();
    let server = Server::start_with(move |app| {
        aixin::http::router(app.with_keys(server_keys)).layer(axum::Extension(aixin::web::Site {
            ledger: LEDGER.into(),
        }))
    })
    .await;
    let app = server.app.clone().with_keys(keys);
    let database_url = match &server.harness.url_or_path {
        Target::Sqlite(url) => url.clone(),
        Target::Postgres { url, schema } => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}options=-c%20search_path%3D{schema}")
        }
    };
    server.clock.set(T0 + 9 * 3_600_000_000);
    let admin = Principal::operator(LEDGER, "test-admin");
    app.earning
        .create_org_unit(
            &admin,
            NewOrgUnit {
                id: "c1".into(),
                parent_id: None,
                level: "community".into(),
                name_zh: "幸福社区".into(),
                name_en: "Xingfu".into(),
                community: Some(ExpiryPolicy::Never),
            },
        )
        .await
        .unwrap();
    let issuance = app
        .earning
        .org_unit(&admin, "c1")
        .await
        .unwrap()
        .community
        .unwrap()
        .issuance_account;
    let (resident, _) = app
        .earning
        .register_resident(
            &admin,
            "r1",
            NewResident {
                name: "王秀英".into(),
                phone: "13800001234".into(),
                community_id: "c1".into(),
            },
        )
        .await
        .unwrap();
    for day in 0..3 {
        app.journal
            .post(
                &admin,
                format!("earn-{day}"),
                transfer(
                    EntryKind::Earn,
                    issuance,
                    resident.account_id,
                    Unit::Points,
                    "25.50",
                ),
            )
            .await
            .unwrap();
        server.clock.advance(DAY);
    }
    let staff = aixin::auth::Principal {
        role: Role::Staff,
        scope: Some("c1".into()),
        ..Principal::operator(LEDGER, "test-staff")
    };
    let (shop, _) = app
        .redemption
        .create_shop(
            &staff,
            "shop-1",
            NewShop {
                // A name a spreadsheet would run as a formula, to see it neutralised in CSV.
                name_zh: "=1+1爱心粮油店".into(),
                name_en: "Love Grain".into(),
                community_id: "c1".into(),
                serves: Vec::new(),
                refund_window_days: None,
            },
        )
        .await
        .unwrap();
    app.redemption
        .put_item(
            &staff,
            shop.id,
            "RICE",
            NewItem {
                name_zh: "东北大米".into(),
                name_en: "Rice".into(),
                unit: "袋".into(),
                price: Amount::parse("10").unwrap(),
                track_stock: false,
                cap_day: None,
                cap_month: None,
                active: true,
            },
        )
        .await
        .unwrap();
    let card = app
        .redemption
        .issue_credential(&admin, "card-1", resident.id)
        .await
        .unwrap();
    let (owner, _, _) = app
        .redemption
        .add_shop_staff_as(&staff, "owner", shop.id, "王店主", StaffRole::Owner)
        .await
        .unwrap();
    let owner = Principal {
        token_id: owner.token_id,
        ledger_id: LEDGER.into(),
        role: Role::Shop,
        scope: Some(shop.id.to_string()),
        operator: None,
    };
    app.redemption
        .redeem(
            &owner,
            "sale-1",
            Shown::Card {
                number: card.number.clone(),
                pin: card.card_pin.clone(),
            },
            &[("RICE".into(), 2)],
        )
        .await
        .unwrap();
    aixin::audit::export::checkpoint_head(
        app.store.as_ref(),
        LEDGER,
        &app.keys.get(),
        server.clock.now(),
    )
    .await
    .unwrap();
    let (_, link) = app
        .sessions
        .create_user(&admin, Role::Auditor, None, "赵审计")
        .await
        .unwrap();
    app.sessions
        .set_password(LEDGER, &link.secret, PASSWORD)
        .await
        .unwrap();
    World {
        server,
        app,
        key_file,
        database_url,
        shop: shop.id,
        _dir: dir,
    }
}

trait Now {
    fn now(&self) -> i64;
}

impl Now for std::sync::Arc<aixin::clock::ManualClock> {
    fn now(&self) -> i64 {
        aixin::clock::Clock::now_micros(self.as_ref())
    }
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    wait_for_js(c, "document.readyState === 'complete'", WAIT).await;
}

async fn main_text(c: &Client) -> String {
    js(c, "return document.querySelector('main').innerText")
        .await
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// GET `url` with the browser's session cookie: (status, headers, body).
async fn download(c: &Client, url: &str) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    let cookie = c
        .get_named_cookie(aixin::web::SESSION_COOKIE)
        .await
        .expect("the browser has a session cookie");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<axum::body::Bytes>>();
    let request = axum::http::Request::get(url)
        .header(
            "cookie",
            format!("{}={}", aixin::web::SESSION_COOKIE, cookie.value()),
        )
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

/// The URL a GET form of the page submits to with its current values.
async fn form_url(c: &Client, form: &str) -> String {
    js(
        c,
        &format!(
            "const f = document.querySelector('{form}'); \
             return f.action + '?' + new URLSearchParams(new FormData(f)).toString();"
        ),
    )
    .await
    .as_str()
    .unwrap()
    .to_owned()
}

fn aixin(w: &World) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aixin"));
    command
        .arg("--database-url")
        .arg(&w.database_url)
        .arg("--ledger")
        .arg(LEDGER)
        .arg("--keys")
        .arg(&w.key_file);
    command
}

/// The members of a ustar archive, in order: (name, bytes).
fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|b| *b != 0) {
        let h = &bytes[at..at + 512];
        let name_end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_end].to_vec()).unwrap();
        let size_text = String::from_utf8(h[124..135].to_vec()).unwrap();
        let size = usize::from_str_radix(size_text.trim(), 8).unwrap();
        out.push((name, bytes[at + 512..at + 512 + size].to_vec()));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_exports_verifies_and_downloads() {
    let w = world().await;
    let Some(browser) = Browser::start(BrowserOptions::default()).await else {
        return;
    };
    let c = &browser.client;

    // Signing in with the name and password, the auditor lands on the export page.
    goto(c, &w.server.url("/audit")).await;
    assert!(c.current_url().await.unwrap().path().starts_with("/signin"));
    c.find(Locator::Css("#staff-name"))
        .await
        .unwrap()
        .send_keys("赵审计")
        .await
        .unwrap();
    c.find(Locator::Css("#staff-password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/signin/password'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_js(c, "location.pathname === '/audit'", WAIT).await;
    let text = main_text(c).await;
    assert!(text.contains("导出审计包"), "{text}");
    assert!(text.contains("aixin audit verify"), "{text}");
    assert!(text.contains("check_bundle.py"), "{text}");
    screenshot(c, "audit-export").await;

    // Export by date: the second and third days (the first day's entries stay out).
    let day = |n: i64| aixin::calendar::day_of(T0 + n * DAY).to_string();
    let (from, to) = (day(1), day(3));
    js(
        c,
        &format!(
            "document.getElementById('date-from').value = '{from}'; \
             document.getElementById('date-to').value = '{to}';"
        ),
    )
    .await;
    let url = form_url(c, "#by-date").await;
    assert!(url.contains("/audit/export?from="), "{url}");
    let (status, headers, tar) = download(c, &url).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&tar));
    assert_eq!(headers["content-type"], "application/x-tar");
    let disposition = headers["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"aixin-test-"),
        "{disposition}"
    );
    let name = disposition
        .trim_start_matches("attachment; filename=\"")
        .trim_end_matches('"')
        .to_owned();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join(&name);
    std::fs::write(&file, &tar).unwrap();

    // The built binary verifies the downloaded file as it is, signatures included.
    let verified = aixin(&w)
        .args(["audit", "verify"])
        .arg(&file)
        .arg("--keys")
        .arg(&w.key_file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert!(
        verified.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        said.starts_with("ok: ledger \"test\", entries 2 to "),
        "{said}"
    );
    assert!(!said.contains("signatures not checked"), "{said}");

    // `aixin audit export` of the same range writes the same files, byte for byte.
    let out = work.path().join("cli-bundle");
    let exported = aixin(&w)
        .args(["audit", "export", "--out"])
        .arg(&out)
        .args(["--from", &from, "--to", &to])
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let members = untar(&tar);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected: Vec<&str> = aixin::audit::format::FILES.to_vec();
    expected.push(aixin::audit::format::MANIFEST_FILE);
    assert_eq!(names, expected);
    let mut rebuilt = Vec::new();
    for (name, bytes) in &members {
        let cli = std::fs::read(out.join(name)).unwrap();
        assert!(cli == *bytes, "{name} differs from aixin audit export's");
        rebuilt.extend_from_slice(&aixin::audit::tar::header(name, cli.len() as u64));
        rebuilt.extend_from_slice(&cli);
        rebuilt.extend(std::iter::repeat_n(
            0u8,
            aixin::audit::tar::padding(cli.len() as u64),
        ));
    }
    rebuilt.extend_from_slice(&aixin::audit::tar::END);
    assert!(
        rebuilt == tar,
        "the download is not the tar of the CLI's files"
    );
    // The CLI's directory verifies too, and so does a changed byte not.
    let mut bad = tar.clone();
    let at = bad.len() / 3;
    bad[at] ^= 1;
    let bad_file = work.path().join("bad.tar");
    std::fs::write(&bad_file, &bad).unwrap();
    let refused = aixin(&w)
        .args(["audit", "verify"])
        .arg(&bad_file)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a changed byte verified");

    // The same by sequence number, from its own form.
    js(
        c,
        "document.getElementById('seq-from').value = '2'; document.getElementById('seq-to').value = '3';",
    )
    .await;
    let url = form_url(c, "#by-seq").await;
    let (status, _, by_seq) = download(c, &url).await;
    assert_eq!(status, 200);
    let file = work.path().join("by-seq.tar");
    std::fs::write(&file, &by_seq).unwrap();
    let verified = aixin(&w)
        .args(["audit", "verify"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert!(
        said.starts_with("ok: ledger \"test\", entries 2 to 3 "),
        "{said}"
    );

    // A bad bound is refused with a sentence, not a file.
    let (status, headers, body) = download(c, &w.server.url("/audit/export?from=yesterday")).await;
    assert_eq!(status, 400);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(String::from_utf8_lossy(&body).contains("class=\"refusal\""));

    // The checkpoints: listed, and downloaded as the lines --checkpoint reads.
    goto(c, &w.server.url("/audit/checkpoints")).await;
    let href = js(
        c,
        "return document.querySelector('a[href=\"/audit/checkpoints.jsonl\"]').href",
    )
    .await;
    let (status, headers, lines) = download(c, href.as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("checkpoints"));
    let lines = String::from_utf8(lines).unwrap();
    assert!(lines.lines().count() >= 1, "{lines}");
    assert!(
        lines
            .lines()
            .all(|l| l.starts_with("{\"ledger\":\"test\",\"seq\":")),
        "{lines}"
    );
    let kept = work.path().join("kept.jsonl");
    std::fs::write(&kept, &lines).unwrap();
    screenshot(c, "audit-checkpoints").await;
    let whole = aixin(&w)
        .args(["audit", "export", "--out"])
        .arg(work.path().join("whole"))
        .output()
        .unwrap();
    assert!(whole.status.success());
    let extends = aixin(&w)
        .args(["audit", "verify"])
        .arg(work.path().join("whole"))
        .arg("--checkpoint")
        .arg(&kept)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&extends.stdout).into_owned();
    assert!(said.contains("extends the retained checkpoint"), "{said}");

    // The reports, with the community and the shop chosen, and a CSV downloaded.
    goto(
        c,
        &w.server
            .url(&format!("/audit/reports?community=c1&shop={}", w.shop)),
    )
    .await;
    let text = main_text(c).await;
    assert!(text.contains("试算平衡表") && text.contains("社区报表") && text.contains("商铺报表"));
    assert!(text.contains("issued") && text.contains("76.50"), "{text}");
    screenshot(c, "audit-reports").await;
    let href = js(
        c,
        "return document.querySelector('a[href^=\"/audit/reports/community.csv\"]').href",
    )
    .await;
    let (status, headers, csv) = download(c, href.as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
    let csv = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert!(csv.starts_with("section,key,points\r\n"), "{csv}");
    assert!(csv.contains("\r\nissued,,76.50\r\n"), "{csv}");
    assert!(csv.contains("redeemed,,20.00\r\n"), "{csv}");
    assert!(
        !csv.replace("\r\n", "").contains('\n'),
        "a bare LF: {csv:?}"
    );
    let href = js(
        c,
        "return document.querySelector('a[href^=\"/audit/reports/trial-balance.csv\"]').href",
    )
    .await;
    let (status, _, trial) = download(c, href.as_str().unwrap()).await;
    assert_eq!(status, 200);
    let trial = String::from_utf8(trial).unwrap();
    assert!(trial.starts_with("\u{feff}account,kind,"), "{trial}");
    assert!(
        trial.contains(",\"'=1+1爱心粮油店\","),
        "not neutralised: {trial}"
    );
    assert!(!trial.contains(",=1+1"), "a formula cell: {trial}");
    let href = js(
        c,
        "return document.querySelector('a[href^=\"/audit/reports/shop.csv\"]').href",
    )
    .await;
    let (status, _, shop) = download(c, href.as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(shop).unwrap().contains("20.00"));

    // Every page, standard and 长辈模式: axe clean, nothing wider than the screen, targets and
    // text large enough in 长辈模式.
    let pages = [
        ("audit-export", "/audit".to_owned()),
        ("audit-checkpoints", "/audit/checkpoints".to_owned()),
        (
            "audit-reports",
            format!("/audit/reports?community=c1&shop={}", w.shop),
        ),
    ];
    let mut problems = Vec::new();
    for mode in ["standard", "large"] {
        for (name, path) in &pages {
            let sep = if path.contains('?') { '&' } else { '?' };
            goto(c, &w.server.url(&format!("{path}{sep}mode={mode}"))).await;
            let what = format!("{name} ({mode})");
            for v in axe_check(c).await {
                problems.push(format!("{what}: axe {v}"));
            }
            if mode == "large" {
                for (target, width, height) in min_target_size(c).await {
                    if width < 60.0 || height < 60.0 {
                        problems.push(format!("{what}: {target} is {width}×{height} px"));
                    }
                }
            }
            let wide = js(
                c,
                "return [document.documentElement.scrollWidth, innerWidth]",
            )
            .await;
            if wide[0].as_f64() > wide[1].as_f64() {
                problems.push(format!("{what}: wider than the screen {wide}"));
            }
            screenshot(c, &format!("{name}-{mode}")).await;
        }
    }
    // English too.
    goto(c, &w.server.url("/audit?lang=en&mode=standard")).await;
    assert!(main_text(c).await.contains("Export an audit bundle"));
    let _ = js(c, "document.cookie = 'lang=zh; path=/'").await;
    browser.close().await;
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    drop(w.app);
}

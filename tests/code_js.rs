//! The phone's code generator, `src/web/assets/code.js`, run under Node.js against every
//! layout-2 vector of `ledger-specs/vectors/redemption.json`: the codes of each step, and the
//! code to show (with its seconds left and seconds to wait) after a sale.
//!
//! Needs `node` (v20 or later: `globalThis.crypto.subtle`). Without it the test says SKIPPED
//! and passes, unless `CI` is set, when it fails.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Imports the module and prints, as JSON, what it makes of each vector.
const DRIVER: &str = r#"
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [moduleFile, vectorsFile] = process.argv.slice(1);
const m = await import(pathToFileURL(moduleFile).href);
const v = JSON.parse(readFileSync(vectorsFile, "utf8"));
const c = v.codes, s = v.shown;
const out = {
  layout: m.LAYOUT,
  codes: await Promise.all(c.vectors.map(async (x) => ({
    step: m.stepOf(x.unix_seconds),
    otp: await m.otpAt(c.secret_hex, c.number, x.step),
    code: await m.codeAt(c.secret_hex, c.number, x.unix_seconds),
  }))),
  shown: await Promise.all(s.vectors.map(async (x) => ({
    step: m.stepFor(x.unix_seconds, x.last_used_step),
    code: await m.codeAt(s.secret_hex, s.number, x.unix_seconds, x.last_used_step),
    expires_in_seconds: m.secondsLeft(x.unix_seconds, x.last_used_step),
    valid_in_seconds: m.validInSeconds(x.unix_seconds, x.last_used_step),
  }))),
  damm: v.damm.map((x) => m.damm(x.digits)),
  seconds_left_now: m.secondsLeft(1790000000),
  grouped: m.grouped(c.vectors[0].code),
};
console.log(JSON.stringify(out));
"#;

#[test]
fn the_javascript_generator_reproduces_every_layout_2_vector() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vectors_file = root.join("ledger-specs/vectors/redemption.json");
    let output = match Command::new("node")
        .args(["--input-type=module", "-e", DRIVER])
        .arg(root.join("src/web/assets/code.js"))
        .arg(&vectors_file)
        .output()
    {
        Ok(output) => output,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: node is not available ({e}); CI=1 makes this a failure");
            return;
        }
        Err(e) => panic!("node is required for this test under CI: {e}"),
    };
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Value = serde_json::from_slice(&output.stdout).expect("the driver's JSON");
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(&vectors_file).unwrap()).unwrap();

    assert_eq!(got["layout"], want["codes"]["layout"]);
    let codes = want["codes"]["vectors"].as_array().unwrap();
    assert!(!codes.is_empty());
    for (got, want) in got["codes"].as_array().unwrap().iter().zip(codes) {
        assert_eq!(got["step"], want["step"], "step of {want}");
        assert_eq!(got["otp"], want["otp"], "password of {want}");
        assert_eq!(got["code"], want["code"], "code of {want}");
    }
    let shown = want["shown"]["vectors"].as_array().unwrap();
    assert!(!shown.is_empty());
    for (got, want) in got["shown"].as_array().unwrap().iter().zip(shown) {
        for field in ["step", "code", "expires_in_seconds", "valid_in_seconds"] {
            assert_eq!(got[field], want[field], "{field} of {want}");
        }
    }
    let damm: Vec<&Value> = want["damm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["check"])
        .collect();
    assert_eq!(
        got["damm"].as_array().unwrap().iter().collect::<Vec<_>>(),
        damm
    );
    assert_eq!(got["codes"].as_array().unwrap().len(), codes.len());
    assert_eq!(got["shown"].as_array().unwrap().len(), shown.len());
    // 1 790 000 000 is 20 s into its step.
    assert_eq!(got["seconds_left_now"], 10);
    let grouped = got["grouped"].as_str().unwrap();
    assert_eq!(grouped.split(' ').count(), 5, "{grouped}");
    assert_eq!(grouped.replace(' ', ""), codes[0]["code"].as_str().unwrap());
}

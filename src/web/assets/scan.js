// Reads one barcode or QR code from the camera with the vendored decoder (barcode-detector's
// ponyfill over zxing-wasm, served from this site; see vendor/README.md).

let detector = null;

async function ready() {
  if (detector) return detector;
  const mod = await import("./vendor/ponyfill.js");
  const wasm = new URL("./vendor/zxing_reader.wasm", import.meta.url).href;
  await mod.prepareZXingModule({
    overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? wasm : prefix + path) },
    fireImmediately: true,
  });
  detector = new mod.BarcodeDetector({ formats: ["qr_code", "code_128"] });
  return detector;
}

/** Opens the camera in `video`, resolves with the first code read, then closes the camera. */
export async function scan(video, timeoutMs = 60000) {
  const d = await ready();
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  video.srcObject = stream;
  await video.play();
  const started = performance.now();
  try {
    for (;;) {
      if (performance.now() - started > timeoutMs) throw new Error("timeout");
      if (video.readyState >= 2) {
        const found = await d.detect(video);
        if (found.length > 0) return found[0].rawValue;
      }
      await new Promise((r) => setTimeout(r, 120));
    }
  } finally {
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  }
}

// aixin redemption codes, layout 2, generated in the resident's browser without a connection.
// The layout is ledger-specs/redemption-code.md; tests/code_js.rs runs this module against
// every vector of ledger-specs/vectors/redemption.json. No dependencies: WebCrypto's
// HMAC-SHA256 (crypto.subtle, which needs a secure context: HTTPS or localhost).

export const LAYOUT = 2;
export const PREFIX = "72";
export const DIGITS = 25;
export const STEP_SECONDS = 30;
/** Steps either side of the server's current one that a till still accepts. */
export const STEP_WINDOW = 2;

const LABEL = new TextEncoder().encode("aixin-code-v2");
const DAMM = ["0317598642", "7092154863", "4206871359", "1750983426", "6123045978",
              "3674209581", "5869720134", "8945362017", "9438617205", "2581436790"];

/** The Damm check digit of a string of digits. */
export function damm(digits) {
  let interim = 0;
  for (const d of digits) interim = Number(DAMM[interim][Number(d)]);
  return interim;
}

/** The 30-second time step of a moment (floor, also before 1970). */
export function stepOf(unixSeconds) {
  return Math.floor(unixSeconds / STEP_SECONDS);
}

/** The step whose code to show: the current one, or the first after the last one used. */
export function stepFor(unixSeconds, lastUsedStep = null) {
  const now = stepOf(unixSeconds);
  return lastUsedStep === null || lastUsedStep === undefined ? now : Math.max(now, lastUsedStep + 1);
}

/** Seconds until the code shown now is replaced by a newer one. */
export function secondsLeft(unixSeconds, lastUsedStep = null) {
  return (stepFor(unixSeconds, lastUsedStep) + 1) * STEP_SECONDS - Math.floor(unixSeconds);
}

/** Seconds until a till accepts the code shown now: 0 unless it lies beyond the window. */
export function validInSeconds(unixSeconds, lastUsedStep = null) {
  const wait = (stepFor(unixSeconds, lastUsedStep) - STEP_WINDOW) * STEP_SECONDS - Math.floor(unixSeconds);
  return Math.max(0, wait);
}

function bytesOfHex(hex) {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new Error("the secret must be hex");
  return Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
}

/** The 13-digit one-time password of credential `number` at time step `step`, as text. */
export async function otpAt(secretHex, number, step) {
  const key = await crypto.subtle.importKey("raw", bytesOfHex(secretHex),
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const message = new Uint8Array(LABEL.length + 12);
  const view = new DataView(message.buffer);
  message.set(LABEL);
  view.setUint32(LABEL.length, Number(number));                 // u32be(number)
  view.setBigInt64(LABEL.length + 4, BigInt(step));             // i64be(step)
  const mac = new DataView(await crypto.subtle.sign("HMAC", key, message));
  const offset = mac.getUint8(31) & 0x0f;
  const bin = mac.getBigUint64(offset) & 0x7fffffffffffffffn;
  return (bin % 10n ** 13n).toString().padStart(13, "0");
}

/** The code of credential `number` for time step `step`. */
export async function codeOfStep(secretHex, number, step) {
  const body = PREFIX + String(number).padStart(9, "0") + await otpAt(secretHex, number, step);
  return body + damm(body);
}

/**
 * The 25 digits to show at `unixSeconds`. After a sale, pass the step the till last accepted
 * (`last_used_step` of GET /v1/residents/{id}/code): its code and older ones are dead.
 */
export async function codeAt(secretHex, number, unixSeconds, lastUsedStep = null) {
  return codeOfStep(secretHex, number, stepFor(unixSeconds, lastUsedStep));
}

/** The code in five groups of five, for reading aloud or typing (tills ignore the spaces). */
export function grouped(code) {
  return code.replace(/(\d{5})(?=\d)/g, "$1 ");
}

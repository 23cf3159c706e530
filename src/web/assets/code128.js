// Code 128 barcodes for the resident's code page, drawn as SVG in the page (so the code can
// refresh offline). Digits use set C (two digits a symbol); an odd last digit switches to set B.
// The symbol table is the standard's (ISO/IEC 15417): module patterns, 1 = bar, 0 = space,
// index = symbol value; the last entry is the stop pattern with its final bar.
const PATTERNS = [
  "11011001100",
  "11001101100",
  "11001100110",
  "10010011000",
  "10010001100",
  "10001001100",
  "10011001000",
  "10011000100",
  "10001100100",
  "11001001000",
  "11001000100",
  "11000100100",
  "10110011100",
  "10011011100",
  "10011001110",
  "10111001100",
  "10011101100",
  "10011100110",
  "11001110010",
  "11001011100",
  "11001001110",
  "11011100100",
  "11001110100",
  "11101101110",
  "11101001100",
  "11100101100",
  "11100100110",
  "11101100100",
  "11100110100",
  "11100110010",
  "11011011000",
  "11011000110",
  "11000110110",
  "10100011000",
  "10001011000",
  "10001000110",
  "10110001000",
  "10001101000",
  "10001100010",
  "11010001000",
  "11000101000",
  "11000100010",
  "10110111000",
  "10110001110",
  "10001101110",
  "10111011000",
  "10111000110",
  "10001110110",
  "11101110110",
  "11010001110",
  "11000101110",
  "11011101000",
  "11011100010",
  "11011101110",
  "11101011000",
  "11101000110",
  "11100010110",
  "11101101000",
  "11101100010",
  "11100011010",
  "11101111010",
  "11001000010",
  "11110001010",
  "10100110000",
  "10100001100",
  "10010110000",
  "10010000110",
  "10000101100",
  "10000100110",
  "10110010000",
  "10110000100",
  "10011010000",
  "10011000010",
  "10000110100",
  "10000110010",
  "11000010010",
  "11001010000",
  "11110111010",
  "11000010100",
  "10001111010",
  "10100111100",
  "10010111100",
  "10010011110",
  "10111100100",
  "10011110100",
  "10011110010",
  "11110100100",
  "11110010100",
  "11110010010",
  "11011011110",
  "11011110110",
  "11110110110",
  "10101111000",
  "10100011110",
  "10001011110",
  "10111101000",
  "10111100010",
  "11110101000",
  "11110100010",
  "10111011110",
  "10111101110",
  "11101011110",
  "11110101110",
  "11010000100",
  "11010010000",
  "11010011100",
  "1100011101011"
];
const START_C = 105, CODE_B = 100, STOP = 106;

/** The symbol values of `digits` (checksum included, stop excluded). */
export function symbols(digits) {
  if (!/^[0-9]+$/.test(digits)) throw new Error("digits only");
  const values = [START_C];
  const even = digits.length - (digits.length % 2);
  for (let i = 0; i < even; i += 2) values.push(Number(digits.slice(i, i + 2)));
  if (even < digits.length) {
    values.push(CODE_B);
    values.push(16 + Number(digits[even])); // set B: "0" is value 16
  }
  let sum = values[0];
  for (let i = 1; i < values.length; i++) sum += values[i] * i;
  values.push(sum % 103);
  return values;
}

/** The module string (1 = bar) of `digits`, quiet zones excluded. */
export function modules(digits) {
  return symbols(digits).map((v) => PATTERNS[v]).join("") + PATTERNS[STOP];
}

/** An SVG element drawing `digits`, `height` units tall, with a 10-module quiet zone. */
export function svg(digits, height = 60) {
  const m = modules(digits);
  const quiet = 10, width = m.length + 2 * quiet;
  const ns = "http://www.w3.org/2000/svg";
  const el = document.createElementNS(ns, "svg");
  el.setAttribute("viewBox", `0 0 ${width} ${height}`);
  el.setAttribute("preserveAspectRatio", "none");
  el.setAttribute("aria-hidden", "true");
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("width", width); bg.setAttribute("height", height); bg.setAttribute("fill", "#fff");
  el.appendChild(bg);
  let d = "";
  for (let i = 0; i < m.length; ) {
    if (m[i] === "1") {
      let j = i;
      while (j < m.length && m[j] === "1") j++;
      d += `M${quiet + i} 0h${j - i}v${height}h-${j - i}z`;
      i = j;
    } else i++;
  }
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  el.appendChild(path);
  return el;
}

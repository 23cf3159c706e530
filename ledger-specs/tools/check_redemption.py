#!/usr/bin/env python3
"""Independent checker for redemption codes, card PINs, credential secrets and receipts,
written from ledger-specs/redemption-code.md and ledger-specs/receipt.md alone.

    check_redemption.py VECTORS.json
    check_redemption.py --receipt 'AXR1:...' --key-id k1 --key-hex 64HEX
"""
import base64, hashlib, hmac, json, struct, sys

DAMM = ["0317598642", "7092154863", "4206871359", "1750983426", "6123045978",
        "3674209581", "5869720134", "8945362017", "9438617205", "2581436790"]

def damm(digits):
    i = 0
    for d in digits:
        i = int(DAMM[i][int(d)])
    return i

def hkdf(ikm, salt, info, n=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, c = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([c]), hashlib.sha256).digest()
        out, c = out + t, c + 1
    return out[:n]

def truncate(mac):
    o = mac[31] & 0x0F
    return (struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000

def otp(secret, number, step):
    # Layout 2: the same dynamic truncation over 8 bytes (63 bits), 13 digits.
    mac = hmac.new(secret, b"aixin-code-v2" + struct.pack(">Iq", number, step), hashlib.sha256).digest()
    o = mac[31] & 0x0F
    return (struct.unpack(">Q", mac[o:o + 8])[0] & 0x7FFFFFFFFFFFFFFF) % 10**13

def pin(secret, number):
    return truncate(hmac.new(secret, b"aixin-pin-v1" + struct.pack(">I", number), hashlib.sha256).digest())

def code(number, o):
    body = "72%09d%013d" % (number, o)
    return body + str(damm(body))

def step_of(unix_seconds):
    return unix_seconds // 30  # floor, also below zero

def step_to_show(unix_seconds, last_used_step):
    now = step_of(unix_seconds)
    return now if last_used_step is None else max(now, last_used_step + 1)

# The ranges the till names (redemption-code.md section 3.1): (app, lengths, prefixes).
RANGES = [("wechat", range(18, 19), range(10, 16)),
          ("alipay", range(16, 25), range(25, 31)),
          ("unionpay", range(19, 20), range(62, 63))]

def foreign_app(digits):
    if not digits.isdigit() or not digits.isascii():
        return None
    for app, lengths, prefixes in RANGES:
        if len(digits) in lengths and int(digits[:2]) in prefixes:
            return app
    return None

class Reader:
    def __init__(self, b): self.b, self.i = b, 0
    def take(self, n):
        if self.i + n > len(self.b): raise ValueError("short")
        v = self.b[self.i:self.i + n]; self.i += n; return v
    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack(">H", self.take(2))[0]
    def u32(self): return struct.unpack(">I", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]
    def text(self):
        n = self.u16()
        if n > 64: raise ValueError("text too long")
        return self.take(n).decode("utf-8")

def decode(message):
    r = Reader(message)
    if r.u8() != 1: raise ValueError("version")
    f = {"key_id": r.text(), "ledger_id": r.text(), "id": r.take(16).hex(), "kind": r.u8(),
         "refund_of": r.take(16).hex(), "shop_id": r.take(16).hex(), "shop_name": r.text(),
         "resident": r.text()}
    if f["kind"] not in (1, 2) or (f["kind"] == 2) == (f["refund_of"] == "00" * 16):
        raise ValueError("kind")
    n = r.u8()
    if not 1 <= n <= 10: raise ValueError("lines")
    f["lines"] = [dict(sku=r.text(), name=r.text(), unit=r.text(), quantity=r.u32(),
                       unit_points_minor=r.i64(), points_minor=r.i64()) for _ in range(n)]
    f.update(total_minor=r.i64(), balance_after_minor=r.i64(), entry_seq=r.i64(),
             entry_hash=r.take(32).hex(), posted_at_micros=r.i64())
    if r.i < len(message): raise ValueError("trailing bytes")
    return f

def verify(compact, keys):
    if not compact.startswith("AXR1:"): raise ValueError("prefix")
    body = compact[5:]
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    message, tag = raw[:-32], raw[-32:]
    f = decode(message)
    key = keys[f["key_id"]]
    if not hmac.compare_digest(hmac.new(key, b"aixin-receipt" + message, hashlib.sha256).digest(), tag):
        raise ValueError("bad tag")
    return f, message

def check_vectors(v):
    cs = v["credential_secret"]
    secret = hkdf(bytes.fromhex(cs["master_key_hex"]), b"aixin credential v1",
                  cs["ledger_id"].encode() + b"\0" + bytes.fromhex(cs["credential_id"].replace("-", ""))
                  + struct.pack(">I", cs["generation"]))
    assert secret.hex() == cs["secret_hex"], "credential secret"
    c = v["codes"]; s = bytes.fromhex(c["secret_hex"])
    assert c["layout"] == 2, "layout"
    for x in c["vectors"]:
        assert step_of(x["unix_seconds"]) == x["step"], x
        o = otp(s, c["number"], x["step"])
        assert "%013d" % o == x["otp"] and code(c["number"], o) == x["code"], x
        assert len(x["code"]) == 25 and x["code"].startswith("72") and damm(x["code"]) == 0
        assert foreign_app(x["code"]) is None, x
    sh = v["shown"]; s = bytes.fromhex(sh["secret_hex"])
    for x in sh["vectors"]:
        t, step = x["unix_seconds"], step_to_show(x["unix_seconds"], x["last_used_step"])
        assert step == x["step"] and code(sh["number"], otp(s, sh["number"], step)) == x["code"], x
        assert x["expires_in_seconds"] == (step + 1) * 30 - t, x
        assert x["valid_in_seconds"] == max(0, (step - 2) * 30 - t), x
    for x in v["foreign"]:
        assert foreign_app(x["digits"]) == x["app"], x
    for x in v["damm"]:
        assert damm(x["digits"]) == x["check"], ("damm", x)
    p = v["pin"]
    assert "%06d" % pin(bytes.fromhex(p["secret_hex"]), p["number"]) == p["pin"], "pin"
    keys = {v["receipt_key"]["key_id"]: bytes.fromhex(v["receipt_key"]["secret_hex"])}
    for r in v["receipts"]:
        f, message = verify(r["compact"], keys)
        assert message.hex() == r["message_hex"], "message"
        want = r["fields"]
        assert f["id"] == want["id"].replace("-", "") and f["total_minor"] == want["total_minor"]
        assert f["lines"] == want["lines"] and f["entry_hash"] == want["entry_hash"]
        assert sum(l["points_minor"] for l in f["lines"]) == f["total_minor"]
    print("damm: %d verified" % len(v["damm"]))
    print("codes: %d verified" % len(c["vectors"]))
    print("shown: %d verified" % len(sh["vectors"]))
    print("foreign: %d verified" % len(v["foreign"]))
    print("receipts: %d verified" % len(v["receipts"]))

if __name__ == "__main__":
    a = sys.argv[1:]
    try:
        if a and a[0] == "--receipt":
            f, _ = verify(a[1], {a[3]: bytes.fromhex(a[5])})
            print(json.dumps(f, ensure_ascii=False))
        else:
            check_vectors(json.load(open(a[0], encoding="utf-8")))
    except (ValueError, KeyError, AssertionError) as e:
        print("FAILED: %r" % (e,)); sys.exit(1)

#!/usr/bin/env python3
"""Independent verifier of the aixin hash chain, layout version 1.

Written from ledger-specs/hash-chain.md alone, with the Python standard library only; section
numbers below refer to that text. It checks sections 2-8 (not the stored-balance checks).

    python3 check_chain.py FILE [LEDGER]

FILE is the test-vectors file, a JSON array of API entry objects in ascending seq order, or an
object {"entries": [...], "head": {...}}. LEDGER defaults to the file's "ledger", else the first
entry's. Prints "OK: ..." and exits 0, or "FAIL seq <n> <kind>: <detail>" and exits 1. Exit 2
means the input could not be read. In a vectors file it also checks each entry's bytes_hex (kind
"vector_inconsistent" if only that is wrong) and the genesis and request-fingerprint vectors.
"""

import hashlib
import json
import re
import struct
import sys
import uuid

GENESIS_TAG = b"aixin.genesis.v1"
REQUEST_TAG = b"aixin.request.v1"
KINDS = {"earn", "redeem", "refund", "settle", "expire", "adjust", "reversal"}
REVERSING_KINDS = {"refund", "reversal"}
UNITS = ("points", "hours")
SIDES = {"debit": 1, "credit": 2}
AMOUNT = re.compile(r"(0|[1-9][0-9]*)\.([0-9]{2})")
AMOUNT_MAX_MINOR = 100_000_000 * 100
METADATA_KEY = re.compile(rb"[A-Za-z0-9_.-]{1,64}")
HEX32 = re.compile(r"[0-9a-fA-F]{64}")
I64 = range(-(2**63), 2**63)


def has_control(utf8_bytes):
    """Section 6: text may hold tab and line feed, but no other control character (Unicode Cc)."""
    return any(ch not in "\t\n" and (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F)
               for ch in utf8_bytes.decode("utf-8"))


class Problem(Exception):
    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


def sha256(data):
    return hashlib.sha256(data).digest()


def lp(data):  # section 2: 4-byte big-endian length, then the bytes
    return struct.pack(">I", len(data)) + data


def genesis(ledger):  # section 3
    return sha256(GENESIS_TAG + lp(ledger.encode("utf-8")))


# ---- Decoding an API entry object (section 8); anything undecodable is "malformed". ----

def get(obj, name, kind):
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Problem("malformed", f"{name} is missing or not a {kind.__name__}")
    return value


def utf8(obj, name):
    return encode(get(obj, name, str), name)


def encode(text, name):
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise Problem("malformed", f"{name} is not valid Unicode") from None


def uuid16(obj, name):
    try:
        return uuid.UUID(get(obj, name, str)).bytes  # RFC 4122 order, never bytes_le
    except ValueError:
        raise Problem("malformed", f"{name} is not a UUID") from None


def hash32(obj, name):
    text = get(obj, name, str)
    if not HEX32.fullmatch(text):
        raise Problem("malformed", f"{name} is not 64 hex digits")
    return bytes.fromhex(text)


def minor(text):  # section 2: integers only, never floating point
    match = AMOUNT.fullmatch(text) if isinstance(text, str) else None
    value = int(match[1]) * 100 + int(match[2]) if match else 0
    if not 1 <= value <= AMOUNT_MAX_MINOR:
        raise Problem("malformed", f"amount {text!r} is not a decimal from 0.01 to 100000000.00")
    return value


def decode_body(obj):
    """Fields 10-15 of the layout, plus the kind."""
    kind = get(obj, "kind", str)
    if kind not in KINDS:
        raise Problem("malformed", f"unknown kind {kind!r}")
    pairs = get(obj, "metadata", dict)
    metadata = {encode(key, "metadata key"): utf8(pairs, key) for key in pairs}
    postings = []
    for p in get(obj, "postings", list):
        unit, side = get(p, "unit", str), get(p, "side", str)
        if unit not in UNITS or side not in SIDES:
            raise Problem("malformed", f"unknown unit {unit!r} or side {side!r}")
        postings.append((uuid16(p, "account"), unit, SIDES[side], minor(get(p, "amount", str))))
    return {
        "kind": kind,
        "reverses": None if obj.get("reverses") is None else uuid16(obj, "reverses"),
        "memo": utf8(obj, "memo"),
        "metadata": metadata,
        "postings": postings,
    }


def decode(obj):
    entry = decode_body(obj)
    entry.update(
        ledger=get(obj, "ledger", str), seq=get(obj, "seq", int), id=uuid16(obj, "id"),
        time=get(obj, "posted_at_micros", int), actor=utf8(obj, "actor"),
        key=utf8(obj, "idempotency_key"), prev_hash=hash32(obj, "prev_hash"),
        hash=hash32(obj, "hash"))
    if entry["time"] not in I64 or entry["seq"] not in I64:
        raise Problem("malformed", "seq or posted_at_micros is outside the 64-bit range")
    return entry


# ---- The layout (section 4) ----

def body(e):
    out = b"\x00" if e["reverses"] is None else b"\x01" + e["reverses"]
    out += lp(e["memo"]) + struct.pack(">I", len(e["metadata"]))
    for key in sorted(e["metadata"]):  # ascending key bytes
        out += lp(key) + lp(e["metadata"][key])
    out += struct.pack(">I", len(e["postings"]))
    for account, unit, side, amount in e["postings"]:  # array order, never sorted
        out += account + lp(unit.encode()) + bytes([side]) + struct.pack(">q", amount)
    return out


def layout(e):
    return (b"\x01" + lp(e["ledger"].encode("utf-8")) + struct.pack(">Q", e["seq"])
            + e["prev_hash"] + e["id"] + lp(e["kind"].encode()) + struct.pack(">q", e["time"])
            + lp(e["actor"]) + lp(e["key"]) + body(e))


def check_valid(e):  # section 6, in order
    postings, metadata = e["postings"], e["metadata"]
    if len(postings) < 2:
        raise Problem("entry_invalid", "fewer than 2 postings")
    if len(postings) > 64:
        raise Problem("entry_invalid", "more than 64 postings")
    if len(e["memo"]) > 512:
        raise Problem("entry_invalid", "memo longer than 512 bytes")
    if has_control(e["memo"]):
        raise Problem("entry_invalid", "memo contains a control character")
    if len(metadata) > 16 or any(not METADATA_KEY.fullmatch(k) or len(v) > 256
                                 for k, v in metadata.items()):
        raise Problem("entry_invalid", "metadata exceeds its limits")
    if any(has_control(v) for v in metadata.values()):
        raise Problem("entry_invalid", "a metadata value contains a control character")
    if (e["kind"] in REVERSING_KINDS) != (e["reverses"] is not None):
        raise Problem("entry_invalid", f"a {e['kind']} entry has the wrong reversal link")
    for unit in UNITS:
        debits = sum(a for _, u, side, a in postings if u == unit and side == 1)
        credits = sum(a for _, u, side, a in postings if u == unit and side == 2)
        if debits != credits:
            raise Problem("entry_invalid", f"unbalanced in {unit}: debits {debits}, "
                                           f"credits {credits} (hundredths)")
    legs = {(account, unit, side) for account, unit, side, _ in postings}
    if any((account, unit, 3 - side) in legs for account, unit, side in legs):
        raise Problem("entry_invalid", "an account is on both sides in one unit")


# ---- Verification (section 7) ----

def verify(entries, ledger, head):
    """head: (seq, hash) or None. Returns (seq, Problem) for the first problem, else
    (number of entries, last hash)."""
    expected, prev, prev_time = 1, genesis(ledger), None
    for raw in entries:
        try:
            e = decode(raw)
            if e["seq"] != expected:
                raise Problem("sequence_gap", f"expected entry {expected}, found {e['seq']}")
            if e["ledger"] != ledger:
                raise Problem("wrong_ledger", f"entry belongs to ledger {e['ledger']!r}")
            if e["prev_hash"] != prev:
                raise Problem("chain_broken", f"prev_hash {e['prev_hash'].hex()}, expected "
                                              f"{prev.hex()}")
            data = layout(e)
            if sha256(data) != e["hash"]:
                raise Problem("hash_mismatch", f"stored {e['hash'].hex()}, contents hash to "
                                               f"{sha256(data).hex()}{vector_diff(raw, data)}")
            if "bytes_hex" in raw and raw["bytes_hex"] != data.hex():
                raise Problem("vector_inconsistent", "bytes_hex" + vector_diff(raw, data))
            check_valid(e)
            if prev_time is not None and e["time"] < prev_time:
                raise Problem("time_went_backwards", "dated before the entry preceding it")
        except Problem as problem:
            return expected, problem
        expected, prev, prev_time = expected + 1, e["hash"], e["time"]
    last = expected - 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq != last or head_hash != prev:
            seq = last + 1 if head_seq > last else head_seq + 1 if head_seq < last else last
            return seq, Problem("head_mismatch", f"recorded head is entry {head_seq} "
                                f"{head_hash.hex()}; the journal ends at entry {last} {prev.hex()}")
    return last, prev


def vector_diff(raw, data):
    """Where the recomputed layout first differs from a vector's bytes_hex, if it has one."""
    try:
        given = bytes.fromhex(raw.get("bytes_hex", data.hex()))
    except ValueError:
        return " (bytes_hex is not hex)"
    at = next((i for i, (a, b) in enumerate(zip(given, data)) if a != b), min(len(given), len(data)))
    return "" if given == data else f" (layout differs from bytes_hex at byte {at})"


def check_vectors(doc):
    """The genesis and request-fingerprint vectors (sections 3 and 10); returns failure lines."""
    failures = []
    for g in doc.get("genesis", []):
        preimage = GENESIS_TAG + lp(g["ledger"].encode("utf-8"))
        if preimage.hex() != g["preimage_hex"] or genesis(g["ledger"]).hex() != g["hash"]:
            failures.append(f"FAIL genesis {g['ledger']!r}: expected {genesis(g['ledger']).hex()}")
    for i, f in enumerate(doc.get("request_fingerprints", [])):
        b = decode_body(f)
        preimage = REQUEST_TAG + lp(utf8(f, "actor")) + lp(b["kind"].encode()) + body(b)
        if preimage.hex() != f["preimage_hex"] or sha256(preimage).hex() != f["fingerprint"]:
            failures.append(f"FAIL request fingerprint {i}: expected {sha256(preimage).hex()}")
    return failures


def no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate JSON object key among {keys}")
    return dict(pairs)


def main(argv):
    sys.stdout.reconfigure(errors="backslashreplace")
    if len(argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as file:
            doc = json.load(file, object_pairs_hook=no_duplicate_keys)
        if isinstance(doc, list):
            doc = {"entries": doc}
        entries = doc.get("chain", doc.get("entries"))
        head = doc.get("head")
        if head is not None:
            head = (get(head, "head_seq", int), hash32(head, "head_hash"))
        ledger = argv[2] if len(argv) == 3 else doc.get("ledger")
        if ledger is None and entries and isinstance(entries[0], dict):
            ledger = entries[0].get("ledger")
        if not isinstance(entries, list) or not isinstance(ledger, str):
            raise ValueError("no list of entries, or no ledger id (pass it as LEDGER)")
        failures = check_vectors(doc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, Problem) as error:
        print(f"error: cannot read {argv[1]}: {error}", file=sys.stderr)
        return 2
    seq, result = verify(entries, ledger, head)
    if isinstance(result, Problem):
        failures.insert(0, f"FAIL seq {seq} {result.kind}: {result.detail}")
    if failures:
        print("\n".join(failures))
        return 1
    checked = "" if head is None else ", matching the recorded head"
    print(f"OK: ledger {ledger}: {seq} entries chain from genesis {genesis(ledger).hex()[:16]}… "
          f"to head seq {seq} {result.hex()}{checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

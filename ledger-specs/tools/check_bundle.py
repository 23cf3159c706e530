#!/usr/bin/env python3
"""Independent verifier of an aixin audit bundle (format aixin-bundle-v2).

Written from ledger-specs/audit-bundle.md and ledger-specs/hash-chain.md alone, with the Python
standard library and the chain functions of check_chain.py (same directory). Section numbers
below refer to audit-bundle.md.

    python3 check_bundle.py DIR [--keys KEYFILE] [--checkpoint FILE]

Prints "OK: ..." and exits 0, or "FAIL seq <n|-> <kind> in <file>: <detail>" and exits 1.
Reads every file once, front to back; memory is one counter per (account, unit).
"""

import datetime
import hashlib
import hmac
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_chain as chain  # noqa: E402

FORMAT = "aixin-bundle-v2"
FILES = ["accounts.jsonl", "books.beancount", "books.journal", "checkpoints.jsonl",
         "entries.csv", "entries.jsonl", "postings.csv", "rules.jsonl"]
KINDS = ["resident", "shop", "issuance", "settlement", "expiry", "adjustment"]
UNITS = ["points", "hours"]
MAY_HOLD = {("points", k) for k in KINDS} | {("hours", k) for k in ("resident", "issuance", "adjustment")}
FLOOR_ZERO = {"resident", "shop", "settlement", "expiry"}
SLOTS = [(u, k) for u in UNITS for k in KINDS if (u, k) in MAY_HOLD]  # section 8
ROOTS = {"resident": "Liabilities:Resident", "shop": "Liabilities:Shop",
         "issuance": "Equity:Issuance", "adjustment": "Equity:Adjustment",
         "settlement": "Assets:Settlement", "expiry": "Income:Expiry"}
COMMODITY = {"points": "POINTS", "hours": "HOURS"}
PSEUDONYM_CHARS = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


class Fail(Exception):
    def __init__(self, seq, file, kind, detail):
        super().__init__(detail)
        self.seq, self.file, self.kind, self.detail = seq, file, kind, detail


def lp(text):
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def money(minor):  # exact two places, sign in front, never "-0.00"
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def parse_money(text):
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    if not whole.isdigit() or len(frac) != 2 or not frac.isdigit():
        raise ValueError(f"not an amount: {text!r}")
    value = (int(whole) * 100 + int(frac)) * (-1 if neg else 1)
    if money(value) != text:
        raise ValueError(f"not canonical: {text!r}")
    return value


def compact(obj):  # section 1: compact JSON, raw UTF-8, members in the order given
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def day(micros):  # section 1: the calendar day in UTC+8
    seconds = micros // 1_000_000 + 8 * 3600
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=seconds // 86400)).isoformat()


ASCII_DIGITS = set("0123456789")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain_number(text):  # section 4: -?[0-9]+(\.[0-9]+)?, ASCII digits only
    whole, dot, frac = (text[1:] if text.startswith("-") else text).partition(".")
    digits = lambda t: t != "" and set(t) <= ASCII_DIGITS  # noqa: E731
    return digits(whole) and (not dot or digits(frac))


def csv_record(fields):  # section 4
    def field(text):
        if text.startswith(FORMULA_STARTS) and not plain_number(text):
            return "\"'" + text.replace('"', '""') + '"'
        if any(c in text for c in ',"\r\n'):
            return '"' + text.replace('"', '""') + '"'
        return text
    return ",".join(field(f) for f in fields) + "\n"


class Reader:
    """One file read front to back, hashed as it goes."""

    def __init__(self, directory, name):
        self.name = name
        try:
            self.file = open(os.path.join(directory, name), "rb")
        except OSError as error:
            raise Fail(None, name, "file_missing", str(error)) from None
        self.sha, self.size, self.buffer = hashlib.sha256(), 0, b""

    def _read(self, n):
        data = self.file.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def line(self, seq=None):
        while b"\n" not in self.buffer:
            more = self._read(1 << 16)
            if not more:
                if self.buffer:
                    raise Fail(seq, self.name, "malformed", "the last line has no newline")
                return None
            self.buffer += more
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise Fail(seq, self.name, "malformed", "a line is not UTF-8") from None

    def expect(self, text, seq, what):
        want = text.encode("utf-8")
        while len(self.buffer) < len(want):
            more = self._read(1 << 16)
            if not more:
                break
            self.buffer += more
        got, self.buffer = self.buffer[:len(want)], self.buffer[len(want):]
        if got != want:
            raise Fail(seq, self.name, "file_mismatch", f"{what} differs from what the entries imply")

    def expect_end(self):
        if self.buffer or self._read(1):
            raise Fail(None, self.name, "file_mismatch", "unexpected data after the end")

    def digest(self):
        while self._read(1 << 16):
            pass
        self.file.close()
        return self.size, self.sha.hexdigest()


def check_digest(manifest, name, digest):
    listed = next(f for f in manifest["files"] if f["name"] == name)
    if (listed["bytes"], listed["sha256"]) != digest:
        raise Fail(None, name, "digest_mismatch",
                   f"{digest[0]} bytes, SHA-256 {digest[1]}; the manifest lists "
                   f"{listed['bytes']} bytes, {listed['sha256']}")


def load_keys(path):
    with open(path, encoding="utf-8") as file:
        doc = json.load(file)
    return {k["id"]: (bytes.fromhex(k["secret"]), k["status"]) for k in doc["signing_keys"]}


def signature_ok(keys, key_id, message, signature_hex):
    key = keys.get(key_id)
    if key is None or key[1] == "revoked":
        return False
    return hmac.compare_digest(hmac.new(key[0], message, hashlib.sha256).hexdigest(), signature_hex)


def manifest_bytes(m):  # section 7
    c = m["counts"]
    out = (b"aixin-manifest-v1" + lp(m["key_id"]) + lp(m["format"]) + lp(m["ledger"])
           + struct.pack(">QQ", m["from_seq"], m["to_seq"]) + lp(m["prev_hash"]) + lp(m["head_hash"])
           + struct.pack(">QQQQQ", c["entries"], c["postings"], c["accounts"], c["rules"],
                         c["checkpoints"])
           + struct.pack(">I", len(m["files"])))
    for f in m["files"]:
        out += lp(f["name"]) + struct.pack(">Q", f["bytes"]) + lp(f["sha256"])
    return out


def checkpoint_bytes(cp):  # section 8
    out = (b"aixin-checkpoint-v1" + lp(cp["key_id"]) + lp(cp["ledger"]) + struct.pack(">Q", cp["seq"])
           + bytes.fromhex(cp["head_hash"]) + struct.pack(">I", len(cp["totals"])))
    for t in cp["totals"]:
        out += lp(t["unit"]) + lp(t["kind"]) + struct.pack(">q", parse_money(t["balance"]))
    return out


def checkpoint_line(cp):
    return compact({"ledger": cp["ledger"], "seq": cp["seq"], "head_hash": cp["head_hash"],
                    "totals": [{"unit": t["unit"], "kind": t["kind"], "balance": t["balance"]}
                               for t in cp["totals"]],
                    "key_id": cp["key_id"], "signature": cp["signature"]})


def book_account(kind, account_id):  # section 9
    return f"{ROOTS[kind]}:{account_id.upper()}"


def amount_text(minor, unit):
    return f"{money(minor)} {COMMODITY[unit]}"


def book_units(balances):  # books list points before hours
    return [u for u in UNITS if u in balances]


def book_header(beancount, ledger, first, last, first_day, accounts):
    out = (f"; aixin books of ledger {ledger}, entries {first} to {last} ({FORMAT})\n"
           "; amounts carry aixin's sign: a credit is positive, a debit negative.\n\n")
    if beancount and accounts:
        out += 'option "operating_currency" "POINTS"\n'
        out += f"{first_day} commodity POINTS\n{first_day} commodity HOURS\n"
        out += "".join(f"{first_day} open {book_account(a['kind'], a['id'])}\n" for a in accounts)
        out += "\n"
    if any(v != 0 for a in accounts for v in a["opening"].values()):
        title = f"opening balances before entry {first}"
        out += (f'{first_day} * "aixin" "{title}"\n' if beancount else f"{first_day} {title}\n")
        for a in accounts:
            for u in book_units(a["opening"]):
                if a["opening"][u] != 0:
                    out += f"    {book_account(a['kind'], a['id'])}  {amount_text(a['opening'][u], u)}\n"
        out += "\n"
    return out


def book_entry(beancount, e, raw, kinds):
    d = day(raw["posted_at_micros"])
    if beancount:
        out = f'{d} * "aixin" "{raw["kind"]} {raw["seq"]}"\n  seq: {raw["seq"]}\n'
    else:
        out = f"{d} ({raw['seq']}) {raw['kind']}\n"
    for p, (_, unit, side, minor) in zip(raw["postings"], e["postings"]):
        signed = minor if side == 2 else -minor
        out += f"    {book_account(kinds[p['account']], p['account'])}  {amount_text(signed, unit)}\n"
    return out + "\n"


def book_footer(beancount, last_day, accounts):
    out = "" if beancount else f"{last_day} closing balance assertions\n"
    after = (datetime.date.fromisoformat(last_day) + datetime.timedelta(days=1)).isoformat()
    for a in accounts:
        for u in book_units(a["closing"]):
            name, balance = book_account(a["kind"], a["id"]), amount_text(a["closing"][u], u)
            if beancount:
                out += f"{after} balance {name}  {balance}\n"
            else:
                out += f"    {name}  0.00 {COMMODITY[u]} = {balance}\n"
    return out


def is_pseudonym(label):
    return len(label) == 11 and label.startswith("AX-") and set(label[3:]) <= PSEUDONYM_CHARS


def verify(directory, keys, retained):
    try:
        with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as file:
            m = json.load(file, object_pairs_hook=chain.no_duplicate_keys)
    except (OSError, ValueError) as error:
        raise Fail(None, "manifest.json", "malformed", str(error)) from None

    def mf(detail):
        return Fail(None, "manifest.json", "manifest_mismatch", detail)
    if m.get("format") != FORMAT:
        raise mf(f"unknown format {m.get('format')!r}")
    if keys is not None and not signature_ok(keys, m["key_id"], manifest_bytes(m), m["signature"]):
        raise Fail(None, "manifest.json", "signature_invalid", "the manifest's signature does not verify")
    if [f["name"] for f in m["files"]] != FILES:
        raise mf("the file list is not the one the format requires")
    ledger, first, last = m["ledger"], m["from_seq"], m["to_seq"]
    if first < 1 or last < first - 1:
        raise mf("not a range")
    prev = bytes.fromhex(m["prev_hash"])
    if first == 1 and prev != chain.genesis(ledger):
        raise mf("the range starts at entry 1 but prev_hash is not the genesis hash")

    # Section 5: accounts.
    accounts, reader = [], Reader(directory, "accounts.jsonl")
    while (line := reader.line()) is not None:
        a = json.loads(line, object_pairs_hook=chain.no_duplicate_keys)
        if compact(a) != line or list(a) != ["id", "kind", "community_id", "shop_id", "label",
                                             "opening", "closing"]:
            raise Fail(None, reader.name, "not_canonical", f"account {a.get('id')}")
        if accounts and accounts[-1]["id"] >= a["id"]:
            raise Fail(None, reader.name, "malformed", f"account {a['id']} is out of order")
        if a["kind"] == "resident" and a["label"] is not None and not is_pseudonym(a["label"]):
            raise Fail(None, reader.name, "not_pseudonymous", f"resident account {a['id']}")
        for side in ("opening", "closing"):
            a[side] = {u: parse_money(v) for u, v in a[side].items()}
        accounts.append(a)
    digests = {"accounts.jsonl": reader.digest()}
    if len(accounts) != m["counts"]["accounts"]:
        raise mf("account count")
    kinds = {a["id"]: a["kind"] for a in accounts}

    # Section 6: rules.
    reader, rules = Reader(directory, "rules.jsonl"), 0
    while (line := reader.line()) is not None:
        rules += 1
        if not isinstance(json.loads(line), dict):
            raise Fail(None, reader.name, "malformed", f"line {rules}")
    digests["rules.jsonl"] = reader.digest()
    if rules != m["counts"]["rules"]:
        raise mf("rule count")

    # Section 8: checkpoints.
    checkpoints, reader = {}, Reader(directory, "checkpoints.jsonl")
    while (line := reader.line()) is not None:
        cp = json.loads(line, object_pairs_hook=chain.no_duplicate_keys)
        if checkpoint_line(cp) != line:
            raise Fail(cp.get("seq"), reader.name, "not_canonical", "checkpoint")
        if (cp["ledger"] != ledger or not first - 1 <= cp["seq"] <= last
                or (checkpoints and max(checkpoints) >= cp["seq"])):
            raise Fail(cp["seq"], reader.name, "malformed", "checkpoint out of order or range")
        if keys is not None and not signature_ok(keys, cp["key_id"], checkpoint_bytes(cp), cp["signature"]):
            raise Fail(cp["seq"], reader.name, "signature_invalid", "checkpoint signature")
        checkpoints[cp["seq"]] = cp
    digests["checkpoints.jsonl"] = reader.digest()
    if len(checkpoints) != m["counts"]["checkpoints"]:
        raise mf("checkpoint count")
    if retained is not None:
        if retained["ledger"] != ledger:
            raise Fail(None, "retained checkpoint", "checkpoint_mismatch", "another ledger")
        if keys is not None and not signature_ok(keys, retained["key_id"], checkpoint_bytes(retained),
                                                 retained["signature"]):
            raise Fail(None, "retained checkpoint", "signature_invalid", "retained checkpoint")
        if retained["seq"] > last:
            raise Fail(last + 1, "retained checkpoint", "checkpoint_mismatch",
                       f"the bundle ends at entry {last}, before the retained checkpoint {retained['seq']}")
        if retained["seq"] < first - 1:
            raise Fail(None, "retained checkpoint", "checkpoint_mismatch", "the bundle starts after it")

    balances, totals = {}, {slot: 0 for slot in SLOTS}
    for a in accounts:
        for u, v in a["opening"].items():
            balances[(a["id"], u)] = v
            totals[(u, a["kind"])] = totals.get((u, a["kind"]), 0) + v

    def check_at(seq, hash_bytes):
        for cp, name in ((checkpoints.get(seq), "checkpoints.jsonl"),
                         (retained if retained is not None and retained["seq"] == seq else None,
                          "retained checkpoint")):
            if cp is None:
                continue
            want = [{"unit": u, "kind": k, "balance": money(totals.get((u, k), 0))} for u, k in SLOTS]
            if cp["head_hash"] != hash_bytes.hex() or cp["totals"] != want:
                raise Fail(max(seq, first), name, "checkpoint_mismatch",
                           f"the checkpoint of entry {seq} differs from the bundle")
    check_at(first - 1, prev)

    # The journal, with the derived files in step (sections 3, 4, 9).
    entries = Reader(directory, "entries.jsonl")
    derived = {n: Reader(directory, n) for n in ("entries.csv", "postings.csv", "books.journal",
                                                  "books.beancount")}
    derived["entries.csv"].expect("seq,id,kind,posted_at_micros,actor,idempotency_key,reverses,"
                                  "memo,metadata,prev_hash,hash\n", None, "the header")
    derived["postings.csv"].expect("seq,idx,account,unit,side,amount\n", None, "the header")
    expected, prev_time, postings, last_day = first, None, 0, None
    while (line := entries.line(expected)) is not None:
        try:
            raw = json.loads(line, object_pairs_hook=chain.no_duplicate_keys)
            e = chain.decode(raw)
            if e["seq"] != expected:
                raise chain.Problem("sequence_gap", f"expected entry {expected}, found {e['seq']}")
            if e["ledger"] != ledger:
                raise chain.Problem("wrong_ledger", "another ledger")
            if e["prev_hash"] != prev:
                raise chain.Problem("chain_broken", "prev_hash is not the previous entry's hash")
            if chain.sha256(chain.layout(e)) != e["hash"]:
                raise chain.Problem("hash_mismatch", "the contents do not hash to the stored hash")
            chain.check_valid(e)
            if prev_time is not None and e["time"] < prev_time:
                raise chain.Problem("time_went_backwards", "dated before the entry preceding it")
        except chain.Problem as problem:
            raise Fail(expected, entries.name, problem.kind, problem.detail) from None
        except ValueError as error:
            raise Fail(expected, entries.name, "malformed", str(error)) from None
        if expected > last:
            raise Fail(expected, entries.name, "head_mismatch", "the journal continues past to_seq")
        canonical = {k: raw.get(k) for k in ("seq", "id", "ledger", "kind", "posted_at_micros", "actor",
                                              "idempotency_key", "reverses", "memo")}
        canonical["metadata"] = dict(sorted(raw["metadata"].items(), key=lambda kv: kv[0].encode()))
        canonical["postings"] = [{k: p.get(k) for k in ("account", "unit", "side", "amount")}
                                 for p in raw["postings"]]
        canonical.update(prev_hash=raw["prev_hash"], hash=raw["hash"])
        if compact(canonical) != line:
            raise Fail(expected, entries.name, "not_canonical", "the line is not written as the format requires")
        if expected == first:
            d0 = day(raw["posted_at_micros"])
            derived["books.journal"].expect(book_header(False, ledger, first, last, d0, accounts), None, "the header")
            derived["books.beancount"].expect(book_header(True, ledger, first, last, d0, accounts), None, "the header")
        for p, (_, unit, side, minor) in zip(raw["postings"], e["postings"]):
            if p["account"] not in kinds:
                raise Fail(expected, entries.name, "unknown_account", p["account"])
            signed = minor if side == 2 else -minor
            balances[(p["account"], unit)] = balances.get((p["account"], unit), 0) + signed
            totals[(unit, kinds[p["account"]])] = totals.get((unit, kinds[p["account"]]), 0) + signed
        postings += len(raw["postings"])
        derived["entries.csv"].expect(csv_record([
            str(raw["seq"]), raw["id"], raw["kind"], str(raw["posted_at_micros"]), raw["actor"],
            raw["idempotency_key"], raw["reverses"] or "", raw["memo"], compact(canonical["metadata"]),
            raw["prev_hash"], raw["hash"]]), expected, "the entry's record")
        derived["postings.csv"].expect("".join(csv_record([
            str(raw["seq"]), str(i), p["account"], p["unit"], p["side"], p["amount"]])
            for i, p in enumerate(raw["postings"])), expected, "the entry's records")
        derived["books.journal"].expect(book_entry(False, e, raw, kinds), expected, "the transaction")
        derived["books.beancount"].expect(book_entry(True, e, raw, kinds), expected, "the transaction")
        check_at(expected, e["hash"])
        prev, prev_time, last_day = e["hash"], e["time"], day(raw["posted_at_micros"])
        expected += 1
    count = expected - first
    if expected - 1 != last:
        raise Fail(expected, entries.name, "head_mismatch",
                   f"the journal ends at entry {expected - 1}, the manifest's range at {last}")
    if prev.hex() != m["head_hash"]:
        raise Fail(max(last, first), entries.name, "head_mismatch", "head hash")

    # Section 5: balances.
    for a in accounts:
        for u in set(a["closing"]) | set(a["opening"]) | {u for (i, u) in balances if i == a["id"]}:
            got, closing = balances.get((a["id"], u), 0), a["closing"].get(u, 0)
            if got != closing:
                raise Fail(None, "accounts.jsonl", "balance_mismatch",
                           f"account {a['id']} {u}: closing {money(closing)}, postings {money(got)}")
            if (u, a["kind"]) not in MAY_HOLD and closing != 0 or a["kind"] in FLOOR_ZERO and closing < 0:
                raise Fail(None, "accounts.jsonl", "policy_violated", f"account {a['id']} {u}")
    for u in UNITS:
        if sum(v for (unit, _), v in totals.items() if unit == u) != 0:
            raise Fail(None, "accounts.jsonl", "balance_mismatch", f"{u} does not sum to zero")
    for name, beancount in (("books.journal", False), ("books.beancount", True)):
        if last_day is None:
            derived[name].expect(book_header(beancount, ledger, first, last, "", []), None, "the header")
        else:
            derived[name].expect(book_footer(beancount, last_day, accounts), None, "the closing assertions")
    for reader in derived.values():
        reader.expect_end()
    if (count, postings) != (m["counts"]["entries"], m["counts"]["postings"]):
        raise mf("entry or posting count")
    digests["entries.jsonl"] = entries.digest()
    for name, reader in derived.items():
        digests[name] = reader.digest()
    for name in ("accounts.jsonl", "rules.jsonl", "checkpoints.jsonl", "entries.jsonl", "entries.csv",
                 "postings.csv", "books.journal", "books.beancount"):
        check_digest(m, name, digests[name])
    return m, count, postings


def main(argv):
    sys.stdout.reconfigure(errors="backslashreplace")
    args, keys, retained = list(argv[1:]), None, None
    try:
        if "--keys" in args:
            i = args.index("--keys")
            keys = load_keys(args[i + 1])
            del args[i:i + 2]
        if "--checkpoint" in args:
            i = args.index("--checkpoint")
            with open(args[i + 1], encoding="utf-8") as file:
                retained = json.loads([ln for ln in file.read().splitlines() if ln.strip()][-1])
            del args[i:i + 2]
        if len(args) != 1:
            raise ValueError("usage")
    except (OSError, ValueError, IndexError, KeyError) as error:
        print(f"error: {error}\n\n{__doc__.strip()}", file=sys.stderr)
        return 2
    try:
        m, count, postings = verify(args[0], keys, retained)
    except Fail as fail:
        print(f"FAIL seq {'-' if fail.seq is None else fail.seq} {fail.kind} in {fail.file}: {fail.detail}")
        return 1
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"FAIL seq - malformed: {error!r}")
        return 1
    signed = "signatures checked" if keys is not None else "signatures not checked (no --keys)"
    extends = "" if retained is None else f", extends the retained checkpoint of entry {retained['seq']}"
    print(f"OK: ledger {m['ledger']}: entries {m['from_seq']} to {m['to_seq']} ({count} entries, "
          f"{postings} postings), head {m['head_hash']}; {signed}{extends}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

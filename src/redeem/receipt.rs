//! Signed receipts: a versioned byte layout, its HMAC-SHA256 tag, the compact text form that
//! fits a QR code, and the QR image. Pure: no IO, no clock.
//!
//! Specified in `ledger-specs/receipt.md` (with vectors in `ledger-specs/vectors/receipt.json`),
//! so that an auditor can verify a receipt with a few lines of another language.

use serde::Serialize;
use uuid::Uuid;

use crate::keys::{KeyRing, SignatureError};

/// The layout version this code writes and the only one it reads. It fixes the algorithm
/// (HMAC-SHA256): nothing about the algorithm is read from input.
pub const RECEIPT_VERSION: u8 = 1;
/// Domain label prefixed to the message before it is signed (not part of the compact form).
pub const RECEIPT_LABEL: &[u8] = b"aixin-receipt";
/// Prefix of the compact text form.
pub const COMPACT_PREFIX: &str = "AXR1:";
/// Most lines one receipt (and so one basket) holds.
pub const RECEIPT_LINES_MAX: usize = 10;
/// Longest text field a receipt may carry, in bytes (a ledger id is at most 64).
pub const TEXT_MAX_BYTES: usize = 64;
/// Names (shop, item) are cut to this many bytes on a receipt, so the largest receipt still
/// fits a QR code a phone scans easily.
pub const NAME_MAX_BYTES: usize = 30;
/// Longest compact form accepted for decoding, in characters.
pub const COMPACT_MAX_CHARS: usize = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Redemption,
    Refund,
}

impl ReceiptKind {
    pub fn byte(self) -> u8 {
        match self {
            ReceiptKind::Redemption => 1,
            ReceiptKind::Refund => 2,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Redemption => "redemption",
            ReceiptKind::Refund => "refund",
        }
    }
    pub fn parse(text: &str) -> Option<ReceiptKind> {
        match text {
            "redemption" => Some(ReceiptKind::Redemption),
            "refund" => Some(ReceiptKind::Refund),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptLine {
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub quantity: u32,
    /// Price of one unit, in hundredths of a point.
    pub unit_points_minor: i64,
    /// quantity × unit price, in hundredths.
    pub points_minor: i64,
}

/// Everything a receipt shows, signed as one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub key_id: String,
    pub ledger_id: String,
    pub id: Uuid,
    pub kind: ReceiptKind,
    /// For a refund: the redemption receipt it refunds.
    pub refund_of: Option<Uuid>,
    pub shop_id: Uuid,
    pub shop_name: String,
    /// The resident's pseudonym (AX-XXXXXXXX), never a name.
    pub resident: String,
    pub lines: Vec<ReceiptLine>,
    pub total_minor: i64,
    /// The resident's points balance right after the entry, in hundredths.
    pub balance_after_minor: i64,
    pub entry_seq: i64,
    #[serde(with = "hex_bytes")]
    pub entry_hash: [u8; 32],
    pub posted_at_micros: i64,
}

/// Why a receipt does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a receipt in a known layout")]
    Malformed,
    #[error("signed with an unknown key")]
    UnknownKey,
    #[error("signed with a revoked key")]
    RevokedKey,
    #[error("the signature does not match")]
    BadSignature,
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).expect("receipt text fields are bounded");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Cuts `text` to at most [`NAME_MAX_BYTES`] bytes on a character boundary.
pub fn clip(text: &str) -> String {
    let mut end = text.len().min(NAME_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Receipt {
    /// The signed message (layout 1; see `ledger-specs/receipt.md`).
    pub fn message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + 64 * self.lines.len());
        out.push(RECEIPT_VERSION);
        put_text(&mut out, &self.key_id);
        put_text(&mut out, &self.ledger_id);
        out.extend_from_slice(self.id.as_bytes());
        out.push(self.kind.byte());
        out.extend_from_slice(self.refund_of.unwrap_or(Uuid::nil()).as_bytes());
        out.extend_from_slice(self.shop_id.as_bytes());
        put_text(&mut out, &self.shop_name);
        put_text(&mut out, &self.resident);
        out.push(u8::try_from(self.lines.len()).expect("receipt lines are bounded"));
        for line in &self.lines {
            put_text(&mut out, &line.sku);
            put_text(&mut out, &line.name);
            put_text(&mut out, &line.unit);
            out.extend_from_slice(&line.quantity.to_be_bytes());
            out.extend_from_slice(&line.unit_points_minor.to_be_bytes());
            out.extend_from_slice(&line.points_minor.to_be_bytes());
        }
        out.extend_from_slice(&self.total_minor.to_be_bytes());
        out.extend_from_slice(&self.balance_after_minor.to_be_bytes());
        out.extend_from_slice(&self.entry_seq.to_be_bytes());
        out.extend_from_slice(&self.entry_hash);
        out.extend_from_slice(&self.posted_at_micros.to_be_bytes());
        out
    }

    /// Decodes a message; strict: every field in bounds, nothing left over.
    pub fn decode(message: &[u8]) -> Result<Receipt, ReceiptError> {
        let mut r = Reader(message);
        if r.u8()? != RECEIPT_VERSION {
            return Err(ReceiptError::Malformed);
        }
        let key_id = r.text()?;
        let ledger_id = r.text()?;
        let id = r.uuid()?;
        let kind = match r.u8()? {
            1 => ReceiptKind::Redemption,
            2 => ReceiptKind::Refund,
            _ => return Err(ReceiptError::Malformed),
        };
        let refund_of = Some(r.uuid()?).filter(|u| !u.is_nil());
        if (kind == ReceiptKind::Refund) != refund_of.is_some() {
            return Err(ReceiptError::Malformed);
        }
        let shop_id = r.uuid()?;
        let shop_name = r.text()?;
        let resident = r.text()?;
        let count = r.u8()? as usize;
        if count == 0 || count > RECEIPT_LINES_MAX {
            return Err(ReceiptError::Malformed);
        }
        let mut lines = Vec::with_capacity(count);
        for _ in 0..count {
            lines.push(ReceiptLine {
                sku: r.text()?,
                name: r.text()?,
                unit: r.text()?,
                quantity: u32::from_be_bytes(r.array()?),
                unit_points_minor: i64::from_be_bytes(r.array()?),
                points_minor: i64::from_be_bytes(r.array()?),
            });
        }
        let receipt = Receipt {
            key_id,
            ledger_id,
            id,
            kind,
            refund_of,
            shop_id,
            shop_name,
            resident,
            lines,
            total_minor: i64::from_be_bytes(r.array()?),
            balance_after_minor: i64::from_be_bytes(r.array()?),
            entry_seq: i64::from_be_bytes(r.array()?),
            entry_hash: r.array()?,
            posted_at_micros: i64::from_be_bytes(r.array()?),
        };
        if !r.0.is_empty() {
            return Err(ReceiptError::Malformed);
        }
        Ok(receipt)
    }

    /// The bytes the tag is computed over: the label, then the message.
    pub fn signed_bytes(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECEIPT_LABEL.len() + message.len());
        out.extend_from_slice(RECEIPT_LABEL);
        out.extend_from_slice(message);
        out
    }

    /// Signs with the ring's active key (whose id this sets) and returns the compact form.
    pub fn sign(mut self, ring: &KeyRing) -> SignedReceipt {
        self.key_id = ring.active().id.clone();
        let message = self.message();
        let (_, tag) = ring.sign(&Receipt::signed_bytes(&message));
        let compact = format!(
            "{COMPACT_PREFIX}{}",
            data_encoding::BASE32_NOPAD.encode(&[message.as_slice(), &tag].concat())
        );
        SignedReceipt {
            receipt: self,
            tag,
            compact,
        }
    }
}

/// A receipt with its tag and compact text form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    pub tag: [u8; 32],
    pub compact: String,
}

/// Decodes a compact form and checks its tag against `ring`.
pub fn verify_compact(ring: &KeyRing, compact: &str) -> Result<Receipt, ReceiptError> {
    let compact = compact.trim();
    if compact.len() > COMPACT_MAX_CHARS {
        return Err(ReceiptError::Malformed);
    }
    let body = compact
        .strip_prefix(COMPACT_PREFIX)
        .ok_or(ReceiptError::Malformed)?;
    let bytes = data_encoding::BASE32_NOPAD
        .decode(body.as_bytes())
        .map_err(|_| ReceiptError::Malformed)?;
    if bytes.len() < 33 {
        return Err(ReceiptError::Malformed);
    }
    let (message, tag) = bytes.split_at(bytes.len() - 32);
    let receipt = Receipt::decode(message)?;
    ring.verify(&receipt.key_id, &Receipt::signed_bytes(message), tag)
        .map_err(|e| match e {
            SignatureError::UnknownKey => ReceiptError::UnknownKey,
            SignatureError::RevokedKey => ReceiptError::RevokedKey,
            SignatureError::BadTag => ReceiptError::BadSignature,
        })?;
    Ok(receipt)
}

/// A QR code of `text` as a standalone SVG document (error correction level M).
pub fn qr_svg(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// The QR version (1–40) `text` needs at level M, if it fits at all.
pub fn qr_version(text: &str) -> Option<i16> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    match code.version() {
        qrcode::Version::Normal(v) => Some(v),
        qrcode::Version::Micro(_) => None,
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ReceiptError> {
        if self.0.len() < n {
            return Err(ReceiptError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ReceiptError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReceiptError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
    fn uuid(&mut self) -> Result<Uuid, ReceiptError> {
        Ok(Uuid::from_bytes(self.array()?))
    }
    fn text(&mut self) -> Result<String, ReceiptError> {
        let len = u16::from_be_bytes(self.array()?) as usize;
        if len > TEXT_MAX_BYTES {
            return Err(ReceiptError::Malformed);
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| ReceiptError::Malformed)
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample(lines: usize) -> Receipt {
        Receipt {
            key_id: String::new(),
            ledger_id: "default".into(),
            id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            kind: ReceiptKind::Redemption,
            refund_of: None,
            shop_id: Uuid::from_u128(2),
            shop_name: "爱心粮油店".into(),
            resident: "AX-7K2M9QPA".into(),
            lines: (0..lines)
                .map(|i| ReceiptLine {
                    sku: format!("RICE{i}"),
                    name: "东北大米 5kg".into(),
                    unit: "袋".into(),
                    quantity: 2,
                    unit_points_minor: 5000,
                    points_minor: 10000,
                })
                .collect(),
            total_minor: 10000 * lines as i64,
            balance_after_minor: 12345,
            entry_seq: 42,
            entry_hash: [9; 32],
            posted_at_micros: 1_790_000_000_000_000,
        }
    }

    #[test]
    fn signed_receipts_verify_and_every_flipped_byte_fails() {
        let ring = KeyRing::from_parts([1; 32], "k1", [2; 32]);
        let signed = sample(2).sign(&ring);
        assert_eq!(
            verify_compact(&ring, &signed.compact),
            Ok(signed.receipt.clone())
        );
        let body = data_encoding::BASE32_NOPAD
            .decode(&signed.compact.as_bytes()[COMPACT_PREFIX.len()..])
            .unwrap();
        for i in 0..body.len() {
            for bit in [0x01u8, 0x80] {
                let mut changed = body.clone();
                changed[i] ^= bit;
                let text = format!(
                    "{COMPACT_PREFIX}{}",
                    data_encoding::BASE32_NOPAD.encode(&changed)
                );
                assert!(verify_compact(&ring, &text).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn rotation_and_revocation() {
        let entropy = crate::clock::SeededEntropy::new(1);
        let mut ring = KeyRing::generate(entropy.as_ref(), 0);
        let old = sample(1).sign(&ring);
        ring.rotate(entropy.as_ref(), 1);
        let new = sample(1).sign(&ring);
        assert_eq!(new.receipt.key_id, "k2");
        assert!(verify_compact(&ring, &old.compact).is_ok());
        assert!(verify_compact(&ring, &new.compact).is_ok());
        ring.revoke("k1").unwrap();
        assert_eq!(
            verify_compact(&ring, &old.compact),
            Err(ReceiptError::RevokedKey)
        );
        let other = KeyRing::generate(entropy.as_ref(), 2);
        // Same id "k1", other secret.
        assert_eq!(
            verify_compact(&other, &old.compact),
            Err(ReceiptError::BadSignature)
        );
    }

    #[test]
    fn the_largest_receipt_fits_an_easily_scanned_qr_code() {
        let mut receipt = sample(RECEIPT_LINES_MAX);
        receipt.ledger_id = "l".repeat(64);
        for line in &mut receipt.lines {
            line.sku = "S".repeat(crate::redeem::SKU_MAX_BYTES);
            line.name = clip(&"很长的商品名称".repeat(10));
            line.unit = "公斤装".into();
            line.quantity = 999;
        }
        receipt.shop_name = clip(&"很长的店名".repeat(10));
        let ring =
            KeyRing::from_parts([1; 32], &"k".repeat(crate::keys::KEY_ID_MAX_BYTES), [2; 32]);
        let signed = receipt.sign(&ring);
        let version = qr_version(&signed.compact).expect("fits a QR code");
        // Worst case (64-byte ledger id, 16-byte key id, 10 full lines): version 28 at level M,
        // 129 modules a side, 5.2 cm at 0.4 mm per module on a 58 mm till roll.
        assert!(version <= 28, "version {version}");
        // A typical basket (3 lines) stays small.
        let typical = sample(3).sign(&ring);
        assert!(qr_version(&typical.compact).unwrap() <= 15);
        assert!(qr_svg(&typical.compact).unwrap().starts_with("<?xml"));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Receipt::decode(&bytes);
            let ring = KeyRing::from_parts([1; 32], "k1", [2; 32]);
            let text = format!("{COMPACT_PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes));
            let _ = verify_compact(&ring, &text);
        }
    }
}

//! The hash chain's byte layout (version 1). `ledger-specs/hash-chain.md` is the normative
//! text; this code and that text must agree, and the vectors in
//! `ledger-specs/vectors/hash-chain.json` pin both.

use sha2::{Digest, Sha256};

use super::entry::{EntryDraft, PostedEntry};

/// First byte of every version-1 entry layout.
pub const ENTRY_LAYOUT_VERSION: u8 = 1;
/// Domain-separation prefix of the genesis hash.
pub const GENESIS_TAG: &[u8] = b"aixin.genesis.v1";
/// Domain-separation prefix of an idempotent request's fingerprint.
pub const REQUEST_TAG: &[u8] = b"aixin.request.v1";

/// The hash every ledger's first entry chains to: SHA-256("aixin.genesis.v1" ‖ lp(ledger_id)).
pub fn genesis_hash(ledger_id: &str) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(GENESIS_TAG.len() + 4 + ledger_id.len());
    bytes.extend_from_slice(GENESIS_TAG);
    put_bytes(&mut bytes, ledger_id.as_bytes());
    Sha256::digest(&bytes).into()
}

/// The exact bytes that are hashed for an entry. The entry's own `hash` field is not part of it.
pub fn entry_bytes(entry: &PostedEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + entry.postings.len() * 40);
    out.push(ENTRY_LAYOUT_VERSION);
    put_bytes(&mut out, entry.ledger_id.as_bytes());
    out.extend_from_slice(&(entry.seq as u64).to_be_bytes());
    out.extend_from_slice(&entry.prev_hash);
    out.extend_from_slice(entry.id.as_bytes());
    put_bytes(&mut out, entry.kind.as_str().as_bytes());
    out.extend_from_slice(&entry.posted_at_micros.to_be_bytes());
    put_bytes(&mut out, entry.actor.as_bytes());
    put_bytes(&mut out, entry.idempotency_key.as_bytes());
    put_body(&mut out, &entry.draft());
    out
}

/// SHA-256 over [`entry_bytes`].
pub fn entry_hash(entry: &PostedEntry) -> [u8; 32] {
    Sha256::digest(entry_bytes(entry)).into()
}

/// A fingerprint of what a client asked for, used to tell a retried request (same key, same
/// fingerprint) from a reused key (same key, different fingerprint). It covers the actor and the
/// whole draft, in the same field encoding as the chain.
pub fn request_fingerprint(actor: &str, draft: &EntryDraft) -> [u8; 32] {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(REQUEST_TAG);
    put_bytes(&mut out, actor.as_bytes());
    put_bytes(&mut out, draft.kind.as_str().as_bytes());
    put_body(&mut out, draft);
    Sha256::digest(&out).into()
}

/// reverses, memo, metadata and postings, in that order (see the spec).
fn put_body(out: &mut Vec<u8>, draft: &EntryDraft) {
    match draft.reverses {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
        None => out.push(0),
    }
    put_bytes(out, draft.memo.as_bytes());
    out.extend_from_slice(&(draft.metadata.len() as u32).to_be_bytes());
    // BTreeMap<String, _> iterates in ascending byte order of keys, as the layout requires.
    for (key, value) in &draft.metadata {
        put_bytes(out, key.as_bytes());
        put_bytes(out, value.as_bytes());
    }
    out.extend_from_slice(&(draft.postings.len() as u32).to_be_bytes());
    for posting in &draft.postings {
        out.extend_from_slice(posting.account.as_bytes());
        put_bytes(out, posting.unit.as_str().as_bytes());
        out.push(posting.side.code());
        out.extend_from_slice(&posting.amount.minor().to_be_bytes());
    }
}

/// Length-prefixed bytes: a 4-byte big-endian length, then the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

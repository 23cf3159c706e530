//! Presenting a redemption code or a card PIN, decided under the ledger lock with the batch.
//!
//! A presentation has effects of its own that are written even when the redemption it came
//! with is refused: a valid code is spent (its step becomes the credential's last step, so it
//! and every older code stop working), a wrong one counts as a failed attempt against the
//! credential and the shop. Deciding this in the planner — one request after another, under the
//! lock — is what makes "exactly one of 50 concurrent redemptions with one code succeeds" hold
//! on both backends and across processes.

use std::collections::HashMap;

use uuid::Uuid;

use super::entry::{AccountId, LedgerError};
use crate::ledger::code;

/// Consecutive failed attempts after which a credential is locked (until it is re-issued).
pub const CREDENTIAL_FAILURES_MAX: i64 = 5;
/// Failed attempts one shop may make in an hour before its code presentations are refused for
/// the rest of that hour.
pub const SHOP_FAILURES_PER_HOUR_MAX: i64 = 100;
const HOUR_MICROS: i64 = 3_600_000_000;

/// The hour window a moment falls in, for per-shop attempt counting.
pub fn hour_of(micros: i64) -> i64 {
    micros.div_euclid(HOUR_MICROS)
}

/// What the resident showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The 6-digit one-time password of an 18-digit code.
    Code { otp: u32 },
    /// A printed card's PIN.
    Card { pin: u32 },
}

/// A code or card shown at a shop, with the credential's secret as derived when the service
/// read the credential (for `generation`). Its `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct Presentation {
    pub credential: Uuid,
    pub number: u32,
    pub generation: i64,
    pub secret: [u8; 32],
    pub shop: Uuid,
    pub proof: Proof,
}

impl std::fmt::Debug for Presentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presentation")
            .field("credential", &self.credential)
            .field("generation", &self.generation)
            .field("shop", &self.shop)
            .finish_non_exhaustive()
    }
}

/// A credential as the planner needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialState {
    pub generation: i64,
    pub active: bool,
    /// The step of the last code accepted; codes of this or an earlier step are dead.
    pub last_step: i64,
    /// Consecutive failed attempts.
    pub failures: i64,
}

/// What the store reads for the presentations of a batch.
#[derive(Clone, Debug, Default)]
pub struct RedeemState {
    pub credentials: HashMap<Uuid, CredentialState>,
    /// Failed attempts of the current hour, per shop.
    pub shop_failures: HashMap<Uuid, i64>,
}

impl RedeemState {
    /// Credentials and shops the store must read for `presentations`.
    pub fn lookups<'a>(
        presentations: impl Iterator<Item = &'a Presentation>,
    ) -> (Vec<Uuid>, Vec<Uuid>) {
        let (mut credentials, mut shops): (Vec<Uuid>, Vec<Uuid>) =
            presentations.map(|p| (p.credential, p.shop)).unzip();
        credentials.sort_unstable();
        credentials.dedup();
        shops.sort_unstable();
        shops.dedup();
        (credentials, shops)
    }
}

/// What a presentation changed, for the store to write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PresenceEffects {
    /// Credentials as they now stand.
    pub credentials: std::collections::BTreeMap<Uuid, CredentialState>,
    /// Failed attempts to add per shop, in the hour of the batch.
    pub shop_failures: std::collections::BTreeMap<Uuid, i64>,
}

/// Decides a presentation at `now_micros`, updating `state` and `effects`. Every way of failing
/// answers the same error, so the answer does not tell which part was wrong.
pub fn present(
    state: &mut RedeemState,
    effects: &mut PresenceEffects,
    p: &Presentation,
    now_micros: i64,
) -> Result<(), LedgerError> {
    let shop_failures = state.shop_failures.get(&p.shop).copied().unwrap_or(0);
    if shop_failures >= SHOP_FAILURES_PER_HOUR_MAX {
        return Err(LedgerError::ShopAttemptsExhausted);
    }
    let Some(credential) = state.credentials.get_mut(&p.credential) else {
        fail_shop(state, effects, p.shop);
        return Err(LedgerError::RedemptionCodeInvalid);
    };
    let usable = credential.active
        && credential.generation == p.generation
        && credential.failures < CREDENTIAL_FAILURES_MAX;
    // The password is checked even for an unusable credential, so timing says nothing.
    let accepted_step = match p.proof {
        Proof::Code { otp } => {
            code::matching_step(&p.secret, p.number, otp, code::step_of(now_micros))
                .filter(|step| *step > credential.last_step)
        }
        Proof::Card { pin } => {
            code::pin_matches(&p.secret, p.number, pin).then_some(credential.last_step)
        }
    };
    match accepted_step {
        Some(step) if usable => {
            credential.last_step = step;
            credential.failures = 0;
            effects.credentials.insert(p.credential, credential.clone());
            Ok(())
        }
        _ => {
            credential.failures = credential.failures.saturating_add(1);
            effects.credentials.insert(p.credential, credential.clone());
            fail_shop(state, effects, p.shop);
            Err(LedgerError::RedemptionCodeInvalid)
        }
    }
}

fn fail_shop(state: &mut RedeemState, effects: &mut PresenceEffects, shop: Uuid) {
    *state.shop_failures.entry(shop).or_default() += 1;
    *effects.shop_failures.entry(shop).or_default() += 1;
}

/// A receipt to create with the entry, in the same transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptDraft {
    pub id: Uuid,
    /// `redemption` or `refund`.
    pub kind: String,
    pub shop_id: Uuid,
    pub shop_name: String,
    pub resident_id: Uuid,
    pub resident_pseudonym: String,
    pub community_id: String,
    /// The resident's points account, whose balance after the entry the receipt shows.
    pub account: AccountId,
    pub total_minor: i64,
    /// For a refund: the redemption receipt it refunds.
    pub refund_of: Option<Uuid>,
    /// The basket lines as JSON (see `redeem::service::StoredLine`).
    pub lines_json: String,
}

/// A receipt as the batch writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRow {
    pub draft: ReceiptDraft,
    pub entry_id: Uuid,
    pub entry_seq: i64,
    pub posted_at_micros: i64,
    pub balance_after_minor: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (RedeemState, Presentation, i64) {
        let secret = [4u8; 32];
        let now = 1_790_000_000_000_000;
        let credential = Uuid::from_u128(1);
        let mut state = RedeemState::default();
        state.credentials.insert(
            credential,
            CredentialState {
                generation: 1,
                active: true,
                last_step: 0,
                failures: 0,
            },
        );
        let p = Presentation {
            credential,
            number: 123,
            generation: 1,
            secret,
            shop: Uuid::from_u128(9),
            proof: Proof::Code {
                otp: code::otp(&secret, 123, code::step_of(now)),
            },
        };
        (state, p, now)
    }

    #[test]
    fn a_code_works_once_and_a_newer_one_kills_older_ones() {
        let (mut state, p, now) = setup();
        let mut effects = PresenceEffects::default();
        assert_eq!(present(&mut state, &mut effects, &p, now), Ok(()));
        assert_eq!(
            present(&mut state, &mut effects, &p, now),
            Err(LedgerError::RedemptionCodeInvalid)
        );
        let newer = Presentation {
            proof: Proof::Code {
                otp: code::otp(&p.secret, 123, code::step_of(now) + 1),
            },
            ..p.clone()
        };
        assert_eq!(present(&mut state, &mut effects, &newer, now), Ok(()));
        assert_eq!(state.credentials[&p.credential].failures, 0);
        assert_eq!(effects.shop_failures[&p.shop], 1);
    }

    #[test]
    fn failures_lock_the_credential_even_for_the_right_code() {
        let (mut state, p, now) = setup();
        let mut effects = PresenceEffects::default();
        let wrong = Presentation {
            proof: Proof::Card { pin: 0 },
            ..p.clone()
        };
        for _ in 0..CREDENTIAL_FAILURES_MAX {
            let _ = present(&mut state, &mut effects, &wrong, now);
        }
        assert_eq!(
            present(&mut state, &mut effects, &p, now),
            Err(LedgerError::RedemptionCodeInvalid)
        );
        // A stale generation (re-issued meanwhile) is refused the same way.
        let (mut state, p, now) = setup();
        let stale = Presentation { generation: 0, ..p };
        assert_eq!(
            present(&mut state, &mut effects, &stale, now),
            Err(LedgerError::RedemptionCodeInvalid)
        );
    }
}

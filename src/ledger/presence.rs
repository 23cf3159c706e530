//! Presenting a redemption code or a card PIN, decided under the ledger lock with the batch.
//!
//! A presentation has effects of its own that are written even when the redemption it came
//! with is refused: a valid code is spent (its step becomes the credential's last step, so it
//! and every older code stop working), a wrong one counts as a failed attempt against the
//! credential and the shop. Deciding this in the planner — one request after another, under the
//! lock — is what makes "exactly one of 50 concurrent redemptions with one code succeeds" hold
//! on both backends and across processes.
//!
//! Time here is the server's clock (the writer's), never the ledger's head: a head ahead of the
//! clock must not make a phone's current code look early.
//!
//! Failures count on two sides of a credential: at shops that serve its resident's community
//! (consecutive, reset by an accepted presentation; [`CREDENTIAL_FAILURES_MAX`] lock it for every
//! shop) and at shops that do not ([`NON_SERVING_FAILURES_MAX`] for all of them together per
//! generation; past it only those shops are refused). So no shop can lock out a resident it does
//! not serve, and the guesses a credential takes stay bounded by
//! [`GUESSES_PER_CREDENTIAL_MAX`] whatever the number of shops.

use std::collections::HashMap;

use uuid::Uuid;

use super::entry::{AccountId, LedgerError};
use crate::ledger::code;

/// Consecutive failed attempts at shops serving the credential's community after which it is
/// locked (until it is re-issued): every shop then refuses it.
pub const CREDENTIAL_FAILURES_MAX: i64 = 5;
/// Failed attempts that shops *not* serving the credential's community may make on it, all of
/// them together, per generation. Past this, those shops' presentations of it are refused; they
/// never lock it, so a shop cannot lock out residents it does not serve.
pub const NON_SERVING_FAILURES_MAX: i64 = 5;
/// The guessing bound `ledger-specs/redemption-code.md` states: wrong proofs a credential takes,
/// from any number of shops, before every shop refuses it (counting from its issue or its last
/// accepted presentation).
pub const GUESSES_PER_CREDENTIAL_MAX: i64 = CREDENTIAL_FAILURES_MAX + NON_SERVING_FAILURES_MAX;
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
    /// The 13-digit one-time password of a 25-digit code (layout 2).
    Code { otp: u64 },
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
    /// Whether the shop serves the community of the credential's resident (as the service read
    /// the shop): decides which of the credential's failure counts a failure goes to.
    pub serving: bool,
    pub proof: Proof,
}

impl std::fmt::Debug for Presentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presentation")
            .field("credential", &self.credential)
            .field("generation", &self.generation)
            .field("shop", &self.shop)
            .field("serving", &self.serving)
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
    /// Consecutive failed attempts at shops serving the credential's community.
    pub failures: i64,
    /// Failed attempts at shops not serving it, in this generation (never reset by a success).
    pub foreign_failures: i64,
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

/// Decides a presentation at `clock_micros` — the server's clock, not the time the entry will
/// be stamped with — updating `state` and `effects`. Every way of failing answers the same
/// error, so the answer does not tell which part was wrong.
pub fn present(
    state: &mut RedeemState,
    effects: &mut PresenceEffects,
    p: &Presentation,
    clock_micros: i64,
) -> Result<(), LedgerError> {
    let shop_failures = state.shop_failures.get(&p.shop).copied().unwrap_or(0);
    if shop_failures >= SHOP_FAILURES_PER_HOUR_MAX {
        return Err(LedgerError::ShopAttemptsExhausted);
    }
    let known = state.credentials.get(&p.credential);
    let last_step = known.map_or(0, |c| c.last_step);
    // The proof is checked whatever else is wrong — an unknown number, a locked or stale
    // credential — so the work done does not depend on it.
    let accepted_step = match p.proof {
        Proof::Code { otp } => {
            code::matching_step(&p.secret, p.number, otp, code::step_of(clock_micros))
                .filter(|step| *step > last_step)
        }
        Proof::Card { pin } => code::pin_matches(&p.secret, p.number, pin).then_some(last_step),
    };
    let Some(credential) = state.credentials.get_mut(&p.credential) else {
        // A number no credential has (the service names a stand-in id for it). Its failure is
        // written like a known credential's — an update that matches no row — so both paths run
        // the same statements.
        effects.credentials.insert(
            p.credential,
            CredentialState {
                generation: p.generation,
                active: false,
                last_step,
                failures: 1,
                foreign_failures: 0,
            },
        );
        fail_shop(state, effects, p.shop);
        return Err(LedgerError::RedemptionCodeInvalid);
    };
    let usable = credential.active
        && credential.generation == p.generation
        && credential.failures < CREDENTIAL_FAILURES_MAX
        && (p.serving || credential.foreign_failures < NON_SERVING_FAILURES_MAX);
    match accepted_step {
        Some(step) if usable => {
            credential.last_step = step;
            credential.failures = 0;
            effects.credentials.insert(p.credential, credential.clone());
            Ok(())
        }
        _ => {
            if p.serving {
                credential.failures = credential.failures.saturating_add(1);
            } else {
                credential.foreign_failures = credential.foreign_failures.saturating_add(1);
            }
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
                foreign_failures: 0,
            },
        );
        let p = Presentation {
            credential,
            number: 123,
            generation: 1,
            secret,
            shop: Uuid::from_u128(9),
            serving: true,
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

    #[test]
    fn shops_not_serving_the_credential_never_lock_it() {
        // Proves the lock rule: failures at non-serving shops use up only their own allowance
        // (after which only they are refused), and never lock the credential for its own shops.
        let (mut state, p, now) = setup();
        let mut effects = PresenceEffects::default();
        let foreign_wrong = Presentation {
            serving: false,
            shop: Uuid::from_u128(10),
            proof: Proof::Card { pin: 0 },
            ..p.clone()
        };
        let foreign_right = Presentation {
            serving: false,
            shop: Uuid::from_u128(10),
            proof: Proof::Card {
                pin: code::pin(&p.secret, p.number),
            },
            ..p.clone()
        };
        for _ in 0..NON_SERVING_FAILURES_MAX {
            assert_eq!(
                present(&mut state, &mut effects, &foreign_right, now),
                Ok(())
            );
            assert_eq!(
                present(&mut state, &mut effects, &foreign_wrong, now),
                Err(LedgerError::RedemptionCodeInvalid)
            );
        }
        for _ in 0..20 {
            assert_eq!(
                present(&mut state, &mut effects, &foreign_right, now),
                Err(LedgerError::RedemptionCodeInvalid)
            );
        }
        let credential = &state.credentials[&p.credential];
        assert_eq!(credential.failures, 0);
        assert_eq!(effects.credentials[&p.credential], *credential);
        assert_eq!(present(&mut state, &mut effects, &p, now), Ok(()));
    }

    #[test]
    fn an_unknown_number_fails_like_a_known_one() {
        // Proves an unknown number is refused alike and writes a credential update (matching no
        // row) and a shop failure, as a wrong proof for a known number does.
        let (mut state, p, now) = setup();
        let mut effects = PresenceEffects::default();
        let unknown = Presentation {
            credential: Uuid::from_u128(2),
            ..p.clone()
        };
        assert_eq!(
            present(&mut state, &mut effects, &unknown, now),
            Err(LedgerError::RedemptionCodeInvalid)
        );
        assert!(effects.credentials.contains_key(&unknown.credential));
        assert!(!state.credentials.contains_key(&unknown.credential));
        assert_eq!(effects.shop_failures[&p.shop], 1);
    }
}

//! Units of account and account kinds with their overdraft policy.

use std::fmt;

/// What a posting counts. Each posting is in exactly one unit; an entry balances per unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// Spendable public-welfare points (公益积分).
    Points,
    /// The permanent record of volunteer service hours (志愿服务时长): never spent, never expiring.
    Hours,
}

impl Unit {
    pub const ALL: [Unit; 2] = [Unit::Points, Unit::Hours];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Points => "points",
            Unit::Hours => "hours",
        }
    }

    pub fn parse(text: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of account the money flows in PRODUCT.md need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountKind {
    /// A resident's points and service hours.
    Resident,
    /// A love shop (爱心商铺): receives points at redemption, pays them out at settlement.
    Shop,
    /// A community's issuance account: points and hours are created here, so it runs negative.
    Issuance,
    /// A community's settlement account: receives points when a shop is settled.
    Settlement,
    /// A community's expiry account: receives points that expire.
    Expiry,
    /// Counterpart for administrative adjustments; may run negative, like issuance.
    Adjustment,
}

/// How far below zero an account may go in one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    /// The balance may never go below zero.
    Zero,
    /// The balance is a source of value and may go arbitrarily negative.
    Unbounded,
}

impl AccountKind {
    pub const ALL: [AccountKind; 6] = [
        AccountKind::Resident,
        AccountKind::Shop,
        AccountKind::Issuance,
        AccountKind::Settlement,
        AccountKind::Expiry,
        AccountKind::Adjustment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Resident => "resident",
            AccountKind::Shop => "shop",
            AccountKind::Issuance => "issuance",
            AccountKind::Settlement => "settlement",
            AccountKind::Expiry => "expiry",
            AccountKind::Adjustment => "adjustment",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The overdraft policy of this kind of account in `unit`, or `None` when the account may
    /// not hold that unit at all. Hours live only on resident, issuance and adjustment accounts:
    /// that is what makes them impossible to spend at a shop, settle or expire.
    pub fn floor(self, unit: Unit) -> Option<Floor> {
        use AccountKind::*;
        match (self, unit) {
            (Issuance | Adjustment, _) => Some(Floor::Unbounded),
            (Resident, _) => Some(Floor::Zero),
            (Shop | Settlement | Expiry, Unit::Points) => Some(Floor::Zero),
            (Shop | Settlement | Expiry, Unit::Hours) => None,
        }
    }

    /// The units this kind of account may hold.
    pub fn units(self) -> impl Iterator<Item = Unit> {
        Unit::ALL
            .into_iter()
            .filter(move |u| self.floor(*u).is_some())
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

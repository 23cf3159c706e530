//! What the shop owner's pages (and the API behind them) need beyond the till: the shops a
//! caller may see, a shop's staff and the removal of a clerk, a shop's receipts by day, its
//! settlements, and the resident a till was shown (masked name and points, nothing else).
//!
//! Every list is paged and bounded, and scoped to the caller as everything else is: what a
//! principal may not see answers `not_found`.

use std::collections::HashMap;

use time::Date;
use uuid::Uuid;

use super::service::{Exchange, Shown, StatementReceipt};
use super::Redemption;
use crate::auth::{Principal, Role};
use crate::calendar::day_start_micros;
use crate::error::{Error, ErrorCode};
use crate::ledger::Unit;
use crate::store::redeem::{SettlementRow, Shop, StaffMember};

type Result<T> = std::result::Result<T, Error>;

/// Most shops one page of [`Redemption::shops`] answers.
pub const SHOPS_PAGE_MAX: i64 = 200;
/// Most shops one page reads to find those a staff member may see (the page then ends early,
/// with a cursor to go on from).
const SHOPS_SCAN_MAX: i64 = 2_000;
/// Most members of staff one shop's list holds.
pub const STAFF_MAX: i64 = 500;
/// Most receipts one page of a day answers.
pub const RECEIPTS_PAGE_MAX: i64 = 500;
/// Most settlements one page answers.
pub const SETTLEMENTS_PAGE_MAX: i64 = 200;

/// A shop in the caller's list, and whether the caller runs it (may open its catalogue, staff
/// and statements) or only sees that it serves their community.
#[derive(Clone, Debug)]
pub struct ListedShop {
    pub shop: Shop,
    pub runs: bool,
}

/// One page of shops; `next` is the cursor of the next page (`after`), if there may be one.
#[derive(Clone, Debug)]
pub struct ShopsPage {
    pub shops: Vec<ListedShop>,
    pub next: Option<Uuid>,
}

/// The resident a till was shown, as a clerk may see them: the masked name and the points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// 王*英
    pub masked_name: String,
    pub points_minor: i64,
}

/// A till's redemption refused, with the resident shown when the code or card itself was
/// accepted (the refusal came after it: the balance, stock, a cap, an item).
#[derive(Debug)]
pub struct TillRefusal {
    pub error: Error,
    pub presented: Option<Presented>,
}

/// Refusals that the planner gives only after it accepted the code or card (`present` runs
/// first); every refusal of the code or card itself, and everything refused before the writer,
/// is absent, so a wrong or guessed number never names anyone.
fn after_presentation(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::InsufficientBalance
            | ErrorCode::OutOfStock
            | ErrorCode::ItemDailyCapExceeded
            | ErrorCode::ItemMonthlyCapExceeded
            | ErrorCode::ItemInactive
            | ErrorCode::UnknownItem
    )
}

fn check_limit(limit: Option<i64>, max: i64) -> Result<i64> {
    match limit {
        None => Ok(max.min(50)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(Error::new(
            ErrorCode::InvalidQuery,
            format!("limit must be 1 to {max}"),
        )),
    }
}

impl Redemption {
    fn now_micros(&self) -> i64 {
        self.earning.clock.now_micros()
    }

    /// The shops `p` may see, by id, after `after`: an admin or auditor every shop; staff the
    /// shops serving a community they manage; shop staff their own shop. Residents have their
    /// own list ([`Redemption::shops_for_resident`]).
    pub async fn shops(
        &self,
        p: &Principal,
        after: Option<Uuid>,
        limit: Option<i64>,
    ) -> Result<ShopsPage> {
        let limit = check_limit(limit, SHOPS_PAGE_MAX)?;
        let ledger = p.ledger_id.as_str();
        match p.role {
            Role::Admin | Role::Auditor | Role::Staff => {}
            Role::Shop | Role::Cashier => {
                let own = p.scope.as_deref().and_then(|s| Uuid::parse_str(s).ok());
                let mut shops = Vec::new();
                if let Some(id) = own.filter(|id| after.is_none_or(|a| *id > a)) {
                    if let Some(shop) = self.store.shop(ledger, id).await? {
                        let runs = p.role == Role::Shop;
                        shops.push(ListedShop { shop, runs });
                    }
                }
                return Ok(ShopsPage { shops, next: None });
            }
            Role::Resident => return Err(Error::forbidden()),
        }
        let mut managed: HashMap<String, bool> = HashMap::new();
        let mut shops = Vec::new();
        let mut cursor = after;
        let mut scanned = 0;
        loop {
            let batch = limit.min(SHOPS_SCAN_MAX - scanned);
            let ids = self.store.shop_ids(ledger, cursor, batch).await?;
            scanned += ids.len() as i64;
            let exhausted = (ids.len() as i64) < batch;
            for id in ids {
                cursor = Some(id);
                let Some(shop) = self.store.shop(ledger, id).await? else {
                    continue;
                };
                let (visible, runs) = match p.role {
                    Role::Staff => {
                        let mut any = false;
                        for community in &shop.communities {
                            let m = match managed.get(community) {
                                Some(m) => *m,
                                None => {
                                    let m = self.earning.manages(p, community).await?;
                                    managed.insert(community.clone(), m);
                                    m
                                }
                            };
                            any |= m;
                        }
                        (any, self.runs_shop(p, &shop).await?)
                    }
                    Role::Admin => (true, true),
                    _ => (true, false),
                };
                if visible {
                    shops.push(ListedShop { shop, runs });
                    if shops.len() as i64 >= limit {
                        return Ok(ShopsPage {
                            shops,
                            next: cursor,
                        });
                    }
                }
            }
            if exhausted {
                return Ok(ShopsPage { shops, next: None });
            }
            if scanned >= SHOPS_SCAN_MAX {
                return Ok(ShopsPage {
                    shops,
                    next: cursor,
                });
            }
        }
    }

    /// The shop if `p` may run its staff and tills: an admin, staff managing the shop's
    /// community, the shop's owner (a clerk may not). Other roles are refused before the shop
    /// is looked at; a shop `p` cannot see is not found.
    pub async fn staff_manager_of(&self, p: &Principal, shop_id: Uuid) -> Result<Shop> {
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Shop) {
            return Err(Error::forbidden());
        }
        let shop = self.shop(p, shop_id).await?;
        if p.role == Role::Shop && !self.is_owner(p, shop.id).await? {
            return Err(Error::forbidden());
        }
        Ok(shop)
    }

    /// Whether `p` is an owner of the shop (a live member of its staff marked owner).
    pub async fn is_owner(&self, p: &Principal, shop_id: Uuid) -> Result<bool> {
        if p.role != Role::Shop || p.scope.as_deref() != Some(shop_id.to_string().as_str()) {
            return Ok(false);
        }
        Ok(self
            .store
            .shop_staff(&p.ledger_id, p.token_id)
            .await?
            .is_some_and(|s| s.owner && s.shop_id == shop_id))
    }

    /// A shop's staff, removed members included (admin, staff managing it, its owner).
    pub async fn shop_staff_list(&self, p: &Principal, shop_id: Uuid) -> Result<Vec<StaffMember>> {
        let shop = self.staff_manager_of(p, shop_id).await?;
        Ok(self
            .store
            .staff_of_shop(&p.ledger_id, shop.id, STAFF_MAX)
            .await?)
    }

    /// Removes a member of the shop's staff (admin, staff managing it, its owner; nobody removes
    /// themself): in one transaction their token is revoked, every session signed in with it
    /// ends (the next page load is signed out) and their till PIN is deleted. Removing someone
    /// removed before answers them as they are.
    pub async fn remove_shop_staff(
        &self,
        p: &Principal,
        shop_id: Uuid,
        staff_token_id: Uuid,
    ) -> Result<StaffMember> {
        let shop = self.staff_manager_of(p, shop_id).await?;
        if p.operator.is_none() && p.token_id == staff_token_id {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "nobody removes themself from a shop's staff; ask an administrator",
            ));
        }
        let ledger = p.ledger_id.clone();
        let member = self
            .store
            .shop_staff(&ledger, staff_token_id)
            .await?
            .filter(|s| s.shop_id == shop.id)
            .ok_or_else(Error::not_found)?;
        let store = self.store.clone();
        let now = self.now_micros();
        let (ledger_owned, token) = (ledger.clone(), member.token_id);
        // Spawned: a request dropped half-way must not cut the transaction off.
        tokio::spawn(async move { store.remove_shop_staff(&ledger_owned, token, now).await })
            .await
            .map_err(|_| Error::bare(ErrorCode::Internal))??;
        self.store
            .staff_of_shop(&ledger, shop.id, STAFF_MAX)
            .await?
            .into_iter()
            .find(|m| m.staff.token_id == member.token_id)
            .ok_or_else(Error::not_found)
    }

    /// A shop's receipts of the calendar day `day` (UTC+8) with an entry sequence above
    /// `after`, in sequence order (admin, auditor, staff over the shop, its own staff), and the
    /// cursor of the next page if there may be one.
    pub async fn receipts_of_day(
        &self,
        p: &Principal,
        shop_id: Uuid,
        day: Date,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<StatementReceipt>, Option<i64>)> {
        let limit = check_limit(limit, RECEIPTS_PAGE_MAX)?;
        let shop = self.shop(p, shop_id).await?;
        let end = day
            .next_day()
            .ok_or_else(|| Error::new(ErrorCode::DateInvalid, "date out of range"))?;
        let rows = self
            .store
            .shop_receipts_after(
                &p.ledger_id,
                shop.id,
                day_start_micros(day),
                day_start_micros(end),
                after.unwrap_or(0),
                limit,
            )
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.entry_seq))
            .flatten();
        let receipts = rows
            .into_iter()
            .map(|r| StatementReceipt {
                receipt_id: r.id,
                kind: r.kind,
                posted_at_micros: r.posted_at_micros,
                community_id: r.community_id,
                resident: r.resident_pseudonym,
                points_minor: r.total_minor,
                entry_seq: r.entry_seq,
            })
            .collect();
        Ok((receipts, next))
    }

    /// A shop's settlements, newest first, with a sequence below `before` (admin, auditor,
    /// staff over the shop, its own staff), and the cursor of the next page if there may be one.
    pub async fn settlements(
        &self,
        p: &Principal,
        shop_id: Uuid,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<SettlementRow>, Option<i64>)> {
        let limit = check_limit(limit, SETTLEMENTS_PAGE_MAX)?;
        let shop = self.shop(p, shop_id).await?;
        let rows = self
            .store
            .settlements(
                &p.ledger_id,
                shop.account_id,
                before.unwrap_or(i64::MAX),
                limit,
            )
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.entry_seq))
            .flatten();
        Ok((rows, next))
    }

    /// Redeems at the till as [`Redemption::redeem`] does; a refusal that came after the code
    /// or card was accepted carries the resident's masked name and points, for the clerk to
    /// tell them (and nothing else about them). The code is spent either way, as a refused
    /// redemption always spends it; no second presentation is made.
    pub async fn redeem_at_till(
        &self,
        p: &Principal,
        key: &str,
        shown: Shown,
        basket: &[(String, u32)],
    ) -> std::result::Result<Exchange, TillRefusal> {
        let number = match &shown {
            Shown::Code(text) => crate::ledger::code::parse(text).ok().map(|c| c.number),
            Shown::Card { number, .. } => crate::ledger::code::parse_number(number),
        };
        match self.redeem(p, key, shown, basket).await {
            Ok(exchange) => Ok(exchange),
            Err(error) => {
                let presented = match number.filter(|_| after_presentation(error.code)) {
                    Some(number) => self.presented(p, number).await.unwrap_or(None),
                    None => None,
                };
                Err(TillRefusal { error, presented })
            }
        }
    }

    /// The masked name and points of the holder of credential `number`, if the caller's shop
    /// serves their community.
    async fn presented(&self, p: &Principal, number: u32) -> Result<Option<Presented>> {
        let (ledger, shop_id) = match (p.role, p.scope.as_deref().map(Uuid::parse_str)) {
            (Role::Shop | Role::Cashier, Some(Ok(shop))) => (p.ledger_id.as_str(), shop),
            _ => return Ok(None),
        };
        let Some(shop) = self.store.shop(ledger, shop_id).await? else {
            return Ok(None);
        };
        let Some(holder) = self.store.credential_holder(ledger, number).await? else {
            return Ok(None);
        };
        if !holder.credential.active || !shop.communities.contains(&holder.community_id) {
            return Ok(None);
        }
        let name = self
            .earning
            .store
            .resident(ledger, holder.credential.resident_id)
            .await?
            .map(|r| r.name)
            .unwrap_or_default();
        let points = self
            .earning
            .ledger
            .account(ledger, holder.account_id)
            .await?
            .and_then(|a| a.balances.get(&Unit::Points).copied())
            .unwrap_or(0);
        Ok(Some(Presented {
            masked_name: super::service::mask_name(&name),
            points_minor: points,
        }))
    }
}

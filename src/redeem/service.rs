//! The redemption operations: shops, catalogue, stock, credentials and codes, redeeming,
//! receipts, refunds and settlement. Each takes the calling principal and checks what it may
//! do; HTTP handlers are thin wrappers around these.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Date;
use utoipa::ToSchema;
use uuid::Uuid;

use super::receipt::{self, clip, Receipt, ReceiptKind, ReceiptLine, SignedReceipt};
use super::{SKU_MAX_BYTES, UNIT_MAX_BYTES};
use crate::auth::{hash_token, token_text, Principal, Role};
use crate::calendar::text as day_text;
use crate::calendar::{day_of, day_start_micros, format_date, parse_date};
use crate::earning::service::{check_text, require_staff, Earning};
use crate::error::{Error, ErrorCode, Fields};
use crate::keys::SharedKeys;
use crate::ledger::amount::text as amount_text;
use crate::ledger::code::{self, ParsedCode};
use crate::ledger::presence::{Presentation, Proof, ReceiptDraft};
use crate::ledger::{
    format_minor, AccountKind, Amount, EntryDraft, EntryKind, LedgerError, Limit, LimitCode,
    PostedEntry, Posting, Side, Unit,
};
use crate::model::{derived_id, Resident};
use crate::store::earning::Inserted;
use crate::store::redeem::{
    stock_key, Credential, CredentialHolder, Issued, Item, RedeemStore, Shop, ShopStaff, StockMove,
    StockMoved, StoredReceipt,
};
use crate::store::{NewAccount, Opened, Outcome, TokenRecord};
use crate::writer::Conditions;

type Result<T> = std::result::Result<T, Error>;

/// Most partner communities one shop may list.
pub const SHOP_COMMUNITIES_MAX: usize = 64;
/// Most items in one shop's catalogue.
pub const CATALOGUE_MAX: usize = 500;
/// Most units of one item in one basket line.
pub const QUANTITY_MAX: u32 = 999;
/// Longest settlement period, in days.
pub const SETTLEMENT_DAYS_MAX: i64 = 366;
/// Most receipts one settlement statement covers.
pub const STATEMENT_RECEIPTS_MAX: i64 = 100_000;
/// How many of a shop account's latest entries a repeated settlement request is looked for in.
const SETTLEMENT_LOOKBACK: i64 = 50;
/// Default refund window of a shop, in days.
pub const REFUND_WINDOW_DEFAULT_DAYS: i64 = 7;
const DAY_MICROS: i64 = 86_400_000_000;

fn err(code: ErrorCode, detail: impl Into<String>) -> Error {
    Error::new(code, detail)
}

/// One basket line as stored on a receipt (and hashed into the entry's metadata).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredLine {
    pub item: Uuid,
    pub sku: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub quantity: u32,
    pub unit_minor: i64,
    pub points_minor: i64,
}

/// Everything the redemption operations need.
#[derive(Clone)]
pub struct Redemption {
    pub earning: Earning,
    pub store: Arc<dyn RedeemStore>,
    pub keys: SharedKeys,
    till: Arc<TillCache>,
}

/// How long the till path may use a shop and its catalogue as read before (by the injected
/// clock). Changes made through this process are seen at once; another process's within this.
pub const TILL_CACHE_MICROS: i64 = 1_000_000;
/// Most shops the till cache holds before it starts over.
const TILL_CACHE_MAX: usize = 4096;

type TillView = Arc<(Shop, Vec<Item>)>;

/// Shops and catalogues as the till last read them: a redemption reads them on every scan.
#[derive(Default)]
struct TillCache(std::sync::Mutex<std::collections::HashMap<(String, Uuid), (i64, TillView)>>);

impl TillCache {
    fn get(&self, ledger: &str, shop: Uuid, now: i64) -> Option<TillView> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(ledger.to_owned(), shop))
            .filter(|(at, _)| now.saturating_sub(*at) < TILL_CACHE_MICROS && now >= *at)
            .map(|(_, view)| view.clone())
    }
    fn put(&self, ledger: &str, shop: Uuid, now: i64, view: TillView) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= TILL_CACHE_MAX {
            map.clear();
        }
        map.insert((ledger.to_owned(), shop), (now, view));
    }
    fn forget(&self, ledger: &str, shop: Uuid) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(ledger.to_owned(), shop));
    }
}

#[derive(Clone, Debug)]
pub struct NewShop {
    pub name_zh: String,
    pub name_en: String,
    pub community_id: String,
    /// Other communities served besides its own.
    pub serves: Vec<String>,
    pub refund_window_days: Option<i64>,
}

/// A stock change asked for by the shop.
#[derive(Clone, Debug)]
pub struct StockChange {
    /// Units added (positive) or removed (negative).
    pub delta: i64,
    /// restock, count, damaged or returned_to_supplier.
    pub reason: String,
    pub note: String,
}

#[derive(Clone, Debug)]
pub struct NewItem {
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub price: Amount,
    pub track_stock: bool,
    pub cap_day: Option<i64>,
    pub cap_month: Option<i64>,
    pub active: bool,
}

/// What a resident shows at the till.
#[derive(Clone, Debug)]
pub enum Shown {
    Code(String),
    Card { number: String, pin: String },
}

/// What a member of shop staff may do at the till: a clerk redeems and refunds (not what they
/// redeemed themself), the owner refunds anything, a cashier only redeems and reads the shop's
/// receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffRole {
    Clerk,
    Owner,
    Cashier,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Clerk => "staff",
            StaffRole::Owner => "owner",
            StaffRole::Cashier => "cashier",
        }
    }
}

/// A credential as issued: the secret goes to the resident's phone, the PIN on the printed card.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IssuedCredential {
    pub credential_id: Uuid,
    /// The card number (digits), printed on the card.
    pub number: String,
    pub generation: i64,
    /// Hex of the 32-byte code secret, for provisioning the resident's phone.
    pub secret: String,
    pub card_pin: String,
}

/// The code to show right now, and what a phone needs to go on showing the right one offline
/// (`ledger-specs/redemption-code.md` §4.2; `src/web/assets/code.js` does it in a page).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CurrentCode {
    /// The digits to show as a barcode and a QR code.
    #[schema(example = "7230511704215369712195956")]
    pub code: String,
    /// The code layout (2).
    pub layout: u8,
    /// The credential number (9 digits), which the code carries.
    pub number: String,
    /// The time step the code belongs to: the current one, or the first after the last step
    /// used if a sale already used the current one.
    pub step: i64,
    /// The step of the last code accepted at a till, if any: codes of it and earlier steps are
    /// dead.
    pub last_used_step: Option<i64>,
    /// Seconds until a newer code replaces this one.
    pub expires_in_seconds: i64,
    /// Seconds until the till accepts this code: 0, unless codes were used so often that the
    /// next unused step lies beyond the accepted window (more than two steps ahead).
    pub valid_in_seconds: i64,
}

/// A redemption or refund as answered to the till.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub signed: SignedReceipt,
    pub created: bool,
    pub refunded_by: Option<Uuid>,
}

/// A settlement statement. Amounts are hundredths; the API writes them as decimal text.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Statement {
    pub shop_id: Uuid,
    #[serde(serialize_with = "day_text::date")]
    #[schema(value_type = String, format = Date)]
    pub from: Date,
    #[serde(serialize_with = "day_text::date")]
    #[schema(value_type = String, format = Date)]
    pub to: Date,
    pub redemptions: usize,
    pub refunds: usize,
    #[serde(rename = "redeemed", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "120.00")]
    pub redeemed_minor: i64,
    #[serde(rename = "refunded", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "20.00")]
    pub refunded_minor: i64,
    #[serde(rename = "net", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "100.00")]
    pub net_minor: i64,
    /// Whose settlement account receives the net: the shop's home community, for the points
    /// of every community it serves (`by_community` shows where they came from).
    pub settlement_community_id: String,
    /// That community's settlement account.
    pub settlement_account: Uuid,
    pub by_community: Vec<CommunityLine>,
    pub receipts: Vec<StatementReceipt>,
    /// For a settlement: it covers the ledger's entries `after_seq + 1 ..= through_seq`
    /// (exchanges posted later fall into the next settlement).
    pub after_seq: Option<i64>,
    pub through_seq: Option<i64>,
    /// The settlement entry, once posted.
    pub entry_id: Option<Uuid>,
    pub entry_seq: Option<i64>,
}

/// A statement's totals for one of the shop's communities.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CommunityLine {
    pub community_id: String,
    #[serde(rename = "redeemed", serialize_with = "amount_text::minor")]
    #[schema(value_type = String)]
    pub redeemed_minor: i64,
    #[serde(rename = "refunded", serialize_with = "amount_text::minor")]
    #[schema(value_type = String)]
    pub refunded_minor: i64,
    #[serde(rename = "net", serialize_with = "amount_text::minor")]
    #[schema(value_type = String)]
    pub net_minor: i64,
    /// The community whose settlement account receives this line's net: the shop's home
    /// community, whichever community the residents belong to.
    pub settled_into: String,
}

/// One receipt of a statement.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatementReceipt {
    pub receipt_id: Uuid,
    /// `redemption` or `refund`.
    pub kind: String,
    pub posted_at_micros: i64,
    pub community_id: String,
    /// The resident's pseudonym.
    pub resident: String,
    #[serde(rename = "points", serialize_with = "amount_text::minor")]
    #[schema(value_type = String)]
    pub points_minor: i64,
    pub entry_seq: i64,
}

fn detach<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> impl std::future::Future<Output = Result<T>> {
    // Spawned: a transaction must not be cut off halfway when a client disconnects.
    let handle = tokio::spawn(fut);
    async move {
        handle
            .await
            .map_err(|_| err(ErrorCode::Internal, ErrorCode::Internal.title()))
    }
}

impl Redemption {
    pub fn new(earning: Earning, store: Arc<dyn RedeemStore>, keys: SharedKeys) -> Self {
        Redemption {
            earning,
            store,
            keys,
            till: Arc::default(),
        }
    }

    /// A shop and its catalogue for the till, from the cache when fresh.
    async fn till_view(&self, ledger: &str, shop_id: Uuid) -> Result<Option<TillView>> {
        let now = self.now();
        if let Some(view) = self.till.get(ledger, shop_id, now) {
            return Ok(Some(view));
        }
        let Some(shop) = self.store.shop(ledger, shop_id).await? else {
            return Ok(None);
        };
        let items = self.store.items(ledger, shop_id).await?;
        let view = Arc::new((shop, items));
        self.till.put(ledger, shop_id, now, view.clone());
        Ok(Some(view))
    }

    fn ledger_of(p: &Principal) -> &str {
        &p.ledger_id
    }

    fn now(&self) -> i64 {
        self.earning.clock.now_micros()
    }

    // ---- Shops ----

    pub async fn create_shop(
        &self,
        p: &Principal,
        key: &str,
        new: NewShop,
    ) -> Result<(Shop, bool)> {
        require_staff(p)?;
        let (window, communities) = check_new_shop(&new)?;
        let ledger = Self::ledger_of(p);
        for community in &communities {
            // A permission answer, the same whether or not such a community exists: staff
            // learn nothing about the organisation outside their scope. Inside it, a unit that
            // is no community is `unknown_community`.
            if !self.earning.manages(p, community).await? {
                return Err(err(
                    ErrorCode::Forbidden,
                    format!("you may not register a shop for community {community}: it is outside your scope"),
                )
                .with_fields(Fields {
                    community: Some(community.clone()),
                    ..Fields::default()
                }));
            }
            self.earning.community(ledger, community).await?;
        }
        let actor = p.actor();
        let id = derived_id("aixin.shop.v1", &[ledger, &actor, key]);
        let same = |s: &Shop| {
            s.name_zh == new.name_zh
                && s.name_en == new.name_en
                && s.community_id == new.community_id
                && s.refund_window_days == window
                && s.communities == communities
        };
        if let Some(existing) = self.store.shop(ledger, id).await? {
            return if same(&existing) {
                Ok((existing, false))
            } else {
                Err(Error::key_reused())
            };
        }
        let account = NewAccount {
            id: derived_id("aixin.shop-account.v1", &[ledger, &actor, key]),
            kind: AccountKind::Shop,
            owner_id: Some(id.to_string()),
            community_id: Some(new.community_id.clone()),
            label: clip(&new.name_zh),
        };
        let now = self.now();
        let account_id = match self
            .earning
            .ledger
            .open_account(ledger, &account, now)
            .await?
        {
            Opened::Created(a) | Opened::Existing(a) => a.id,
            Opened::Conflict(_) => return Err(Error::key_reused()),
        };
        let shop = Shop {
            id,
            name_zh: new.name_zh.clone(),
            name_en: new.name_en.clone(),
            community_id: new.community_id.clone(),
            account_id,
            refund_window_days: window,
            communities: communities.clone(),
            created_by: actor,
            created_at_micros: now,
        };
        let store = self.store.clone();
        let ledger_owned = ledger.to_owned();
        match detach(async move { store.insert_shop(&ledger_owned, &shop).await }).await?? {
            Inserted::Created(s) => Ok((s, true)),
            Inserted::Existing(s) if same(&s) => Ok((s, false)),
            Inserted::Existing(_) => Err(Error::key_reused()),
        }
    }

    /// Whether `p` may run the shop's catalogue and see its takings: admin, staff over its
    /// community, and the shop's own staff.
    pub(super) async fn runs_shop(&self, p: &Principal, shop: &Shop) -> Result<bool> {
        Ok(match p.role {
            Role::Admin => true,
            Role::Shop => p.scope.as_deref() == Some(&shop.id.to_string()),
            Role::Staff => self.earning.manages(p, &shop.community_id).await?,
            _ => false,
        })
    }

    /// A shop visible to `p` (auditors see every shop), or not found.
    pub async fn shop(&self, p: &Principal, id: Uuid) -> Result<Shop> {
        let shop = self
            .store
            .shop(Self::ledger_of(p), id)
            .await?
            .ok_or_else(Error::not_found)?;
        if p.role == Role::Auditor || self.runs_shop(p, &shop).await? {
            Ok(shop)
        } else {
            Err(Error::not_found())
        }
    }

    /// Adds a member of shop staff and returns their new `shop` token (shown once).
    /// Adds a shop clerk (or owner) and answers their `shop` token. Idempotent by `key`: the
    /// same key and body again answers the same clerk and the same token (its secret is derived
    /// from the key file's master key, the ledger and the clerk's id, never stored); the same
    /// key with another body is refused. The bool is true when the clerk was added now.
    pub async fn add_shop_staff(
        &self,
        p: &Principal,
        key: &str,
        shop_id: Uuid,
        name: &str,
        owner: bool,
    ) -> Result<(ShopStaff, String, bool)> {
        let role = if owner {
            StaffRole::Owner
        } else {
            StaffRole::Clerk
        };
        self.add_shop_staff_as(p, key, shop_id, name, role).await
    }

    /// [`Redemption::add_shop_staff`] with the member's role: a clerk or owner gets a `shop`
    /// token, a cashier a `cashier` token (scan only). Admin, staff over the shop, or the shop's
    /// owner (clerks and cashiers only).
    pub async fn add_shop_staff_as(
        &self,
        p: &Principal,
        key: &str,
        shop_id: Uuid,
        name: &str,
        role: StaffRole,
    ) -> Result<(ShopStaff, String, bool)> {
        check_text("name", name, true)?;
        // Before the lookup: the refusal of a role must not depend on whether the shop exists.
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Shop) {
            return Err(Error::forbidden());
        }
        // A shop's owner adds clerks and cashiers to their own shop (src/redeem/owner.rs).
        let shop = self.staff_manager_of(p, shop_id).await?;
        if p.role == Role::Shop && role == StaffRole::Owner {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "an owner adds clerks and cashiers; an administrator or community staff adds owners",
            ));
        }
        let ledger = Self::ledger_of(p);
        let token_id = derived_id("aixin.shop-staff.v1", &[ledger, &p.actor(), key]);
        let secret = token_text(
            &self
                .keys
                .get()
                .derived_secret("aixin shop staff token v1", token_id.as_bytes()),
        );
        let owner = role == StaffRole::Owner;
        let token_role = if role == StaffRole::Cashier {
            Role::Cashier
        } else {
            Role::Shop
        };
        let staff = ShopStaff {
            token_id,
            shop_id: shop.id,
            name: name.to_owned(),
            owner,
        };
        let token_hash = hash_token(&secret);
        if let Some(existing) = self.store.shop_staff(ledger, token_id).await? {
            let same_role = self
                .earning
                .ledger
                .token_by_hash(&token_hash)
                .await?
                .is_some_and(|t| t.role == token_role.as_str());
            return if existing == staff && same_role {
                Ok((existing, secret, false))
            } else {
                Err(Error::key_reused())
            };
        }
        let now = self.now();
        // A token row without its staff row is a first attempt that stopped half-way.
        if self
            .earning
            .ledger
            .token_by_hash(&token_hash)
            .await?
            .is_none()
        {
            let record = TokenRecord {
                id: token_id,
                ledger_id: ledger.to_owned(),
                token_hash,
                role: token_role.as_str().to_owned(),
                scope: Some(shop.id.to_string()),
                label: format!("{}: {name}", role.as_str()),
                created_at_micros: now,
                expires_at_micros: None,
                revoked_at_micros: None,
            };
            self.earning.ledger.insert_token(&record).await?;
        }
        self.store.insert_shop_staff(ledger, &staff, now).await?;
        Ok((staff, secret, true))
    }

    // ---- Catalogue and stock ----

    pub async fn put_item(
        &self,
        p: &Principal,
        shop_id: Uuid,
        sku: &str,
        new: NewItem,
    ) -> Result<(Item, Option<i64>)> {
        let shop = self.shop(p, shop_id).await?;
        if !self.runs_shop(p, &shop).await? {
            return Err(Error::not_found());
        }
        if sku.is_empty()
            || sku.len() > SKU_MAX_BYTES
            || !sku.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(err(
                ErrorCode::InvalidCode,
                format!("sku must be 1 to {SKU_MAX_BYTES} ASCII letters, digits or '-'"),
            ));
        }
        check_text("name_zh", &new.name_zh, true)?;
        check_text("name_en", &new.name_en, false)?;
        check_text("unit", &new.unit, true)?;
        if new.unit.len() > UNIT_MAX_BYTES {
            return Err(err(
                ErrorCode::FieldTooLong,
                format!("unit is longer than {UNIT_MAX_BYTES} bytes"),
            ));
        }
        for (field, cap) in [("cap_day", new.cap_day), ("cap_month", new.cap_month)] {
            if cap.is_some_and(|c| !(1..=i64::from(QUANTITY_MAX)).contains(&c)) {
                return Err(err(
                    ErrorCode::InvalidBody,
                    format!("{field} must be 1 to {QUANTITY_MAX}"),
                ));
            }
        }
        let ledger = Self::ledger_of(p);
        let item = Item {
            id: derived_id("aixin.item.v1", &[ledger, &shop.id.to_string(), sku]),
            shop_id: shop.id,
            sku: sku.to_owned(),
            name_zh: new.name_zh,
            name_en: new.name_en,
            unit: new.unit,
            price_minor: new.price.minor(),
            track_stock: new.track_stock,
            cap_day: new.cap_day,
            cap_month: new.cap_month,
            active: new.active,
            updated_at_micros: self.now(),
        };
        let existing = self.store.items(ledger, shop.id).await?;
        if existing.len() >= CATALOGUE_MAX && !existing.iter().any(|i| i.id == item.id) {
            return Err(err(
                ErrorCode::InvalidBody,
                format!("a catalogue holds at most {CATALOGUE_MAX} items"),
            ));
        }
        self.till.forget(ledger, shop.id);
        let stored = self.store.put_item(ledger, &item).await?;
        self.till.forget(ledger, shop.id);
        if !stored {
            return Err(err(
                ErrorCode::InvalidBody,
                "another item of this shop uses this sku",
            ));
        }
        let level = if item.track_stock {
            let levels = self.store.stock_levels(ledger, &[item.id]).await?;
            Some(levels.get(&item.id).copied().unwrap_or(0))
        } else {
            None
        };
        Ok((item, level))
    }

    /// The shop's catalogue with stock levels (None: stock not tracked).
    pub async fn catalogue(
        &self,
        p: &Principal,
        shop_id: Uuid,
    ) -> Result<Vec<(Item, Option<i64>)>> {
        let shop = self.shop(p, shop_id).await?;
        let ledger = Self::ledger_of(p);
        let items = self.store.items(ledger, shop.id).await?;
        self.with_stock(ledger, items).await
    }

    /// `items` with their stock levels (None: stock not tracked).
    async fn with_stock(&self, ledger: &str, items: Vec<Item>) -> Result<Vec<(Item, Option<i64>)>> {
        let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
        let levels = self.store.stock_levels(ledger, &ids).await?;
        Ok(items
            .into_iter()
            .map(|i| {
                let level = i
                    .track_stock
                    .then(|| levels.get(&i.id).copied().unwrap_or(0));
                (i, level)
            })
            .collect())
    }

    /// Moves stock (restock, a count correction, damage, a return to the supplier).
    pub async fn move_stock(
        &self,
        p: &Principal,
        key: &str,
        shop_id: Uuid,
        sku: &str,
        change: StockChange,
    ) -> Result<i64> {
        let StockChange {
            delta,
            reason,
            note,
        } = change;
        let (reason, note) = (reason.as_str(), note.as_str());
        let shop = self.shop(p, shop_id).await?;
        if !self.runs_shop(p, &shop).await? {
            return Err(Error::not_found());
        }
        if !["restock", "count", "damaged", "returned_to_supplier"].contains(&reason) {
            return Err(err(
                ErrorCode::InvalidBody,
                "reason must be restock, count, damaged or returned_to_supplier",
            ));
        }
        if delta == 0 || delta.abs() > 1_000_000 {
            return Err(err(ErrorCode::InvalidBody, "delta must be ±1 to ±1000000"));
        }
        check_text("note", note, false)?;
        let ledger = Self::ledger_of(p);
        let item = self
            .store
            .items(ledger, shop.id)
            .await?
            .into_iter()
            .find(|i| i.sku == sku)
            .ok_or_else(|| {
                err(
                    ErrorCode::UnknownItem,
                    format!("no item {sku} in this shop"),
                )
            })?;
        if !item.track_stock {
            return Err(err(
                ErrorCode::InvalidBody,
                "this item's stock is not tracked",
            ));
        }
        let mv = StockMove {
            id: derived_id("aixin.stock-move.v1", &[ledger, &p.actor(), key]),
            item_id: item.id,
            delta,
            reason: reason.to_owned(),
            note: note.to_owned(),
            actor: p.actor(),
            level: 0,
            at_micros: self.now(),
        };
        let store = self.store.clone();
        let ledger_owned = ledger.to_owned();
        match detach(async move { store.move_stock(&ledger_owned, &mv).await }).await?? {
            StockMoved::Moved(level) | StockMoved::Replayed(level) => Ok(level),
            StockMoved::Insufficient(level) => Err(err(
                ErrorCode::OutOfStock,
                format!("only {level} in stock; the move would go below zero"),
            )),
            StockMoved::IdReused => Err(Error::key_reused()),
        }
    }

    pub async fn stock_history(
        &self,
        p: &Principal,
        shop_id: Uuid,
        sku: &str,
    ) -> Result<Vec<StockMove>> {
        let shop = self.shop(p, shop_id).await?;
        let ledger = Self::ledger_of(p);
        let item = self
            .store
            .items(ledger, shop.id)
            .await?
            .into_iter()
            .find(|i| i.sku == sku)
            .ok_or_else(Error::not_found)?;
        Ok(self.store.stock_moves(ledger, item.id, 200).await?)
    }

    // ---- Credentials and codes ----

    async fn resident_for_staff(&self, p: &Principal, resident: Uuid) -> Result<Resident> {
        let r = self.earning.resident(p, resident).await?;
        if !self.earning.manages(p, &r.community_id).await? {
            return Err(Error::not_found());
        }
        Ok(r)
    }

    fn secret_of(&self, ledger: &str, credential: &Credential) -> [u8; 32] {
        let generation = u32::try_from(credential.generation).unwrap_or(u32::MAX);
        self.keys
            .get()
            .credential_secret(ledger, credential.id, generation)
    }

    /// Issues (or re-issues, with a new secret and PIN, unlocking it) a resident's credential.
    /// Issues or re-issues a resident's credential. Idempotent by `key`: the same key again
    /// answers the credential it issued (same number, secret and PIN) instead of re-issuing.
    pub async fn issue_credential(
        &self,
        p: &Principal,
        key: &str,
        resident: Uuid,
    ) -> Result<IssuedCredential> {
        require_staff(p)?;
        let r = self.resident_for_staff(p, resident).await?;
        let ledger = Self::ledger_of(p).to_owned();
        for _ in 0..16 {
            let mut random = [0u8; 4];
            self.earning.entropy.fill(&mut random);
            let number = 1 + u32::from_be_bytes(random) % code::NUMBER_MAX;
            let new_id = self.earning.entropy.uuid();
            let store = self.store.clone();
            let ledger_owned = ledger.clone();
            let key_owned = key.to_owned();
            let now = self.now();
            let issued = detach(async move {
                store
                    .issue_credential(&ledger_owned, r.id, new_id, number, &key_owned, now)
                    .await
            })
            .await??;
            if let Issued::Issued(c) | Issued::Replayed(c) = issued {
                let secret = self.secret_of(&ledger, &c);
                return Ok(IssuedCredential {
                    credential_id: c.id,
                    number: format!("{:09}", c.number),
                    generation: c.generation,
                    secret: hex::encode(secret),
                    card_pin: format!("{:06}", code::pin(&secret, c.number)),
                });
            }
        }
        Err(err(ErrorCode::Unavailable, ErrorCode::Unavailable.title()))
    }

    /// Whether `pin` is the PIN printed on the card of the resident's active credential,
    /// compared in constant time. For the sign-in service (a resident's phone and card PIN); it
    /// counts no failure against the credential (the sign-in service counts its own).
    pub async fn card_pin_matches(&self, ledger: &str, resident: Uuid, pin: &str) -> Result<bool> {
        let presented = Some(pin)
            .filter(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok());
        let credential = self
            .store
            .credential_of(ledger, resident)
            .await?
            .filter(|c| c.active);
        let (Some(presented), Some(credential)) = (presented, credential) else {
            return Ok(false);
        };
        let secret = self.secret_of(ledger, &credential);
        Ok(code::pin_matches(&secret, credential.number, presented))
    }

    pub async fn revoke_credential(&self, p: &Principal, resident: Uuid) -> Result<()> {
        require_staff(p)?;
        let r = self.resident_for_staff(p, resident).await?;
        let store = self.store.clone();
        let ledger = Self::ledger_of(p).to_owned();
        let now = self.now();
        if detach(async move { store.revoke_credential(&ledger, r.id, now).await }).await?? {
            Ok(())
        } else {
            Err(Error::not_found())
        }
    }

    /// The code the resident shows now (the resident themself, or staff on their behalf).
    pub async fn current_code(&self, p: &Principal, resident: Uuid) -> Result<CurrentCode> {
        let r = self.earning.resident(p, resident).await?;
        let visible = match p.role {
            Role::Resident => true,
            Role::Admin | Role::Staff => self.earning.manages(p, &r.community_id).await?,
            _ => false,
        };
        if !visible {
            return Err(Error::not_found());
        }
        let ledger = Self::ledger_of(p);
        let credential = self
            .store
            .credential_of(ledger, r.id)
            .await?
            .filter(|c| c.active)
            .ok_or_else(|| {
                err(
                    ErrorCode::CredentialRevoked,
                    "the resident has no active credential; staff can issue one",
                )
            })?;
        let now = self.now();
        let seconds = now.div_euclid(1_000_000);
        let secret = self.secret_of(ledger, &credential);
        // A credential's last step starts at 0 (1970): no code of it was ever used.
        let last_used_step = Some(credential.last_step).filter(|s| *s > 0);
        let now_step = code::step_of(now);
        let step = code::step_to_show(now_step, last_used_step);
        Ok(CurrentCode {
            code: code::code_for_step(&secret, credential.number, step),
            layout: code::LAYOUT,
            number: format!("{:09}", credential.number),
            step,
            last_used_step,
            expires_in_seconds: (step + 1) * code::STEP_SECONDS - seconds,
            valid_in_seconds: ((step - code::STEP_WINDOW) * code::STEP_SECONDS - seconds).max(0),
        })
    }

    /// The code secret (hex) for the resident's own phone, which makes the codes itself and so
    /// keeps showing them without a network. Only the resident signed in as themself gets it;
    /// staff hand it over only at issuance.
    pub async fn phone_secret(&self, p: &Principal, resident: Uuid) -> Result<String> {
        if p.role != Role::Resident || p.scope.as_deref() != Some(&resident.to_string()) {
            return Err(Error::not_found());
        }
        let ledger = Self::ledger_of(p);
        let credential = self
            .store
            .credential_of(ledger, resident)
            .await?
            .filter(|c| c.active)
            .ok_or_else(|| Error::bare(ErrorCode::CredentialRevoked))?;
        Ok(hex::encode(self.secret_of(ledger, &credential)))
    }

    // ---- Redeeming ----

    /// Redeems a basket at the caller's shop with a code or card.
    pub async fn redeem(
        &self,
        p: &Principal,
        key: &str,
        shown: Shown,
        basket: &[(String, u32)],
    ) -> Result<Exchange> {
        let view = self.till_of(p).await?;
        let ledger = Self::ledger_of(p).to_owned();
        let (shop, items) = (&view.0, &view.1);
        check_basket(basket)?;
        let (number, proof, shown_bytes) = parse_shown(&shown)?;
        // A number no credential has takes the same path as a known one, through the writer, as
        // a presentation that fails there: the same work, the same answer, so neither the body
        // nor the time taken tells whether a number exists.
        let holder = match self.store.credential_holder(&ledger, number).await? {
            Some(holder) => holder,
            None => stand_in_holder(&ledger, number, shop),
        };
        let credential = &holder.credential;
        let day = day_of(self.now());
        let mut priced = price_basket(items, basket, credential.resident_id, day);
        let serving = shop.communities.contains(&holder.community_id);
        if !serving {
            priced.refusal.get_or_insert(LedgerError::ShopNotServing);
        }
        let total: i64 = priced.lines.iter().map(|l| l.points_minor).sum();
        let total = Amount::from_minor(total.max(1))
            .map_err(|e| err(e.into(), "the basket's total is out of range"))?;
        let receipt = ReceiptDraft {
            id: derived_id("aixin.receipt.v1", &[&ledger, &p.actor(), key]),
            kind: "redemption".to_owned(),
            shop_id: shop.id,
            shop_name: clip(&shop.name_zh),
            resident_id: credential.resident_id,
            resident_pseudonym: holder.pseudonym.clone(),
            community_id: holder.community_id.clone(),
            account: holder.account_id,
            total_minor: total.minor(),
            refund_of: None,
            lines_json: lines_json(&priced.lines)?,
        };
        let draft = EntryDraft {
            kind: EntryKind::Redeem,
            postings: points_moved(holder.account_id, shop.account_id, total),
            memo: basket_memo("兑换", &priced.lines),
            metadata: receipt_metadata(&receipt),
            reverses: None,
        };
        if let Err(e) = draft.check() {
            priced.refusal.get_or_insert(e);
        }
        let conditions = Conditions {
            limits: priced.limits,
            guard: None,
            presentation: Some(Presentation {
                credential: credential.id,
                number,
                generation: credential.generation,
                secret: self.secret_of(&ledger, credential),
                shop: shop.id,
                serving,
                proof,
            }),
            pre_refusal: priced.refusal,
            receipt: Some(receipt),
            fingerprint_extra: Some(shown_bytes.into_bytes()),
        };
        self.post(&ledger, key, p.actor(), draft, conditions, items)
            .await
    }

    /// What the till shows: the caller's shop and its items on sale, with stock (None: not
    /// counted). For the shop's staff, cashiers included — what they need to ring up a basket.
    pub async fn till(&self, p: &Principal) -> Result<(Shop, Vec<(Item, Option<i64>)>)> {
        if !matches!(p.role, Role::Shop | Role::Cashier) {
            return Err(Error::not_found());
        }
        let shop_id = p
            .scope
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(Error::not_found)?;
        let ledger = Self::ledger_of(p);
        let shop = self
            .store
            .shop(ledger, shop_id)
            .await?
            .ok_or_else(Error::not_found)?;
        let items: Vec<Item> = self
            .store
            .items(ledger, shop.id)
            .await?
            .into_iter()
            .filter(|i| i.active)
            .collect();
        Ok((shop, self.with_stock(ledger, items).await?))
    }

    /// The caller's shop and catalogue: only shop staff (cashiers included) redeem, at their
    /// own shop.
    async fn till_of(&self, p: &Principal) -> Result<TillView> {
        if !matches!(p.role, Role::Shop | Role::Cashier) {
            return Err(Error::forbidden());
        }
        let shop_id = p
            .scope
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(Error::forbidden)?;
        self.till_view(Self::ledger_of(p), shop_id)
            .await?
            .ok_or_else(Error::forbidden)
    }

    /// Posts a redemption or refund; a refusal that concerns one of `items` names it.
    async fn post(
        &self,
        ledger: &str,
        key: &str,
        actor: String,
        draft: EntryDraft,
        conditions: Conditions,
        items: &[Item],
    ) -> Result<Exchange> {
        let outcome = self
            .earning
            .writers
            .get(ledger)
            .submit_with(key.to_owned(), actor, draft, conditions)
            .await?;
        let (entry, created) = match outcome {
            Outcome::Posted(e) => (e, true),
            Outcome::Replayed(e) => (e, false),
            Outcome::Refused(refusal) => return Err(refusal_error(refusal, items)),
        };
        let stored = self
            .store
            .receipt_by_entry(ledger, entry.id)
            .await?
            .ok_or_else(|| {
                err(
                    ErrorCode::IdempotencyKeyReused,
                    "this idempotency key was used for a different request",
                )
            })?;
        // A receipt just created cannot have been refunded yet.
        let refunded_by = if created || stored.kind == "refund" {
            None
        } else {
            self.store.refund_of(ledger, stored.id).await?.map(|r| r.id)
        };
        Ok(Exchange {
            signed: self.sign(ledger, &stored)?,
            created,
            refunded_by,
        })
    }

    /// Signs a stored receipt with the active key.
    pub fn sign(&self, ledger: &str, stored: &StoredReceipt) -> Result<SignedReceipt> {
        let lines: Vec<StoredLine> = serde_json::from_str(&stored.lines_json)
            .map_err(|_| err(ErrorCode::Internal, ErrorCode::Internal.title()))?;
        let receipt = Receipt {
            key_id: String::new(),
            ledger_id: ledger.to_owned(),
            id: stored.id,
            kind: ReceiptKind::parse(&stored.kind)
                .ok_or_else(|| err(ErrorCode::Internal, ErrorCode::Internal.title()))?,
            refund_of: stored.refund_of,
            shop_id: stored.shop_id,
            shop_name: stored.shop_name.clone(),
            resident: stored.resident_pseudonym.clone(),
            lines: lines
                .iter()
                .map(|l| ReceiptLine {
                    sku: l.sku.clone(),
                    name: clip(&l.name_zh),
                    unit: l.unit.clone(),
                    quantity: l.quantity,
                    unit_points_minor: l.unit_minor,
                    points_minor: l.points_minor,
                })
                .collect(),
            total_minor: stored.total_minor,
            balance_after_minor: stored.balance_after_minor,
            entry_seq: stored.entry_seq,
            entry_hash: stored.entry_hash,
            posted_at_micros: stored.posted_at_micros,
        };
        Ok(receipt.sign(&self.keys.get()))
    }

    /// A receipt visible to `p`: the shop's staff, the resident, admin, auditor, staff over the
    /// resident's community.
    pub async fn receipt(&self, p: &Principal, id: Uuid) -> Result<Exchange> {
        let ledger = Self::ledger_of(p);
        let stored = self.visible_receipt(p, id).await?;
        let refunded_by = self.store.refund_of(ledger, stored.id).await?.map(|r| r.id);
        Ok(Exchange {
            signed: self.sign(ledger, &stored)?,
            created: false,
            refunded_by,
        })
    }

    /// The love shops where the signed-in resident can spend points, with what they offer now.
    pub async fn shops_for_resident(
        &self,
        p: &Principal,
        resident: Uuid,
    ) -> Result<Vec<(Shop, Vec<Item>)>> {
        if p.role != Role::Resident {
            return Err(Error::not_found());
        }
        let r = self.earning.resident(p, resident).await?;
        let ledger = Self::ledger_of(p);
        let mut shops = Vec::new();
        for id in self.store.shops_serving(ledger, &r.community_id).await? {
            let Some(shop) = self.store.shop(ledger, id).await? else {
                continue;
            };
            let items: Vec<Item> = self
                .store
                .items(ledger, shop.id)
                .await?
                .into_iter()
                .filter(|i| i.active)
                .collect();
            shops.push((shop, items));
        }
        Ok(shops)
    }

    /// The stored receipt `id` if `p` may see it (see [`Redemption::receipt`]), else not found.
    async fn visible_receipt(&self, p: &Principal, id: Uuid) -> Result<StoredReceipt> {
        let stored = self
            .store
            .receipt(Self::ledger_of(p), id)
            .await?
            .ok_or_else(Error::not_found)?;
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Shop | Role::Cashier => p.scope.as_deref() == Some(&stored.shop_id.to_string()),
            Role::Resident => p.scope.as_deref() == Some(&stored.resident_id.to_string()),
            Role::Staff => self.earning.manages(p, &stored.community_id).await?,
        };
        if visible {
            Ok(stored)
        } else {
            Err(Error::not_found())
        }
    }

    /// The resident's name as a printed receipt shows it, masked (王*英): for whoever may see
    /// the receipt (the shop's clerks included), never more of the name than that.
    pub async fn masked_resident_name(&self, p: &Principal, receipt_id: Uuid) -> Result<String> {
        let stored = self.visible_receipt(p, receipt_id).await?;
        let name = self
            .earning
            .store
            .resident(Self::ledger_of(p), stored.resident_id)
            .await?
            .map(|r| r.name)
            .unwrap_or_default();
        Ok(mask_name(&name))
    }

    /// The receipt of a posted entry (a redemption or refund), for whoever may see it: the
    /// resident's history links to its receipts by entry.
    pub async fn receipt_of_entry(&self, p: &Principal, entry_id: Uuid) -> Result<Exchange> {
        let stored = self
            .store
            .receipt_by_entry(Self::ledger_of(p), entry_id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.receipt(p, stored.id).await
    }

    /// Verifies a receipt's compact form against the key file; online also whether it is known
    /// and whether it was refunded since: in `ledger` (a signed-in caller's), or for the public
    /// check (None) in the ledger the receipt itself names — only once its signature verifies.
    pub async fn verify_receipt(
        &self,
        ledger: Option<&str>,
        compact: &str,
    ) -> Result<(
        std::result::Result<Receipt, receipt::ReceiptError>,
        bool,
        Option<Uuid>,
    )> {
        let verified = receipt::verify_compact(&self.keys.get(), compact);
        let (known, refunded_by) = match &verified {
            Ok(r) if ledger.is_none_or(|l| l == r.ledger_id) => {
                match self.store.receipt(&r.ledger_id, r.id).await? {
                    Some(stored) => (
                        stored.entry_seq == r.entry_seq && stored.entry_hash == r.entry_hash,
                        self.store
                            .refund_of(&r.ledger_id, r.id)
                            .await?
                            .map(|x| x.id),
                    ),
                    None => (false, None),
                }
            }
            _ => (false, None),
        };
        Ok((verified, known, refunded_by))
    }

    // ---- Refunds ----

    /// Refunds a redemption fully (`basket` None) or in part.
    pub async fn refund(
        &self,
        p: &Principal,
        key: &str,
        receipt_id: Uuid,
        basket: Option<&[(String, u32)]>,
    ) -> Result<Exchange> {
        let ledger = Self::ledger_of(p).to_owned();
        let (original, shop) = self.refundable(p, receipt_id).await?;
        let entry = self
            .earning
            .ledger
            .entry(&ledger, original.entry_id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.check_refunder(p, &shop, &entry).await?;
        self.check_refund_window(&ledger, &shop, &original).await?;
        let taken: Vec<StoredLine> = serde_json::from_str(&original.lines_json)
            .map_err(|_| err(ErrorCode::Internal, ErrorCode::Internal.title()))?;
        let wanted: Vec<(String, u32)> = match basket {
            None => taken.iter().map(|l| (l.sku.clone(), l.quantity)).collect(),
            Some(b) => {
                check_basket(b)?;
                b.to_vec()
            }
        };
        let items = self.store.items(&ledger, shop.id).await?;
        let (lines, limits) = refund_lines(&original, &taken, &wanted, &items)?;
        let total: i64 = lines.iter().map(|l| l.points_minor).sum();
        let total = Amount::from_minor(total)
            .map_err(|e| err(e.into(), "the refund's total is out of range"))?;
        let resident_account = entry
            .postings
            .iter()
            .find(|p| p.side == Side::Debit)
            .map(|p| p.account)
            .ok_or_else(|| err(ErrorCode::Internal, ErrorCode::Internal.title()))?;
        let receipt = ReceiptDraft {
            id: derived_id("aixin.receipt.v1", &[&ledger, &p.actor(), key]),
            kind: "refund".to_owned(),
            shop_id: shop.id,
            shop_name: original.shop_name.clone(),
            resident_id: original.resident_id,
            resident_pseudonym: original.resident_pseudonym.clone(),
            community_id: original.community_id.clone(),
            account: resident_account,
            total_minor: total.minor(),
            refund_of: Some(original.id),
            lines_json: lines_json(&lines)?,
        };
        let draft = EntryDraft {
            kind: EntryKind::Refund,
            postings: points_moved(shop.account_id, resident_account, total),
            memo: basket_memo("退还", &lines),
            metadata: receipt_metadata(&receipt),
            reverses: Some(original.entry_id),
        };
        draft.check()?;
        let conditions = Conditions {
            limits,
            receipt: Some(receipt),
            ..Default::default()
        };
        self.post(&ledger, key, p.actor(), draft, conditions, &[])
            .await
    }

    /// The redemption receipt `receipt_id` and its shop, for an admin or the shop's own staff
    /// (anyone else learns nothing about it).
    async fn refundable(&self, p: &Principal, receipt_id: Uuid) -> Result<(StoredReceipt, Shop)> {
        let ledger = Self::ledger_of(p);
        let original = self
            .store
            .receipt(ledger, receipt_id)
            .await?
            .ok_or_else(Error::not_found)?;
        let shop = self
            .store
            .shop(ledger, original.shop_id)
            .await?
            .ok_or_else(Error::not_found)?;
        match p.role {
            Role::Admin => {}
            Role::Shop if p.scope.as_deref() == Some(&shop.id.to_string()) => {}
            _ => return Err(Error::not_found()),
        }
        if original.kind != "redemption" {
            return Err(err(
                ErrorCode::RefundOfNonRedemption,
                "only a redemption receipt can be refunded",
            ));
        }
        Ok((original, shop))
    }

    /// The staff member who redeemed (the redemption `entry`'s actor) does not refund it;
    /// the shop's owner may.
    async fn check_refunder(&self, p: &Principal, shop: &Shop, entry: &PostedEntry) -> Result<()> {
        if p.role == Role::Shop && entry.actor == p.actor() {
            let owner = self
                .store
                .shop_staff(Self::ledger_of(p), p.token_id)
                .await?
                .is_some_and(|s| s.owner && s.shop_id == shop.id);
            if !owner {
                return Err(err(
                    ErrorCode::RefunderIsRedeemer,
                    "the staff member who redeemed cannot refund it; ask the owner or a colleague",
                ));
            }
        }
        Ok(())
    }

    /// A redemption is refunded within the shop's window; once refunded, a retry is answered
    /// after it too.
    async fn check_refund_window(
        &self,
        ledger: &str,
        shop: &Shop,
        original: &StoredReceipt,
    ) -> Result<()> {
        let now = self.now();
        if now
            >= original
                .posted_at_micros
                .saturating_add(shop.refund_window_days * DAY_MICROS)
            && self.store.refund_of(ledger, original.id).await?.is_none()
        {
            return Err(err(
                ErrorCode::RefundWindowClosed,
                format!(
                    "the shop refunds within {} days of a redemption",
                    shop.refund_window_days
                ),
            ));
        }
        Ok(())
    }

    // ---- Settlement ----

    /// The statement of a shop for the calendar days `from..=to`: every receipt posted then,
    /// settled or not.
    pub async fn statement(
        &self,
        p: &Principal,
        shop_id: Uuid,
        from: Date,
        to: Date,
    ) -> Result<Statement> {
        let shop = self.shop(p, shop_id).await?;
        check_period(from, to)?;
        let ledger = Self::ledger_of(p);
        let end = day_end_micros(to)?;
        let receipts = self
            .bounded_receipts(ledger, shop.id, day_start_micros(from), end)
            .await?;
        self.statement_of(ledger, &shop, from, to, &receipts).await
    }

    /// The shop's receipts posted in `[from_micros, to_micros)`, refused beyond
    /// [`STATEMENT_RECEIPTS_MAX`].
    async fn bounded_receipts(
        &self,
        ledger: &str,
        shop: Uuid,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Vec<StoredReceipt>> {
        let receipts = self
            .store
            .shop_receipts(
                ledger,
                shop,
                from_micros,
                to_micros,
                STATEMENT_RECEIPTS_MAX + 1,
            )
            .await?;
        if receipts.len() as i64 > STATEMENT_RECEIPTS_MAX {
            return Err(err(
                ErrorCode::InvalidQuery,
                "the period holds too many receipts; settle a shorter one",
            ));
        }
        Ok(receipts)
    }

    /// The statement of `receipts`, with the settlement account that receives its net.
    async fn statement_of(
        &self,
        ledger: &str,
        shop: &Shop,
        from: Date,
        to: Date,
        receipts: &[StoredReceipt],
    ) -> Result<Statement> {
        let (_, home) = self.earning.community(ledger, &shop.community_id).await?;
        let mut by: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let (mut redemptions, mut refunds) = (0, 0);
        for r in receipts {
            let slot = by.entry(r.community_id.clone()).or_default();
            if r.kind == "refund" {
                refunds += 1;
                slot.1 += r.total_minor;
            } else {
                redemptions += 1;
                slot.0 += r.total_minor;
            }
        }
        let redeemed: i64 = by.values().map(|v| v.0).sum();
        let refunded: i64 = by.values().map(|v| v.1).sum();
        Ok(Statement {
            shop_id: shop.id,
            from,
            to,
            redemptions,
            refunds,
            redeemed_minor: redeemed,
            refunded_minor: refunded,
            net_minor: redeemed - refunded,
            settlement_community_id: shop.community_id.clone(),
            settlement_account: home.settlement_account,
            by_community: by
                .into_iter()
                .map(|(community_id, (d, f))| CommunityLine {
                    community_id,
                    redeemed_minor: d,
                    refunded_minor: f,
                    net_minor: d - f,
                    settled_into: shop.community_id.clone(),
                })
                .collect(),
            receipts: receipts
                .iter()
                .map(|r| StatementReceipt {
                    receipt_id: r.id,
                    kind: r.kind.clone(),
                    posted_at_micros: r.posted_at_micros,
                    community_id: r.community_id.clone(),
                    resident: r.resident_pseudonym.clone(),
                    points_minor: r.total_minor,
                    entry_seq: r.entry_seq,
                })
                .collect(),
            after_seq: None,
            through_seq: None,
            entry_id: None,
            entry_seq: None,
        })
    }

    /// Settles every receipt of the shop not settled yet, up to the end of `to` or now (older
    /// unsettled ones too: the statement's `from` then says where they start): an entry from the shop to its home community's settlement account for their
    /// net points. `to` may be today (日结 at the counter): the settlement covers the ledger up
    /// to its head when read, and later exchanges fall into the next settlement. Every receipt
    /// is settled exactly once: a settlement covers the entries `after_seq + 1 ..= through_seq`
    /// of the ledger, and starts where the shop's last one ended (a counter the planner checks
    /// under the ledger lock, so concurrent settlements cannot overlap). A repeat with the same
    /// idempotency key answers the settlement it made.
    pub async fn settle(
        &self,
        p: &Principal,
        key: &str,
        shop_id: Uuid,
        from: Date,
        to: Date,
    ) -> Result<(Statement, bool)> {
        // The shop itself closes its day at the counter (日结); its community's staff and an
        // administrator may settle it too. A cashier (scan only) and an auditor may not.
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Shop) {
            return Err(Error::forbidden());
        }
        let shop = self.shop(p, shop_id).await?;
        check_period(from, to)?;
        let now = self.now();
        if to > day_of(now) {
            return Err(err(
                ErrorCode::DateInvalid,
                "a settlement cannot cover a day after today",
            ));
        }
        let ledger = Self::ledger_of(p);
        let request = settle_request(&p.actor(), key);
        if let Some(done) = self.settlement_made(ledger, &shop, &request).await? {
            return Ok((done, false));
        }
        let counter_key = settled_key(shop.id);
        let counter = self.earning.store.counter(ledger, &counter_key).await?;
        let after_seq = match counter {
            Some(seq) => seq,
            None => self.settled_by_day(ledger, &shop).await?,
        };
        // The cut: the head as read now (every entry up to it is committed), or the last entry
        // before the end of `to` if that day is over.
        let head = self.earning.ledger.head(ledger).await?.map_or(0, |h| h.seq);
        let end = day_end_micros(to)?;
        let through_seq = if end > now {
            head
        } else {
            head.min(self.earning.ledger.last_seq_before(ledger, end).await?)
        };
        let pending = self
            .unsettled(ledger, shop.id, after_seq, through_seq, end)
            .await?;
        // Exchanges of days before `from` not settled yet (a period whose net was not above
        // zero, say) are settled with it: the statement's period starts at the first of them.
        let from = pending
            .first()
            .map(|r| day_of(r.posted_at_micros))
            .filter(|day| *day < from)
            .unwrap_or(from);
        let mut statement = self.statement_of(ledger, &shop, from, to, &pending).await?;
        statement.after_seq = Some(after_seq);
        statement.through_seq = Some(through_seq);
        let net = Amount::from_minor(statement.net_minor).map_err(|_| {
            err(
                ErrorCode::NothingToSettle,
                "nothing left to settle: the unsettled net points of the period are not above zero",
            )
        })?;
        let draft = EntryDraft {
            kind: EntryKind::Settle,
            postings: points_moved(shop.account_id, statement.settlement_account, net),
            memo: format!(
                "结算 {} – {}，分录 {}–{} / settlement of entries {}–{}",
                statement.from,
                statement.to,
                after_seq + 1,
                through_seq,
                after_seq + 1,
                through_seq
            ),
            metadata: BTreeMap::from([
                ("shop".to_owned(), shop.id.to_string()),
                ("from".to_owned(), format_date(statement.from)),
                ("to".to_owned(), format_date(statement.to)),
                ("after_seq".to_owned(), after_seq.to_string()),
                ("through_seq".to_owned(), through_seq.to_string()),
                ("receipts".to_owned(), statement.receipts.len().to_string()),
                ("request".to_owned(), request.clone()),
            ]),
            reverses: None,
        };
        // Compare and set: the counter must still be at `after_seq`, and moves to `through_seq`.
        // (Against the value read: a shop whose earlier settlements were by whole days starts
        // from an absent counter, 0.)
        let limits = vec![Limit {
            key: counter_key,
            add_minor: through_seq - counter.unwrap_or(0),
            max_minor: through_seq,
            code: LimitCode::PeriodSettled,
        }];
        let outcome = self
            .earning
            .writers
            .get(ledger)
            .submit_with(
                key.to_owned(),
                p.actor(),
                draft,
                Conditions {
                    limits,
                    ..Default::default()
                },
            )
            .await?;
        let (entry, created) = match outcome {
            Outcome::Posted(e) => (e, true),
            Outcome::Replayed(e) => (e, false),
            Outcome::Refused(refusal) => {
                // A concurrent repeat of this very request settled first: answer it.
                if let Some(done) = self.settlement_made(ledger, &shop, &request).await? {
                    return Ok((done, false));
                }
                return Err(refusal.into());
            }
        };
        statement.entry_id = Some(entry.id);
        statement.entry_seq = Some(entry.seq);
        Ok((statement, created))
    }

    /// Where a shop without a `settled-seq:` counter starts: after the last entry of the
    /// latest day its earlier settlements (by whole days, before settling up to now) covered,
    /// or 0. Read once per shop, by pages of its account's entries.
    async fn settled_by_day(&self, ledger: &str, shop: &Shop) -> Result<i64> {
        let mut latest: Option<Date> = None;
        let mut before = None;
        loop {
            let page = self
                .earning
                .ledger
                .account_entries(ledger, shop.account_id, before, 500)
                .await?;
            for e in page.iter().filter(|e| e.kind == EntryKind::Settle) {
                if let Some(to) = e.metadata.get("to").and_then(|v| parse_date(v)) {
                    latest = latest.max(Some(to));
                }
            }
            match page.last() {
                Some(last) if page.len() == 500 => before = Some(last.seq),
                _ => break,
            }
        }
        match latest {
            Some(to) => Ok(self
                .earning
                .ledger
                .last_seq_before(ledger, day_end_micros(to)?)
                .await?),
            None => Ok(0),
        }
    }

    /// The shop's receipts in entries `after_seq + 1 ..= through_seq` posted before `end`.
    async fn unsettled(
        &self,
        ledger: &str,
        shop: Uuid,
        after_seq: i64,
        through_seq: i64,
        end: i64,
    ) -> Result<Vec<StoredReceipt>> {
        if through_seq <= after_seq {
            return Ok(Vec::new());
        }
        // Stamps never run backwards along the chain: every entry after `after_seq` is posted
        // at or after the first of them.
        let first = self
            .earning
            .ledger
            .entries_after(ledger, after_seq, 1)
            .await?;
        let Some(since) = first.first().map(|e| e.posted_at_micros) else {
            return Ok(Vec::new());
        };
        let mut receipts = self.bounded_receipts(ledger, shop, since, end).await?;
        receipts.retain(|r| r.entry_seq > after_seq && r.entry_seq <= through_seq);
        receipts.sort_by_key(|r| r.entry_seq);
        Ok(receipts)
    }

    /// The settlement this request already made, if any (found by its `request` metadata
    /// among the shop account's latest entries), as its statement.
    async fn settlement_made(
        &self,
        ledger: &str,
        shop: &Shop,
        request: &str,
    ) -> Result<Option<Statement>> {
        let recent = self
            .earning
            .ledger
            .account_entries(ledger, shop.account_id, None, SETTLEMENT_LOOKBACK)
            .await?;
        let Some(entry) = recent.into_iter().find(|e| {
            e.kind == EntryKind::Settle
                && e.metadata.get("request").map(String::as_str) == Some(request)
        }) else {
            return Ok(None);
        };
        let seq = |name: &str| -> i64 {
            entry
                .metadata
                .get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let day = |name: &str| entry.metadata.get(name).and_then(|v| parse_date(v));
        let (Some(from), Some(to)) = (day("from"), day("to")) else {
            return Ok(None);
        };
        let (after_seq, through_seq) = (seq("after_seq"), seq("through_seq"));
        let receipts = self
            .unsettled(ledger, shop.id, after_seq, through_seq, day_end_micros(to)?)
            .await?;
        let mut statement = self.statement_of(ledger, shop, from, to, &receipts).await?;
        statement.after_seq = Some(after_seq);
        statement.through_seq = Some(through_seq);
        statement.entry_id = Some(entry.id);
        statement.entry_seq = Some(entry.seq);
        Ok(Some(statement))
    }
}

/// A period runs `from..=to`, at most [`SETTLEMENT_DAYS_MAX`] days.
fn check_period(from: Date, to: Date) -> Result<()> {
    if to < from || (to - from).whole_days() >= SETTLEMENT_DAYS_MAX {
        return Err(err(
            ErrorCode::DateInvalid,
            format!("a period runs from..=to, at most {SETTLEMENT_DAYS_MAX} days"),
        ));
    }
    Ok(())
}

/// The first microsecond after the day `to`.
fn day_end_micros(to: Date) -> Result<i64> {
    to.next_day()
        .map(day_start_micros)
        .ok_or_else(|| err(ErrorCode::DateInvalid, "date out of range"))
}

/// The counter of the last ledger entry a shop's settlements cover.
fn settled_key(shop: Uuid) -> String {
    format!("settled-seq:{shop}")
}

/// A settlement request's name in its entry's metadata: who asked, under which idempotency
/// key (hashed: the key is the client's).
fn settle_request(actor: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("aixin.settle-request.v1\0{actor}\0{key}"));
    hex::encode(&digest[..16])
}

/// A new shop's names, its refund window in days (the default when not given), and every
/// community it serves, its own included, sorted and at most [`SHOP_COMMUNITIES_MAX`].
fn check_new_shop(new: &NewShop) -> Result<(i64, Vec<String>)> {
    check_text("name_zh", &new.name_zh, true)?;
    check_text("name_en", &new.name_en, false)?;
    let window = new.refund_window_days.unwrap_or(REFUND_WINDOW_DEFAULT_DAYS);
    if !(0..=90).contains(&window) {
        return Err(err(
            ErrorCode::InvalidBody,
            "refund_window_days must be 0 to 90",
        ));
    }
    let mut communities: Vec<String> = new.serves.clone();
    communities.push(new.community_id.clone());
    communities.sort();
    communities.dedup();
    if communities.len() > SHOP_COMMUNITIES_MAX {
        return Err(err(
            ErrorCode::InvalidBody,
            format!("a shop serves at most {SHOP_COMMUNITIES_MAX} communities"),
        ));
    }
    Ok((window, communities))
}

/// A refusal from the writer as an error, with the catalogue item it concerns named by its
/// code and name: a limit is keyed by the item's id (see [`item_limits`]), which means nothing
/// at a till.
fn refusal_error(refusal: LedgerError, items: &[Item]) -> Error {
    let item = match &refusal {
        LedgerError::LimitExceeded { key, .. } => items
            .iter()
            .find(|item| item_limit_keys(item.id).any(|k| key.starts_with(&k))),
        LedgerError::ItemInactive { item } => items.iter().find(|i| i.id == *item),
        _ => None,
    };
    let mut error = Error::from(refusal.clone());
    if let LedgerError::InsufficientBalance {
        unit,
        balance_minor,
        needed_minor,
        ..
    } = &refusal
    {
        // The resident's account id means nothing at a till: the balance and the shortfall do.
        error.detail = format!(
            "not enough {unit}: balance {}, needed {}, short by {}",
            format_minor(*balance_minor),
            format_minor(*needed_minor),
            format_minor(needed_minor.saturating_sub(*balance_minor))
        );
    }
    if let Some(item) = item {
        let what = match &refusal {
            LedgerError::ItemInactive { .. } => "is not on sale".to_owned(),
            _ => refusal.to_string(),
        };
        error.detail = format!("{} ({}): {what}", item.sku, item.name_zh);
        error.fields.sku = Some(item.sku.clone());
        error.fields.item = Some(item.name_zh.clone());
    }
    error
}

/// The beginnings of every limit key [`item_limits`] makes for `item`.
fn item_limit_keys(item: Uuid) -> impl Iterator<Item = String> {
    [
        stock_key(item),
        format!("icap:d:{item}:"),
        format!("icap:m:{item}:"),
    ]
    .into_iter()
}

/// The stock and cap limits of `quantity` units of `item` for `resident` on `day`.
fn item_limits(item: &Item, resident: Uuid, day: Date, quantity: i64) -> Vec<Limit> {
    let mut limits = Vec::new();
    if item.track_stock {
        limits.push(Limit {
            key: stock_key(item.id),
            add_minor: quantity,
            max_minor: 0,
            code: LimitCode::OutOfStock,
        });
    }
    if let Some(cap) = item.cap_day {
        limits.push(Limit {
            key: format!("icap:d:{}:{resident}:{}", item.id, format_date(day)),
            add_minor: quantity,
            max_minor: cap,
            code: LimitCode::ItemDailyCap,
        });
    }
    if let Some(cap) = item.cap_month {
        limits.push(Limit {
            key: format!("icap:m:{}:{resident}:{}", item.id, &format_date(day)[..7]),
            add_minor: quantity,
            max_minor: cap,
            code: LimitCode::ItemMonthlyCap,
        });
    }
    limits
}

/// What stands in for the holder of a number no credential has: a credential id no credential
/// can have (derived, so not a random one), a resident and account that do not exist, and the
/// shop's own community, so that the redemption is built exactly as for a known number and is
/// refused by the planner, which finds no such credential.
fn stand_in_holder(ledger: &str, number: u32, shop: &Shop) -> CredentialHolder {
    let number_text = number.to_string();
    let id = |what: &str| derived_id(what, &[ledger, &number_text]);
    CredentialHolder {
        credential: Credential {
            id: id("aixin.unknown-credential.v1"),
            resident_id: id("aixin.unknown-resident.v1"),
            number,
            generation: 1,
            active: false,
            last_step: 0,
            failures: 0,
        },
        pseudonym: "AX-00000000".to_owned(),
        community_id: shop.community_id.clone(),
        account_id: id("aixin.unknown-account.v1"),
    }
}

/// The credential number a resident shows, the proof that goes with it, and the bytes the
/// idempotency fingerprint adds for it. Text that is no aixin code is refused here, before
/// the writer, so it counts as no failed attempt: a payment app's code (a resident showing
/// the wrong app, or a scanner typing into the wrong field) as `foreign_payment_code`, naming
/// the app; anything else malformed as `redemption_code_invalid`.
fn parse_shown(shown: &Shown) -> Result<(u32, Proof, String)> {
    let invalid = |text: &str| match code::foreign_app(text) {
        Some(app) => foreign_payment_code(app),
        None => Error::from(LedgerError::RedemptionCodeInvalid),
    };
    Ok(match shown {
        Shown::Code(text) => {
            let ParsedCode { number, otp } = code::parse(text).map_err(|_| invalid(text))?;
            (number, Proof::Code { otp }, format!("code:{number}:{otp}"))
        }
        Shown::Card { number: text, pin } => {
            let number = code::parse_number(text).ok_or_else(|| invalid(text))?;
            let pin = code::parse_pin(pin).ok_or_else(|| invalid(pin))?;
            (number, Proof::Card { pin }, format!("card:{number}:{pin}"))
        }
    })
}

/// The refusal of a payment app's code shown at the till.
fn foreign_payment_code(app: code::PaymentApp) -> Error {
    let name = match app {
        code::PaymentApp::WeChat => "a WeChat Pay",
        code::PaymentApp::Alipay => "an Alipay",
        code::PaymentApp::UnionPay => "a UnionPay QuickPass",
    };
    err(
        ErrorCode::ForeignPaymentCode,
        format!("this is {name} payment code, not an aixin code: nothing was posted or counted"),
    )
    .with_fields(Fields {
        app: Some(app.as_str().to_owned()),
        ..Fields::default()
    })
}

/// A basket priced from the catalogue: its lines, the stock and cap limits they take, and the
/// first reason to refuse it (left to the writer, so a refused attempt still counts).
struct Priced {
    lines: Vec<StoredLine>,
    limits: Vec<Limit>,
    refusal: Option<LedgerError>,
}

/// Prices `basket` for `resident` on `day`; an unknown sku makes no line.
fn price_basket(items: &[Item], basket: &[(String, u32)], resident: Uuid, day: Date) -> Priced {
    let mut priced = Priced {
        lines: Vec::with_capacity(basket.len()),
        limits: Vec::new(),
        refusal: None,
    };
    for (sku, quantity) in basket {
        let Some(item) = items.iter().find(|i| &i.sku == sku) else {
            priced
                .refusal
                .get_or_insert(LedgerError::UnknownItem { sku: sku.clone() });
            continue;
        };
        if !item.active {
            priced
                .refusal
                .get_or_insert(LedgerError::ItemInactive { item: item.id });
        }
        let q = i64::from(*quantity);
        priced.lines.push(StoredLine {
            item: item.id,
            sku: item.sku.clone(),
            name_zh: item.name_zh.clone(),
            name_en: item.name_en.clone(),
            unit: item.unit.clone(),
            quantity: *quantity,
            unit_minor: item.price_minor,
            points_minor: item.price_minor.saturating_mul(q),
        });
        priced.limits.extend(item_limits(item, resident, day, q));
    }
    priced
}

/// The lines of a refund of `wanted` from the redemption `original` (whose lines were
/// `taken`), and the limits giving back the stock and cap room those units took.
fn refund_lines(
    original: &StoredReceipt,
    taken: &[StoredLine],
    wanted: &[(String, u32)],
    items: &[Item],
) -> Result<(Vec<StoredLine>, Vec<Limit>)> {
    let original_day = day_of(original.posted_at_micros);
    let mut lines = Vec::new();
    let mut limits = Vec::new();
    for (sku, quantity) in wanted {
        let line = taken.iter().find(|l| &l.sku == sku).ok_or_else(|| {
            err(
                ErrorCode::RefundExceedsRedemption,
                format!("{sku} was not part of this redemption"),
            )
        })?;
        if *quantity > line.quantity {
            return Err(err(
                ErrorCode::RefundExceedsRedemption,
                format!("only {} of {sku} were redeemed", line.quantity),
            ));
        }
        let q = i64::from(*quantity);
        lines.push(StoredLine {
            quantity: *quantity,
            points_minor: line.unit_minor * q,
            ..line.clone()
        });
        if let Some(item) = items.iter().find(|i| i.id == line.item) {
            // Give back the stock and the resident's cap room the redemption took.
            limits.extend(
                item_limits(item, original.resident_id, original_day, q)
                    .into_iter()
                    .map(|l| Limit {
                        add_minor: -l.add_minor,
                        max_minor: i64::MAX,
                        ..l
                    }),
            );
        }
    }
    Ok((lines, limits))
}

/// Basket lines as stored on a receipt.
fn lines_json(lines: &[StoredLine]) -> Result<String> {
    serde_json::to_string(lines).map_err(|_| err(ErrorCode::Internal, ErrorCode::Internal.title()))
}

/// The postings moving `amount` points from one account to another.
fn points_moved(from: Uuid, to: Uuid, amount: Amount) -> Vec<Posting> {
    vec![
        Posting {
            account: from,
            unit: Unit::Points,
            side: Side::Debit,
            amount,
        },
        Posting {
            account: to,
            unit: Unit::Points,
            side: Side::Credit,
            amount,
        },
    ]
}

/// The metadata tying a redemption or refund entry to its receipt, shop and basket.
fn receipt_metadata(receipt: &ReceiptDraft) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::from([
        ("receipt".to_owned(), receipt.id.to_string()),
        ("shop".to_owned(), receipt.shop_id.to_string()),
        (
            "basket_sha256".to_owned(),
            hex::encode(Sha256::digest(&receipt.lines_json)),
        ),
    ]);
    if let Some(original) = receipt.refund_of {
        metadata.insert("refund_of".to_owned(), original.to_string());
    }
    metadata
}

fn check_basket(basket: &[(String, u32)]) -> Result<()> {
    let mut seen = HashSet::new();
    let ok = !basket.is_empty()
        && basket.len() <= receipt::RECEIPT_LINES_MAX
        && basket.iter().all(|(sku, q)| {
            (1..=QUANTITY_MAX).contains(q) && sku.len() <= SKU_MAX_BYTES && seen.insert(sku)
        });
    if ok {
        Ok(())
    } else {
        Err(err(
            ErrorCode::BasketInvalid,
            format!(
                "a basket holds 1 to {} distinct items, each 1 to {QUANTITY_MAX} units",
                receipt::RECEIPT_LINES_MAX
            ),
        ))
    }
}

/// A short human description for the entry's memo, cut to the memo limit.
fn basket_memo(verb: &str, lines: &[StoredLine]) -> String {
    let mut memo = verb.to_owned();
    for (i, l) in lines.iter().enumerate() {
        memo.push_str(if i == 0 { " " } else { "，" });
        memo.push_str(&format!("{}×{}", l.name_zh, l.quantity));
    }
    let mut end = memo.len().min(crate::ledger::entry::MEMO_MAX_BYTES);
    while !memo.is_char_boundary(end) {
        end -= 1;
    }
    memo.truncate(end);
    memo
}

/// A name with its middle hidden: 王秀英 → 王*英, 李明 → 李*, a single character kept.
///
/// ```
/// assert_eq!(aixin::redeem::service::mask_name("王秀英"), "王*英");
/// assert_eq!(aixin::redeem::service::mask_name("欧阳明华"), "欧**华");
/// assert_eq!(aixin::redeem::service::mask_name("李明"), "李*");
/// ```
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => chars[0].to_string(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

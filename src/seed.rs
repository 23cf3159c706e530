//! `aixin seed-demo`: fills an empty ledger with a realistic demo programme, built through the
//! same operations staff use: a county with three streets and a community each (three expiry
//! policies), two earning rules per community, residents with Chinese names and redemption
//! cards, love shops with catalogues, and six months of volunteer service recorded and approved
//! by two staff members per community, with card redemptions (receipts), refunds by the other
//! clerk, monthly settlements and expiry in between. The demo's *data* is deterministic for a
//! given seed and ledger id; its *secrets* never are: the tokens the seed acts with and the key
//! ring its cards derive from come from the operating system's random source, the tokens expire
//! when seeding ends and their secrets are dropped, so no two installations share a secret and
//! none is known to anyone. The whole history lies before the moment seeding starts.
//!
//! `aixin seed-demo` derives the cards from the server's key file ([`seed_demo_with_keys`]), so
//! that the codes and card PINs work against `serve`, and then opens the demo to a browser
//! ([`open_to_browsers`]): users, a till clerk and a resident who can sign in, through one-time
//! links and a PIN drawn from the OS and printed once.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::App;
use crate::auth::{new_token, Principal, Role};
use crate::calendar::day_of;
use crate::clock::{Clock, Entropy, ManualClock, OsEntropy, SeededEntropy};
use crate::earning::service::{NewOrgUnit, NewRecord, NewResident, RuleTerms};
use crate::earning::Earning;
use crate::error::{Error, ErrorCode};
use crate::keys::{KeyRing, SharedKeys};
use crate::ledger::{Amount, Unit};
use crate::model::{ExpiryPolicy, RuleMode};
use crate::redeem::service::{NewItem, NewShop, Shown};
use crate::redeem::Redemption;
use crate::session::{check_pin, Link};
use crate::store::{Store, StoreError, Stores};
use crate::writer::WriteError;

/// Most entries one seed run may create.
pub const SEED_ENTRIES_MAX: u64 = 1_000_000;

const STREETS: [(&str, &str, &str); 3] = [
    ("guting", "谷亭街道", "Guting Street"),
    ("jiaxiang", "嘉祥街道", "Jiaxiang Street"),
    ("jinxiang", "金乡街道", "Jinxiang Street"),
];
const COMMUNITIES: [(&str, &str, &str); 3] = [
    (
        "yutai-binhu",
        "鱼台县谷亭街道滨湖社区",
        "Binhu Community, Yutai",
    ),
    (
        "jiaxiang-wenhua",
        "嘉祥县嘉祥街道文化社区",
        "Wenhua Community, Jiaxiang",
    ),
    (
        "jinxiang-jinhe",
        "金乡县金乡街道金河社区",
        "Jinhe Community, Jinxiang",
    ),
];
const SHOPS: [&str; 3] = ["惠民爱心超市", "邻里粮油店", "便民爱心商铺"];
const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马", "朱", "胡", "郭", "何",
];
const GIVEN: [&str; 20] = [
    "秀英", "桂英", "建国", "淑兰", "志强", "海燕", "玉兰", "国庆", "丽娟", "德福", "春梅", "明亮",
    "凤霞", "晓东", "婷婷", "家豪", "文华", "金凤", "子涵", "卫东",
];
/// (sku, name, English name, unit, points)
const GOODS: [(&str, &str, &str, &str, &str); 4] = [
    ("RICE5", "东北大米 5kg", "Rice 5 kg", "袋", "40"),
    ("FLOUR5", "面粉 5kg", "Flour 5 kg", "袋", "30"),
    ("OIL18", "花生油 1.8L", "Peanut oil 1.8 L", "桶", "35"),
    ("EGG30", "鸡蛋 30枚", "Eggs, 30", "盒", "20"),
];
const RESIDENTS_PER_COMMUNITY: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the ledger already has {0} entries; seed-demo only fills an empty ledger")]
    NotEmpty(i64),
    #[error("too many entries requested (at most {SEED_ENTRIES_MAX})")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("write failed: {0}")]
    Write(#[from] WriteError),
    #[error("an entry was refused: {0}")]
    Refused(String),
    #[error("{}: {}", .0.code.code(), .0.detail)]
    Domain(Error),
}

impl From<Error> for SeedError {
    fn from(e: Error) -> Self {
        SeedError::Domain(e)
    }
}

/// A community as the demo built it: its staff, residents and shops.
struct SeedCommunity {
    id: &'static str,
    settlement: Uuid,
    residents: Vec<SeedResident>,
    shops: Vec<SeedShop>,
    /// Street staff: records service.
    recorder: Principal,
    /// Community staff: approves service, issues cards, runs shops and settles them.
    approver: Principal,
}

struct SeedResident {
    id: Uuid,
    account: Uuid,
    card: String,
    pin: String,
}

struct SeedShop {
    id: Uuid,
    account: Uuid,
    /// Two clerks: one redeems, the other refunds.
    clerks: [Principal; 2],
}

/// A redemption the seed may refund later: (receipt, points, shop account, resident account).
type Redeemed = (Uuid, i64, Uuid, Uuid);

/// What was created.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub accounts: usize,
    pub residents: usize,
    pub entries: u64,
    /// The first community's first shop and first resident, for [`open_to_browsers`].
    pub first_shop: Option<Uuid>,
    pub first_resident: Option<FirstResident>,
}

/// A resident the browser demo signs in as: their id and the PIN printed on their card.
#[derive(Clone, Debug)]
pub struct FirstResident {
    pub id: Uuid,
    pub card_pin: String,
}

/// Seeds `ledger_id` with about `entries` entries dated over the six months before `now_micros`
/// (every one at or before it). The cards derive from a throwaway key ring drawn from the OS
/// (see [`seed_demo_with_keys`] for the server's).
pub async fn seed_demo(
    stores: Stores,
    ledger_id: &str,
    entries: u64,
    seed: u64,
    now_micros: i64,
) -> Result<SeedReport, SeedError> {
    let keys = throwaway_keys(now_micros - SIX_MONTHS_MICROS);
    seed_demo_with_keys(stores, keys, ledger_id, entries, seed, now_micros).await
}

/// [`seed_demo`] with the cards' secrets (and PINs) derived from `keys`: the server's key file,
/// so that the demo's cards and phones work against `serve`.
pub async fn seed_demo_with_keys(
    stores: Stores,
    keys: SharedKeys,
    ledger_id: &str,
    entries: u64,
    seed: u64,
    now_micros: i64,
) -> Result<SeedReport, SeedError> {
    if entries > SEED_ENTRIES_MAX {
        return Err(SeedError::TooMany);
    }
    ensure_empty(&stores, ledger_id, now_micros).await?;
    let mut demo = Demo::new(stores, keys, ledger_id, seed, now_micros);
    let admin = demo.organisation().await?;
    let mut communities = Vec::new();
    for index in 0..COMMUNITIES.len() {
        communities.push(demo.community(&admin, index).await?);
    }
    let posted = demo.six_months(&communities, entries).await?;
    let expired = demo.expire().await?;
    Ok(SeedReport::of(&communities, posted + expired))
}

/// Creates the ledger if it is missing; refuses one that has entries.
async fn ensure_empty(stores: &Stores, ledger_id: &str, now_micros: i64) -> Result<(), SeedError> {
    let store = &stores.ledger;
    store.ensure_ledger(ledger_id, now_micros).await?;
    let head = store.head(ledger_id).await?.map(|h| h.seq).unwrap_or(0);
    if head > 0 {
        return Err(SeedError::NotEmpty(head));
    }
    Ok(())
}

impl SeedReport {
    /// The accounts and residents of `communities` (each community has its issuance, expiry and
    /// settlement accounts besides), and the entries posted.
    fn of(communities: &[SeedCommunity], entries: u64) -> SeedReport {
        SeedReport {
            accounts: communities
                .iter()
                .map(|c| 3 + c.residents.len() + c.shops.len())
                .sum(),
            residents: communities.iter().map(|c| c.residents.len()).sum(),
            entries,
            first_shop: communities
                .first()
                .and_then(|c| c.shops.first())
                .map(|s| s.id),
            first_resident: communities
                .first()
                .and_then(|c| c.residents.first())
                .map(|r| FirstResident {
                    id: r.id,
                    card_pin: r.pin.clone(),
                }),
        }
    }
}

/// A key ring from the OS, for a seed whose receipts and cards nothing outside it checks.
fn throwaway_keys(now_micros: i64) -> SharedKeys {
    SharedKeys::fixed(KeyRing::generate(&OsEntropy, now_micros))
}

/// The span of the demo's history, ending when seeding starts.
const SIX_MONTHS_MICROS: i64 = 183 * 24 * 3600 * 1_000_000;

/// The demo's shared state: the services, on a clock that walks through the past six months,
/// and the two deterministic random streams (the generator's choices and the services' ids).
struct Demo {
    ledger_id: String,
    seed: u64,
    /// When the history starts (six months before now); tokens are dated then.
    start: i64,
    /// When seeding started: the history ends before it and the seed's tokens expire then.
    end: i64,
    rng: StdRng,
    entropy: Arc<SeededEntropy>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    earning: Earning,
    redemption: Redemption,
}

impl Demo {
    fn new(stores: Stores, keys: SharedKeys, ledger_id: &str, seed: u64, end: i64) -> Demo {
        let start = end - SIX_MONTHS_MICROS;
        let entropy = SeededEntropy::new(seed ^ 0x5eed);
        let clock = ManualClock::new(start);
        // The demo's history is written through the same core as a server's, on a clock that
        // walks through the past six months. Receipts are signed when they are answered, with
        // the server's keys, so nothing signed here is kept. The master key (from which the
        // cards' secrets and PINs derive) is the server's key file's or a throwaway ring's,
        // from the OS either way, never from the seed.
        let app = App::new(stores, clock.clone(), entropy.clone()).with_keys(keys);
        Demo {
            ledger_id: ledger_id.to_owned(),
            seed,
            start,
            end,
            rng: StdRng::seed_from_u64(seed),
            entropy,
            clock,
            store: app.store,
            earning: app.earning,
            redemption: app.redemption,
        }
    }

    /// A stored token for `role` (limited to `scope`), and the principal it stands for. Its
    /// secret is drawn from the OS and dropped, and it expires when seeding ends: the demo's
    /// staff and clerks cannot sign in (`aixin token create` makes the tokens people use). Its id
    /// follows the seed and the ledger, so the data stays deterministic and a second ledger
    /// seeded alike in the same database has ids of its own.
    async fn principal(&self, role: Role, scope: Option<&str>) -> Result<Principal, SeedError> {
        let (_, mut record) = new_token(
            &OsEntropy,
            self.start,
            &self.ledger_id,
            role,
            scope.map(str::to_owned),
            format!("seed-demo {}", role.as_str()),
            Some(self.end - self.start),
        );
        record.id = self.token_id();
        self.store.insert_token(&record).await?;
        Ok(Principal {
            operator: None,
            token_id: record.id,
            ledger_id: self.ledger_id.clone(),
            role,
            scope: scope.map(str::to_owned),
        })
    }

    /// A token id from the seeded stream, bound to the ledger (token ids are unique across the
    /// database, the other ids only within a ledger).
    fn token_id(&self) -> Uuid {
        let drawn = self.entropy.uuid();
        let digest = Sha256::new()
            .chain_update(b"aixin.seed-demo.token-id.v1")
            .chain_update((self.ledger_id.len() as u64).to_be_bytes())
            .chain_update(self.ledger_id.as_bytes())
            .chain_update(drawn.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// The county's administrator and the city at the top of the organisation; returns the
    /// administrator.
    async fn organisation(&self) -> Result<Principal, SeedError> {
        let admin = self.principal(Role::Admin, None).await?;
        self.earning
            .create_org_unit(
                &admin,
                NewOrgUnit {
                    id: "jining".into(),
                    parent_id: None,
                    level: "city".into(),
                    name_zh: "济宁市".into(),
                    name_en: "Jining".into(),
                    community: None,
                },
            )
            .await?;
        Ok(admin)
    }

    /// Street `index` and its community, with staff, rules, residents and shops.
    async fn community(
        &mut self,
        admin: &Principal,
        index: usize,
    ) -> Result<SeedCommunity, SeedError> {
        let (street, _, _) = STREETS[index];
        let (community_id, name_zh, _) = COMMUNITIES[index];
        let settlement = self.org_units(admin, index).await?;
        // Street staff record service; community staff approve it.
        let recorder = self.principal(Role::Staff, Some(street)).await?;
        let approver = self.principal(Role::Staff, Some(community_id)).await?;
        self.rules(&recorder, community_id).await?;
        let residents = self.residents(&recorder, &approver, index).await?;
        let mut shops = Vec::new();
        for (s, shop) in SHOPS.iter().enumerate() {
            let name = format!("{shop}（{}）", &name_zh[..name_zh.len().min(9)]);
            shops.push(self.shop(&approver, community_id, s, name).await?);
        }
        Ok(SeedCommunity {
            id: community_id,
            settlement,
            residents,
            shops,
            recorder,
            approver,
        })
    }

    /// Street `index` and its community (with the community's expiry policy); returns the
    /// community's settlement account.
    async fn org_units(&self, admin: &Principal, index: usize) -> Result<Uuid, SeedError> {
        let policies = [
            ExpiryPolicy::Rolling { months: 12 },
            ExpiryPolicy::EndOfNextYear,
            ExpiryPolicy::Never,
        ];
        let (street, street_zh, street_en) = STREETS[index];
        let (community_id, name_zh, name_en) = COMMUNITIES[index];
        self.earning
            .create_org_unit(
                admin,
                NewOrgUnit {
                    id: street.into(),
                    parent_id: Some("jining".into()),
                    level: "street".into(),
                    name_zh: street_zh.into(),
                    name_en: street_en.into(),
                    community: None,
                },
            )
            .await?;
        let (unit, _) = self
            .earning
            .create_org_unit(
                admin,
                NewOrgUnit {
                    id: community_id.into(),
                    parent_id: Some(street.into()),
                    level: "community".into(),
                    name_zh: name_zh.into(),
                    name_en: name_en.into(),
                    community: Some(policies[index]),
                },
            )
            .await?;
        let accounts = unit
            .community
            .ok_or_else(|| SeedError::Refused("community without accounts".into()))?;
        Ok(accounts.settlement_account)
    }

    /// The community's two earning rules: home visits per hour, clean-ups per activity.
    async fn rules(&self, recorder: &Principal, community_id: &str) -> Result<(), SeedError> {
        for (rule, category, zh, en, mode, points, hours) in [
            (
                "visit",
                "home-visit",
                "入户走访",
                "Home visit",
                RuleMode::PerHour,
                "10",
                true,
            ),
            (
                "cleanup",
                "clean-up",
                "环境清扫",
                "Clean-up",
                RuleMode::PerActivity,
                "5",
                false,
            ),
        ] {
            let terms = RuleTerms {
                community_id: community_id.into(),
                category: category.into(),
                name_zh: zh.into(),
                name_en: en.into(),
                mode,
                points: amount(points)?,
                records_hours: hours,
                cap_day: Amount::parse("40").ok(),
                cap_month: None,
                valid_from: day_of(self.start),
                valid_until: None,
            };
            let id = format!("{community_id}-{rule}");
            self.earning.set_rule(recorder, &id, 0, terms).await?;
        }
        Ok(())
    }

    /// The residents of community `index`, registered by the street and each given a
    /// redemption card by the community.
    async fn residents(
        &mut self,
        recorder: &Principal,
        approver: &Principal,
        index: usize,
    ) -> Result<Vec<SeedResident>, SeedError> {
        let (community_id, _, _) = COMMUNITIES[index];
        let mut residents = Vec::new();
        for r in 0..RESIDENTS_PER_COMMUNITY {
            let name = format!(
                "{}{}",
                SURNAMES[self.rng.gen_range(0..SURNAMES.len())],
                GIVEN[self.rng.gen_range(0..GIVEN.len())]
            );
            let phone = format!(
                "13{}{:08}",
                index + 5,
                self.rng.gen_range(0..100_000_000u32)
            );
            let new = NewResident {
                name,
                phone,
                community_id: community_id.into(),
            };
            let key = format!("seed-resident-{community_id}-{r}");
            let (resident, _) = self.earning.register_resident(recorder, &key, new).await?;
            let card = self
                .redemption
                .issue_credential(approver, &format!("{key}-card"), resident.id)
                .await?;
            residents.push(SeedResident {
                id: resident.id,
                account: resident.account_id,
                card: card.number,
                pin: card.card_pin,
            });
        }
        Ok(residents)
    }

    /// Love shop number `s` of a community, with its catalogue and two clerks.
    async fn shop(
        &self,
        approver: &Principal,
        community_id: &str,
        s: usize,
        name_zh: String,
    ) -> Result<SeedShop, SeedError> {
        let new = NewShop {
            name_zh,
            name_en: format!("Love shop {}", s + 1),
            community_id: community_id.into(),
            serves: Vec::new(),
            refund_window_days: None,
        };
        let key = format!("seed-shop-{community_id}-{s}");
        let (created, _) = self.redemption.create_shop(approver, &key, new).await?;
        self.catalogue(approver, created.id).await?;
        let scope = created.id.to_string();
        let first = self.principal(Role::Shop, Some(&scope)).await?;
        let second = self.principal(Role::Shop, Some(&scope)).await?;
        Ok(SeedShop {
            id: created.id,
            account: created.account_id,
            clerks: [first, second],
        })
    }

    /// The shop's catalogue: every item of [`GOODS`], at most two a day per resident.
    async fn catalogue(&self, approver: &Principal, shop: Uuid) -> Result<(), SeedError> {
        for (sku, zh, en, unit, price) in GOODS {
            let item = NewItem {
                name_zh: zh.into(),
                name_en: en.into(),
                unit: unit.into(),
                price: amount(price)?,
                track_stock: false,
                cap_day: Some(2),
                cap_month: None,
                active: true,
            };
            self.redemption.put_item(approver, shop, sku, item).await?;
        }
        Ok(())
    }

    /// Six months of service, redemptions, refunds and monthly settlements, until `entries`
    /// entries are posted (or four attempts per entry have been made); returns the entries posted.
    async fn six_months(
        &mut self,
        communities: &[SeedCommunity],
        entries: u64,
    ) -> Result<u64, SeedError> {
        let mut history = History::new(entries, &self.clock, self.end);
        while history.goes_on() {
            self.next_step(communities, &mut history).await?;
        }
        Ok(history.posted)
    }

    /// One step of the history: the clock moves on; at the turn of a month every shop is
    /// settled, otherwise one resident of one community does one thing.
    async fn next_step(
        &mut self,
        communities: &[SeedCommunity],
        history: &mut History,
    ) -> Result<(), SeedError> {
        history.attempts += 1;
        self.clock.advance(history.step(self.clock.now_micros()));
        let month = month_of(self.clock.now_micros());
        if month != history.settled_month {
            let last = std::mem::replace(&mut history.settled_month, month);
            return self.settle_month(communities, last, history).await;
        }
        let community = &communities[self.rng.gen_range(0..communities.len())];
        let resident = &community.residents[self.rng.gen_range(0..community.residents.len())];
        let balance = history.points_of(resident.account);
        let roll: u32 = self.rng.gen_range(0..100);
        if roll < 6 {
            self.refund_last(communities, history).await
        } else if roll < 40 && balance >= 2_000 {
            self.redeem(community, resident, balance, history).await
        } else {
            self.volunteer(community, resident, history).await
        }
    }

    /// Each month, staff settle every shop for the month before.
    async fn settle_month(
        &self,
        communities: &[SeedCommunity],
        month: (i32, u8),
        history: &mut History,
    ) -> Result<(), SeedError> {
        let (from, to) = month_bounds(month);
        for community in communities {
            for shop in &community.shops {
                if history.is_full() {
                    return Ok(());
                }
                let key = format!("seed-{}-settle-{}-{from}", self.seed, shop.id);
                match self
                    .redemption
                    .settle(&community.approver, &key, shop.id, from, to)
                    .await
                {
                    Ok((statement, _)) => {
                        let net = statement.net_minor.max(0);
                        history.post(shop.account, community.settlement, net);
                    }
                    Err(e) if e.code == ErrorCode::NothingToSettle => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// A mistaken exchange, refunded by the other clerk soon after: the latest redemption.
    async fn refund_last(
        &self,
        communities: &[SeedCommunity],
        history: &mut History,
    ) -> Result<(), SeedError> {
        let Some((receipt, total, shop_account, to)) = history.redemptions.pop() else {
            return Ok(());
        };
        if history.points_of(shop_account) < total {
            return Ok(());
        }
        let Some(shop) = communities
            .iter()
            .flat_map(|c| c.shops.iter())
            .find(|s| s.account == shop_account)
        else {
            return Ok(());
        };
        let key = format!("seed-{}-refund-{}", self.seed, history.attempts);
        match self
            .redemption
            .refund(&shop.clerks[1], &key, receipt, None)
            .await
        {
            Ok(_) => history.post(shop_account, to, total),
            Err(e) if e.code == ErrorCode::RefundWindowClosed => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// A card exchange at one of the community's shops: a random basket the balance covers.
    async fn redeem(
        &mut self,
        community: &SeedCommunity,
        resident: &SeedResident,
        balance: i64,
        history: &mut History,
    ) -> Result<(), SeedError> {
        let shop = &community.shops[self.rng.gen_range(0..community.shops.len())];
        let mut basket = Vec::new();
        let mut total = 0;
        for (sku, _, _, _, price) in GOODS {
            let price = Amount::parse(price).map(Amount::minor).unwrap_or(0);
            if self.rng.gen_bool(0.5) && total + price <= balance {
                total += price;
                basket.push((sku.to_owned(), 1));
            }
        }
        if basket.is_empty() {
            return Ok(());
        }
        let key = format!("seed-{}-redeem-{}", self.seed, history.attempts);
        let shown = Shown::Card {
            number: resident.card.clone(),
            pin: resident.pin.clone(),
        };
        match self
            .redemption
            .redeem(&shop.clerks[0], &key, shown, &basket)
            .await
        {
            Ok(exchange) => {
                let r = &exchange.signed.receipt;
                history.post(resident.account, shop.account, r.total_minor);
                history
                    .redemptions
                    .push((r.id, r.total_minor, shop.account, resident.account));
            }
            // Two bags of the same item a day is the limit; the resident comes back later.
            Err(e) if e.code == ErrorCode::ItemDailyCapExceeded => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Volunteer service: recorded by street staff and approved by community staff, through
    /// the same operations the API uses.
    async fn volunteer(
        &mut self,
        community: &SeedCommunity,
        resident: &SeedResident,
        history: &mut History,
    ) -> Result<(), SeedError> {
        let rule = if self.rng.gen_bool(0.6) {
            "visit"
        } else {
            "cleanup"
        };
        let hours = self.rng.gen_range(2..=8) as i64 * 50;
        let key = format!("seed-{}-record-{}", self.seed, history.attempts);
        let new = NewRecord {
            resident_id: resident.id,
            rule_id: format!("{}-{rule}", community.id),
            service_date: day_of(self.clock.now_micros()),
            hours_minor: hours,
            note: String::new(),
        };
        let record = self
            .earning
            .submit_record(&community.recorder, &key, new)
            .await;
        let Ok((record, _)) = record else {
            return Ok(()); // a duplicate day: skip
        };
        let approver = &community.approver;
        match self.earning.approve_record(approver, record.id).await {
            Ok((_, Some(entry))) => {
                for p in entry.postings.iter().filter(|p| p.unit == Unit::Points) {
                    *history.points.entry(p.account).or_default() += p.side.signed(p.amount);
                }
                history.posted += 1;
            }
            Ok((_, None)) => {}
            Err(e) if e.code == ErrorCode::DailyCapExceeded => {
                let reason = "超出每日上限 / over the daily cap";
                self.earning
                    .reject_record(approver, record.id, reason)
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Whatever has passed its last valid day expires, as the schedule inside `serve` would
    /// do; returns the number of expiry entries.
    async fn expire(&self) -> Result<u64, SeedError> {
        let operator = Principal::operator(&self.ledger_id, "seed-demo");
        let today = day_of(self.clock.now_micros());
        let report = self.earning.run_expiry(&operator, today).await?;
        Ok(report.accounts as u64)
    }
}

/// The demo opened to a browser: who can sign in and how, each secret drawn from the OS and
/// shown only here. The links are one-time (`/set-password/{secret}`, `/till/pair/{secret}`,
/// `/r/{secret}` on the pages).
#[derive(Clone, Debug)]
pub struct BrowserDemo {
    /// (role, name, the link that sets their password): an admin, a community's staff, an
    /// auditor.
    pub users: Vec<(Role, String, Link)>,
    pub shop_id: Uuid,
    pub shop_name: String,
    /// Opened on the till device, pairs it with the shop.
    pub pairing: Link,
    /// The clerk who signs in at that till, and their PIN.
    pub clerk: String,
    pub clerk_pin: String,
    /// The resident who signs in with `resident_link`, or with their phone and card PIN.
    pub resident_name: String,
    pub resident_link: Link,
    pub resident_phone: String,
    pub resident_card_pin: String,
}

/// The demo's users: (role, name, the unit a staff user manages).
const BROWSER_USERS: [(Role, &str, Option<&str>); 3] = [
    (Role::Admin, "演示管理员", None),
    (Role::Staff, "演示社区干部", Some(COMMUNITIES[0].0)),
    (Role::Auditor, "演示审计员", None),
];

/// Opens a seeded demo to a browser (after [`seed_demo_with_keys`], through `app`: the server's
/// keys, the system clock and the OS random source): an admin, a community staff member and an
/// auditor with links that set their passwords, a clerk of the first shop with a PIN and a
/// link that pairs a till with that shop, and the first resident's sign-in link. Nothing here
/// is known in advance: every secret comes from `app`'s random source.
pub async fn open_to_browsers(
    app: &App,
    ledger_id: &str,
    report: &SeedReport,
) -> Result<BrowserDemo, SeedError> {
    let operator = Principal::operator(ledger_id, "seed-demo");
    let missing = || SeedError::Refused("the demo has no shop or resident to open".into());
    let (shop_id, first) = match (report.first_shop, report.first_resident.clone()) {
        (Some(shop), Some(first)) => (shop, first),
        _ => return Err(missing()),
    };
    let mut users = Vec::new();
    for (role, name, scope) in BROWSER_USERS {
        let (user, link) = app
            .sessions
            .create_user(&operator, role, scope, name)
            .await?;
        users.push((role, user.name, link));
    }
    let shop = app.redemption.shop(&operator, shop_id).await?;
    let (clerk, _, _) = app
        .redemption
        .add_shop_staff(
            &operator,
            "seed-demo-browser-clerk",
            shop.id,
            "演示店员",
            false,
        )
        .await?;
    let clerk_pin = loop {
        let mut bytes = [0u8; 4];
        app.entropy.fill(&mut bytes);
        let pin = format!("{:06}", u32::from_be_bytes(bytes) % 1_000_000);
        if check_pin(&pin).is_ok() {
            break pin;
        }
    };
    app.sessions
        .set_clerk_pin(&operator, clerk.token_id, &clerk_pin)
        .await?;
    let pairing = app
        .sessions
        .pairing_link(&operator, shop.id, "演示收银台")
        .await?;
    let resident = app.earning.resident(&operator, first.id).await?;
    let resident_link = app
        .sessions
        .resident_sign_in_link(&operator, resident.id)
        .await?;
    Ok(BrowserDemo {
        users,
        shop_id: shop.id,
        shop_name: shop.name_zh,
        pairing,
        clerk: clerk.name,
        clerk_pin,
        resident_name: resident.name,
        resident_link,
        resident_phone: resident.phone,
        resident_card_pin: first.card_pin,
    })
}

/// The history as it is generated: a small model of point balances, so every generated
/// operation is valid when it runs, and how far the run has got.
struct History {
    /// Entries wanted.
    entries: u64,
    /// When seeding started: the clock stays before it.
    end: i64,
    points: BTreeMap<Uuid, i64>,
    /// Redemptions that may be refunded, latest last.
    redemptions: Vec<Redeemed>,
    posted: u64,
    attempts: u64,
    /// The month being run; its shops are settled when the clock leaves it.
    settled_month: (i32, u8),
}

impl History {
    fn new(entries: u64, clock: &ManualClock, end: i64) -> History {
        History {
            entries,
            end,
            points: BTreeMap::new(),
            redemptions: Vec::new(),
            posted: 0,
            attempts: 0,
            settled_month: month_of(clock.now_micros()),
        }
    }

    /// How far the clock moves from `now` for the next attempt: the time left before the end,
    /// shared among the entries still wanted and one more. Evenly spread when every attempt
    /// posts, and never reaching the end however many attempts post nothing (each step is less
    /// than the time left), so every entry is dated before seeding started.
    fn step(&self, now: i64) -> i64 {
        let left = (self.end - now).max(0);
        let wanted = self.entries.saturating_sub(self.posted).saturating_add(1);
        left / i64::try_from(wanted).unwrap_or(i64::MAX)
    }

    /// Until enough entries are posted, or four attempts per entry wanted have been made.
    fn goes_on(&self) -> bool {
        !self.is_full() && self.attempts < self.entries.saturating_mul(4)
    }

    fn is_full(&self) -> bool {
        self.posted >= self.entries
    }

    fn points_of(&self, account: Uuid) -> i64 {
        self.points.get(&account).copied().unwrap_or(0)
    }

    /// One posted entry moving `amount` points from one account to another.
    fn post(&mut self, from: Uuid, to: Uuid, amount: i64) {
        *self.points.entry(from).or_default() -= amount;
        *self.points.entry(to).or_default() += amount;
        self.posted += 1;
    }
}

/// A price or award from this file's tables.
fn amount(text: &str) -> Result<Amount, SeedError> {
    Amount::parse(text).map_err(|e| SeedError::Refused(e.to_string()))
}

/// The month (year, month) a moment falls in, in the programme's calendar.
fn month_of(micros: i64) -> (i32, u8) {
    let day = day_of(micros);
    (day.year(), day.month() as u8)
}

/// The first and last day of a month.
fn month_bounds((year, month): (i32, u8)) -> (time::Date, time::Date) {
    let month = time::Month::try_from(month).unwrap_or(time::Month::January);
    let first = time::Date::from_calendar_date(year, month, 1).unwrap_or(time::Date::MIN);
    let last = time::Date::from_calendar_date(year, month, month.length(year)).unwrap_or(first);
    (first, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cards_secrets_derive_from_a_key_ring_the_seed_does_not_fix() {
        // Two demos of the same seed derive different secrets (and PINs) for the same card:
        // the master key comes from the OS, not from the seeded stream.
        let dir = tempfile::tempdir().unwrap();
        let mut secrets = Vec::new();
        for name in ["a", "b"] {
            let url = format!("sqlite:{}", dir.path().join(name).display());
            let stores = Stores::of(
                crate::store::sqlite::SqliteStore::connect(&url)
                    .await
                    .unwrap(),
            );
            let start = 1_767_225_600_000_000;
            let demo = Demo::new(stores, throwaway_keys(start), "default", 2026, start);
            let card = demo.entropy.uuid();
            secrets.push((
                card,
                demo.redemption
                    .keys
                    .get()
                    .credential_secret("default", card, 1),
            ));
        }
        assert_eq!(secrets[0].0, secrets[1].0, "the data follows the seed");
        assert_ne!(secrets[0].1, secrets[1].1, "the secrets do not");
    }
}

//! `aixin seed-demo`: fills an empty ledger with a realistic demo programme, built through the
//! same operations staff use: a county with three streets and a community each (three expiry
//! policies), two earning rules per community, residents with Chinese names and redemption
//! cards, love shops with catalogues, and six months of volunteer service recorded and approved
//! by two staff members per community, with card redemptions (receipts), refunds by the other
//! clerk, monthly settlements and expiry in between. Deterministic for a given seed.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::app::App;
use crate::auth::{new_token, Principal, Role};
use crate::calendar::day_of;
use crate::clock::{Clock, Entropy, ManualClock, SeededEntropy};
use crate::earning::service::{NewOrgUnit, NewRecord, NewResident, RuleTerms};
use crate::error::Error;
use crate::ledger::{Amount, Unit};
use crate::model::{ExpiryPolicy, RuleMode};
use crate::redeem::service::{NewItem, NewShop, Shown};
use crate::store::{StoreError, Stores};
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

struct Community {
    settlement: Uuid,
    /// (resident id, account id, card number, card PIN)
    residents: Vec<(Uuid, Uuid, String, String)>,
    shops: Vec<SeedShop>,
    recorder: Principal,
    approver: Principal,
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
}

fn principal(
    entropy: &dyn Entropy,
    ledger: &str,
    role: Role,
    scope: Option<&str>,
    now: i64,
) -> (Principal, crate::store::TokenRecord) {
    let (_, record) = new_token(
        entropy,
        now,
        ledger,
        role,
        scope.map(str::to_owned),
        format!("seed-demo {}", role.as_str()),
        None,
    );
    (
        Principal {
            operator: None,
            token_id: record.id,
            ledger_id: ledger.to_owned(),
            role,
            scope: scope.map(str::to_owned),
        },
        record,
    )
}

/// Seeds `ledger_id` with about `entries` entries dated over the six months before `now_micros`.
pub async fn seed_demo(
    stores: Stores,
    ledger_id: &str,
    entries: u64,
    seed: u64,
    now_micros: i64,
) -> Result<SeedReport, SeedError> {
    if entries > SEED_ENTRIES_MAX {
        return Err(SeedError::TooMany);
    }
    let store = stores.ledger.clone();
    store.ensure_ledger(ledger_id, now_micros).await?;
    let head = store.head(ledger_id).await?.map(|h| h.seq).unwrap_or(0);
    if head > 0 {
        return Err(SeedError::NotEmpty(head));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let entropy = SeededEntropy::new(seed ^ 0x5eed);
    const SIX_MONTHS_MICROS: i64 = 183 * 24 * 3600 * 1_000_000;
    let start = now_micros - SIX_MONTHS_MICROS;
    let clock = ManualClock::new(start);
    let step = SIX_MONTHS_MICROS / (entries.max(1) as i64);
    // The demo's history is written through the same core as a server's, on a clock that walks
    // through the past six months. Receipts are signed when they are answered, with the
    // server's keys; the throwaway ring here signs nothing that is kept.
    let app = App::new(stores, clock.clone(), entropy.clone());
    let (earning, redemption) = (app.earning.clone(), app.redemption.clone());
    let mut report = SeedReport::default();
    let (admin, admin_token) = principal(entropy.as_ref(), ledger_id, Role::Admin, None, start);
    store.insert_token(&admin_token).await?;

    earning
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
    let policies = [
        ExpiryPolicy::Rolling { months: 12 },
        ExpiryPolicy::EndOfNextYear,
        ExpiryPolicy::Never,
    ];
    let mut communities = Vec::new();
    for (index, ((street, street_zh, street_en), (community_id, name_zh, name_en))) in
        STREETS.iter().zip(COMMUNITIES.iter()).enumerate()
    {
        earning
            .create_org_unit(
                &admin,
                NewOrgUnit {
                    id: (*street).into(),
                    parent_id: Some("jining".into()),
                    level: "street".into(),
                    name_zh: (*street_zh).into(),
                    name_en: (*street_en).into(),
                    community: None,
                },
            )
            .await?;
        let (unit, _) = earning
            .create_org_unit(
                &admin,
                NewOrgUnit {
                    id: (*community_id).into(),
                    parent_id: Some((*street).into()),
                    level: "community".into(),
                    name_zh: (*name_zh).into(),
                    name_en: (*name_en).into(),
                    community: Some(policies[index]),
                },
            )
            .await?;
        let accounts = unit
            .community
            .ok_or_else(|| SeedError::Refused("community without accounts".into()))?;
        // Street staff record service; community staff approve it.
        let (recorder, token) = principal(
            entropy.as_ref(),
            ledger_id,
            Role::Staff,
            Some(street),
            start,
        );
        store.insert_token(&token).await?;
        let (approver, token) = principal(
            entropy.as_ref(),
            ledger_id,
            Role::Staff,
            Some(community_id),
            start,
        );
        store.insert_token(&token).await?;
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
            earning
                .set_rule(
                    &recorder,
                    &format!("{community_id}-{rule}"),
                    0,
                    RuleTerms {
                        community_id: (*community_id).into(),
                        category: category.into(),
                        name_zh: zh.into(),
                        name_en: en.into(),
                        mode,
                        points: Amount::parse(points)
                            .map_err(|e| SeedError::Refused(e.to_string()))?,
                        records_hours: hours,
                        cap_day: Amount::parse("40").ok(),
                        cap_month: None,
                        valid_from: day_of(start),
                        valid_until: None,
                    },
                )
                .await?;
        }
        let mut residents = Vec::new();
        for r in 0..RESIDENTS_PER_COMMUNITY {
            let name = format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                GIVEN[rng.gen_range(0..GIVEN.len())]
            );
            let phone = format!("13{}{:08}", index + 5, rng.gen_range(0..100_000_000u32));
            let (resident, _) = earning
                .register_resident(
                    &recorder,
                    &format!("seed-resident-{community_id}-{r}"),
                    NewResident {
                        name,
                        phone,
                        community_id: (*community_id).into(),
                    },
                )
                .await?;
            let card = redemption.issue_credential(&approver, resident.id).await?;
            residents.push((resident.id, resident.account_id, card.number, card.card_pin));
        }
        report.residents += residents.len();
        let mut shops = Vec::new();
        for (s, shop) in SHOPS.iter().enumerate() {
            let (created, _) = redemption
                .create_shop(
                    &approver,
                    &format!("seed-shop-{community_id}-{s}"),
                    NewShop {
                        name_zh: format!("{shop}（{}）", &name_zh[..name_zh.len().min(9)]),
                        name_en: format!("Love shop {}", s + 1),
                        community_id: (*community_id).into(),
                        serves: Vec::new(),
                        refund_window_days: None,
                    },
                )
                .await?;
            for (sku, zh, en, unit, price) in GOODS {
                redemption
                    .put_item(
                        &approver,
                        created.id,
                        sku,
                        NewItem {
                            name_zh: zh.into(),
                            name_en: en.into(),
                            unit: unit.into(),
                            price: Amount::parse(price)
                                .map_err(|e| SeedError::Refused(e.to_string()))?,
                            track_stock: false,
                            cap_day: Some(2),
                            cap_month: None,
                            active: true,
                        },
                    )
                    .await?;
            }
            let mut clerks = Vec::new();
            for _ in 0..2 {
                let scope = created.id.to_string();
                let (clerk, token) =
                    principal(entropy.as_ref(), ledger_id, Role::Shop, Some(&scope), start);
                store.insert_token(&token).await?;
                clerks.push(clerk);
            }
            let [first, second] = <[Principal; 2]>::try_from(clerks)
                .map_err(|_| SeedError::Refused("two clerks".into()))?;
            shops.push(SeedShop {
                id: created.id,
                account: created.account_id,
                clerks: [first, second],
            });
        }
        communities.push(Community {
            settlement: accounts.settlement_account,
            residents,
            shops,
            recorder,
            approver,
        });
    }
    report.accounts = communities
        .iter()
        .map(|c| 3 + c.residents.len() + c.shops.len())
        .sum();

    // A small model of point balances, so every generated operation is valid when it runs.
    let mut points: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut redemptions: Vec<Redeemed> = Vec::new();
    let mut posted = 0u64;
    let mut attempts = 0u64;
    let mut settled_month = month_of(clock.now_micros());
    while posted < entries && attempts < entries.saturating_mul(4) {
        attempts += 1;
        clock.advance(step);
        // Each month, staff settle every shop for the month before.
        let month = month_of(clock.now_micros());
        if month != settled_month {
            let (from, to) = month_bounds(settled_month);
            settled_month = month;
            for community in &communities {
                for shop in &community.shops {
                    if posted >= entries {
                        break;
                    }
                    let key = format!("seed-{seed}-settle-{}-{from}", shop.id);
                    match redemption
                        .settle(&community.approver, &key, shop.id, from, to)
                        .await
                    {
                        Ok((statement, _)) => {
                            let net = statement.net_minor.max(0);
                            *points.entry(shop.account).or_default() -= net;
                            *points.entry(community.settlement).or_default() += net;
                            posted += 1;
                        }
                        Err(e) if e.code == crate::error::ErrorCode::NothingToSettle => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            continue;
        }
        let community = &communities[rng.gen_range(0..communities.len())];
        let (resident_id, resident, ref card, ref pin) =
            community.residents[rng.gen_range(0..community.residents.len())];
        let balance = points.get(&resident).copied().unwrap_or(0);
        let roll: u32 = rng.gen_range(0..100);
        if roll < 6 {
            // A mistaken exchange, refunded by the other clerk soon after.
            let Some((receipt, total, shop_account, to)) = redemptions.pop() else {
                continue;
            };
            if points.get(&shop_account).copied().unwrap_or(0) < total {
                continue;
            }
            let Some(shop) = communities
                .iter()
                .flat_map(|c| c.shops.iter())
                .find(|s| s.account == shop_account)
            else {
                continue;
            };
            let key = format!("seed-{seed}-refund-{attempts}");
            match redemption
                .refund(&shop.clerks[1], &key, receipt, None)
                .await
            {
                Ok(_) => {
                    *points.entry(shop_account).or_default() -= total;
                    *points.entry(to).or_default() += total;
                    posted += 1;
                }
                Err(e) if e.code == crate::error::ErrorCode::RefundWindowClosed => {}
                Err(e) => return Err(e.into()),
            }
        } else if roll < 40 && balance >= 2_000 {
            let shop = &community.shops[rng.gen_range(0..community.shops.len())];
            let mut basket = Vec::new();
            let mut total = 0;
            for (sku, _, _, _, price) in GOODS {
                let price = Amount::parse(price).map(Amount::minor).unwrap_or(0);
                if rng.gen_bool(0.5) && total + price <= balance {
                    total += price;
                    basket.push((sku.to_owned(), 1));
                }
            }
            if basket.is_empty() {
                continue;
            }
            let key = format!("seed-{seed}-redeem-{attempts}");
            let shown = Shown::Card {
                number: card.clone(),
                pin: pin.clone(),
            };
            match redemption
                .redeem(&shop.clerks[0], &key, shown, &basket)
                .await
            {
                Ok(exchange) => {
                    let r = &exchange.signed.receipt;
                    *points.entry(resident).or_default() -= r.total_minor;
                    *points.entry(shop.account).or_default() += r.total_minor;
                    redemptions.push((r.id, r.total_minor, shop.account, resident));
                    posted += 1;
                }
                // Two bags of the same item a day is the limit; the resident comes back later.
                Err(e) if e.code == crate::error::ErrorCode::ItemDailyCapExceeded => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            // Volunteer service: recorded by street staff and approved by community staff,
            // through the same operations the API uses.
            let rule = if rng.gen_bool(0.6) {
                "visit"
            } else {
                "cleanup"
            };
            let hours = rng.gen_range(2..=8) as i64 * 50;
            let key = format!("seed-{seed}-record-{attempts}");
            let record = earning
                .submit_record(
                    &community.recorder,
                    &key,
                    NewRecord {
                        resident_id,
                        rule_id: format!(
                            "{}-{rule}",
                            community.approver.scope.as_deref().unwrap_or("")
                        ),
                        service_date: day_of(clock.now_micros()),
                        hours_minor: hours,
                        note: String::new(),
                    },
                )
                .await;
            let Ok((record, _)) = record else { continue }; // a duplicate day: skip
            match earning.approve_record(&community.approver, record.id).await {
                Ok((_, Some(entry))) => {
                    for p in entry.postings.iter().filter(|p| p.unit == Unit::Points) {
                        *points.entry(p.account).or_default() += p.side.signed(p.amount);
                    }
                    posted += 1;
                }
                Ok((_, None)) => {}
                Err(e) if e.code == crate::error::ErrorCode::DailyCapExceeded => {
                    earning
                        .reject_record(
                            &community.approver,
                            record.id,
                            "超出每日上限 / over the daily cap",
                        )
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Whatever has passed its last valid day expires, as the schedule inside `serve` would do.
    let report_expiry = earning
        .run_expiry(
            &Principal::operator(ledger_id, "seed-demo"),
            day_of(clock.now_micros()),
        )
        .await?;
    posted += report_expiry.accounts as u64;
    report.entries = posted;
    Ok(report)
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

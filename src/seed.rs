//! `aixin seed-demo`: fills an empty ledger with a realistic demo programme, built through the
//! same operations staff use: a county with three streets and a community each (three expiry
//! policies), two earning rules per community, residents with Chinese names, love shops, and six
//! months of volunteer service recorded and approved by two staff members per community, with
//! redemptions, refunds, settlements and expiry in between. Deterministic for a given seed.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::auth::{new_token, Principal, Role};
use crate::clock::{Clock, Entropy, ManualClock, SeededEntropy};
use crate::earning::model::{day_of, ExpiryPolicy, RuleMode};
use crate::earning::service::{NewOrgUnit, NewRecord, NewResident, RuleTerms};
use crate::earning::{DomainError, Earning};
use crate::ledger::{AccountKind, Amount, EntryDraft, EntryKind, Posting, Side, Unit};
use crate::store::{NewAccount, Outcome, StoreError, Stores};
use crate::writer::{WriteError, Writer, Writers};

/// Most entries one seed run may create.
pub const SEED_ENTRIES_MAX: u64 = 1_000_000;
/// Entries submitted to the writer at once (between two earns).
const WINDOW: usize = 512;

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
const GOODS: [&str; 4] = ["大米 5kg", "面粉 5kg", "花生油 1.8L", "鸡蛋 30枚"];
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
    Domain(DomainError),
}

impl From<DomainError> for SeedError {
    fn from(e: DomainError) -> Self {
        SeedError::Domain(e)
    }
}

struct Community {
    settlement: Uuid,
    /// (resident id, account id)
    residents: Vec<(Uuid, Uuid)>,
    shops: Vec<Uuid>,
    recorder: Principal,
    approver: Principal,
}

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
    let writers = Arc::new(Writers::new(store.clone(), clock.clone(), entropy.clone()));
    let earning = Earning {
        ledger: store.clone(),
        store: stores.earning.clone(),
        writers: writers.clone(),
        clock: clock.clone(),
        entropy: entropy.clone(),
    };
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
            residents.push((resident.id, resident.account_id));
        }
        report.residents += residents.len();
        let mut shops = Vec::new();
        for (s, shop) in SHOPS.iter().enumerate() {
            let account = NewAccount {
                id: entropy.uuid(),
                kind: AccountKind::Shop,
                owner_id: Some(format!("S{}{:02}", index + 1, s + 1)),
                community_id: Some((*community_id).into()),
                label: format!("{shop}（{}）", &name_zh[..name_zh.len().min(9)]),
            };
            store.open_account(ledger_id, &account, start).await?;
            shops.push(account.id);
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

    let writer = writers.get(ledger_id);
    // A small model of point balances, so every generated entry is valid when it is posted.
    let mut points: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut redemptions: Vec<(Uuid, Vec<Posting>)> = Vec::new();
    let mut pending: Vec<(String, EntryDraft)> = Vec::new();
    let mut posted = 0u64;
    let mut attempts = 0u64;
    while posted + (pending.len() as u64) < entries && attempts < entries.saturating_mul(4) {
        attempts += 1;
        clock.advance(step);
        let community = &communities[rng.gen_range(0..communities.len())];
        let (resident_id, resident) =
            community.residents[rng.gen_range(0..community.residents.len())];
        let balance = points.get(&resident).copied().unwrap_or(0);
        let roll: u32 = rng.gen_range(0..100);
        let refundable = |(_, original): &(Uuid, Vec<Posting>)| {
            original.iter().all(|p| {
                p.side == Side::Debit
                    || points.get(&p.account).copied().unwrap_or(0) >= p.amount.minor()
            })
        };
        let candidate = if roll < 6 && !redemptions.is_empty() {
            Some(rng.gen_range(0..redemptions.len())).filter(|i| refundable(&redemptions[*i]))
        } else {
            None
        };
        let draft = if let Some(index) = candidate {
            let (target, original) = redemptions.swap_remove(index);
            for p in &original {
                *points.entry(p.account).or_default() -= p.side.signed(p.amount);
            }
            EntryDraft {
                kind: EntryKind::Refund,
                postings: original
                    .iter()
                    .map(|p| Posting {
                        side: p.side.opposite(),
                        ..p.clone()
                    })
                    .collect(),
                memo: "退还：商品有误 / refund: wrong item".to_owned(),
                metadata: BTreeMap::new(),
                reverses: Some(target),
            }
        } else if roll < 40 && balance >= 2_000 {
            let shop = community.shops[rng.gen_range(0..community.shops.len())];
            let cost = 1_000 * rng.gen_range(1..=(balance / 1_000).min(5));
            *points.entry(resident).or_default() -= cost;
            *points.entry(shop).or_default() += cost;
            let goods = GOODS[rng.gen_range(0..GOODS.len())];
            transfer(
                EntryKind::Redeem,
                resident,
                shop,
                cost,
                format!("兑换 {goods}"),
            )
        } else if roll < 46 {
            let shop = community.shops[rng.gen_range(0..community.shops.len())];
            let held = points.get(&shop).copied().unwrap_or(0);
            if held == 0 {
                continue;
            }
            points.insert(shop, 0);
            *points.entry(community.settlement).or_default() += held;
            transfer(
                EntryKind::Settle,
                shop,
                community.settlement,
                held,
                "月度结算 / monthly settlement".to_owned(),
            )
        } else {
            // Volunteer service: recorded by street staff and approved by community staff,
            // through the same operations the API uses. Earlier entries go first.
            posted += flush(&writer, &mut pending, &mut redemptions).await?;
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
            continue;
        };
        pending.push((format!("seed-{seed}-{attempts}"), draft));
        if pending.len() == WINDOW {
            posted += flush(&writer, &mut pending, &mut redemptions).await?;
        }
    }
    posted += flush(&writer, &mut pending, &mut redemptions).await?;
    // Whatever has passed its last valid day expires, as the schedule inside `serve` would do.
    let report_expiry = earning
        .run_expiry(ledger_id, day_of(clock.now_micros()), "seed-demo")
        .await?;
    posted += report_expiry.accounts as u64;
    report.entries = posted;
    Ok(report)
}

fn amount(minor: i64) -> Amount {
    // Seed amounts are constructed within bounds.
    Amount::from_minor(minor).unwrap_or_else(|_| unreachable!("seed amount {minor} out of bounds"))
}

fn transfer(kind: EntryKind, from: Uuid, to: Uuid, minor: i64, memo: String) -> EntryDraft {
    EntryDraft {
        kind,
        postings: vec![
            Posting {
                account: from,
                unit: Unit::Points,
                side: Side::Debit,
                amount: amount(minor),
            },
            Posting {
                account: to,
                unit: Unit::Points,
                side: Side::Credit,
                amount: amount(minor),
            },
        ],
        memo,
        metadata: BTreeMap::new(),
        reverses: None,
    }
}

async fn flush(
    writer: &Writer,
    pending: &mut Vec<(String, EntryDraft)>,
    redemptions: &mut Vec<(Uuid, Vec<Posting>)>,
) -> Result<u64, SeedError> {
    // Queued one by one from this task, so the writer plans them in generation order.
    let answers = pending
        .drain(..)
        .map(|(key, draft)| writer.enqueue(key, "seed-demo".to_owned(), draft))
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = futures_util::future::join_all(answers).await;
    let mut count = 0;
    for outcome in outcomes {
        match outcome? {
            Outcome::Posted(entry) | Outcome::Replayed(entry) => {
                if entry.kind == EntryKind::Redeem {
                    redemptions.push((entry.id, entry.postings.clone()));
                }
                count += 1;
            }
            Outcome::Refused(refusal) => return Err(SeedError::Refused(refusal.to_string())),
        }
    }
    Ok(count)
}

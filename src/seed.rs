//! `aixin seed-demo`: fills an empty ledger with a realistic demo programme — communities with
//! their issuance, settlement and expiry accounts, residents with Chinese names, love shops, and
//! months of earning, redemption, refunds, settlement and expiry. Deterministic for a given seed.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::clock::{Entropy, ManualClock, SeededEntropy};
use crate::ledger::{AccountKind, Amount, EntryDraft, EntryKind, Posting, Side, Unit};
use crate::store::{NewAccount, Outcome, Store, StoreError};
use crate::writer::{WriteError, Writer};

/// Most entries one seed run may create.
pub const SEED_ENTRIES_MAX: u64 = 10_000_000;
/// Entries submitted to the writer at once.
const WINDOW: usize = 512;

const COMMUNITIES: [(&str, &str); 3] = [
    ("yutai-binhu", "鱼台县谷亭街道滨湖社区"),
    ("jiaxiang-wenhua", "嘉祥县嘉祥街道文化社区"),
    ("jinxiang-jinhe", "金乡县金乡街道金河社区"),
];
const SHOPS: [&str; 3] = ["惠民爱心超市", "邻里粮油店", "便民爱心商铺"];
const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马", "朱", "胡", "郭", "何",
];
const GIVEN: [&str; 20] = [
    "秀英", "桂英", "建国", "淑兰", "志强", "海燕", "玉兰", "国庆", "丽娟", "德福", "春梅", "明亮",
    "凤霞", "晓东", "婷婷", "家豪", "文华", "金凤", "子涵", "卫东",
];
const ACTIVITIES: [&str; 6] = [
    "入户走访",
    "邻里调解",
    "环境清扫",
    "课后辅导",
    "义务理发",
    "治安巡逻",
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
}

struct Community {
    issuance: Uuid,
    settlement: Uuid,
    expiry: Uuid,
    residents: Vec<Uuid>,
    shops: Vec<Uuid>,
}

/// What was created.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub accounts: usize,
    pub entries: u64,
}

/// Seeds `ledger_id` with `entries` entries dated over the six months before `now_micros`.
pub async fn seed_demo(
    store: Arc<dyn Store>,
    ledger_id: &str,
    entries: u64,
    seed: u64,
    now_micros: i64,
) -> Result<SeedReport, SeedError> {
    if entries > SEED_ENTRIES_MAX {
        return Err(SeedError::TooMany);
    }
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

    let mut report = SeedReport::default();
    let mut communities = Vec::new();
    let open =
        |kind: AccountKind, owner: Option<String>, community: &str, label: String| NewAccount {
            id: entropy.uuid(),
            kind,
            owner_id: owner,
            community_id: Some(community.to_owned()),
            label,
        };
    let mut to_open = Vec::new();
    for (index, (community_id, name)) in COMMUNITIES.iter().enumerate() {
        let issuance = open(
            AccountKind::Issuance,
            None,
            community_id,
            format!("{name} 积分发放"),
        );
        let settlement = open(
            AccountKind::Settlement,
            None,
            community_id,
            format!("{name} 结算"),
        );
        let expiry = open(
            AccountKind::Expiry,
            None,
            community_id,
            format!("{name} 过期积分"),
        );
        let mut residents = Vec::new();
        for r in 0..RESIDENTS_PER_COMMUNITY {
            let person = format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                GIVEN[rng.gen_range(0..GIVEN.len())]
            );
            let account = open(
                AccountKind::Resident,
                Some(format!("R{}{:04}", index + 1, r + 1)),
                community_id,
                person,
            );
            residents.push(account.id);
            to_open.push(account);
        }
        let mut shops = Vec::new();
        for (s, shop) in SHOPS.iter().enumerate() {
            let account = open(
                AccountKind::Shop,
                Some(format!("S{}{:02}", index + 1, s + 1)),
                community_id,
                format!("{shop}（{}）", &name[..name.len().min(9)]),
            );
            shops.push(account.id);
            to_open.push(account);
        }
        communities.push(Community {
            issuance: issuance.id,
            settlement: settlement.id,
            expiry: expiry.id,
            residents,
            shops,
        });
        to_open.extend([issuance, settlement, expiry]);
    }
    for account in &to_open {
        store.open_account(ledger_id, account, start).await?;
    }
    report.accounts = to_open.len();

    let writer = Writer::spawn(
        store.clone(),
        ledger_id.to_owned(),
        clock.clone(),
        entropy.clone(),
    );
    // A small model of balances, so every generated entry is valid when it is posted.
    let mut points: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut redemptions: Vec<(Uuid, Vec<Posting>)> = Vec::new();
    let mut pending: Vec<(String, EntryDraft)> = Vec::new();
    let mut posted = 0u64;
    while posted + (pending.len() as u64) < entries {
        let community = &communities[rng.gen_range(0..communities.len())];
        let resident = community.residents[rng.gen_range(0..community.residents.len())];
        let balance = points.get(&resident).copied().unwrap_or(0);
        let roll: u32 = rng.gen_range(0..100);
        let refundable = |(_, original): &(Uuid, Vec<Posting>)| {
            original.iter().all(|p| {
                p.side == Side::Debit
                    || points.get(&p.account).copied().unwrap_or(0) >= p.amount.minor()
            })
        };
        let candidate = if roll < 8 && !redemptions.is_empty() {
            Some(rng.gen_range(0..redemptions.len())).filter(|i| refundable(&redemptions[*i]))
        } else {
            None
        };
        let draft = if let Some(index) = candidate {
            // Refund a redemption made in an earlier window (its id is known by now) whose shop
            // still holds the points.
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
        } else if roll < 50 && balance >= 500 {
            *points.entry(resident).or_default() -= 500;
            *points.entry(community.expiry).or_default() += 500;
            transfer(
                EntryKind::Expire,
                resident,
                community.expiry,
                500,
                "积分到期 / points expired".to_owned(),
            )
        } else {
            let hours = rng.gen_range(1..=4) as i64;
            let earned = hours * 1_000;
            *points.entry(resident).or_default() += earned;
            let activity = ACTIVITIES[rng.gen_range(0..ACTIVITIES.len())];
            let mut draft = transfer(
                EntryKind::Earn,
                community.issuance,
                resident,
                earned,
                format!("志愿服务：{activity}"),
            );
            let hours_amount = amount(hours * 100);
            draft.postings.push(Posting {
                account: community.issuance,
                unit: Unit::Hours,
                side: Side::Debit,
                amount: hours_amount,
            });
            draft.postings.push(Posting {
                account: resident,
                unit: Unit::Hours,
                side: Side::Credit,
                amount: hours_amount,
            });
            draft
        };
        pending.push((
            format!("seed-{seed}-{}", posted + pending.len() as u64),
            draft,
        ));
        if pending.len() == WINDOW {
            posted += flush(&writer, &clock, step, &mut pending, &mut redemptions).await?;
        }
    }
    posted += flush(&writer, &clock, step, &mut pending, &mut redemptions).await?;
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
    clock: &ManualClock,
    step: i64,
    pending: &mut Vec<(String, EntryDraft)>,
    redemptions: &mut Vec<(Uuid, Vec<Posting>)>,
) -> Result<u64, SeedError> {
    clock.advance(step * pending.len() as i64);
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

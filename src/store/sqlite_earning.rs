//! [`EarningStore`] on SQLite.

use async_trait::async_trait;
use uuid::Uuid;

use super::earning::{EarningStore, Inserted, RecordsInserted, ORG_DEPTH_MAX};
use super::sqlite::SqliteStore;
use super::StoreError;
use crate::calendar::format_date;
use crate::ledger::lots::{spending_order, Lot};
use crate::ledger::Amount;
use crate::model::{
    Community, Correction, ExpiryPolicy, OrgUnit, Resident, Roster, Rule, RuleMode, ServiceRecord,
};

fn opt_uuid(text: Option<String>) -> Result<Option<Uuid>, StoreError> {
    text.as_deref().map(uuid).transpose()
}

use super::{amount_from_minor as amount, parse_stored_date as date, parse_uuid as uuid};

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: String,
    parent_id: Option<String>,
    level: String,
    name_zh: String,
    name_en: String,
    is_community: i64,
    expiry_policy: Option<String>,
    expiry_months: Option<i64>,
    issuance_account: Option<String>,
    settlement_account: Option<String>,
    expiry_account: Option<String>,
    created_at: i64,
}

const ORG_COLUMNS: &str =
    "id, parent_id, level, name_zh, name_en, is_community, expiry_policy, expiry_months,
    issuance_account, settlement_account, expiry_account, created_at";

fn org_from(row: OrgRow) -> Result<OrgUnit, StoreError> {
    let community = if row.is_community != 0 {
        let months = row.expiry_months.map(|m| m as u32);
        Some(Community {
            expiry: ExpiryPolicy::parse(row.expiry_policy.as_deref().unwrap_or(""), months)
                .ok_or_else(|| StoreError::Corrupt("expiry policy".to_owned()))?,
            issuance_account: uuid(row.issuance_account.as_deref().unwrap_or(""))?,
            settlement_account: uuid(row.settlement_account.as_deref().unwrap_or(""))?,
            expiry_account: uuid(row.expiry_account.as_deref().unwrap_or(""))?,
        })
    } else {
        None
    };
    Ok(OrgUnit {
        id: row.id,
        parent_id: row.parent_id,
        level: row.level,
        name_zh: row.name_zh,
        name_en: row.name_en,
        community,
        created_at_micros: row.created_at,
    })
}

#[derive(sqlx::FromRow)]
struct ResidentRow {
    id: String,
    pseudonym: String,
    name: String,
    phone: String,
    community_id: String,
    account_id: String,
    created_at: i64,
}

fn resident_from(row: ResidentRow) -> Result<Resident, StoreError> {
    Ok(Resident {
        id: uuid(&row.id)?,
        pseudonym: row.pseudonym,
        name: row.name,
        phone: row.phone,
        community_id: row.community_id,
        account_id: uuid(&row.account_id)?,
        created_at_micros: row.created_at,
    })
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    rule_id: String,
    version: i64,
    community_id: String,
    category: String,
    name_zh: String,
    name_en: String,
    mode: String,
    points_minor: i64,
    records_hours: i64,
    cap_day_minor: Option<i64>,
    cap_month_minor: Option<i64>,
    valid_from: String,
    valid_until: Option<String>,
    created_by: String,
    created_at: i64,
}

fn rule_from(row: RuleRow) -> Result<Rule, StoreError> {
    Ok(Rule {
        rule_id: row.rule_id,
        version: row.version,
        community_id: row.community_id,
        category: row.category,
        name_zh: row.name_zh,
        name_en: row.name_en,
        mode: RuleMode::parse(&row.mode)
            .ok_or_else(|| StoreError::Corrupt("rule mode".to_owned()))?,
        points: amount(row.points_minor)?,
        records_hours: row.records_hours != 0,
        cap_day: row.cap_day_minor.map(amount).transpose()?,
        cap_month: row.cap_month_minor.map(amount).transpose()?,
        valid_from: date(&row.valid_from)?,
        valid_until: row.valid_until.as_deref().map(date).transpose()?,
        created_by: row.created_by,
        created_at_micros: row.created_at,
    })
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: String,
    resident_id: String,
    rule_id: String,
    service_date: String,
    hours_minor: i64,
    note: String,
    status: String,
    submitted_by: String,
    submitted_at: i64,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    reason: Option<String>,
    entry_id: Option<String>,
    roster_id: Option<String>,
    correction_of: Option<String>,
}

const RECORD_COLUMNS: &str =
    "id, resident_id, rule_id, service_date, hours_minor, note, status, submitted_by,
    submitted_at, decided_by, decided_at, reason, entry_id, roster_id, correction_of";

fn record_from(row: RecordRow) -> Result<ServiceRecord, StoreError> {
    Ok(ServiceRecord {
        id: uuid(&row.id)?,
        resident_id: uuid(&row.resident_id)?,
        rule_id: row.rule_id,
        service_date: date(&row.service_date)?,
        hours_minor: row.hours_minor,
        note: row.note,
        status: row.status,
        submitted_by: row.submitted_by,
        submitted_at_micros: row.submitted_at,
        decided_by: row.decided_by,
        decided_at_micros: row.decided_at,
        reason: row.reason,
        entry_id: opt_uuid(row.entry_id)?,
        roster_id: opt_uuid(row.roster_id)?,
        correction_of: opt_uuid(row.correction_of)?,
    })
}

#[derive(sqlx::FromRow)]
struct RosterRow {
    id: String,
    community_id: String,
    rule_id: String,
    service_date: String,
    title: String,
    status: String,
    submitted_by: String,
    created_at: i64,
}

fn roster_from(row: RosterRow) -> Result<Roster, StoreError> {
    Ok(Roster {
        id: uuid(&row.id)?,
        community_id: row.community_id,
        rule_id: row.rule_id,
        service_date: date(&row.service_date)?,
        title: row.title,
        status: row.status,
        submitted_by: row.submitted_by,
        created_at_micros: row.created_at,
    })
}

#[derive(sqlx::FromRow)]
struct CorrectionRow {
    id: String,
    record_id: String,
    requested_by: String,
    reason: String,
    status: String,
    requested_at: i64,
    resolved_by: Option<String>,
    resolved_at: Option<i64>,
    resolution: Option<String>,
    reversal_entry_id: Option<String>,
    new_record_id: Option<String>,
}

fn correction_from(row: CorrectionRow) -> Result<Correction, StoreError> {
    Ok(Correction {
        id: uuid(&row.id)?,
        record_id: uuid(&row.record_id)?,
        requested_by: row.requested_by,
        reason: row.reason,
        status: row.status,
        requested_at_micros: row.requested_at,
        resolved_by: row.resolved_by,
        resolved_at_micros: row.resolved_at,
        resolution: row.resolution,
        reversal_entry_id: opt_uuid(row.reversal_entry_id)?,
        new_record_id: opt_uuid(row.new_record_id)?,
    })
}

#[derive(sqlx::FromRow)]
struct LotRow {
    id: i64,
    account_id: String,
    entry_seq: i64,
    amount_minor: i64,
    remaining_minor: i64,
    expires_on: Option<String>,
}

#[async_trait]
impl EarningStore for SqliteStore {
    async fn insert_org_unit(
        &self,
        ledger_id: &str,
        unit: &OrgUnit,
    ) -> Result<Inserted<OrgUnit>, StoreError> {
        let community = unit.community.as_ref();
        let done = sqlx::query(
            "INSERT INTO org_units (ledger_id, id, parent_id, level, name_zh, name_en, is_community, expiry_policy,
                 expiry_months, issuance_account, settlement_account, expiry_account, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (ledger_id, id) DO NOTHING",
        )
        .bind(ledger_id)
        .bind(&unit.id)
        .bind(&unit.parent_id)
        .bind(&unit.level)
        .bind(&unit.name_zh)
        .bind(&unit.name_en)
        .bind(community.is_some())
        .bind(community.map(|c| c.expiry.as_str()))
        .bind(community.and_then(|c| c.expiry.months()).map(i64::from))
        .bind(community.map(|c| c.issuance_account.to_string()))
        .bind(community.map(|c| c.settlement_account.to_string()))
        .bind(community.map(|c| c.expiry_account.to_string()))
        .bind(unit.created_at_micros)
        .execute(&self.pool)
        .await?;
        let stored = self
            .org_unit(ledger_id, &unit.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("org unit vanished".to_owned()))?;
        Ok(if done.rows_affected() == 1 {
            Inserted::Created(stored)
        } else {
            Inserted::Existing(stored)
        })
    }

    async fn org_unit(&self, ledger_id: &str, id: &str) -> Result<Option<OrgUnit>, StoreError> {
        let row: Option<OrgRow> = sqlx::query_as(&format!(
            "SELECT {ORG_COLUMNS} FROM org_units WHERE ledger_id = ?1 AND id = ?2"
        ))
        .bind(ledger_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(org_from).transpose()
    }

    async fn ancestry(&self, ledger_id: &str, id: &str) -> Result<Vec<OrgUnit>, StoreError> {
        let mut chain = Vec::new();
        let mut next = Some(id.to_owned());
        while let Some(current) = next {
            if chain.len() >= ORG_DEPTH_MAX {
                break;
            }
            match self.org_unit(ledger_id, &current).await? {
                Some(unit) => {
                    next = unit.parent_id.clone();
                    chain.push(unit);
                }
                None => break,
            }
        }
        Ok(chain)
    }

    async fn insert_resident(
        &self,
        ledger_id: &str,
        resident: &Resident,
    ) -> Result<Inserted<Resident>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO residents (ledger_id, id, pseudonym, name, phone, community_id, account_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (ledger_id, id) DO NOTHING",
        )
        .bind(ledger_id)
        .bind(resident.id.to_string())
        .bind(&resident.pseudonym)
        .bind(&resident.name)
        .bind(&resident.phone)
        .bind(&resident.community_id)
        .bind(resident.account_id.to_string())
        .bind(resident.created_at_micros)
        .execute(&self.pool)
        .await?;
        let stored = self
            .resident(ledger_id, resident.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("resident vanished".to_owned()))?;
        Ok(if done.rows_affected() == 1 {
            Inserted::Created(stored)
        } else {
            Inserted::Existing(stored)
        })
    }

    async fn resident(&self, ledger_id: &str, id: Uuid) -> Result<Option<Resident>, StoreError> {
        let row: Option<ResidentRow> = sqlx::query_as(
            "SELECT id, pseudonym, name, phone, community_id, account_id, created_at FROM residents
             WHERE ledger_id = ?1 AND id = ?2",
        )
        .bind(ledger_id)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(resident_from).transpose()
    }

    async fn resident_by_pseudonym(
        &self,
        ledger_id: &str,
        pseudonym: &str,
    ) -> Result<Option<Resident>, StoreError> {
        let row: Option<ResidentRow> = sqlx::query_as(
            "SELECT id, pseudonym, name, phone, community_id, account_id, created_at FROM residents
             WHERE ledger_id = ?1 AND pseudonym = ?2",
        )
        .bind(ledger_id)
        .bind(pseudonym)
        .fetch_optional(&self.pool)
        .await?;
        row.map(resident_from).transpose()
    }

    async fn insert_rule(&self, ledger_id: &str, rule: &Rule) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO earning_rules (ledger_id, rule_id, version, community_id, category, name_zh, name_en, mode,
                 points_minor, records_hours, cap_day_minor, cap_month_minor, valid_from, valid_until, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (ledger_id, rule_id, version) DO NOTHING",
        )
        .bind(ledger_id)
        .bind(&rule.rule_id)
        .bind(rule.version)
        .bind(&rule.community_id)
        .bind(&rule.category)
        .bind(&rule.name_zh)
        .bind(&rule.name_en)
        .bind(rule.mode.as_str())
        .bind(rule.points.minor())
        .bind(rule.records_hours)
        .bind(rule.cap_day.map(Amount::minor))
        .bind(rule.cap_month.map(Amount::minor))
        .bind(format_date(rule.valid_from))
        .bind(rule.valid_until.map(format_date))
        .bind(&rule.created_by)
        .bind(rule.created_at_micros)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn all_rules(&self, ledger_id: &str) -> Result<Vec<Rule>, StoreError> {
        let rows: Vec<RuleRow> = sqlx::query_as(
            "SELECT rule_id, version, community_id, category, name_zh, name_en, mode, points_minor, records_hours,
                    cap_day_minor, cap_month_minor, valid_from, valid_until, created_by, created_at
             FROM earning_rules WHERE ledger_id = ?1",
        )
        .bind(ledger_id)
        .fetch_all(&self.pool)
        .await?;
        let mut rules = rows
            .into_iter()
            .map(rule_from)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here, not by the database: collations differ between backends.
        rules.sort_by(|a, b| {
            (a.rule_id.as_bytes(), a.version).cmp(&(b.rule_id.as_bytes(), b.version))
        });
        Ok(rules)
    }

    async fn rule_versions(&self, ledger_id: &str, rule_id: &str) -> Result<Vec<Rule>, StoreError> {
        let rows: Vec<RuleRow> = sqlx::query_as(
            "SELECT rule_id, version, community_id, category, name_zh, name_en, mode, points_minor, records_hours,
                    cap_day_minor, cap_month_minor, valid_from, valid_until, created_by, created_at
             FROM earning_rules WHERE ledger_id = ?1 AND rule_id = ?2 ORDER BY version",
        )
        .bind(ledger_id)
        .bind(rule_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(rule_from).collect()
    }

    async fn insert_records(
        &self,
        ledger_id: &str,
        roster: Option<&Roster>,
        records: &[ServiceRecord],
    ) -> Result<RecordsInserted, StoreError> {
        if records.is_empty() {
            return Ok(RecordsInserted::Created);
        }
        // A retry of the same request shows as its first record already there (checked below).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(roster) = roster {
            sqlx::query(
                "INSERT INTO rosters (ledger_id, id, community_id, rule_id, service_date, title, status, submitted_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (ledger_id, id) DO NOTHING",
            )
            .bind(ledger_id)
            .bind(roster.id.to_string())
            .bind(&roster.community_id)
            .bind(&roster.rule_id)
            .bind(format_date(roster.service_date))
            .bind(&roster.title)
            .bind(&roster.status)
            .bind(&roster.submitted_by)
            .bind(roster.created_at_micros)
            .execute(&mut *tx)
            .await?;
        }
        let mut duplicates = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let done = sqlx::query(
                // No conflict target: a concurrent identical request (same id) and a duplicate
                // service (the partial unique index) both write nothing, and are told apart below.
                "INSERT INTO service_records (ledger_id, id, resident_id, rule_id, service_date, hours_minor, note, status,
                     submitted_by, submitted_at, roster_id, correction_of, roster_line)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT DO NOTHING",
            )
            .bind(ledger_id)
            .bind(record.id.to_string())
            .bind(record.resident_id.to_string())
            .bind(&record.rule_id)
            .bind(format_date(record.service_date))
            .bind(record.hours_minor)
            .bind(&record.note)
            .bind(&record.status)
            .bind(&record.submitted_by)
            .bind(record.submitted_at_micros)
            .bind(record.roster_id.map(|r| r.to_string()))
            .bind(record.correction_of.map(|r| r.to_string()))
            .bind(roster.map(|_| index as i64 + 1))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                if index == 0 && self.record(ledger_id, record.id).await?.is_some() {
                    // The same request was (or is being) written by someone else: a retry.
                    tx.rollback().await?;
                    return Ok(RecordsInserted::Existing);
                }
                duplicates.push(index);
            }
        }
        if !duplicates.is_empty() {
            tx.rollback().await?;
            return Ok(RecordsInserted::Duplicates(duplicates));
        }
        tx.commit().await?;
        Ok(RecordsInserted::Created)
    }

    async fn record(&self, ledger_id: &str, id: Uuid) -> Result<Option<ServiceRecord>, StoreError> {
        let row: Option<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLUMNS} FROM service_records WHERE ledger_id = ?1 AND id = ?2"
        ))
        .bind(ledger_id)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(record_from).transpose()
    }

    async fn records_of_roster(
        &self,
        ledger_id: &str,
        roster_id: Uuid,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let rows: Vec<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLUMNS} FROM service_records WHERE ledger_id = ?1 AND roster_id = ?2 ORDER BY roster_line"
        ))
        .bind(ledger_id)
        .bind(roster_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(record_from).collect()
    }

    async fn roster(&self, ledger_id: &str, id: Uuid) -> Result<Option<Roster>, StoreError> {
        let row: Option<RosterRow> = sqlx::query_as(
            "SELECT id, community_id, rule_id, service_date, title, status, submitted_by, created_at FROM rosters
             WHERE ledger_id = ?1 AND id = ?2",
        )
        .bind(ledger_id)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(roster_from).transpose()
    }

    async fn set_roster_status(
        &self,
        ledger_id: &str,
        id: Uuid,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE rosters SET status = ?3 WHERE ledger_id = ?1 AND id = ?2")
            .bind(ledger_id)
            .bind(id.to_string())
            .bind(status)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn reject_record(
        &self,
        ledger_id: &str,
        id: Uuid,
        by: &str,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE service_records SET status = 'rejected', decided_by = ?3, reason = ?4, decided_at = ?5
             WHERE ledger_id = ?1 AND id = ?2 AND status = 'submitted'",
        )
        .bind(ledger_id)
        .bind(id.to_string())
        .bind(by)
        .bind(reason)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_correction(
        &self,
        ledger_id: &str,
        c: &Correction,
    ) -> Result<Inserted<Correction>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO corrections (ledger_id, id, record_id, requested_by, reason, status, requested_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (ledger_id, id) DO NOTHING",
        )
        .bind(ledger_id)
        .bind(c.id.to_string())
        .bind(c.record_id.to_string())
        .bind(&c.requested_by)
        .bind(&c.reason)
        .bind(&c.status)
        .bind(c.requested_at_micros)
        .execute(&self.pool)
        .await?;
        let stored = self
            .correction(ledger_id, c.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("correction vanished".to_owned()))?;
        Ok(if done.rows_affected() == 1 {
            Inserted::Created(stored)
        } else {
            Inserted::Existing(stored)
        })
    }

    async fn correction(
        &self,
        ledger_id: &str,
        id: Uuid,
    ) -> Result<Option<Correction>, StoreError> {
        let row: Option<CorrectionRow> = sqlx::query_as(
            "SELECT id, record_id, requested_by, reason, status, requested_at, resolved_by, resolved_at, resolution,
                    reversal_entry_id, new_record_id FROM corrections WHERE ledger_id = ?1 AND id = ?2",
        )
        .bind(ledger_id)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(correction_from).transpose()
    }

    async fn resolve_correction(
        &self,
        ledger_id: &str,
        c: &Correction,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE corrections SET status = ?3, resolved_by = ?4, resolved_at = ?5, resolution = ?6,
                    reversal_entry_id = ?7, new_record_id = ?8
             WHERE ledger_id = ?1 AND id = ?2 AND status = 'open'",
        )
        .bind(ledger_id)
        .bind(c.id.to_string())
        .bind(&c.status)
        .bind(&c.resolved_by)
        .bind(c.resolved_at_micros)
        .bind(&c.resolution)
        .bind(c.reversal_entry_id.map(|u| u.to_string()))
        .bind(c.new_record_id.map(|u| u.to_string()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn expired_points(
        &self,
        ledger_id: &str,
        as_of: &str,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT account_id, sum(remaining_minor) FROM lots
             WHERE ledger_id = ?1 AND remaining_minor > 0 AND expires_on IS NOT NULL AND expires_on < ?2
             GROUP BY account_id ORDER BY account_id",
        )
        .bind(ledger_id)
        .bind(as_of)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(a, s)| Ok((uuid(&a)?, s))).collect()
    }

    async fn open_lots(&self, ledger_id: &str, account: Uuid) -> Result<Vec<Lot>, StoreError> {
        let rows: Vec<LotRow> = sqlx::query_as(
            "SELECT id, account_id, entry_seq, amount_minor, remaining_minor, expires_on FROM lots
             WHERE ledger_id = ?1 AND account_id = ?2 AND remaining_minor > 0",
        )
        .bind(ledger_id)
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut lots = rows
            .into_iter()
            .map(|r| {
                Ok(Lot {
                    id: r.id,
                    account: uuid(&r.account_id)?,
                    entry_seq: r.entry_seq,
                    amount_minor: r.amount_minor,
                    remaining_minor: r.remaining_minor,
                    expires_on: r.expires_on,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        lots.sort_by(spending_order);
        Ok(lots)
    }
}

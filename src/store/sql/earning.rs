//! [`EarningStore`](crate::store::earning::EarningStore) on both backends: every statement is
//! the same on SQLite and PostgreSQL, so the whole implementation is written once.

use super::{opt, Id};
use crate::ledger::lots::Lot;
use crate::model::{
    Community, Correction, ExpiryPolicy, OrgUnit, Resident, Roster, Rule, RuleMode, ServiceRecord,
};
use crate::store::{amount_from_minor as amount, parse_stored_date as date, StoreError};

/// Implements [`EarningStore`](crate::store::earning::EarningStore) for `$store` (with a field
/// `pool: sqlx::Pool<_>`). The store provides `begin_write(&Pool) -> Transaction`, the
/// transaction a roster's records are written in.
macro_rules! earning_store {
    ($store:ident) => {
        const _: () = {
            use uuid::Uuid;

            use $crate::calendar::format_date;
            use $crate::model::{Correction, OrgUnit, Resident, Roster, Rule, ServiceRecord};
            use $crate::ledger::lots::{spending_order, Lot};
            use $crate::ledger::Amount;
            use $crate::store::earning::{EarningStore, Inserted, RecordsInserted, StateFilter, ORG_DEPTH_MAX};
            use $crate::store::sql::earning::*;
            use $crate::store::sql::Id;
            use $crate::store::StoreError;

            #[async_trait::async_trait]
            impl EarningStore for $store {
                async fn insert_org_unit(
                    &self,
                    ledger_id: &str,
                    unit: &OrgUnit,
                ) -> Result<Inserted<OrgUnit>, StoreError> {
                    let community = unit.community.as_ref();
                    let done = sqlx::query(
                        "INSERT INTO org_units (ledger_id, id, parent_id, level, name_zh, name_en, is_community, expiry_policy,
                             expiry_months, issuance_account, settlement_account, expiry_account, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (ledger_id, id) DO NOTHING",
                    )
                    .bind(ledger_id)
                    .bind(&unit.id)
                    .bind(&unit.parent_id)
                    .bind(&unit.level)
                    .bind(&unit.name_zh)
                    .bind(&unit.name_en)
                    .bind(community.is_some())
                    .bind(community.map(|c| c.expiry.as_str()))
                    .bind(community.and_then(|c| c.expiry.months()).map(|m| m as i32))
                    .bind(community.map(|c| Id(c.issuance_account)))
                    .bind(community.map(|c| Id(c.settlement_account)))
                    .bind(community.map(|c| Id(c.expiry_account)))
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
                        "SELECT {ORG_COLUMNS} FROM org_units WHERE ledger_id = $1 AND id = $2"
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
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (ledger_id, id) DO NOTHING",
                    )
                    .bind(ledger_id)
                    .bind(Id(resident.id))
                    .bind(&resident.pseudonym)
                    .bind(&resident.name)
                    .bind(&resident.phone)
                    .bind(&resident.community_id)
                    .bind(Id(resident.account_id))
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
                         WHERE ledger_id = $1 AND id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(id))
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
                         WHERE ledger_id = $1 AND pseudonym = $2",
                    )
                    .bind(ledger_id)
                    .bind(pseudonym)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(resident_from).transpose()
                }

                async fn search_residents(
                    &self,
                    ledger_id: &str,
                    query: &$crate::store::earning::ResidentQuery,
                ) -> Result<Vec<$crate::store::earning::FoundResident>, StoreError> {
                    let (sql, binds) = search_sql(query);
                    let mut q = sqlx::query_as::<_, FoundRow>(&sql).bind(ledger_id);
                    for b in binds {
                        q = match b {
                            Bind::Text(t) => q.bind(t),
                            Bind::Int(i) => q.bind(i),
                            Bind::Id(id) => q.bind(Id(id)),
                        };
                    }
                    let rows = q.fetch_all(&self.pool).await?;
                    rows.into_iter().map(found_from).collect()
                }

                async fn card_of(
                    &self,
                    ledger_id: &str,
                    resident: Uuid,
                ) -> Result<Option<$crate::store::earning::CardState>, StoreError> {
                    let row: Option<(i64, i64, bool, i64)> = sqlx::query_as(
                        "SELECT CAST(number AS BIGINT), CAST(generation AS BIGINT), active, CAST(failures AS BIGINT)
                         FROM credentials WHERE ledger_id = $1 AND resident_id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(resident))
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(|(number, generation, active, failures)| $crate::store::earning::CardState {
                        number,
                        generation,
                        active,
                        failures,
                    }))
                }

                async fn communities_under(
                    &self,
                    ledger_id: &str,
                    scope: Option<&str>,
                    limit: i64,
                ) -> Result<Vec<OrgUnit>, StoreError> {
                    let mut args = Args::new();
                    let (with, filter) = scope_sql(&mut args, scope, "o.id");
                    let limit_arg = args.next();
                    let sql = format!(
                        "{with} SELECT {ORG_COLUMNS} FROM org_units o WHERE o.ledger_id = $1 AND o.is_community = {TRUE} {filter}
                         ORDER BY o.id LIMIT {limit_arg}"
                    );
                    let mut q = sqlx::query_as::<_, OrgRow>(&sql).bind(ledger_id);
                    if let Some(scope) = scope {
                        q = q.bind(scope);
                    }
                    let rows = q.bind(limit).fetch_all(&self.pool).await?;
                    let mut units = rows.into_iter().map(org_from).collect::<Result<Vec<_>, _>>()?;
                    // By id in byte order, whatever the database's collation.
                    units.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
                    Ok(units)
                }

                async fn expiring_between(
                    &self,
                    ledger_id: &str,
                    scope: Option<&str>,
                    from: &str,
                    until: &str,
                    limit: i64,
                ) -> Result<$crate::store::earning::ExpiringSummary, StoreError> {
                    let mut args = Args::new();
                    let (with, filter) = scope_sql(&mut args, scope, "r.community_id");
                    let (a_from, a_until) = (args.next(), args.next());
                    let body = format!(
                        "FROM lots l JOIN residents r ON r.ledger_id = l.ledger_id AND r.account_id = l.account_id
                         WHERE l.ledger_id = $1 AND l.remaining_minor > 0 AND l.expires_on >= {a_from}
                           AND l.expires_on <= {a_until} {filter}"
                    );
                    let totals_sql = format!(
                        "{with} SELECT COUNT(DISTINCT r.id), CAST(COALESCE(SUM(l.remaining_minor), 0) AS BIGINT) {body}"
                    );
                    let mut q = sqlx::query_as::<_, (i64, i64)>(&totals_sql).bind(ledger_id);
                    if let Some(scope) = scope {
                        q = q.bind(scope);
                    }
                    let (residents, points_minor) =
                        q.bind(from).bind(until).fetch_one(&self.pool).await?;
                    let limit_arg = args.next();
                    let list_sql = format!(
                        "{with} SELECT r.id, r.name, r.community_id, CAST(SUM(l.remaining_minor) AS BIGINT), MIN(l.expires_on) {body}
                         GROUP BY r.id, r.name, r.community_id ORDER BY MIN(l.expires_on), r.id LIMIT {limit_arg}"
                    );
                    let mut q = sqlx::query_as::<_, (Id, String, String, i64, String)>(&list_sql).bind(ledger_id);
                    if let Some(scope) = scope {
                        q = q.bind(scope);
                    }
                    let rows = q.bind(from).bind(until).bind(limit).fetch_all(&self.pool).await?;
                    Ok($crate::store::earning::ExpiringSummary {
                        residents,
                        points_minor,
                        soonest: rows
                            .into_iter()
                            .map(|(id, name, community_id, points_minor, first_day)| {
                                $crate::store::earning::ExpiringResident {
                                    resident_id: id.0,
                                    name,
                                    community_id,
                                    points_minor,
                                    first_day,
                                }
                            })
                            .collect(),
                    })
                }

                async fn waiting_counts(
                    &self,
                    ledger_id: &str,
                    scope: Option<&str>,
                ) -> Result<(i64, i64), StoreError> {
                    let mut args = Args::new();
                    let (with, filter) = scope_sql(&mut args, scope, "r.community_id");
                    let records_sql = format!(
                        "{with} SELECT COUNT(*) FROM service_records s
                         JOIN residents r ON r.ledger_id = s.ledger_id AND r.id = s.resident_id
                         WHERE s.ledger_id = $1 AND s.status = 'submitted' {filter}"
                    );
                    let corrections_sql = format!(
                        "{with} SELECT COUNT(*) FROM corrections c
                         JOIN service_records s ON s.ledger_id = c.ledger_id AND s.id = c.record_id
                         JOIN residents r ON r.ledger_id = s.ledger_id AND r.id = s.resident_id
                         WHERE c.ledger_id = $1 AND c.status = 'open' {filter}"
                    );
                    let mut counts = [0i64; 2];
                    for (i, sql) in [records_sql, corrections_sql].iter().enumerate() {
                        let mut q = sqlx::query_as::<_, (i64,)>(sql).bind(ledger_id);
                        if let Some(scope) = scope {
                            q = q.bind(scope);
                        }
                        counts[i] = q.fetch_one(&self.pool).await?.0;
                    }
                    Ok((counts[0], counts[1]))
                }

                async fn insert_rule(&self, ledger_id: &str, rule: &Rule) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "INSERT INTO earning_rules (ledger_id, rule_id, version, community_id, category, name_zh, name_en, mode,
                             points_minor, records_hours, cap_day_minor, cap_month_minor, valid_from, valid_until, created_by, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
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
                         FROM earning_rules WHERE ledger_id = $1",
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
                         FROM earning_rules WHERE ledger_id = $1 AND rule_id = $2 ORDER BY version",
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
                    let mut tx = Self::begin_write(&self.pool).await?;
                    if let Some(roster) = roster {
                        sqlx::query(
                            "INSERT INTO rosters (ledger_id, id, community_id, rule_id, service_date, title, status, submitted_by, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                             ON CONFLICT (ledger_id, id) DO NOTHING",
                        )
                        .bind(ledger_id)
                        .bind(Id(roster.id))
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
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(ledger_id)
                        .bind(Id(record.id))
                        .bind(Id(record.resident_id))
                        .bind(&record.rule_id)
                        .bind(format_date(record.service_date))
                        .bind(record.hours_minor)
                        .bind(&record.note)
                        .bind(&record.status)
                        .bind(&record.submitted_by)
                        .bind(record.submitted_at_micros)
                        .bind(record.roster_id.map(Id))
                        .bind(record.correction_of.map(Id))
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
                        "SELECT {RECORD_COLUMNS} FROM service_records WHERE ledger_id = $1 AND id = $2"
                    ))
                    .bind(ledger_id)
                    .bind(Id(id))
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
                        "SELECT {RECORD_COLUMNS} FROM service_records WHERE ledger_id = $1 AND roster_id = $2 ORDER BY roster_line"
                    ))
                    .bind(ledger_id)
                    .bind(Id(roster_id))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(record_from).collect()
                }

                async fn roster(&self, ledger_id: &str, id: Uuid) -> Result<Option<Roster>, StoreError> {
                    let row: Option<RosterRow> = sqlx::query_as(
                        "SELECT id, community_id, rule_id, service_date, title, status, submitted_by, created_at FROM rosters
                         WHERE ledger_id = $1 AND id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(id))
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
                    sqlx::query("UPDATE rosters SET status = $3 WHERE ledger_id = $1 AND id = $2")
                        .bind(ledger_id)
                        .bind(Id(id))
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
                        "UPDATE service_records SET status = 'rejected', decided_by = $3, reason = $4, decided_at = $5
                         WHERE ledger_id = $1 AND id = $2 AND status = 'submitted'",
                    )
                    .bind(ledger_id)
                    .bind(Id(id))
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
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ledger_id, id) DO NOTHING",
                    )
                    .bind(ledger_id)
                    .bind(Id(c.id))
                    .bind(Id(c.record_id))
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
                    let row: Option<CorrectionRow> = sqlx::query_as(&format!(
                        "SELECT {CORRECTION_COLUMNS} FROM corrections WHERE ledger_id = $1 AND id = $2"
                    ))
                    .bind(ledger_id)
                    .bind(Id(id))
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
                        "UPDATE corrections SET status = $3, resolved_by = $4, resolved_at = $5, resolution = $6,
                                reversal_entry_id = $7, new_record_id = $8
                         WHERE ledger_id = $1 AND id = $2 AND status = 'open'",
                    )
                    .bind(ledger_id)
                    .bind(Id(c.id))
                    .bind(&c.status)
                    .bind(&c.resolved_by)
                    .bind(c.resolved_at_micros)
                    .bind(&c.resolution)
                    .bind(c.reversal_entry_id.map(Id))
                    .bind(c.new_record_id.map(Id))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn expired_points(
                    &self,
                    ledger_id: &str,
                    as_of: &str,
                ) -> Result<Vec<(Uuid, i64)>, StoreError> {
                    let rows: Vec<(Id, i64)> = sqlx::query_as(
                        "SELECT account_id, CAST(sum(remaining_minor) AS BIGINT) FROM lots
                         WHERE ledger_id = $1 AND remaining_minor > 0 AND expires_on IS NOT NULL AND expires_on < $2
                         GROUP BY account_id ORDER BY account_id",
                    )
                    .bind(ledger_id)
                    .bind(as_of)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|(a, s)| (a.0, s)).collect())
                }

                async fn open_lots(&self, ledger_id: &str, account: Uuid) -> Result<Vec<Lot>, StoreError> {
                    let rows: Vec<LotRow> = sqlx::query_as(
                        "SELECT id, account_id, entry_seq, amount_minor, remaining_minor, expires_on FROM lots
                         WHERE ledger_id = $1 AND account_id = $2 AND remaining_minor > 0",
                    )
                    .bind(ledger_id)
                    .bind(Id(account))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut lots: Vec<Lot> = rows.into_iter().map(lot_from).collect();
                    lots.sort_by(spending_order);
                    Ok(lots)
                }

                async fn counter(&self, ledger_id: &str, key: &str) -> Result<Option<i64>, StoreError> {
                    let row: Option<(i64,)> = sqlx::query_as(
                        "SELECT value_minor FROM counters WHERE ledger_id = $1 AND key = $2",
                    )
                    .bind(ledger_id)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(|(v,)| v))
                }

                async fn org_units(&self, ledger_id: &str, limit: i64) -> Result<Vec<OrgUnit>, StoreError> {
                    // Sorted here, not by the database (collations differ between backends); the
                    // limit is applied after sorting, on a bounded read.
                    let rows: Vec<OrgRow> = sqlx::query_as(&format!(
                        "SELECT {ORG_COLUMNS} FROM org_units WHERE ledger_id = $1 LIMIT $2"
                    ))
                    .bind(ledger_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut units = rows.into_iter().map(org_from).collect::<Result<Vec<_>, _>>()?;
                    units.sort_by(|a, b| a.id.cmp(&b.id));
                    Ok(units)
                }

                async fn records_in_state(
                    &self,
                    ledger_id: &str,
                    f: &StateFilter,
                ) -> Result<Vec<ServiceRecord>, StoreError> {
                    let (at, id) = f.after.unwrap_or((i64::MIN, Uuid::nil()));
                    let rows: Vec<RecordRow> = sqlx::query_as(&format!(
                        "{SCOPE_CTE} SELECT {RECORD_COLUMNS} FROM service_records
                         WHERE ledger_id = $1 AND status = $2
                           AND ($3 IS NULL OR resident_id IN ({SCOPE_RESIDENTS}))
                           AND (submitted_at > $4 OR (submitted_at = $4 AND id > $5))
                           AND (NOT $6 OR (roster_id IS NULL AND correction_of IS NULL))
                         ORDER BY submitted_at, id LIMIT $7"
                    ))
                    .bind(ledger_id)
                    .bind(&f.state)
                    .bind(&f.under)
                    .bind(at)
                    .bind(Id(id))
                    .bind(f.standalone)
                    .bind(f.limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(record_from).collect()
                }

                async fn corrections_in_state(
                    &self,
                    ledger_id: &str,
                    f: &StateFilter,
                ) -> Result<Vec<Correction>, StoreError> {
                    let (at, id) = f.after.unwrap_or((i64::MIN, Uuid::nil()));
                    let rows: Vec<CorrectionRow> = sqlx::query_as(&format!(
                        "{SCOPE_CTE} SELECT {CORRECTION_COLUMNS} FROM corrections
                         WHERE ledger_id = $1 AND status = $2
                           AND ($3 IS NULL OR record_id IN (
                               SELECT id FROM service_records WHERE ledger_id = $1 AND resident_id IN ({SCOPE_RESIDENTS})))
                           AND (requested_at > $4 OR (requested_at = $4 AND id > $5))
                         ORDER BY requested_at, id LIMIT $6"
                    ))
                    .bind(ledger_id)
                    .bind(&f.state)
                    .bind(&f.under)
                    .bind(at)
                    .bind(Id(id))
                    .bind(f.limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(correction_from).collect()
                }

                async fn rosters_in_state(
                    &self,
                    ledger_id: &str,
                    f: &StateFilter,
                ) -> Result<Vec<Roster>, StoreError> {
                    let (at, id) = f.after.unwrap_or((i64::MIN, Uuid::nil()));
                    let rows: Vec<RosterRow> = sqlx::query_as(&format!(
                        "{SCOPE_CTE} SELECT id, community_id, rule_id, service_date, title, status, submitted_by, created_at
                         FROM rosters
                         WHERE ledger_id = $1 AND status = $2
                           AND ($3 IS NULL OR community_id IN (SELECT id FROM scope))
                           AND (created_at > $4 OR (created_at = $4 AND id > $5))
                         ORDER BY created_at, id LIMIT $6"
                    ))
                    .bind(ledger_id)
                    .bind(&f.state)
                    .bind(&f.under)
                    .bind(at)
                    .bind(Id(id))
                    .bind(f.limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(roster_from).collect()
                }
            }
        };
    };
}

pub(crate) use earning_store;

#[derive(sqlx::FromRow)]
pub(crate) struct OrgRow {
    id: String,
    parent_id: Option<String>,
    level: String,
    name_zh: String,
    name_en: String,
    is_community: bool,
    expiry_policy: Option<String>,
    expiry_months: Option<i32>,
    issuance_account: Option<Id>,
    settlement_account: Option<Id>,
    expiry_account: Option<Id>,
    created_at: i64,
}

pub(crate) const ORG_COLUMNS: &str =
    "id, parent_id, level, name_zh, name_en, is_community, expiry_policy, expiry_months,
    issuance_account, settlement_account, expiry_account, created_at";

pub(crate) fn org_from(row: OrgRow) -> Result<OrgUnit, StoreError> {
    let account =
        |id: Option<Id>| opt(id).ok_or_else(|| StoreError::Corrupt("community account".to_owned()));
    let community = if row.is_community {
        let months = row.expiry_months.map(|m| m as u32);
        Some(Community {
            expiry: ExpiryPolicy::parse(row.expiry_policy.as_deref().unwrap_or(""), months)
                .ok_or_else(|| StoreError::Corrupt("expiry policy".to_owned()))?,
            issuance_account: account(row.issuance_account)?,
            settlement_account: account(row.settlement_account)?,
            expiry_account: account(row.expiry_account)?,
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
pub(crate) struct ResidentRow {
    id: Id,
    pseudonym: String,
    name: String,
    phone: String,
    community_id: String,
    account_id: Id,
    created_at: i64,
}

pub(crate) fn resident_from(row: ResidentRow) -> Result<Resident, StoreError> {
    Ok(Resident {
        id: row.id.0,
        pseudonym: row.pseudonym,
        name: row.name,
        phone: row.phone,
        community_id: row.community_id,
        account_id: row.account_id.0,
        created_at_micros: row.created_at,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    rule_id: String,
    version: i64,
    community_id: String,
    category: String,
    name_zh: String,
    name_en: String,
    mode: String,
    points_minor: i64,
    records_hours: bool,
    cap_day_minor: Option<i64>,
    cap_month_minor: Option<i64>,
    valid_from: String,
    valid_until: Option<String>,
    created_by: String,
    created_at: i64,
}

pub(crate) fn rule_from(row: RuleRow) -> Result<Rule, StoreError> {
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
        records_hours: row.records_hours,
        cap_day: row.cap_day_minor.map(amount).transpose()?,
        cap_month: row.cap_month_minor.map(amount).transpose()?,
        valid_from: date(&row.valid_from)?,
        valid_until: row.valid_until.as_deref().map(date).transpose()?,
        created_by: row.created_by,
        created_at_micros: row.created_at,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct RecordRow {
    id: Id,
    resident_id: Id,
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
    entry_id: Option<Id>,
    roster_id: Option<Id>,
    correction_of: Option<Id>,
}

pub(crate) const RECORD_COLUMNS: &str =
    "id, resident_id, rule_id, service_date, hours_minor, note, status, submitted_by,
    submitted_at, decided_by, decided_at, reason, entry_id, roster_id, correction_of";

pub(crate) fn record_from(row: RecordRow) -> Result<ServiceRecord, StoreError> {
    Ok(ServiceRecord {
        id: row.id.0,
        resident_id: row.resident_id.0,
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
        entry_id: opt(row.entry_id),
        roster_id: opt(row.roster_id),
        correction_of: opt(row.correction_of),
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct RosterRow {
    id: Id,
    community_id: String,
    rule_id: String,
    service_date: String,
    title: String,
    status: String,
    submitted_by: String,
    created_at: i64,
}

pub(crate) fn roster_from(row: RosterRow) -> Result<Roster, StoreError> {
    Ok(Roster {
        id: row.id.0,
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
pub(crate) struct CorrectionRow {
    id: Id,
    record_id: Id,
    requested_by: String,
    reason: String,
    status: String,
    requested_at: i64,
    resolved_by: Option<String>,
    resolved_at: Option<i64>,
    resolution: Option<String>,
    reversal_entry_id: Option<Id>,
    new_record_id: Option<Id>,
}

pub(crate) const CORRECTION_COLUMNS: &str =
    "id, record_id, requested_by, reason, status, requested_at, resolved_by, resolved_at, resolution,
    reversal_entry_id, new_record_id";

/// The units at or below `$3` (an organisation unit id), as far down as the depth limit: the
/// scope of a list by state. Both backends run it as written.
pub(crate) const SCOPE_CTE: &str = "WITH RECURSIVE scope(id, depth) AS (
        SELECT id, 0 FROM org_units WHERE ledger_id = $1 AND id = $3
        UNION ALL
        SELECT u.id, s.depth + 1 FROM org_units u JOIN scope s ON u.parent_id = s.id
        WHERE u.ledger_id = $1 AND s.depth < 8
    )";

/// The residents of the units in `scope`.
pub(crate) const SCOPE_RESIDENTS: &str =
    "SELECT id FROM residents WHERE ledger_id = $1 AND community_id IN (SELECT id FROM scope)";

pub(crate) fn correction_from(row: CorrectionRow) -> Result<Correction, StoreError> {
    Ok(Correction {
        id: row.id.0,
        record_id: row.record_id.0,
        requested_by: row.requested_by,
        reason: row.reason,
        status: row.status,
        requested_at_micros: row.requested_at,
        resolved_by: row.resolved_by,
        resolved_at_micros: row.resolved_at,
        resolution: row.resolution,
        reversal_entry_id: opt(row.reversal_entry_id),
        new_record_id: opt(row.new_record_id),
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct LotRow {
    id: i64,
    account_id: Id,
    entry_seq: i64,
    amount_minor: i64,
    remaining_minor: i64,
    expires_on: Option<String>,
}

pub(crate) fn lot_from(row: LotRow) -> Lot {
    Lot {
        id: row.id,
        account: row.account_id.0,
        entry_seq: row.entry_seq,
        amount_minor: row.amount_minor,
        remaining_minor: row.remaining_minor,
        expires_on: row.expires_on,
    }
}

// ---- Resident search and the work table: statement text built from the query's parts ----

/// `true` as both backends spell a flag column's value in SQL text (SQLite keeps 1).
pub(crate) const TRUE: &str = "(1 = 1)";

/// The phone's digits in SQL, the same expression `residents_by_phone_digits` (migration 0010)
/// indexes.
pub(crate) const PHONE_DIGITS: &str =
    "replace(replace(replace(r.phone, ' ', ''), '-', ''), '+', '')";

/// Numbered placeholders after `$1` (the ledger).
pub(crate) struct Args(usize);

impl Args {
    pub(crate) fn new() -> Args {
        Args(1)
    }

    pub(crate) fn next(&mut self) -> String {
        self.0 += 1;
        format!("${}", self.0)
    }
}

/// The `WITH RECURSIVE` walking down from `scope` (its argument the next placeholder) and the
/// filter that keeps `column` among those units; both empty without a scope.
pub(crate) fn scope_sql(args: &mut Args, scope: Option<&str>, column: &str) -> (String, String) {
    let Some(_) = scope else {
        return (String::new(), String::new());
    };
    let arg = args.next();
    let depth = crate::store::earning::ORG_DEPTH_MAX;
    (
        format!(
            "WITH RECURSIVE under (id, depth) AS (
                 SELECT id, 1 FROM org_units WHERE ledger_id = $1 AND id = {arg}
                 UNION ALL
                 SELECT u2.id, under.depth + 1 FROM org_units u2 JOIN under ON u2.parent_id = under.id
                 WHERE u2.ledger_id = $1 AND under.depth < {depth})"
        ),
        format!("AND {column} IN (SELECT id FROM under)"),
    )
}

/// A value bound after the ledger, in placeholder order.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Id(uuid::Uuid),
}

/// `LIKE` pattern text matching `text` anywhere, with `\`, `%` and `_` escaped.
pub(crate) fn like_anywhere(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(crate) fn search_sql(query: &crate::store::earning::ResidentQuery) -> (String, Vec<Bind>) {
    let mut args = Args::new();
    let mut binds = Vec::new();
    let (with, mut filter) = scope_sql(&mut args, query.scope.as_deref(), "r.community_id");
    if let Some(scope) = &query.scope {
        binds.push(Bind::Text(scope.clone()));
    }
    if let Some(community) = &query.community {
        filter.push_str(&format!(" AND r.community_id = {}", args.next()));
        binds.push(Bind::Text(community.clone()));
    }
    let mut keys = Vec::new();
    if let Some(name) = &query.name {
        keys.push(format!("lower(r.name) LIKE {} ESCAPE '\\'", args.next()));
        binds.push(Bind::Text(like_anywhere(name)));
    }
    if let Some(digits) = &query.phone_digits {
        keys.push(format!("{PHONE_DIGITS} = {}", args.next()));
        binds.push(Bind::Text(digits.clone()));
    }
    if let Some(number) = query.card_number {
        keys.push(format!("c.number = {}", args.next()));
        binds.push(Bind::Int(number));
    }
    if let Some(pseudonym) = &query.pseudonym {
        keys.push(format!("r.pseudonym = {}", args.next()));
        binds.push(Bind::Text(pseudonym.clone()));
    }
    if !keys.is_empty() {
        filter.push_str(&format!(" AND ({})", keys.join(" OR ")));
    }
    if let Some((at, id)) = query.after {
        let (a_at, a_at2, a_id) = (args.next(), args.next(), args.next());
        filter.push_str(&format!(
            " AND (r.created_at > {a_at} OR (r.created_at = {a_at2} AND r.id > {a_id}))"
        ));
        binds.push(Bind::Int(at));
        binds.push(Bind::Int(at));
        binds.push(Bind::Id(id));
    }
    let limit = args.next();
    binds.push(Bind::Int(query.limit));
    let sql = format!(
        "{with} SELECT r.id, r.pseudonym, r.name, r.phone, r.community_id, r.account_id, r.created_at,
                CAST(c.number AS BIGINT) AS card_number, CAST(c.generation AS BIGINT) AS card_generation,
                c.active AS card_active, CAST(c.failures AS BIGINT) AS card_failures
         FROM residents r LEFT JOIN credentials c ON c.ledger_id = r.ledger_id AND c.resident_id = r.id
         WHERE r.ledger_id = $1 {filter}
         ORDER BY r.created_at, r.id LIMIT {limit}"
    );
    (sql, binds)
}

#[derive(sqlx::FromRow)]
pub(crate) struct FoundRow {
    id: Id,
    pseudonym: String,
    name: String,
    phone: String,
    community_id: String,
    account_id: Id,
    created_at: i64,
    card_number: Option<i64>,
    card_generation: Option<i64>,
    card_active: Option<bool>,
    card_failures: Option<i64>,
}

pub(crate) fn found_from(
    row: FoundRow,
) -> Result<crate::store::earning::FoundResident, StoreError> {
    let card = match (
        row.card_number,
        row.card_generation,
        row.card_active,
        row.card_failures,
    ) {
        (Some(number), Some(generation), Some(active), Some(failures)) => {
            Some(crate::store::earning::CardState {
                number,
                generation,
                active,
                failures,
            })
        }
        _ => None,
    };
    Ok(crate::store::earning::FoundResident {
        resident: resident_from(ResidentRow {
            id: row.id,
            pseudonym: row.pseudonym,
            name: row.name,
            phone: row.phone,
            community_id: row.community_id,
            account_id: row.account_id,
            created_at: row.created_at,
        })?,
        card,
    })
}

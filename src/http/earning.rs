//! Earning over HTTP: organisation units, residents, rules, service records, rosters,
//! corrections and expiry. Thin handlers over [`crate::earning::Earning`].

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Body, Error, IdempotencyKey};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::calendar::format_time;
use crate::calendar::{format_date, parse_date};
use crate::earning::queues::ListQuery;
use crate::earning::service::{
    parse_hours, Award, Balance, Expiring, ExpiryReport, HistoryItem, NewOrgUnit, NewRecord,
    NewResident, NewRoster, Resolution, RosterLine, RuleTerms,
};
use crate::error::ErrorCode;
use crate::ledger::{format_minor, Amount};
use crate::model::{
    Correction, ExpiryPolicy, OrgUnit, Resident, Roster, Rule, RuleMode, ServiceRecord,
};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/org-units", post(create_org_unit))
        .route("/v1/org-units/{id}", get(get_org_unit))
        .route("/v1/residents", post(register_resident))
        .route("/v1/residents/{id}", get(get_resident))
        .route("/v1/residents/{id}/history", get(resident_history))
        .route("/v1/residents/{id}/lots", get(resident_lots))
        .route("/v1/rules", get(list_rules))
        .route("/v1/rules/{rule_id}", put(set_rule).get(get_rule))
        .route("/v1/service-records", post(submit_record).get(list_records))
        .route("/v1/service-records/approve-batch", post(approve_batch))
        .route("/v1/service-records/{id}", get(get_record))
        .route("/v1/service-records/{id}/approve", post(approve_record))
        .route("/v1/service-records/{id}/reject", post(reject_record))
        .route("/v1/rosters", post(create_roster).get(list_rosters))
        .route("/v1/rosters/{id}", get(get_roster))
        .route("/v1/rosters/{id}/approve", post(approve_roster))
        .route(
            "/v1/corrections",
            post(request_correction).get(list_corrections),
        )
        .route("/v1/corrections/{id}", get(get_correction))
        .route("/v1/corrections/{id}/resolve", post(resolve_correction))
        .route("/v1/expiry/run", post(run_expiry))
}

fn invalid(code: ErrorCode, detail: impl Into<String>) -> Error {
    Error::new(code, detail)
}

fn date_field(name: &str, text: &str) -> Result<time::Date, Error> {
    parse_date(text).ok_or_else(|| {
        invalid(
            ErrorCode::DateInvalid,
            format!("{name} must be a date written YYYY-MM-DD"),
        )
    })
}

fn amount_field(name: &str, text: &str) -> Result<Amount, Error> {
    Amount::parse(text).map_err(|e| Error::new(ErrorCode::from(e), format!("{name}: {e}")))
}

pub(super) fn created(fresh: bool) -> StatusCode {
    if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

// ---- Views ----

#[derive(Serialize, ToSchema)]
pub struct OrgUnitView {
    pub id: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub name_zh: String,
    pub name_en: String,
    pub is_community: bool,
    pub expiry_policy: Option<String>,
    pub expiry_months: Option<u32>,
    pub issuance_account: Option<Uuid>,
    pub settlement_account: Option<Uuid>,
    pub expiry_account: Option<Uuid>,
}

impl From<&OrgUnit> for OrgUnitView {
    fn from(u: &OrgUnit) -> Self {
        OrgUnitView {
            id: u.id.clone(),
            parent_id: u.parent_id.clone(),
            level: u.level.clone(),
            name_zh: u.name_zh.clone(),
            name_en: u.name_en.clone(),
            is_community: u.community.is_some(),
            expiry_policy: u.community.as_ref().map(|c| c.expiry.as_str().to_owned()),
            expiry_months: u.community.as_ref().and_then(|c| c.expiry.months()),
            issuance_account: u.community.as_ref().map(|c| c.issuance_account),
            settlement_account: u.community.as_ref().map(|c| c.settlement_account),
            expiry_account: u.community.as_ref().map(|c| c.expiry_account),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ResidentView {
    pub id: Uuid,
    pub pseudonym: String,
    /// Shown to staff, admin and the resident; auditors see only the pseudonym.
    pub name: Option<String>,
    pub phone: Option<String>,
    pub community_id: String,
    pub account_id: Uuid,
    pub created_at: String,
    pub balance: Option<Balance>,
}

fn resident_view(p: &Principal, r: &Resident, balance: Option<Balance>) -> ResidentView {
    let personal = p.role != Role::Auditor;
    ResidentView {
        id: r.id,
        pseudonym: r.pseudonym.clone(),
        name: personal.then(|| r.name.clone()),
        phone: personal.then(|| r.phone.clone()),
        community_id: r.community_id.clone(),
        account_id: r.account_id,
        created_at: format_time(r.created_at_micros),
        balance,
    }
}

#[derive(Serialize, ToSchema)]
pub struct RuleView {
    pub rule_id: String,
    pub version: i64,
    pub community_id: String,
    pub category: String,
    pub name_zh: String,
    pub name_en: String,
    pub mode: String,
    pub points: String,
    pub records_hours: bool,
    pub cap_day: Option<String>,
    pub cap_month: Option<String>,
    pub valid_from: String,
    pub valid_until: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl From<&Rule> for RuleView {
    fn from(r: &Rule) -> Self {
        RuleView {
            rule_id: r.rule_id.clone(),
            version: r.version,
            community_id: r.community_id.clone(),
            category: r.category.clone(),
            name_zh: r.name_zh.clone(),
            name_en: r.name_en.clone(),
            mode: r.mode.as_str().to_owned(),
            points: r.points.to_string(),
            records_hours: r.records_hours,
            cap_day: r.cap_day.map(|a| a.to_string()),
            cap_month: r.cap_month.map(|a| a.to_string()),
            valid_from: format_date(r.valid_from),
            valid_until: r.valid_until.map(format_date),
            created_by: r.created_by.clone(),
            created_at: format_time(r.created_at_micros),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub id: Uuid,
    pub resident_id: Uuid,
    pub rule_id: String,
    pub service_date: String,
    pub hours: String,
    pub note: String,
    pub status: String,
    pub submitted_by: String,
    pub submitted_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub entry_id: Option<Uuid>,
    pub roster_id: Option<Uuid>,
    pub correction_of: Option<Uuid>,
    /// Once approved: the points credited, after the rule's daily and monthly caps.
    #[schema(value_type = Option<String>, example = "30.00")]
    pub points: Option<String>,
    /// Once approved: the points the caps withheld ("0.00" when the award was in full). Every
    /// hour is credited whatever the caps.
    #[schema(value_type = Option<String>, example = "5.00")]
    pub capped_points: Option<String>,
}

impl RecordView {
    /// The view with what the approval credited.
    fn with_award(mut self, award: Option<&Award>) -> Self {
        if let Some(a) = award {
            self.points = Some(format_minor(a.points_minor));
            self.capped_points = Some(format_minor(a.capped_minor));
        }
        self
    }
}

/// The views of `records`, with what each approved one was credited.
async fn record_views(
    app: &App,
    p: &Principal,
    records: &[ServiceRecord],
) -> Result<Vec<RecordView>, Error> {
    let awards = app.earning.awards(p, records).await?;
    Ok(records
        .iter()
        .zip(awards)
        .map(|(r, a)| RecordView::from(r).with_award(a.as_ref()))
        .collect())
}

impl From<&ServiceRecord> for RecordView {
    fn from(r: &ServiceRecord) -> Self {
        RecordView {
            id: r.id,
            resident_id: r.resident_id,
            rule_id: r.rule_id.clone(),
            service_date: format_date(r.service_date),
            hours: format_minor(r.hours_minor),
            note: r.note.clone(),
            status: r.status.clone(),
            submitted_by: r.submitted_by.clone(),
            submitted_at: format_time(r.submitted_at_micros),
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at_micros.map(format_time),
            reason: r.reason.clone(),
            entry_id: r.entry_id,
            roster_id: r.roster_id,
            correction_of: r.correction_of,
            points: None,
            capped_points: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RosterView {
    pub id: Uuid,
    pub community_id: String,
    pub rule_id: String,
    pub service_date: String,
    pub title: String,
    pub status: String,
    pub submitted_by: String,
    pub records: Vec<RecordView>,
}

async fn roster_view(
    app: &App,
    p: &Principal,
    r: &Roster,
    records: &[ServiceRecord],
) -> Result<RosterView, Error> {
    Ok(RosterView {
        id: r.id,
        community_id: r.community_id.clone(),
        rule_id: r.rule_id.clone(),
        service_date: format_date(r.service_date),
        title: r.title.clone(),
        status: r.status.clone(),
        submitted_by: r.submitted_by.clone(),
        records: record_views(app, p, records).await?,
    })
}

#[derive(Serialize, ToSchema)]
pub struct CorrectionView {
    pub id: Uuid,
    pub record_id: Uuid,
    pub requested_by: String,
    pub reason: String,
    pub status: String,
    pub requested_at: String,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
    pub reversal_entry_id: Option<Uuid>,
    pub new_record_id: Option<Uuid>,
}

impl From<&Correction> for CorrectionView {
    fn from(c: &Correction) -> Self {
        CorrectionView {
            id: c.id,
            record_id: c.record_id,
            requested_by: c.requested_by.clone(),
            reason: c.reason.clone(),
            status: c.status.clone(),
            requested_at: format_time(c.requested_at_micros),
            resolved_by: c.resolved_by.clone(),
            resolved_at: c.resolved_at_micros.map(format_time),
            resolution: c.resolution.clone(),
            reversal_entry_id: c.reversal_entry_id,
            new_record_id: c.new_record_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LotView {
    pub id: i64,
    pub entry_seq: i64,
    pub amount: String,
    pub remaining: String,
    pub last_valid_day: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryPage {
    pub items: Vec<HistoryItem>,
    pub next_cursor: Option<String>,
}

// ---- Bodies ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunityBody {
    /// never, rolling (with expiry_months) or end_of_next_year.
    #[schema(pattern = r"^(never|end_of_next_year|rolling)$")]
    pub expiry_policy: String,
    #[serde(default)]
    pub expiry_months: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUnitBody {
    pub id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    /// street, community, grid, ... (data, not code).
    pub level: String,
    pub name_zh: String,
    pub name_en: String,
    /// Present for a community with a points programme.
    #[serde(default)]
    pub community: Option<CommunityBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentBody {
    pub name: String,
    pub phone: String,
    pub community_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// The version this change replaces: 0 for a new rule.
    pub expected_version: i64,
    pub community_id: String,
    pub category: String,
    pub name_zh: String,
    pub name_en: String,
    /// per_hour or per_activity.
    #[schema(pattern = r"^(per_hour|per_activity)$")]
    pub mode: String,
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub points: String,
    pub records_hours: bool,
    #[serde(default)]
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub cap_day: Option<String>,
    #[serde(default)]
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub cap_month: Option<String>,
    #[schema(format = Date)]
    pub valid_from: String,
    #[serde(default)]
    #[schema(format = Date)]
    pub valid_until: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    pub resident_id: Uuid,
    pub rule_id: String,
    #[schema(format = Date)]
    pub service_date: String,
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub hours: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterLineBody {
    /// Resident id or pseudonym.
    pub resident: String,
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub hours: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterBody {
    pub community_id: String,
    pub rule_id: String,
    #[schema(format = Date)]
    pub service_date: String,
    pub title: String,
    pub lines: Vec<RosterLineBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterQuery {
    pub community_id: Option<String>,
    pub rule_id: Option<String>,
    pub service_date: Option<String>,
    pub title: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    pub record_id: Uuid,
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// reverse, replace (with hours) or decline.
    #[schema(pattern = r"^(reverse|replace|decline)$")]
    pub action: String,
    #[serde(default)]
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub hours: Option<String>,
    #[serde(default)]
    pub note: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiryBody {
    /// Expire lots whose last valid day is before this date (YYYY-MM-DD).
    #[schema(format = Date)]
    pub as_of: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

// ---- Handlers ----

/// Creates an organisation unit; with `community`, a community and its accounts. Admin.
#[utoipa::path(post, path = "/v1/org-units", security(("bearer" = [])), request_body = OrgUnitBody,
    responses((status = 201, body = OrgUnitView), (status = 200, body = OrgUnitView), (status = 409), (status = 422)))]
async fn create_org_unit(
    State(app): State<App>,
    p: Principal,
    Body(body): Body<OrgUnitBody>,
) -> Result<Response, Error> {
    let community = match body.community {
        None => None,
        Some(c) => Some(ExpiryPolicy::parse(&c.expiry_policy, c.expiry_months).ok_or_else(|| {
            invalid(ErrorCode::InvalidBody, "expiry_policy is never, end_of_next_year, or rolling with expiry_months 1 to 120")
        })?),
    };
    let (unit, fresh) = app
        .earning
        .create_org_unit(
            &p,
            NewOrgUnit {
                id: body.id,
                parent_id: body.parent_id,
                level: body.level,
                name_zh: body.name_zh,
                name_en: body.name_en,
                community,
            },
        )
        .await?;
    Ok((created(fresh), Json(OrgUnitView::from(&unit))).into_response())
}

#[utoipa::path(get, path = "/v1/org-units/{id}", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = OrgUnitView), (status = 404)))]
async fn get_org_unit(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<OrgUnitView>, Error> {
    let Path(id) = id?;
    Ok(Json(OrgUnitView::from(
        &app.earning.org_unit(&p, &id).await?,
    )))
}

/// Registers a resident in a community (staff of it, or admin). Needs an Idempotency-Key.
#[utoipa::path(post, path = "/v1/residents", security(("bearer" = [])), request_body = ResidentBody,
    responses((status = 201, body = ResidentView), (status = 200, body = ResidentView), (status = 422)))]
async fn register_resident(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<ResidentBody>,
) -> Result<Response, Error> {
    let (resident, fresh) = app
        .earning
        .register_resident(
            &p,
            &key,
            NewResident {
                name: body.name,
                phone: body.phone,
                community_id: body.community_id,
            },
        )
        .await?;
    Ok((created(fresh), Json(resident_view(&p, &resident, None))).into_response())
}

/// A resident with their balance: points, hours, and points expiring in the next 30 days.
#[utoipa::path(get, path = "/v1/residents/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = ResidentView), (status = 404)))]
async fn get_resident(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<ResidentView>, Error> {
    let Path(id) = id?;
    let resident = app.earning.resident(&p, id).await?;
    let balance = app.earning.balance(&p, id).await?;
    Ok(Json(resident_view(&p, &resident, Some(balance))))
}

/// The resident's entries, newest first, each with what it was for.
#[utoipa::path(get, path = "/v1/residents/{id}/history", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200), ("cursor" = Option<String>, Query, pattern = r"^[1-9][0-9]{0,17}$")),
    responses((status = 200, body = HistoryPage), (status = 404)))]
async fn resident_history(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<CursorQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, Error> {
    let Path(id) = id?;
    let Query(query) = query?;
    let (limit, before) = super::page_params(query.limit, query.cursor.as_deref())?;
    let (items, more) = app.earning.history(&p, id, before, limit).await?;
    let next_cursor = if more {
        items.last().map(|i| i.seq.to_string())
    } else {
        None
    };
    Ok(Json(HistoryPage { items, next_cursor }))
}

/// The resident's open lots, in spending order (soonest expiry first).
#[utoipa::path(get, path = "/v1/residents/{id}/lots", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<LotView>), (status = 404)))]
async fn resident_lots(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Vec<LotView>>, Error> {
    let Path(id) = id?;
    let lots = app.earning.lots(&p, id).await?;
    Ok(Json(
        lots.iter()
            .map(|l| LotView {
                id: l.id,
                entry_seq: l.entry_seq,
                amount: format_minor(l.amount_minor),
                remaining: format_minor(l.remaining_minor),
                last_valid_day: l.expires_on.clone(),
            })
            .collect(),
    ))
}

/// Sets a rule's terms: a new rule (expected_version 0) or a new version. Staff of the
/// community, or admin. The same terms again answer the current version (200).
#[utoipa::path(put, path = "/v1/rules/{rule_id}", security(("bearer" = [])), request_body = RuleBody,
    params(("rule_id" = String, Path)),
    responses((status = 201, body = RuleView), (status = 200, body = RuleView), (status = 409), (status = 422)))]
async fn set_rule(
    State(app): State<App>,
    p: Principal,
    rule_id: Result<Path<String>, PathRejection>,
    Body(body): Body<RuleBody>,
) -> Result<Response, Error> {
    let Path(rule_id) = rule_id?;
    let terms = RuleTerms {
        community_id: body.community_id,
        category: body.category,
        name_zh: body.name_zh,
        name_en: body.name_en,
        mode: RuleMode::parse(&body.mode)
            .ok_or_else(|| invalid(ErrorCode::InvalidBody, "mode is per_hour or per_activity"))?,
        points: amount_field("points", &body.points)?,
        records_hours: body.records_hours,
        cap_day: body
            .cap_day
            .as_deref()
            .map(|c| amount_field("cap_day", c))
            .transpose()?,
        cap_month: body
            .cap_month
            .as_deref()
            .map(|c| amount_field("cap_month", c))
            .transpose()?,
        valid_from: date_field("valid_from", &body.valid_from)?,
        valid_until: body
            .valid_until
            .as_deref()
            .map(|d| date_field("valid_until", d))
            .transpose()?,
    };
    let (rule, fresh) = app
        .earning
        .set_rule(&p, &rule_id, body.expected_version, terms)
        .await?;
    Ok((created(fresh), Json(RuleView::from(&rule))).into_response())
}

/// Every version of a rule, oldest first.
#[utoipa::path(get, path = "/v1/rules/{rule_id}", security(("bearer" = [])), params(("rule_id" = String, Path)),
    responses((status = 200, body = Vec<RuleView>), (status = 404)))]
async fn get_rule(
    State(app): State<App>,
    p: Principal,
    rule_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<RuleView>>, Error> {
    let Path(rule_id) = rule_id?;
    let versions = app.earning.rule_versions(&p, &rule_id).await?;
    Ok(Json(versions.iter().map(RuleView::from).collect()))
}

/// Records volunteer service (staff), or files a claim (the resident themself). Needs an
/// Idempotency-Key.
#[utoipa::path(post, path = "/v1/service-records", security(("bearer" = [])), request_body = RecordBody,
    responses((status = 201, body = RecordView), (status = 200, body = RecordView), (status = 409), (status = 422)))]
async fn submit_record(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<RecordBody>,
) -> Result<Response, Error> {
    let new = NewRecord {
        resident_id: body.resident_id,
        rule_id: body.rule_id,
        service_date: date_field("service_date", &body.service_date)?,
        hours_minor: parse_hours(&body.hours)?,
        note: body.note,
    };
    let (record, fresh) = app.earning.submit_record(&p, &key, new).await?;
    Ok((created(fresh), Json(RecordView::from(&record))).into_response())
}

#[utoipa::path(get, path = "/v1/service-records/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = RecordView), (status = 404)))]
async fn get_record(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<RecordView>, Error> {
    let Path(id) = id?;
    let (record, _) = app.earning.record(&p, id).await?;
    let views = record_views(&app, &p, std::slice::from_ref(&record)).await?;
    Ok(Json(
        views
            .into_iter()
            .next()
            .unwrap_or_else(|| RecordView::from(&record)),
    ))
}

/// Approves a submitted record (staff other than the submitter): one entry credits the points
/// and hours. Repeating it answers the approved record.
#[utoipa::path(post, path = "/v1/service-records/{id}/approve", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = RecordView), (status = 404), (status = 409), (status = 422)))]
async fn approve_record(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<RecordView>, Error> {
    let Path(id) = id?;
    let (record, _) = app.earning.approve_record(&p, id).await?;
    let views = record_views(&app, &p, std::slice::from_ref(&record)).await?;
    Ok(Json(
        views
            .into_iter()
            .next()
            .unwrap_or_else(|| RecordView::from(&record)),
    ))
}

/// Rejects a submitted record, with a reason.
#[utoipa::path(post, path = "/v1/service-records/{id}/reject", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = ReasonBody, responses((status = 200, body = RecordView), (status = 404), (status = 409)))]
async fn reject_record(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    Body(body): Body<ReasonBody>,
) -> Result<Json<RecordView>, Error> {
    let Path(id) = id?;
    Ok(Json(RecordView::from(
        &app.earning.reject_record(&p, id, &body.reason).await?,
    )))
}

/// Records an event roster, as JSON or as CSV (`Content-Type: text/csv`, a header line
/// `resident,hours`, and community_id, rule_id, service_date and title as query parameters).
/// All or nothing: a refusal names every bad line. Needs an Idempotency-Key.
#[utoipa::path(post, path = "/v1/rosters", security(("bearer" = [])), request_body = RosterBody,
    responses((status = 201, body = RosterView), (status = 200, body = RosterView), (status = 422)))]
async fn create_roster(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    headers: HeaderMap,
    query: Result<Query<RosterQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, Error> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body = if content_type.starts_with("text/csv") {
        let Query(q) = query?;
        let missing = |name: &str| {
            invalid(
                ErrorCode::InvalidQuery,
                format!("a CSV roster needs the {name} query parameter"),
            )
        };
        RosterBody {
            community_id: q.community_id.ok_or_else(|| missing("community_id"))?,
            rule_id: q.rule_id.ok_or_else(|| missing("rule_id"))?,
            service_date: q.service_date.ok_or_else(|| missing("service_date"))?,
            title: q.title.ok_or_else(|| missing("title"))?,
            lines: parse_roster_csv(&body)?,
        }
    } else if content_type.starts_with("application/json") {
        serde_json::from_slice::<RosterBody>(&body).map_err(|e| {
            let code = if e.is_syntax() || e.is_eof() {
                ErrorCode::MalformedJson
            } else {
                ErrorCode::InvalidBody
            };
            invalid(code, e.to_string())
        })?
    } else {
        return Err(invalid(
            ErrorCode::UnsupportedMediaType,
            "a roster is application/json or text/csv",
        ));
    };
    let new = NewRoster {
        community_id: body.community_id,
        rule_id: body.rule_id,
        service_date: date_field("service_date", &body.service_date)?,
        title: body.title,
        lines: body
            .lines
            .into_iter()
            .map(|l| RosterLine {
                resident: l.resident,
                hours: l.hours,
            })
            .collect(),
    };
    let (roster, records, fresh) = app.earning.create_roster(&p, &key, new).await?;
    Ok((
        created(fresh),
        Json(roster_view(&app, &p, &roster, &records).await?),
    )
        .into_response())
}

/// Parses `resident,hours` CSV (a header line first). Bad rows are reported by line number.
fn parse_roster_csv(body: &[u8]) -> Result<Vec<RosterLineBody>, Error> {
    // Flexible: a row with missing or extra fields is still read, so that the roster check can
    // name every bad line instead of stopping at the first.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| invalid(ErrorCode::InvalidBody, format!("CSV: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(resident), Some(hours)) = (column("resident"), column("hours")) else {
        return Err(invalid(
            ErrorCode::InvalidBody,
            "CSV: the first line must name the columns resident,hours",
        ));
    };
    let mut lines = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let row = row.map_err(|e| {
            invalid(
                ErrorCode::InvalidBody,
                format!("CSV line {}: {e}", index + 2),
            )
        })?;
        lines.push(RosterLineBody {
            resident: row.get(resident).unwrap_or("").to_owned(),
            hours: row.get(hours).unwrap_or("").to_owned(),
        });
    }
    Ok(lines)
}

#[utoipa::path(get, path = "/v1/rosters/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = RosterView), (status = 404)))]
async fn get_roster(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<RosterView>, Error> {
    let Path(id) = id?;
    let (roster, records) = app.earning.roster(&p, id).await?;
    Ok(Json(roster_view(&app, &p, &roster, &records).await?))
}

/// Approves a roster (staff other than the submitter): every line is credited or none is.
#[utoipa::path(post, path = "/v1/rosters/{id}/approve", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = RosterView), (status = 404), (status = 422)))]
async fn approve_roster(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<RosterView>, Error> {
    let Path(id) = id?;
    let (roster, records) = app.earning.approve_roster(&p, id).await?;
    Ok(Json(roster_view(&app, &p, &roster, &records).await?))
}

/// Asks for a record to be corrected (the resident, for their own record, or staff). Needs an
/// Idempotency-Key.
#[utoipa::path(post, path = "/v1/corrections", security(("bearer" = [])), request_body = CorrectionBody,
    responses((status = 201, body = CorrectionView), (status = 200, body = CorrectionView), (status = 409), (status = 422)))]
async fn request_correction(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<CorrectionBody>,
) -> Result<Response, Error> {
    let (correction, fresh) = app
        .earning
        .request_correction(&p, &key, body.record_id, &body.reason)
        .await?;
    Ok((created(fresh), Json(CorrectionView::from(&correction))).into_response())
}

#[utoipa::path(get, path = "/v1/corrections/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = CorrectionView), (status = 404)))]
async fn get_correction(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<CorrectionView>, Error> {
    let Path(id) = id?;
    Ok(Json(CorrectionView::from(
        &app.earning.correction(&p, id).await?,
    )))
}

/// Resolves a correction (staff): reverse the record, reverse and replace it with new hours
/// (all or nothing), or decline.
#[utoipa::path(post, path = "/v1/corrections/{id}/resolve", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = ResolveBody, responses((status = 200, body = CorrectionView), (status = 404), (status = 409), (status = 422)))]
async fn resolve_correction(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    Body(body): Body<ResolveBody>,
) -> Result<Json<CorrectionView>, Error> {
    let Path(id) = id?;
    let resolution = match (body.action.as_str(), body.hours.as_deref()) {
        ("reverse", None) => Resolution::Reverse { note: body.note },
        ("replace", Some(hours)) => Resolution::Replace {
            hours_minor: parse_hours(hours)?,
            note: body.note,
        },
        ("decline", None) => Resolution::Decline { note: body.note },
        _ => {
            return Err(invalid(
                ErrorCode::InvalidBody,
                "action is reverse, replace (with hours) or decline",
            ))
        }
    };
    Ok(Json(CorrectionView::from(
        &app.earning.resolve_correction(&p, id, resolution).await?,
    )))
}

/// Posts expiry entries for points whose last valid day is before `as_of`. Admin. Idempotent.
#[utoipa::path(post, path = "/v1/expiry/run", security(("bearer" = [])), request_body = ExpiryBody,
    responses((status = 200, description = "What was expired", body = ExpiryReport), (status = 403)))]
async fn run_expiry(
    State(app): State<App>,
    p: Principal,
    Body(body): Body<ExpiryBody>,
) -> Result<Response, Error> {
    let as_of = date_field("as_of", &body.as_of)?;
    let report = app.earning.run_expiry(&p, as_of).await?;
    Ok(Json(report).into_response())
}

// ---- Staff's work lists (src/earning/queues.rs) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    pub state: String,
    pub community: Option<String>,
    pub limit: Option<usize>,
    pub after: Option<String>,
    /// Records only: leave out roster lines and correction replacements.
    #[serde(default)]
    pub standalone: bool,
}

impl StateQuery {
    fn list(self) -> ListQuery {
        ListQuery {
            state: self.state,
            community: self.community,
            limit: self.limit,
            after: self.after,
            standalone: self.standalone,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    pub community: Option<String>,
    pub limit: Option<usize>,
    pub after: Option<String>,
}

/// A record in a list, with its resident's community and pseudonym (and, for staff, name).
#[derive(Serialize, ToSchema)]
pub struct QueuedRecordView {
    #[serde(flatten)]
    pub record: RecordView,
    pub community_id: String,
    pub resident_pseudonym: String,
    pub resident_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecordPage {
    pub items: Vec<QueuedRecordView>,
    /// Give it as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CorrectionPage {
    pub items: Vec<CorrectionView>,
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RosterSummary {
    pub id: Uuid,
    pub community_id: String,
    pub rule_id: String,
    pub service_date: String,
    pub title: String,
    pub status: String,
    pub submitted_by: String,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct RosterPage {
    pub items: Vec<RosterSummary>,
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RuleWithVersions {
    pub rule_id: String,
    pub community_id: String,
    /// Oldest first; the last is the current version.
    pub versions: Vec<RuleView>,
}

#[derive(Serialize, ToSchema)]
pub struct RulePage {
    pub items: Vec<RuleWithVersions>,
    /// The last rule id of this page: give it as `after` for the next.
    pub next: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchApproveBody {
    /// 1 to 100 record ids.
    pub ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchRefusal {
    pub id: Uuid,
    /// The stable error code (as `code` of a problem) and its detail.
    pub code: String,
    pub detail: String,
}

#[derive(Serialize, ToSchema)]
pub struct BatchApproved {
    pub approved: Vec<RecordView>,
    pub refused: Vec<BatchRefusal>,
}

/// Service records in a state, oldest submitted first: `state=submitted` is the approval queue.
/// Staff see their communities' records, administrators every community's.
#[utoipa::path(get, path = "/v1/service-records", security(("bearer" = [])),
    params(("state" = String, Query, pattern = r"^(submitted|approved|rejected|reversed)$"),
        ("community" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "the `next` of the previous page"),
        ("standalone" = Option<bool>, Query, description = "leave out roster lines and correction replacements")),
    responses((status = 200, body = RecordPage), (status = 400), (status = 403)))]
async fn list_records(
    State(app): State<App>,
    p: Principal,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Json<RecordPage>, Error> {
    let Query(query) = query?;
    let page = app.earning.records_in_state(&p, &query.list()).await?;
    Ok(Json(RecordPage {
        items: page
            .items
            .iter()
            .map(|q| QueuedRecordView {
                record: RecordView::from(&q.record),
                community_id: q.resident.community_id.clone(),
                resident_pseudonym: q.resident.pseudonym.clone(),
                resident_name: q.resident.name.clone(),
            })
            .collect(),
        next: page.next,
    }))
}

/// Corrections in a state, oldest requested first.
#[utoipa::path(get, path = "/v1/corrections", security(("bearer" = [])),
    params(("state" = String, Query, pattern = r"^(open|resolved|declined)$"),
        ("community" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200),
        ("after" = Option<String>, Query)),
    responses((status = 200, body = CorrectionPage), (status = 400), (status = 403)))]
async fn list_corrections(
    State(app): State<App>,
    p: Principal,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Json<CorrectionPage>, Error> {
    let Query(query) = query?;
    let page = app.earning.corrections_in_state(&p, &query.list()).await?;
    Ok(Json(CorrectionPage {
        items: page.items.iter().map(CorrectionView::from).collect(),
        next: page.next,
    }))
}

/// Rosters in a state, oldest first.
#[utoipa::path(get, path = "/v1/rosters", security(("bearer" = [])),
    params(("state" = String, Query, pattern = r"^(submitted|approved)$"),
        ("community" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200),
        ("after" = Option<String>, Query)),
    responses((status = 200, body = RosterPage), (status = 400), (status = 403)))]
async fn list_rosters(
    State(app): State<App>,
    p: Principal,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Json<RosterPage>, Error> {
    let Query(query) = query?;
    let page = app.earning.rosters_in_state(&p, &query.list()).await?;
    Ok(Json(RosterPage {
        items: page
            .items
            .iter()
            .map(|r| RosterSummary {
                id: r.id,
                community_id: r.community_id.clone(),
                rule_id: r.rule_id.clone(),
                service_date: format_date(r.service_date),
                title: r.title.clone(),
                status: r.status.clone(),
                submitted_by: r.submitted_by.clone(),
                created_at: format_time(r.created_at_micros),
            })
            .collect(),
        next: page.next,
    }))
}

/// The rules of the caller's communities (or one), each with every version, by rule id.
#[utoipa::path(get, path = "/v1/rules", security(("bearer" = [])),
    params(("community" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "the `next` of the previous page")),
    responses((status = 200, body = RulePage), (status = 400), (status = 403)))]
async fn list_rules(
    State(app): State<App>,
    p: Principal,
    query: Result<Query<RulesQuery>, QueryRejection>,
) -> Result<Json<RulePage>, Error> {
    let Query(q) = query?;
    let page = app
        .earning
        .rules_list(&p, q.community.as_deref(), q.after.as_deref(), q.limit)
        .await?;
    Ok(Json(RulePage {
        items: page
            .items
            .iter()
            .map(|versions| RuleWithVersions {
                rule_id: versions[0].rule_id.clone(),
                community_id: versions[0].community_id.clone(),
                versions: versions.iter().map(RuleView::from).collect(),
            })
            .collect(),
        next: page.next,
    }))
}

/// Approves several submitted records, each as `POST /v1/service-records/{id}/approve` would
/// (the approver must not be the submitter): answers the approved records and, for each refused
/// one, the error code and detail. Repeating it answers the approved records again.
#[utoipa::path(post, path = "/v1/service-records/approve-batch", security(("bearer" = [])),
    request_body = BatchApproveBody,
    responses((status = 200, body = BatchApproved), (status = 403), (status = 422)))]
async fn approve_batch(
    State(app): State<App>,
    p: Principal,
    Body(body): Body<BatchApproveBody>,
) -> Result<Json<BatchApproved>, Error> {
    let outcome = app.earning.approve_records(&p, &body.ids).await?;
    Ok(Json(BatchApproved {
        approved: outcome.approved.iter().map(RecordView::from).collect(),
        refused: outcome
            .refused
            .iter()
            .map(|(id, e)| BatchRefusal {
                id: *id,
                code: e.code.code().to_owned(),
                detail: e.detail.clone(),
            })
            .collect(),
    }))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_records,
        list_corrections,
        list_rosters,
        list_rules,
        approve_batch,
        create_org_unit,
        get_org_unit,
        register_resident,
        get_resident,
        resident_history,
        resident_lots,
        set_rule,
        get_rule,
        submit_record,
        get_record,
        approve_record,
        reject_record,
        create_roster,
        get_roster,
        approve_roster,
        request_correction,
        get_correction,
        resolve_correction,
        run_expiry
    ),
    components(schemas(
        QueuedRecordView,
        RecordPage,
        CorrectionPage,
        RosterSummary,
        RosterPage,
        RuleWithVersions,
        RulePage,
        BatchApproveBody,
        BatchRefusal,
        BatchApproved,
        OrgUnitView,
        ResidentView,
        RuleView,
        RecordView,
        RosterView,
        CorrectionView,
        LotView,
        HistoryPage,
        Balance,
        Expiring,
        HistoryItem,
        ExpiryReport,
        CommunityBody,
        OrgUnitBody,
        ResidentBody,
        RuleBody,
        RecordBody,
        ReasonBody,
        RosterLineBody,
        RosterBody,
        CorrectionBody,
        ResolveBody,
        ExpiryBody
    ))
)]
pub struct EarningDoc;

//! Lists and searches: paged, bounded and scoped to the caller like every other read.
//!
//! - `GET /v1/residents`: residents by name (a substring), phone (its digits), card number or
//!   pseudonym, in a community, a page at a time (`earning/search.rs` decides who sees whom);
//! - `GET /v1/work-table`: what waits for staff in their communities (records to approve, open
//!   corrections, points expiring this month).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::Error;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::calendar::format_time;
use crate::earning::search::{ExpiringResidentView, ExpiringThisMonth, ResidentSearch, WorkTable};
use crate::store::earning::FoundResident;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/residents", get(list_residents))
        .route("/v1/work-table", get(work_table))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_residents, work_table),
    components(schemas(
        ResidentList,
        ResidentListItem,
        CardView,
        WorkTable,
        ExpiringThisMonth,
        ExpiringResidentView
    ))
)]
pub struct ListsDoc;

/// The query of a resident search.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResidentListQuery {
    /// Matched against the name (a substring), the phone (its digits, exactly: spaces, '-' and
    /// '+' ignored), the card number (exactly) and the pseudonym (exactly); at most 64
    /// characters. Auditors match the pseudonym and the card number only. Absent: every
    /// resident.
    #[param(max_length = 64)]
    pub q: Option<String>,
    /// Only residents of this community.
    pub community: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// A resident's credential as a list shows it.
#[derive(Serialize, ToSchema)]
pub struct CardView {
    /// The card number printed on the card (9 digits).
    #[schema(example = "012345678")]
    pub number: String,
    pub generation: i64,
    /// False once revoked.
    pub active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ResidentListItem {
    pub id: Uuid,
    pub pseudonym: String,
    /// Shown to staff and admin; auditors see only the pseudonym.
    pub name: Option<String>,
    pub phone: Option<String>,
    pub community_id: String,
    pub account_id: Uuid,
    pub created_at: String,
    /// The resident's credential, if one was issued.
    pub card: Option<CardView>,
}

#[derive(Serialize, ToSchema)]
pub struct ResidentList {
    /// In registration order.
    pub items: Vec<ResidentListItem>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn item(p: &Principal, f: FoundResident) -> ResidentListItem {
    let personal = p.role != Role::Auditor;
    let r = f.resident;
    ResidentListItem {
        id: r.id,
        pseudonym: r.pseudonym,
        name: personal.then_some(r.name),
        phone: personal.then_some(r.phone),
        community_id: r.community_id,
        account_id: r.account_id,
        created_at: format_time(r.created_at_micros),
        card: f.card.map(|c| CardView {
            number: format!("{:09}", c.number),
            generation: c.generation,
            active: c.active,
        }),
    }
}

/// Lists or searches the residents the caller may see: staff those of the communities they
/// manage, admins and auditors all. Paged in registration order.
#[utoipa::path(get, path = "/v1/residents", security(("bearer" = [])), params(ResidentListQuery),
    responses(
        (status = 200, body = ResidentList),
        (status = 400, description = "invalid_query: a limit out of 1 to 200, a cursor this API did not give, a q too long", body = super::problem::Problem),
        (status = 401, body = super::problem::Problem),
        (status = 403, description = "forbidden: shops, cashiers and residents list no residents", body = super::problem::Problem)))]
async fn list_residents(
    State(app): State<App>,
    p: Principal,
    query: Result<Query<ResidentListQuery>, QueryRejection>,
) -> Result<Json<ResidentList>, Error> {
    let Query(query) = query?;
    let page = app
        .earning
        .search_residents(
            &p,
            ResidentSearch {
                q: query.q,
                community: query.community,
                limit: query.limit,
                cursor: query.cursor,
            },
        )
        .await?;
    Ok(Json(ResidentList {
        items: page.items.into_iter().map(|f| item(&p, f)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// What waits in the caller's communities: service records to approve, open corrections, and
/// the points expiring between today and the end of this month (totals, and the 50 residents
/// whose points expire soonest). Staff, admin, auditor.
#[utoipa::path(get, path = "/v1/work-table", security(("bearer" = [])),
    responses(
        (status = 200, body = WorkTable),
        (status = 401, body = super::problem::Problem),
        (status = 403, body = super::problem::Problem)))]
async fn work_table(State(app): State<App>, p: Principal) -> Result<Json<WorkTable>, Error> {
    Ok(Json(app.earning.work_table(&p).await?))
}

//! Setting an earning rule from the browser: a new rule, or the next version of one. The
//! service keeps every version (`Earning::set_rule`, `expected_version` so two staff cannot
//! overwrite each other); the page only collects the terms.

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};

use super::i18n::messages;
use super::resident::try_page;
use super::{done, Ctx, Lang, PageResult, M};
use crate::app::App;
use crate::calendar::{format_date, parse_date};
use crate::earning::service::RuleTerms;
use crate::error::{Error, ErrorCode, Fields};
use crate::ledger::Amount;
use crate::model::RuleMode;

messages! {
    enum R;
    EditRule => "设置积分规则", "Set an earning rule";
    NewRule => "新规则", "New rule";
    NextVersion => "修改规则（生成新版本，旧记录仍按旧版本）", "Change the rule (a new version; earlier records keep their version)";
    RuleId => "规则编号（字母、数字、-、_）", "Rule id (letters, digits, - or _)";
    Community => "社区编号", "Community id";
    Category => "类别编号（如 visit、clean）", "Category (e.g. visit, clean)";
    NameZh => "中文名称", "Chinese name";
    NameEn => "英文名称", "English name";
    Mode => "计分方式", "How points are counted";
    PerHour => "按小时计", "Per hour";
    PerActivity => "按次计", "Per activity";
    PointsField => "积分（每小时或每次）", "Points (per hour or per activity)";
    RecordsHours => "计入志愿服务时长", "Counts as volunteer hours";
    CapDay => "每人每日上限（分，可空）", "Daily cap per resident (points, optional)";
    CapMonth => "每人每月上限（分，可空）", "Monthly cap per resident (points, optional)";
    ValidFrom => "生效日期", "Valid from";
    ValidUntil => "截止日期（可空）", "Valid until (optional)";
    Save => "保存", "Save";
}

pub fn routes() -> Router<App> {
    Router::new().route("/staff/rules/edit", get(edit_page).post(save))
}

#[derive(serde::Deserialize)]
struct Which {
    rule: Option<String>,
}

/// The form's fields as typed (so a refusal shows them again unchanged).
#[derive(Clone, Default, serde::Deserialize)]
struct RuleForm {
    #[serde(default)]
    rule_id: String,
    #[serde(default)]
    expected_version: i64,
    #[serde(default)]
    community_id: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    points: String,
    #[serde(default)]
    records_hours: Option<String>,
    #[serde(default)]
    cap_day: String,
    #[serde(default)]
    cap_month: String,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_until: String,
}

#[derive(askama::Template)]
#[template(path = "rule_edit.html")]
struct EditPage<'a> {
    ctx: &'a Ctx,
    here: String,
    form: RuleForm,
    /// Some(current version) when changing an existing rule.
    current: Option<i64>,
    refusal: Option<String>,
}

async fn edit_page(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    done(show(app, ctx, q.rule).await)
}

async fn show(app: App, ctx: Ctx, rule: Option<String>) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let mut form = RuleForm {
        mode: "per_hour".into(),
        records_hours: Some("1".into()),
        community_id: p.scope.clone().unwrap_or_default(),
        valid_from: format_date(crate::calendar::day_of(app.clock.now_micros())),
        ..RuleForm::default()
    };
    let mut current = None;
    if let Some(id) = rule.filter(|r| !r.trim().is_empty()) {
        let versions = try_page!(ctx, app.earning.rule_versions(&p, id.trim()).await);
        if let Some(last) = versions.last() {
            current = Some(last.version);
            form = RuleForm {
                rule_id: last.rule_id.clone(),
                expected_version: last.version,
                community_id: last.community_id.clone(),
                category: last.category.clone(),
                name_zh: last.name_zh.clone(),
                name_en: last.name_en.clone(),
                mode: last.mode.as_str().into(),
                points: last.points.to_string(),
                records_hours: last.records_hours.then(|| "1".into()),
                cap_day: last.cap_day.map(|a| a.to_string()).unwrap_or_default(),
                cap_month: last.cap_month.map(|a| a.to_string()).unwrap_or_default(),
                valid_from: format_date(last.valid_from),
                valid_until: last.valid_until.map(format_date).unwrap_or_default(),
            };
        }
    }
    render(ctx, form, current, None)
}

fn render(ctx: Ctx, form: RuleForm, current: Option<i64>, refusal: Option<String>) -> PageResult {
    let page = EditPage {
        ctx: &ctx,
        here: "/staff/rules".into(),
        form,
        current,
        refusal,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

fn invalid(code: ErrorCode, field: &str) -> Error {
    Error::bare(code).with_fields(Fields {
        field: Some(field.to_owned()),
        ..Fields::default()
    })
}

fn amount(text: &str, field: &str) -> Result<Option<Amount>, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Amount::parse(text)
        .map(Some)
        .map_err(|_| invalid(ErrorCode::AmountNotANumber, field))
}

fn terms_of(form: &RuleForm) -> Result<RuleTerms, Error> {
    let mode = match form.mode.as_str() {
        "per_activity" => RuleMode::PerActivity,
        _ => RuleMode::PerHour,
    };
    let points = amount(&form.points, "points")?
        .ok_or_else(|| invalid(ErrorCode::AmountNotANumber, "points"))?;
    let valid_from = parse_date(form.valid_from.trim())
        .ok_or_else(|| invalid(ErrorCode::DateInvalid, "valid_from"))?;
    let valid_until = match form.valid_until.trim() {
        "" => None,
        t => Some(parse_date(t).ok_or_else(|| invalid(ErrorCode::DateInvalid, "valid_until"))?),
    };
    Ok(RuleTerms {
        community_id: form.community_id.trim().to_owned(),
        category: form.category.trim().to_owned(),
        name_zh: form.name_zh.trim().to_owned(),
        name_en: form.name_en.trim().to_owned(),
        mode,
        points,
        records_hours: form.records_hours.is_some(),
        cap_day: amount(&form.cap_day, "cap_day")?,
        cap_month: amount(&form.cap_month, "cap_month")?,
        valid_from,
        valid_until,
    })
}

async fn save(State(app): State<App>, ctx: Ctx, Form(form): Form<RuleForm>) -> Response {
    done(store(app, ctx, form).await)
}

async fn store(app: App, ctx: Ctx, form: RuleForm) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let current = (form.expected_version > 0).then_some(form.expected_version);
    let result = match terms_of(&form) {
        Ok(terms) => {
            app.earning
                .set_rule(&p, form.rule_id.trim(), form.expected_version, terms)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(ctx.redirect("/staff/rules?saved=1")),
        Err(error)
            if error.code.status().is_client_error() && error.code != ErrorCode::Forbidden =>
        {
            let sentence = super::sentence(ctx.lang, &error);
            render(ctx, form, current, Some(sentence))
        }
        Err(error) => Err(Box::new((ctx, error.into()))),
    }
}

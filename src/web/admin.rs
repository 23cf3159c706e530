//! The administrator's pages: users (create with role and scope — the one-time link that sets
//! the password, with its QR code; a new link to reset a password; disable), API tokens (create
//! — the secret shown once; revoke), the signing keys (list, rotate, revoke, with a plain
//! warning) and the organisation tree (create a unit). Shops are the owner pages' (`/shops`).
//! Every decision is the services' (`session` for users, `admin` for the rest, `earning` for a
//! new unit); a refusal is shown as one sentence on the same page, and nothing changes.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use uuid::Uuid;

use super::i18n::messages;
use super::resident::try_page;
use super::{done, Ctx, Lang, PageResult, M};
use crate::admin::{NewToken, TokenInfo};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::earning::service::NewOrgUnit;
use crate::error::{Error, ErrorCode};
use crate::keys::KeyStatus;
use crate::model::{ExpiryPolicy, OrgUnit};
use crate::session::{Link, User};

messages! {
    enum A;
    AreaNav => "管理", "Administration";
    Home => "管理首页", "Administration";
    HomeIntro => "在这里管理能登录的人、程序用的令牌、签名密钥和组织架构。做过的每一步都会立即生效。", "Manage who can sign in, the tokens programs use, the signing keys and the organisation here. Every step takes effect at once.";
    Users => "用户", "Users";
    UsersIntro => "用户用名字和密码登录：管理员、社区工作人员（管理一个组织单位及其下级）、审计员。新用户和重设密码都用一次性链接设置密码。", "Users sign in with a name and password: administrators, community staff (who manage one organisation unit and everything below it) and auditors. A new user, or a password reset, sets the password through a one-time link.";
    Tokens => "API 令牌", "API tokens";
    TokensIntro => "令牌给程序用（例如对账脚本、社区平板）。令牌只在创建时显示一次，服务器只保存它的哈希。撤销后，用它的一切（包括登录会话）立即失效。", "Tokens are for programs (a reconciliation script, a community tablet). A token is shown only once, when it is made; the server keeps only its hash. Revoking it stops everything using it at once, sessions included.";
    Keys => "签名密钥", "Signing keys";
    Org => "组织架构", "Organisation";
    Shops => "商铺", "Shops";
    AuditPages => "审计", "Audit";
    Name => "姓名（登录用，全账本唯一）", "Name (to sign in with; unique in the ledger)";
    NameCol => "姓名", "Name";
    ScopeCol => "组织单位", "Unit";
    You => "（你自己）", "(you)";
    Role => "角色", "Role";
    Scope => "管理的组织单位（仅工作人员）", "Organisation unit managed (staff only)";
    NoScope => "（无：管理员和审计员看全部）", "(none: administrators and auditors see everything)";
    Create => "创建", "Create";
    CreateUser => "新建用户", "New user";
    RoleAdmin => "管理员", "Administrator";
    RoleStaff => "社区工作人员", "Community staff";
    RoleAuditor => "审计员", "Auditor";
    RoleShop => "商铺", "Shop";
    RoleShopOwner => "商铺店主（范围选商铺）", "Shop owner (scope: the shop)";
    RoleCashier => "收银员", "Cashier";
    RoleResident => "居民", "Resident";
    State => "状态", "State";
    Active => "可用", "Active";
    Disabled => "已停用", "Disabled";
    NoPassword => "未设密码", "No password yet";
    Actions => "操作", "Actions";
    ResetPassword => "重设密码链接", "Password reset link";
    Disable => "停用", "Disable";
    LinkMade => "一次性链接已生成。把链接或二维码交给本人：打开后设置自己的密码。链接只能用一次，过期前有效；再生成一个会让这个失效。", "The one-time link is ready. Hand the link or the QR code to the person: opening it, they set their own password. It works once, until it expires; making another makes this one stop working.";
    LinkFor => "设置密码链接：", "Set-password link for ";
    ValidUntil => "有效期至", "Valid until";
    UserDisabled => "用户已停用，他的登录会话已全部结束。", "The user is disabled; all their sessions have ended.";
    CreateToken => "新建令牌", "New token";
    TokenScope => "范围：社区工作人员填组织单位编号，商铺和收银员填商铺编号，居民填居民编号；管理员和审计员留空", "Scope: an organisation unit for staff, a shop id for shop and cashier, a resident id for resident; empty for admin and auditor";
    Label => "备注（谁在用）", "Label (who holds it)";
    Days => "有效天数（留空为长期）", "Valid for days (empty: no end)";
    TokenMade => "令牌已生成。它只显示这一次：现在复制，交给使用它的程序或人。离开这个页面后就再也看不到了。", "The token is ready. It is shown only this once: copy it now and hand it to the program or person using it. Once you leave this page it cannot be seen again.";
    Holder => "归属", "Held by";
    HolderApi => "程序 / 个人", "Program / person";
    HolderUser => "用户", "User";
    HolderStaff => "店员", "Shop staff";
    HolderResident => "居民登录", "Resident sign-in";
    Created => "创建时间", "Created";
    Expires => "到期", "Expires";
    Never => "长期", "Never";
    Revoke => "撤销", "Revoke";
    Revoked => "已撤销", "Revoked";
    TokenRevoked => "令牌已撤销，用它的会话已结束。", "The token is revoked; the sessions using it have ended.";
    UserToken => "（停用用户即可）", "(disable the user instead)";
    ShowResidents => "也显示居民登录令牌", "Also show residents' sign-in tokens";
    KeysIntro => "签名密钥给小票、检查点和审计包签名。当前密钥负责签新的；轮换后旧密钥变为“已退役”，它签过的仍然能核验。", "The signing keys sign receipts, checkpoints and audit bundles. The active key signs new ones; after a rotation the old key is “retired” and what it signed still verifies.";
    KeysWarning => "注意：撤销一个密钥后，它签过的所有小票、检查点和审计包都将无法通过核验，且不能恢复。只有在密钥可能泄露时才撤销。当前使用的密钥不能撤销，请先轮换。", "Warning: once a key is revoked, every receipt, checkpoint and audit bundle it signed fails verification, and this cannot be undone. Revoke a key only if it may have leaked. The active key cannot be revoked; rotate first.";
    Rotate => "轮换：生成新密钥", "Rotate: make a new key";
    KeyId => "密钥编号", "Key id";
    KeyActive => "当前使用", "Active";
    KeyRetired => "已退役（仍可核验）", "Retired (still verifies)";
    KeyRevoked => "已撤销（不再核验）", "Revoked (verifies nothing)";
    KeyRotated => "已生成新密钥，新的小票和检查点用它签名。", "A new key is active; new receipts and checkpoints are signed with it.";
    KeyRevokedDone => "密钥已撤销。", "The key is revoked.";
    RevokeKey => "撤销这个密钥", "Revoke this key";
    OrgIntro => "组织架构从街道到社区到网格。社区开设积分项目（发放、结算、过期账户）。工作人员管理自己的单位和下级。", "The organisation runs from street to community to grid. A community runs a points programme (its issuance, settlement and expiry accounts). Staff manage their own unit and everything below it.";
    CreateUnit => "新建组织单位", "New organisation unit";
    UnitId => "编号（字母、数字、- 或 _）", "Id (letters, digits, - or _)";
    Parent => "上级", "Parent";
    TopLevel => "（无：最上级）", "(none: top level)";
    Level => "层级（如 street、community、grid）", "Level (such as street, community, grid)";
    NameZh => "中文名称", "Chinese name";
    NameEn => "英文名称", "English name";
    IsCommunity => "这是开设积分项目的社区", "This is a community with a points programme";
    Expiry => "积分有效期", "Points expire";
    ExpiryNever => "不过期", "Never";
    ExpiryNextYear => "次年年底", "At the end of the next year";
    ExpiryRolling12 => "获得后 12 个月", "12 months after earning";
    ExpiryRolling24 => "获得后 24 个月", "24 months after earning";
    UnitCreated => "组织单位已创建。", "The organisation unit is created.";
    CommunityBadge => "社区", "community";
    NoUnits => "还没有组织单位。先建一个最上级的单位（例如街道）。", "No organisation units yet. Start with a top-level one (a street, say).";
}

impl A {
    /// The message itself, from a reference however deep (for the templates' loops).
    fn own(&self) -> A {
        *self
    }
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/users", get(users_page).post(create_user))
        .route("/admin/users/{id}/reset", post(reset_password))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/admin/tokens", get(tokens_page).post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/keys", get(keys_page))
        .route("/admin/keys/rotate", post(rotate_key))
        .route("/admin/keys/{id}/revoke", post(revoke_key))
        .route("/org", get(org_page).post(create_unit))
}

/// A moment as people read it, in the calendar's time zone (UTC+8): "2026-12-01 14:05".
fn when(micros: i64) -> String {
    let seconds = (micros.div_euclid(1_000_000) + crate::calendar::CALENDAR_UTC_OFFSET_SECONDS)
        .rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        crate::calendar::format_date(crate::calendar::day_of(micros)),
        seconds / 3600,
        seconds % 3600 / 60
    )
}

fn principal(ctx: &Ctx) -> Result<Principal, super::PageError> {
    Ok(ctx.principal()?.clone())
}

/// `?done=...` after a post/redirect/get.
#[derive(serde::Deserialize, Default)]
struct Done {
    done: Option<String>,
    residents: Option<String>,
}

fn role_words(ctx: &Ctx, role: Role) -> &'static str {
    ctx.t(match role {
        Role::Admin => A::RoleAdmin,
        Role::Staff => A::RoleStaff,
        Role::Auditor => A::RoleAuditor,
        Role::Shop => A::RoleShop,
        Role::Cashier => A::RoleCashier,
        Role::Resident => A::RoleResident,
    })
}

fn unit_name(ctx: &Ctx, u: &OrgUnit) -> String {
    let name = match ctx.lang {
        Lang::Zh => &u.name_zh,
        Lang::En => &u.name_en,
    };
    format!("{name}（{}）", u.id)
}

/// The whole link of a one-time secret at `path`, from the request's Host.
fn link_url(ctx: &Ctx, headers: &HeaderMap, path: &str, secret: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1:8080");
    let scheme = if ctx.secure { "https" } else { "http" };
    format!("{scheme}://{host}/{path}/{secret}")
}

// ---- Home ----

#[derive(askama::Template)]
#[template(path = "admin_home.html")]
struct HomePage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    users: usize,
    tokens: usize,
    keys: usize,
    units: usize,
}

async fn home(State(app): State<App>, ctx: Ctx) -> Response {
    done(
        async {
            let p = try_page!(ctx, principal(&ctx));
            let users = try_page!(ctx, app.sessions.users(&p).await).len();
            let tokens = try_page!(ctx, app.admin.tokens(&p, false).await)
                .iter()
                .filter(|t| t.revoked_at_micros.is_none())
                .count();
            let keys = try_page!(ctx, app.admin.signing_keys(&p)).len();
            let units = try_page!(ctx, app.admin.org_units(&p).await).len();
            let page = HomePage {
                ctx: &ctx,
                here: "/admin",
                users,
                tokens,
                keys,
                units,
            };
            let html = askama::Template::render(&page);
            Ok(ctx.html(html))
        }
        .await,
    )
}

// ---- Users ----

struct UserRow {
    id: Uuid,
    name: String,
    role: &'static str,
    scope: String,
    state: &'static str,
    active: bool,
    /// The signed-in administrator themself (who cannot disable themself).
    own: bool,
    created: String,
}

/// A one-time link just made, to show with its QR code.
struct Made {
    name: String,
    url: String,
    qr: String,
    expires: String,
}

#[derive(askama::Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    rows: Vec<UserRow>,
    units: Vec<(String, String)>,
    made: Option<Made>,
    notice: Option<&'static str>,
    refusal: Option<String>,
    /// What was typed before a refusal.
    name: String,
    role: String,
    scope: String,
}

#[derive(serde::Deserialize, Default)]
struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
}

async fn users_page(
    State(app): State<App>,
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<Done>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("disabled") => Some(ctx.t(A::UserDisabled)),
        _ => None,
    };
    done(
        show_users(
            app,
            ctx,
            StatusCode::OK,
            notice,
            None,
            None,
            UserForm::default(),
        )
        .await,
    )
}

async fn show_users(
    app: App,
    ctx: Ctx,
    status: StatusCode,
    notice: Option<&'static str>,
    made: Option<Made>,
    refusal: Option<String>,
    form: UserForm,
) -> PageResult {
    let p = try_page!(ctx, principal(&ctx));
    let users = try_page!(ctx, app.sessions.users(&p).await);
    let units = try_page!(ctx, app.admin.org_units(&p).await);
    // A shop owner's scope is the shop (the first page of shops; an owner of a later one is
    // created with `POST /v1/users`).
    let shops = try_page!(ctx, app.redemption.shops(&p, None, Some(200)).await);
    let rows = users
        .iter()
        .map(|u| user_row(&ctx, u, u.token_id == p.token_id))
        .collect();
    let page = UsersPage {
        ctx: &ctx,
        here: "/admin/users",
        rows,
        units: units
            .iter()
            .map(|u| (u.id.clone(), unit_name(&ctx, u)))
            .chain(shops.shops.iter().map(|s| {
                let shop = ctx.t(A::RoleShop);
                let name = match ctx.lang {
                    Lang::Zh => &s.shop.name_zh,
                    Lang::En => &s.shop.name_en,
                };
                (s.shop.id.to_string(), format!("{shop}：{name}"))
            }))
            .collect(),
        made,
        notice,
        refusal,
        name: form.name,
        role: form.role,
        scope: form.scope,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html_status(status, html))
}

fn user_row(ctx: &Ctx, u: &User, own: bool) -> UserRow {
    let state = if u.disabled_at_micros.is_some() {
        ctx.t(A::Disabled)
    } else if !u.has_password {
        ctx.t(A::NoPassword)
    } else {
        ctx.t(A::Active)
    };
    UserRow {
        id: u.id,
        name: u.name.clone(),
        role: role_words(ctx, u.role),
        scope: u.scope.clone().unwrap_or_default(),
        state,
        active: u.disabled_at_micros.is_none(),
        own,
        created: when(u.created_at_micros),
    }
}

fn made(ctx: &Ctx, headers: &HeaderMap, name: &str, link: &Link) -> Made {
    let url = link_url(ctx, headers, "set-password", &link.secret);
    Made {
        name: name.to_owned(),
        qr: crate::redeem::receipt::qr_svg(&url).unwrap_or_default(),
        url,
        expires: when(link.expires_at_micros),
    }
}

async fn create_user(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<UserForm>,
) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    let role = Role::parse(form.role.trim())
        .filter(|r| matches!(r, Role::Admin | Role::Staff | Role::Auditor | Role::Shop))
        .ok_or_else(|| Error::new(ErrorCode::InvalidBody, "role"));
    let scope = Some(form.scope.trim()).filter(|s| !s.is_empty());
    let result = match role {
        Ok(role) => app.sessions.create_user(&p, role, scope, &form.name).await,
        Err(e) => Err(e),
    };
    let result = match result {
        Ok((user, link)) => {
            let made = made(&ctx, &headers, &user.name, &link);
            show_users(
                app,
                ctx,
                StatusCode::OK,
                None,
                Some(made),
                None,
                UserForm::default(),
            )
            .await
        }
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            show_users(app, ctx, e.code.status(), None, None, Some(sentence), form).await
        }
    };
    done(result)
}

async fn reset_password(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    let result = match Uuid::parse_str(&id) {
        Ok(id) => match app.sessions.user(&p, id).await {
            Ok(user) => app
                .sessions
                .password_reset_link(&p, id)
                .await
                .map(|link| made(&ctx, &headers, &user.name, &link)),
            Err(e) => Err(e),
        },
        Err(_) => Err(Error::not_found()),
    };
    let page = match result {
        Ok(made) => {
            show_users(
                app,
                ctx,
                StatusCode::OK,
                None,
                Some(made),
                None,
                UserForm::default(),
            )
            .await
        }
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            let status = e.code.status();
            show_users(
                app,
                ctx,
                status,
                None,
                None,
                Some(sentence),
                UserForm::default(),
            )
            .await
        }
    };
    done(page)
}

async fn disable_user(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    let result = match Uuid::parse_str(&id) {
        Ok(id) => app.sessions.disable_user(&p, id).await.map(drop),
        Err(_) => Err(Error::not_found()),
    };
    match result {
        Ok(()) => ctx.redirect("/admin/users?done=disabled"),
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            let status = e.code.status();
            done(
                show_users(
                    app,
                    ctx,
                    status,
                    None,
                    None,
                    Some(sentence),
                    UserForm::default(),
                )
                .await,
            )
        }
    }
}

// ---- Tokens ----

struct TokenRow {
    id: Uuid,
    role: &'static str,
    scope: String,
    label: String,
    holder: String,
    created: String,
    expires: String,
    revoked: Option<String>,
    /// Whether this page may offer to revoke it (a user's own token is stopped by disabling).
    revocable: bool,
}

#[derive(askama::Template)]
#[template(path = "admin_tokens.html")]
struct TokensPage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    rows: Vec<TokenRow>,
    residents: bool,
    /// A token just made: (its row, the secret).
    secret: Option<String>,
    notice: Option<&'static str>,
    refusal: Option<String>,
    role: String,
    scope: String,
    label: String,
    days: String,
}

#[derive(serde::Deserialize, Default)]
struct TokenForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    days: String,
}

fn token_row(ctx: &Ctx, t: &TokenInfo) -> TokenRow {
    use crate::admin::Holder;
    let holder = match t.holder {
        Holder::Api => ctx.t(A::HolderApi).to_owned(),
        Holder::User => format!(
            "{}：{}",
            ctx.t(A::HolderUser),
            t.holder_name.as_deref().unwrap_or("")
        ),
        Holder::ShopStaff => format!(
            "{}：{}",
            ctx.t(A::HolderStaff),
            t.holder_name.as_deref().unwrap_or("")
        ),
        Holder::ResidentSignIn => ctx.t(A::HolderResident).to_owned(),
    };
    TokenRow {
        id: t.id,
        role: role_words(ctx, t.role),
        scope: t.scope.clone().unwrap_or_default(),
        label: t.label.clone(),
        holder,
        created: when(t.created_at_micros),
        expires: t
            .expires_at_micros
            .map_or_else(|| ctx.t(A::Never).to_owned(), when),
        revoked: t.revoked_at_micros.map(when),
        revocable: t.holder != Holder::User,
    }
}

async fn tokens_page(
    State(app): State<App>,
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<Done>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("revoked") => Some(ctx.t(A::TokenRevoked)),
        _ => None,
    };
    let residents = q.residents.as_deref() == Some("1");
    done(
        show_tokens(
            app,
            ctx,
            StatusCode::OK,
            residents,
            notice,
            None,
            None,
            TokenForm::default(),
        )
        .await,
    )
}

#[allow(clippy::too_many_arguments)]
async fn show_tokens(
    app: App,
    ctx: Ctx,
    status: StatusCode,
    residents: bool,
    notice: Option<&'static str>,
    secret: Option<String>,
    refusal: Option<String>,
    form: TokenForm,
) -> PageResult {
    let p = try_page!(ctx, principal(&ctx));
    let tokens = try_page!(ctx, app.admin.tokens(&p, residents).await);
    let page = TokensPage {
        ctx: &ctx,
        here: "/admin/tokens",
        rows: tokens.iter().map(|t| token_row(&ctx, t)).collect(),
        residents,
        secret,
        notice,
        refusal,
        role: form.role,
        scope: form.scope,
        label: form.label,
        days: form.days,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html_status(status, html))
}

async fn create_token(State(app): State<App>, ctx: Ctx, Form(form): Form<TokenForm>) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    let days = match form.days.trim() {
        "" => Ok(None),
        text => text.parse::<u32>().map(Some).map_err(|_| {
            Error::new(ErrorCode::InvalidBody, "expires_in_days").with_fields(
                crate::error::Fields {
                    field: Some("expires_in_days".into()),
                    ..Default::default()
                },
            )
        }),
    };
    let result = match days {
        Ok(days) => {
            app.admin
                .create_token(
                    &p,
                    NewToken {
                        role: form.role.clone(),
                        scope: Some(form.scope.clone()),
                        label: form.label.clone(),
                        expires_in_days: days,
                    },
                )
                .await
        }
        Err(e) => Err(e),
    };
    let page = match result {
        Ok((_, secret)) => {
            show_tokens(
                app,
                ctx,
                StatusCode::OK,
                false,
                None,
                Some(secret),
                None,
                TokenForm::default(),
            )
            .await
        }
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            let status = e.code.status();
            show_tokens(app, ctx, status, false, None, None, Some(sentence), form).await
        }
    };
    done(page)
}

async fn revoke_token(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    let result = match Uuid::parse_str(&id) {
        Ok(id) => app.admin.revoke_token(&p, id).await.map(drop),
        Err(_) => Err(Error::not_found()),
    };
    match result {
        Ok(()) => ctx.redirect("/admin/tokens?done=revoked"),
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            let status = e.code.status();
            done(
                show_tokens(
                    app,
                    ctx,
                    status,
                    false,
                    None,
                    None,
                    Some(sentence),
                    TokenForm::default(),
                )
                .await,
            )
        }
    }
}

// ---- Keys ----

struct KeyRow {
    id: String,
    state: &'static str,
    created: String,
    revocable: bool,
    active: bool,
}

#[derive(askama::Template)]
#[template(path = "admin_keys.html")]
struct KeysPage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    rows: Vec<KeyRow>,
    notice: Option<&'static str>,
    refusal: Option<String>,
}

async fn keys_page(
    State(app): State<App>,
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<Done>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("rotated") => Some(ctx.t(A::KeyRotated)),
        Some("revoked") => Some(ctx.t(A::KeyRevokedDone)),
        _ => None,
    };
    done(show_keys(app, ctx, StatusCode::OK, notice, None).await)
}

async fn show_keys(
    app: App,
    ctx: Ctx,
    status: StatusCode,
    notice: Option<&'static str>,
    refusal: Option<String>,
) -> PageResult {
    let p = try_page!(ctx, principal(&ctx));
    let keys = try_page!(ctx, app.admin.signing_keys(&p));
    let rows = keys
        .iter()
        .rev()
        .map(|k| KeyRow {
            id: k.id.clone(),
            state: ctx.t(match k.status {
                KeyStatus::Active => A::KeyActive,
                KeyStatus::Retired => A::KeyRetired,
                KeyStatus::Revoked => A::KeyRevoked,
            }),
            created: when(k.created_at_micros),
            revocable: k.status == KeyStatus::Retired,
            active: k.status == KeyStatus::Active,
        })
        .collect();
    let page = KeysPage {
        ctx: &ctx,
        here: "/admin/keys",
        rows,
        notice,
        refusal,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html_status(status, html))
}

async fn rotate_key(State(app): State<App>, ctx: Ctx) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    match app.admin.rotate_key(&p).await {
        Ok(_) => ctx.redirect("/admin/keys?done=rotated"),
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            let status = e.code.status();
            done(show_keys(app, ctx, status, None, Some(sentence)).await)
        }
    }
}

async fn revoke_key(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    match app.admin.revoke_key(&p, &id).await {
        Ok(_) => ctx.redirect("/admin/keys?done=revoked"),
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            let status = e.code.status();
            done(show_keys(app, ctx, status, None, Some(sentence)).await)
        }
    }
}

// ---- The organisation ----

/// One unit of the tree and its children, in depth-first order: `depth` opens (+n) or closes
/// (-n) nested lists before it.
struct TreeLine {
    id: String,
    name: String,
    level: String,
    community: bool,
    /// Lists to open before this line (its depth minus the last line's, when positive).
    open: usize,
    /// Lists to close before this line.
    close: usize,
}

#[derive(askama::Template)]
#[template(path = "admin_org.html")]
struct OrgPage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    admin: bool,
    lines: Vec<TreeLine>,
    /// Lists still open after the last line.
    close_at_end: usize,
    parents: Vec<(String, String)>,
    notice: Option<&'static str>,
    refusal: Option<String>,
    form: UnitForm,
}

#[derive(serde::Deserialize, Default)]
struct UnitForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    community: Option<String>,
    #[serde(default)]
    expiry: String,
}

/// The units as a tree, depth first, children by id; a unit whose parent is not visible is a
/// root (staff see their subtree).
fn tree(ctx: &Ctx, units: &[OrgUnit]) -> (Vec<TreeLine>, usize) {
    use std::collections::{BTreeMap, BTreeSet};
    let ids: BTreeSet<&str> = units.iter().map(|u| u.id.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&OrgUnit>> = BTreeMap::new();
    for u in units {
        let parent = u.parent_id.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(u);
    }
    let mut lines = Vec::new();
    let mut depth_before = 0usize;
    let mut stack: Vec<(&OrgUnit, usize)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|u| (*u, 0)).collect())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    while let Some((unit, depth)) = stack.pop() {
        if !seen.insert(unit.id.as_str()) || depth > crate::store::earning::ORG_DEPTH_MAX {
            continue;
        }
        lines.push(TreeLine {
            id: unit.id.clone(),
            name: match ctx.lang {
                Lang::Zh => unit.name_zh.clone(),
                Lang::En => unit.name_en.clone(),
            },
            level: unit.level.clone(),
            community: unit.community.is_some(),
            open: depth.saturating_sub(depth_before),
            close: depth_before.saturating_sub(depth),
        });
        depth_before = depth;
        if let Some(kids) = children.get(&Some(unit.id.as_str())) {
            for kid in kids.iter().rev() {
                stack.push((kid, depth + 1));
            }
        }
    }
    (lines, depth_before)
}

async fn org_page(
    State(app): State<App>,
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<Done>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("created") => Some(ctx.t(A::UnitCreated)),
        _ => None,
    };
    done(show_org(app, ctx, StatusCode::OK, notice, None, UnitForm::default()).await)
}

async fn show_org(
    app: App,
    ctx: Ctx,
    status: StatusCode,
    notice: Option<&'static str>,
    refusal: Option<String>,
    form: UnitForm,
) -> PageResult {
    let p = try_page!(ctx, principal(&ctx));
    let units = try_page!(ctx, app.admin.org_units(&p).await);
    let (lines, close_at_end) = tree(&ctx, &units);
    let page = OrgPage {
        ctx: &ctx,
        here: "/org",
        admin: p.role == Role::Admin,
        lines,
        close_at_end,
        parents: units
            .iter()
            .map(|u| (u.id.clone(), unit_name(&ctx, u)))
            .collect(),
        notice,
        refusal,
        form,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html_status(status, html))
}

async fn create_unit(State(app): State<App>, ctx: Ctx, Form(form): Form<UnitForm>) -> Response {
    let p = match principal(&ctx) {
        Ok(p) => p,
        Err(e) => return e.page(ctx),
    };
    let community = if form.community.is_some() {
        let (name, months) = match form.expiry.as_str() {
            "rolling12" => ("rolling", Some(12)),
            "rolling24" => ("rolling", Some(24)),
            "end_of_next_year" => ("end_of_next_year", None),
            _ => ("never", None),
        };
        ExpiryPolicy::parse(name, months)
    } else {
        None
    };
    let new = NewOrgUnit {
        id: form.id.trim().to_owned(),
        parent_id: Some(form.parent.trim().to_owned()).filter(|s| !s.is_empty()),
        level: form.level.trim().to_owned(),
        name_zh: form.name_zh.trim().to_owned(),
        name_en: form.name_en.trim().to_owned(),
        community,
    };
    match app.earning.create_org_unit(&p, new).await {
        Ok(_) => ctx.redirect("/org?done=created"),
        Err(e) => {
            let sentence = super::sentence(ctx.lang, &e);
            let status = e.code.status();
            done(show_org(app, ctx, status, None, Some(sentence), form).await)
        }
    }
}

//! One plain sentence for every refusal, built from the error's stable code and its structured
//! fields (never from its developer-facing detail), saying what happened and what to do next.

use crate::error::{Error, ErrorCode};

use super::i18n::{plain_number, Lang};

/// "25.00" → "25", "2.50" → "2.5".
fn plain(text: &Option<String>) -> String {
    let Some(text) = text else {
        return "?".to_owned();
    };
    match crate::ledger::Amount::parse(text) {
        Ok(amount) => plain_number(amount.minor()),
        Err(_) => text.trim_end_matches(".00").to_owned(),
    }
}

fn item(error: &Error, lang: Lang) -> String {
    let f = &error.fields;
    match (&f.item, &f.sku) {
        (Some(name), _) => name.clone(),
        (None, Some(sku)) => sku.clone(),
        (None, None) => match lang {
            Lang::Zh => "这件商品".to_owned(),
            Lang::En => "an item".to_owned(),
        },
    }
}

/// The name of a form field, as the page labels it.
fn field_words(field: Option<&str>, zh: bool) -> &'static str {
    match (field.unwrap_or(""), zh) {
        ("points", true) => "积分",
        ("points", false) => "Points",
        ("hours", true) => "时长",
        ("hours", false) => "Hours",
        ("price", true) => "价格",
        ("price", false) => "The price",
        ("cap_day", true) => "每日上限",
        ("cap_day", false) => "The daily cap",
        ("cap_month", true) => "每月上限",
        ("cap_month", false) => "The monthly cap",
        ("stock", true) | ("quantity", true) => "数量",
        ("stock", false) | ("quantity", false) => "The quantity",
        ("name", true) | ("name_zh", true) | ("name_en", true) => "名称",
        ("name", false) | ("name_zh", false) | ("name_en", false) => "The name",
        ("service_date", true) => "服务日期",
        ("service_date", false) => "The service date",
        ("valid_from", true) | ("valid_until", true) => "日期",
        ("valid_from", false) | ("valid_until", false) => "The date",
        ("as_of", true) => "到期日期",
        ("as_of", false) => "The expiry date",
        (_, true) => "填写的内容",
        (_, false) => "What you typed",
    }
}

/// The sentence for `error` in `lang`.
pub fn sentence(lang: Lang, error: &Error) -> String {
    use ErrorCode as C;
    let f = &error.fields;
    let zh = lang == Lang::Zh;
    match error.code {
        C::InsufficientBalance => {
            let (balance, short) = (plain(&f.balance), plain(&f.shortfall));
            if zh {
                format!("积分不足（余额 {balance} 分，还差 {short} 分）。请减少商品后再扫一次新码。")
            } else {
                format!("Not enough points (balance {balance}, {short} short). Remove items and scan a new code.")
            }
        }
        C::RedemptionCodeInvalid => if zh {
            "该码已使用、已过期或无效，请让居民刷新兑换码后再扫。"
        } else {
            "This code is used, expired or not valid: ask the resident to refresh the code and scan again."
        }
        .to_owned(),
        C::ForeignPaymentCode => {
            let app = match (f.app.as_deref(), zh) {
                (Some("wechat"), true) => "微信",
                (Some("alipay"), true) => "支付宝",
                (Some("unionpay"), true) => "云闪付（银联）",
                (_, true) => "其他支付",
                (Some("wechat"), false) => "WeChat Pay",
                (Some("alipay"), false) => "Alipay",
                (Some("unionpay"), false) => "UnionPay",
                (_, false) => "another payment app",
            };
            if zh {
                format!("这是{app}付款码，不是爱心积分兑换码，没有扣任何东西。请居民打开爱心积分的兑换码。")
            } else {
                format!("This is a {app} payment code, not an aixin code; nothing was charged. Ask the resident to open their aixin code.")
            }
        }
        C::OutOfStock => {
            let (name, left) = (item(error, lang), f.available.clone().unwrap_or_default());
            if zh {
                format!("库存不足：{name} 仅剩 {left} 件。请改数量后再扫一次新码。")
            } else {
                format!("Not enough stock: only {left} of {name} left. Change the quantity and scan a new code.")
            }
        }
        C::ItemDailyCapExceeded | C::ItemMonthlyCapExceeded => {
            let name = item(error, lang);
            let limit = f.limit.clone().unwrap_or_default();
            let used = f.used.clone().unwrap_or_default();
            let day = error.code == C::ItemDailyCapExceeded;
            match (zh, day) {
                (true, true) => format!("{name} 每人今日限兑 {limit} 件（已兑 {used} 件）。请减少数量。"),
                (true, false) => format!("{name} 每人本月限兑 {limit} 件（已兑 {used} 件）。请减少数量。"),
                (false, true) => format!("{name}: at most {limit} a day per resident ({used} already). Lower the quantity."),
                (false, false) => format!("{name}: at most {limit} a month per resident ({used} already). Lower the quantity."),
            }
        }
        C::ItemInactive | C::UnknownItem => {
            let name = item(error, lang);
            if zh {
                format!("{name} 现在不能兑换。请从清单里去掉它。")
            } else {
                format!("{name} cannot be exchanged now. Take it out of the basket.")
            }
        }
        C::ShopNotServing => if zh {
            "本店不服务这位居民所在的社区，不能兑换。请让居民到本社区的爱心商铺。"
        } else {
            "This shop does not serve the resident's community. The resident can use a shop of their own community."
        }
        .to_owned(),
        C::ShopAttemptsExhausted => if zh {
            "本店这一小时内错误的码太多，已暂停扫码。请稍后再试，或请社区工作人员帮助。"
        } else {
            "Too many wrong codes at this shop this hour; scanning is paused. Try later or ask community staff."
        }
        .to_owned(),
        C::CredentialRevoked => if zh {
            "这张兑换卡已停用。请居民找社区工作人员重新办卡。"
        } else {
            "This card is no longer active. The resident can ask community staff for a new one."
        }
        .to_owned(),
        C::BasketInvalid => if zh {
            "请先选商品（每样商品数量要大于零），再扫码。"
        } else {
            "Choose the items first (each with a quantity above zero), then scan."
        }
        .to_owned(),
        C::RefundWindowClosed => if zh {
            "已过退货期限，不能退货。"
        } else {
            "The refund window has closed; this exchange cannot be refunded."
        }
        .to_owned(),
        C::RefunderIsRedeemer => if zh {
            "办理兑换的店员不能给自己退货。请店主或另一位店员办理。"
        } else {
            "The clerk who made the exchange cannot refund it. Ask the owner or another clerk."
        }
        .to_owned(),
        C::RefundExceedsRedemption | C::AlreadyReversed => if zh {
            "这张小票已经退过货了。"
        } else {
            "This receipt has already been refunded."
        }
        .to_owned(),
        C::IdempotencyKeyReused => if zh {
            "这一单已经提交过，请点“下一单”重新开始。"
        } else {
            "This sale was already sent. Press “Next sale” to start again."
        }
        .to_owned(),
        C::SignInFailed => if zh {
            "登录没有成功：姓名、密码、PIN 或登录链接不对，或已失效。请再试一次，或请工作人员重新发链接。"
        } else {
            "Sign-in failed: the name, password, PIN or link is not right or no longer valid. Try again, or ask staff for a new link."
        }
        .to_owned(),
        C::TooManyAttempts => {
            let minutes = f.retry_after.map_or(15, |s| s.div_ceil(60).max(1));
            if zh {
                format!("尝试次数太多，已暂停登录。请 {minutes} 分钟后再试。")
            } else {
                format!("Too many tries; signing in is paused. Try again in {minutes} minutes.")
            }
        }
        C::PasswordInvalid => if zh {
            "密码要 10 到 128 个字符。请换一个更长的密码。"
        } else {
            "A password needs 10 to 128 characters. Choose a longer one."
        }
        .to_owned(),
        C::PinInvalid => if zh {
            "PIN 要 6 位数字，不能用 123456、000000 这类容易猜的。"
        } else {
            "A PIN is 6 digits and cannot be an easy one like 123456 or 000000."
        }
        .to_owned(),
        // ---- Community staff (src/web/staff.rs): registering residents and issuing cards ----
        C::PhoneInvalid => if zh {
            "电话号码要 5 到 20 位，只能有数字、空格、“-”和“+”。请改正后再登记。"
        } else {
            "A phone number is 5 to 20 digits, spaces, '-' or '+'. Correct it and register again."
        }
        .to_owned(),
        C::UnknownCommunity => if zh {
            "没有这个社区，或它不归您管理。请选择您负责的社区。"
        } else {
            "No such community, or not one you manage. Choose one of your communities."
        }
        .to_owned(),
        C::InvalidQuery => if zh {
            "查找内容不对（最多 64 个字，不能有控制字符），或翻页链接已失效。请重新查找。"
        } else {
            "The search is not valid (at most 64 characters, no control characters) or the page link is stale. Search again."
        }
        .to_owned(),
        C::InvalidIdempotencyKey | C::InvalidBody => if zh {
            "表单不完整或已过期，什么都没有改。请回到上一页重新填写后再提交。"
        } else {
            "The form is incomplete or out of date; nothing was changed. Go back, fill it in again and send it."
        }
        .to_owned(),
        // The shop owner's pages (src/web/owner.rs): settling up to now (日结).
        C::PeriodAlreadySettled => if zh {
            "另一次结算刚刚完成，这次没有重复结算。请刷新页面查看结算记录。"
        } else {
            "Another settlement just finished, so nothing was settled twice. Reload the page to see the settlements."
        }
        .to_owned(),
        C::NothingToSettle => if zh {
            "上次结算以后没有要结算的积分（净收不大于0）。"
        } else {
            "Nothing to settle since the last settlement (the net is not above zero)."
        }
        .to_owned(),
        C::Unauthorized => if zh { "请先登录。" } else { "Please sign in first." }.to_owned(),
        C::Forbidden if f.community.is_some() => {
            let community = f.community.as_deref().unwrap_or_default();
            if zh {
                format!("社区 {community} 不在您的管辖范围内，不能为它登记商店。请找上级或管理员办理。")
            } else {
                format!("Community {community} is outside your scope: you cannot register a shop for it. Ask an administrator.")
            }
        }
        C::AsOfInFuture => {
            let today = f.today.as_deref().unwrap_or("?");
            if zh {
                format!("不能按今天（{today}）之后的日期执行到期：请检查年份和日期。没有任何积分被处理。")
            } else {
                format!("Expiry cannot run as of a day after today ({today}): check the year and date. Nothing was expired.")
            }
        }
        C::Forbidden | C::NotFound => if zh {
            "没有找到，或您没有权限查看。"
        } else {
            "Not found, or you may not see it."
        }
        .to_owned(),
        C::Overloaded | C::Unavailable => if zh {
            "系统正忙，请稍等几秒再点一次（不会重复扣分）。"
        } else {
            "The system is busy. Wait a few seconds and press again (nothing is charged twice)."
        }
        .to_owned(),
        // ---- records (community staff's record pages) ----
        C::UnknownResident => if zh {
            "找不到这位居民：卡号或居民编号不对，或不是您社区的居民。请核对后再刷一次。"
        } else {
            "No such resident: the card or resident number is wrong, or not of your community. Check it and scan again."
        }
        .to_owned(),
        C::DuplicateService => if zh {
            "这位居民这天已经记录过这项服务，没有重复记录。"
        } else {
            "This service is already recorded for this resident on that day; it was not recorded twice."
        }
        .to_owned(),
        C::ApproverIsSubmitter => if zh {
            "这是您录入的，须由其他工作人员审批。"
        } else {
            "You recorded this; another staff member must approve it."
        }
        .to_owned(),
        C::RecordNotInState => if zh {
            "这条记录已经处理过了（已批准、已退回，或随名册、更正一起处理）。请刷新页面。"
        } else {
            "This record was already decided (approved, rejected, or decided with its roster or correction). Reload the page."
        }
        .to_owned(),
        C::HoursInvalid => if zh {
            "时长要大于 0、不超过 24 小时，如 2 或 1.5。"
        } else {
            "Hours must be above 0 and at most 24, like 2 or 1.5."
        }
        .to_owned(),
        C::DateInvalid => if zh {
            "日期不对：不能是将来的日期，起止日期也不能颠倒。请改一下日期。"
        } else {
            "The date is not right: it cannot be in the future, and a period cannot end before it starts. Change the date."
        }
        .to_owned(),
        C::UnknownRule | C::RuleNotValid => if zh {
            "这条积分规则不适用于这位居民的社区或这一天。请换一条规则或日期。"
        } else {
            "This rule does not apply to the resident's community or to that day. Choose another rule or date."
        }
        .to_owned(),
        C::DailyCapExceeded | C::MonthlyCapExceeded => if zh {
            "这位居民这项服务的积分已到上限，没有再加分。"
        } else {
            "The resident has reached the cap for this activity; no more points were added."
        }
        .to_owned(),
        C::CorrectionNotOpen => if zh {
            "这个更正已经处理过了。"
        } else {
            "This correction was already resolved."
        }
        .to_owned(),
        C::UnknownRecord => if zh {
            "找不到这条服务记录（只有已批准的服务记录可以更正）。"
        } else {
            "No such service record (only approved service records can be corrected)."
        }
        .to_owned(),
        C::RosterInvalid => if zh {
            "名册有错的行，整个名册都没有记录。请改正后重新上传。"
        } else {
            "Some roster lines are wrong, so nothing was recorded. Fix them and upload again."
        }
        .to_owned(),
        C::FieldTooLong | C::TextInvalid | C::TextInvisible => if zh {
            "填写的文字太长或含有不能用的字符。请改短一些再提交。"
        } else {
            "The text is too long or has characters that cannot be used. Shorten it and send again."
        }
        .to_owned(),
        // ---- Every other code, so that no page ever shows a code instead of a sentence
        // (the match has no catch-all: a new code does not compile without its sentence).
        // Request shape: the pages build requests themselves, so these mean a form was
        // altered or is out of date.
        C::MalformedJson | C::UnsupportedMediaType | C::BadRequest | C::MissingIdempotencyKey
        | C::MethodNotAllowed => if zh {
            "这个表单已过期或不完整，什么都没有改。请刷新页面后重新填写。"
        } else {
            "This form is out of date or incomplete; nothing was changed. Reload the page and fill it in again."
        }
        .to_owned(),
        C::BodyTooLarge => if zh {
            "提交的内容太大，什么都没有改。请分成几次提交。"
        } else {
            "What you sent is too large; nothing was changed. Send it in several parts."
        }
        .to_owned(),
        C::AmountNotANumber | C::AmountNegative | C::AmountZero | C::AmountTooPrecise
        | C::AmountTooLarge => {
            let what = field_words(f.field.as_deref(), zh);
            let why = match (error.code, zh) {
                (C::AmountNotANumber, true) => "不是数字",
                (C::AmountNegative, true) => "不能是负数",
                (C::AmountZero, true) => "不能是 0",
                (C::AmountTooPrecise, true) => "最多两位小数",
                (_, true) => "太大了",
                (C::AmountNotANumber, false) => "is not a number",
                (C::AmountNegative, false) => "cannot be negative",
                (C::AmountZero, false) => "cannot be 0",
                (C::AmountTooPrecise, false) => "takes at most two decimals",
                (_, false) => "is too large",
            };
            if zh {
                format!("{what}{why}，请改正后再提交。")
            } else {
                format!("{what} {why}; correct it and send again.")
            }
        }
        C::MemoTooLong | C::MetadataInvalid => if zh {
            "备注太长了，请写短一些。"
        } else {
            "The note is too long; shorten it."
        }
        .to_owned(),
        C::InvalidCode => {
            let what = field_words(f.field.as_deref(), zh);
            if zh {
                format!("{what}只能用字母、数字、- 和 _，最多 64 个。")
            } else {
                format!("{what} takes only letters, digits, - and _, at most 64.")
            }
        }
        // Ledger rules: a page meets these only through a mistake of ours or a race.
        C::UnknownUnit | C::UnknownAccountKind | C::UnknownEntryKind | C::UnknownSide
        | C::TooFewPostings | C::TooManyPostings | C::EntryUnbalanced | C::AccountOnBothSides
        | C::EntryKindMismatch | C::RefundOfNonRedemption | C::ReversalLinkMissing
        | C::ReversalLinkForbidden | C::UnknownAccount | C::UnitNotAllowed | C::BalanceOverflow
        | C::ReversalTargetNotFound | C::ReversalOfReversal | C::ReversalExceedsOriginal
        | C::AccountExists | C::GroupRefused | C::ExpiryExceedsExpired | C::Internal => if zh {
            "账本拒绝了这一步，什么都没有改变。请把这一页截图交给管理员。"
        } else {
            "The ledger refused this step; nothing changed. Send a screenshot of this page to the administrator."
        }
        .to_owned(),
        C::UnknownOrgUnit => if zh {
            "没有这个单位，或它不在您的管辖范围内。请检查编号。"
        } else {
            "There is no such unit, or it is not one you manage. Check the id."
        }
        .to_owned(),
        C::OrgUnitExists => if zh {
            "这个编号已经有别的单位在用，请换一个编号。"
        } else {
            "Another unit already has this id; choose another."
        }
        .to_owned(),
        C::RuleInvalid => if zh {
            "规则的数字互相矛盾（例如每月上限低于每日上限，或上限低于一次的积分）。请改正。"
        } else {
            "The rule's numbers contradict each other (say a monthly cap below the daily one, or a cap below one activity). Correct them."
        }
        .to_owned(),
        C::RuleVersionConflict => if zh {
            "别人刚刚改过这条规则。请刷新页面，在最新版本上修改。"
        } else {
            "Someone just changed this rule. Reload the page and change the latest version."
        }
        .to_owned(),
        C::AuditRangeInvalid | C::AuditBoundInvalid => if zh {
            "导出范围不对：请填序号（如 1 到 500）或日期（如 2026-11-01），起点不能在终点之后。"
        } else {
            "The range is not right: give sequence numbers (e.g. 1 to 500) or dates (e.g. 2026-11-01), the start not after the end."
        }
        .to_owned(),
        C::NameTaken => if zh {
            "这个名字已经有人用了，请换一个（可以加上社区名）。"
        } else {
            "This name is taken; choose another (add the community, say)."
        }
        .to_owned(),
        C::UnknownSigningKey => if zh {
            "没有这个签名密钥。请刷新密钥列表。"
        } else {
            "There is no such signing key. Reload the list of keys."
        }
        .to_owned(),
        C::SigningKeyActive => if zh {
            "正在使用的签名密钥不能作废。请先轮换出新密钥，再作废旧的。"
        } else {
            "The key in use cannot be revoked. Rotate to a new key first, then revoke the old one."
        }
        .to_owned(),
        C::TokenOfUser => if zh {
            "这是某位用户登录用的令牌。请在“用户”页停用这位用户。"
        } else {
            "This token is a user's sign-in token. Disable the user on the users page instead."
        }
        .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Fields;

    #[test]
    fn the_till_sentences_name_amounts_and_items() {
        let short = Error::new(ErrorCode::InsufficientBalance, "x").with_fields(Fields {
            balance: Some("25.00".into()),
            shortfall: Some("15.00".into()),
            ..Fields::default()
        });
        assert_eq!(
            sentence(Lang::Zh, &short),
            "积分不足（余额 25 分，还差 15 分）。请减少商品后再扫一次新码。"
        );
        let stock = Error::new(ErrorCode::OutOfStock, "x").with_fields(Fields {
            item: Some("大米5kg".into()),
            available: Some("1".into()),
            ..Fields::default()
        });
        assert!(sentence(Lang::Zh, &stock).starts_with("库存不足：大米5kg 仅剩 1 件"));
        let cap = Error::new(ErrorCode::ItemDailyCapExceeded, "x").with_fields(Fields {
            item: Some("大米5kg".into()),
            limit: Some("2".into()),
            used: Some("2".into()),
            ..Fields::default()
        });
        assert!(sentence(Lang::Zh, &cap).contains("今日限兑 2 件"));
        let alipay = Error::bare(ErrorCode::ForeignPaymentCode).with_fields(Fields {
            app: Some("alipay".into()),
            ..Fields::default()
        });
        assert!(sentence(Lang::Zh, &alipay).starts_with("这是支付宝付款码"));
        let used = Error::bare(ErrorCode::RedemptionCodeInvalid);
        assert_eq!(
            sentence(Lang::Zh, &used),
            "该码已使用、已过期或无效，请让居民刷新兑换码后再扫。"
        );
    }

    #[test]
    fn a_shop_outside_the_scope_and_a_future_expiry_are_said_plainly() {
        let outside = Error::bare(ErrorCode::Forbidden).with_fields(Fields {
            community: Some("hexi".into()),
            ..Fields::default()
        });
        assert!(sentence(Lang::Zh, &outside).starts_with("社区 hexi 不在您的管辖范围内"));
        assert!(sentence(Lang::En, &outside).starts_with("Community hexi is outside your scope"));
        // Without the field it stays the answer that reveals nothing.
        let plain = Error::bare(ErrorCode::Forbidden);
        assert_eq!(sentence(Lang::Zh, &plain), "没有找到，或您没有权限查看。");
        let future = Error::bare(ErrorCode::AsOfInFuture).with_fields(Fields {
            today: Some("2026-12-01".into()),
            ..Fields::default()
        });
        assert!(sentence(Lang::Zh, &future).contains("今天（2026-12-01）之后"));
    }
}

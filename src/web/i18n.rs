//! The pages' words in Chinese (first) and English. Every message is one line of the table in
//! [`messages!`], which takes exactly one Chinese and one English text: a message without its
//! translation does not compile. Texts with numbers or dates in them are functions below whose
//! `match` over [`Lang`] must cover both languages.

use time::Date;

/// The language of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The value of `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The short name used in `?lang=` and the `lang` cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "zh-hans" | "cn" => Some(Lang::Zh),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header that the pages speak (by weight).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, u32)> = None;
        for part in header.split(',').take(16) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u32);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
                best = Some((lang, weight));
            }
        }
        best.map(|(lang, _)| lang)
    }

    /// The other language (for the switch link).
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The name of this language, written in itself.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }
}

/// Words of one language pair; every message table ([`messages!`]) implements it, so each area
/// of the pages (till, resident, staff, owner, auditor, administrator) keeps its own table in
/// its own file and [`super::Ctx::t`] takes any of them.
pub trait Text: Copy {
    fn text(self, lang: Lang) -> &'static str;
}

/// `messages! { enum Name; Key => "中文", "English"; ... }` makes the enum `Name` and its
/// [`Text`] implementation.
macro_rules! messages {
    (enum $enum:ident; $($name:ident => $zh:literal, $en:literal;)*) => {
        /// Messages of the pages; [`Text::text`](crate::web::i18n::Text::text) gives one in a
        /// language.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $enum { $($name),* }

        impl $crate::web::i18n::Text for $enum {
            fn text(self, lang: $crate::web::i18n::Lang) -> &'static str {
                use $crate::web::i18n::Lang;
                match (self, lang) {
                    $(($enum::$name, Lang::Zh) => $zh, ($enum::$name, Lang::En) => $en,)*
                }
            }
        }
    };
}
#[allow(unused_imports)] // used by the other areas' tables
pub(crate) use messages;

messages! {
    enum M;
    Brand => "爱心积分", "Aixin points";
    LargeMode => "长辈模式", "Large mode";
    StandardMode => "标准模式", "Standard mode";
    SignIn => "登录", "Sign in";
    SignOut => "退出登录", "Sign out";
    Help => "需要帮助？请找社区工作人员或店员。", "Need help? Ask your community worker or the shop clerk.";
    Home => "首页", "Home";
    Back => "返回", "Back";
    MyPoints => "我的积分", "My points";
    Points => "分", "points";
    ServiceHours => "志愿服务时长", "Volunteer hours";
    HoursUnit => "小时", "hours";
    ShowCode => "出示兑换码", "Show my code";
    CodeTitle => "兑换码", "Redemption code";
    CodeHint => "请把此码给店员扫描。码每30秒自动更新。", "Let the clerk scan this code. It changes every 30 seconds by itself.";
    CodeOffline => "没有网络也能用：码在手机上生成。", "Works without a network: the code is made on this phone.";
    CodeNoJs => "此页不能自动更新，请在码过期后刷新页面。", "This page cannot update itself; reload it when the code expires.";
    CodeRefresh => "刷新", "Refresh";
    NoCredential => "还没有兑换卡。请找社区工作人员办理。", "You have no redemption card yet. Ask your community worker to issue one.";
    Redeemed => "兑换成功", "Exchange done";
    NewBalance => "现在余额", "Balance now";
    History => "积分明细", "Points history";
    NoHistory => "还没有记录。", "Nothing yet.";
    Receipt => "小票", "Receipt";
    Expiring => "即将到期", "Expiring soon";
    NothingExpiring => "没有即将到期的积分。", "No points expire soon.";
    Shops => "爱心商铺", "Love shops";
    ShopsHint => "在这些商铺可以用积分兑换：", "You can spend points at these shops:";
    Till => "收银台", "Till";
    Basket => "兑换清单", "Basket";
    Total => "合计", "Total";
    InStock => "库存", "In stock";
    DailyCap => "每人每日限", "daily limit per resident:";
    NotTracked => "不限", "not counted";
    ScanHere => "扫码或输入兑换码", "Scan or type the code";
    ScanHint => "先选商品，再扫居民的兑换码。", "Choose the items first, then scan the resident's code.";
    Redeem => "兑换", "Exchange";
    Clear => "清空", "Clear";
    Camera => "用摄像头扫码", "Scan with camera";
    CameraOff => "摄像头不可用：需要 HTTPS 或本机地址。扫码枪和手输照常可用。", "Camera unavailable: it needs HTTPS or this computer's own address. The scanner and typing still work.";
    CardPin => "卡号＋密码", "Card number + PIN";
    CardNumber => "卡号", "Card number";
    Pin => "密码", "PIN";
    HandOver => "请把设备交给居民输入密码", "Hand the device to the resident to type the PIN";
    Continue => "继续", "Continue";
    Print => "打印小票", "Print receipt";
    NewSale => "下一单", "Next sale";
    Today => "今日收入", "Today's takings";
    Refund => "退货", "Refund";
    RefundHint => "扫描小票上的二维码或粘贴小票内容。须由店主或另一位店员办理，且在退货期限内。", "Scan the QR code on the receipt or paste its text. The owner or another clerk must do it, within the refund window.";
    RefundDone => "已退货", "Refunded";
    ReceiptText => "小票内容", "Receipt text";
    Shop => "商铺", "Shop";
    Resident => "居民", "Resident";
    Items => "商品", "Items";
    BalanceAfter => "兑换后余额", "Balance after";
    VerifyHow => "核验：扫描二维码，或在“小票核验”页面粘贴内容。", "To check it: scan the QR code, or paste its text on the receipt-check page.";
    Time => "时间", "Time";
    Redemptions => "兑换笔数", "Exchanges";
    Refunds => "退货笔数", "Refunds";
    Net => "净额", "Net";
    Paper => "小票纸宽", "Receipt paper";
    Name => "姓名", "Name";
    Password => "密码", "Password";
    Phone => "手机号", "Phone number";
    RememberPhone => "记住这部手机", "Remember this phone";
    ResidentSignIn => "居民登录", "Resident sign-in";
    ResidentSignInHint => "扫描社区发给您的登录二维码即可，不用记密码。也可以用手机号和兑换卡上的密码登录。", "Scan the sign-in QR code your community gave you; no password to remember. Or use your phone number and the PIN on your card.";
    StaffSignIn => "工作人员登录", "Staff sign-in";
    ClerkSignIn => "店员登录", "Clerk sign-in";
    DeviceNotPaired => "这台设备还不是收银设备。请店主用配对链接配对一次。", "This device is not a till yet. The shop owner pairs it once with a pairing link.";
    Paired => "配对完成，这台设备现在是收银设备。", "Paired: this device is now a till.";
    PairThis => "把这台设备设为收银台", "Make this device a till";
    DeviceLabel => "设备名称", "Device name";
    SetPassword => "设置密码", "Set password";
    NewPassword => "新密码（至少10个字符）", "New password (at least 10 characters)";
    PasswordSet => "密码已设置，请登录。", "Password set. Please sign in.";
    NotFound => "没有这个页面。", "There is no such page.";
    GoHome => "回到首页", "Go to the home page";
    Forbidden => "您没有权限做这件事。", "You may not do this.";
    SignedOut => "您已退出登录。", "You are signed out.";
    SignInFirst => "请先登录。", "Please sign in first.";
    Welcome => "欢迎", "Welcome";
    Quantity => "数量", "Quantity";
    Add => "加", "Add";
    Remove => "减", "Remove";
    Keypad => "数字键盘", "Keypad";
    Delete => "删除", "Delete";
    Month => "月", "month";
    MoreHistory => "更早的记录", "Earlier";
    Offers => "可兑换", "Offers";
    Communities => "服务社区", "Communities served";
    Verify => "小票核验", "Check a receipt";
    SignInCard => "居民登录二维码", "Resident sign-in QR code";
    SignInCardMake => "生成并打印登录二维码", "Make and print the sign-in QR code";
    SignInCardHint => "用手机相机扫描这个二维码，点“登录”就能查看积分、出示兑换码。不用记密码。此码只能用一次。", "Scan this QR code with the phone's camera and press “Sign in” to see your points and show your code. No password to remember. It works once.";
    SignInCardAgain => "再生成一张会让上一张失效。", "Making another one makes the previous one stop working.";
    ResidentId => "居民编号", "Resident id";
    ValidUntil => "有效期至", "Valid until";
}

/// "12.50" → "12.5", "40.00" → "40": points and hours as people say them.
pub fn plain_number(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let (whole, cents) = (abs / 100, abs % 100);
    match cents {
        0 => format!("{sign}{whole}"),
        c if c % 10 == 0 => format!("{sign}{whole}.{}", c / 10),
        c => format!("{sign}{whole}.{c:02}"),
    }
}

/// A signed change of points: "+25", "−40" (with a real minus sign).
pub fn signed_points(minor: i64) -> String {
    if minor < 0 {
        format!("−{}", plain_number(-minor))
    } else {
        format!("+{}", plain_number(minor))
    }
}

/// "N 分将于 M月D日到期".
pub fn expiring_words(lang: Lang, points_minor: i64, day: Date) -> String {
    let n = plain_number(points_minor);
    match lang {
        Lang::Zh => format!("{n} 分将于 {}月{}日到期", u8::from(day.month()), day.day()),
        Lang::En => format!(
            "{n} points expire on {} {}",
            month_name(day.month()),
            day.day()
        ),
    }
}

/// A day as people write it: "2026年12月1日" / "1 December 2026".
pub fn day_words(lang: Lang, day: Date) -> String {
    match lang {
        Lang::Zh => format!("{}年{}月{}日", day.year(), u8::from(day.month()), day.day()),
        Lang::En => format!("{} {} {}", day.day(), month_name(day.month()), day.year()),
    }
}

/// A month heading: "2026年11月" / "November 2026".
pub fn month_words(lang: Lang, year: i32, month: time::Month) -> String {
    match lang {
        Lang::Zh => format!("{year}年{}月", u8::from(month)),
        Lang::En => format!("{} {year}", month_name(month)),
    }
}

fn month_name(month: time::Month) -> &'static str {
    use time::Month::*;
    match month {
        January => "January",
        February => "February",
        March => "March",
        April => "April",
        May => "May",
        June => "June",
        July => "July",
        August => "August",
        September => "September",
        October => "October",
        November => "November",
        December => "December",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_spoken_language() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("fr;q=1, en;q=0.5, zh-CN;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("fr, de"), None);
        assert_eq!(
            Lang::from_accept_language("zh;q=0, en;q=0.1"),
            Some(Lang::En)
        );
    }

    #[test]
    fn numbers_read_as_people_say_them() {
        assert_eq!(plain_number(4000), "40");
        assert_eq!(plain_number(250), "2.5");
        assert_eq!(plain_number(1225), "12.25");
        assert_eq!(signed_points(-4000), "−40");
        assert_eq!(signed_points(2500), "+25");
        let day = Date::from_calendar_date(2026, time::Month::December, 31).unwrap();
        assert_eq!(
            expiring_words(Lang::Zh, 1200, day),
            "12 分将于 12月31日到期"
        );
    }
}

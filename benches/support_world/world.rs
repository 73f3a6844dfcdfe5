//! The support world: a help center, a shop's orders and shipments, and
//! the tickets its customers write, all generated from one seed, so a run
//! can be replayed exactly.
//!
//! Articles: two policy articles (shipping, keyword `parcel`; refunds,
//! keyword `refund`) and FAQ articles, each about an invented product word
//! (`Kavorin widget`) that appears in no other article, with a
//! confirmation code (`QZT-4821`) that the correct answer must carry.
//!
//! Tickets come in five classes, in fixed shares (7:4:4:3:2 of every 20):
//! FAQ (answered from an article, cited), order status (two read tools),
//! refund (a read tool, then the side-effecting refund tool when the
//! policy allows it: delivered within [`REFUND_WINDOW_DAYS`] and not
//! refunded before), multi-turn (the first message lacks the order number,
//! which the customer gives when asked) and unsolvable (only a person can
//! help: the right move is the `handoff` tool). Each ticket's subject
//! starts with its tag `[T00042]`, which is how the simulated models and
//! customers know which ticket a conversation is about.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::rng::Rng;

/// Days after delivery within which an order may be refunded.
pub const REFUND_WINDOW_DAYS: i64 = 30;

/// The world's today: every date, and the refund policy, are relative to it.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).expect("a valid date")
}

/// A ticket's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Faq,
    OrderStatus,
    Refund,
    MultiTurn,
    Unsolvable,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Faq,
        Class::OrderStatus,
        Class::Refund,
        Class::MultiTurn,
        Class::Unsolvable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Faq => "faq",
            Class::OrderStatus => "order_status",
            Class::Refund => "refund",
            Class::MultiTurn => "multi_turn",
            Class::Unsolvable => "unsolvable",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether an agent can resolve it at all (the others should be handed off).
    pub fn solvable(self) -> bool {
        self != Class::Unsolvable
    }
}

/// One help-center article, as Markdown.
#[derive(Debug, Clone)]
pub struct Article {
    /// Its document name in the knowledge source.
    pub name: String,
    /// The word only it (and the tickets about it) contains, lower case.
    pub keyword: String,
    /// The code the answer must carry (FAQ articles only).
    pub code: Option<String>,
    pub markdown: String,
}

/// An order of the shop, with its shipment.
#[derive(Debug, Clone)]
pub struct Order {
    /// `ORD-12345`.
    pub id: String,
    pub item: String,
    pub amount_cents: i64,
    pub ordered_on: NaiveDate,
    /// `None` while in transit.
    pub delivered_on: Option<NaiveDate>,
    pub carrier: String,
    /// `TRK` and nine digits.
    pub tracking: String,
    /// Expected delivery while in transit.
    pub eta: NaiveDate,
}

impl Order {
    /// Whether the refund policy allows a refund today (before any refund).
    pub fn refundable(&self) -> bool {
        self.delivered_on
            .is_some_and(|d| (today() - d).num_days() <= REFUND_WINDOW_DAYS)
    }
}

/// One ticket and what resolves it.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: u32,
    pub class: Class,
    /// Starts with [`tag`].
    pub subject: String,
    pub body: String,
    /// Index into [`World::orders`] (order status, refund, multi-turn).
    pub order: Option<usize>,
    /// Index into [`World::articles`]: the article the answer cites.
    pub article: Option<usize>,
    /// The customer's second message (multi-turn only): the order number.
    pub reply: Option<String>,
}

/// `[T00042]`: how a conversation names its ticket.
pub fn tag(id: u32) -> String {
    format!("[T{id:05}]")
}

/// The ticket id in the first `[T…]` tag of `text`.
pub fn parse_tag(text: &str) -> Option<u32> {
    let start = text.find("[T")? + 2;
    let rest = &text[start..];
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

/// Every `ORD-12345` in `text`, in order.
pub fn order_ids(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("ORD-") {
        let digits: String = rest[i + 4..].chars().take_while(char::is_ascii_digit).collect();
        if digits.len() == 5 {
            out.push(format!("ORD-{digits}"));
        }
        rest = &rest[i + 4..];
    }
    out
}

/// The generated world.
pub struct World {
    pub seed: u64,
    pub articles: Vec<Article>,
    pub orders: Vec<Order>,
    pub tickets: Vec<Ticket>,
}

/// Index of the shipping article.
pub const SHIPPING: usize = 0;
/// Index of the refund-policy article.
pub const REFUNDS: usize = 1;

const VERBS: [&str; 8] = [
    "set up", "reset", "export", "pair", "rename", "pause", "share", "archive",
];
const NOUNS: [&str; 8] = [
    "widget",
    "profile",
    "backup",
    "playlist",
    "dashboard",
    "badge",
    "token",
    "voucher",
];
const AREAS: [&str; 6] = [
    "Account",
    "Billing",
    "Devices",
    "Privacy",
    "Notifications",
    "Family",
];
const ITEMS: [&str; 8] = [
    "desk lamp",
    "rain jacket",
    "coffee grinder",
    "yoga mat",
    "backpack",
    "kettle",
    "headphones",
    "blender",
];
const CARRIERS: [&str; 3] = ["PostNord", "DHL", "UPS"];
const UNSOLVABLE: [&str; 6] = [
    "Please transfer the ownership of our company account to my business partner and countersign the attached contract.",
    "My bank shows a charge I do not recognise and I want a supervisor to call me about a formal complaint.",
    "Your courier drove over my garden fence while delivering and I want compensation for the repair.",
    "Our auditors need every invoice of last year reissued with our new VAT number and a signed letter.",
    "I am a journalist and would like an interview with your head of logistics next week.",
    "I want to exercise my legal right to see every piece of data you hold about me, certified by your lawyer.",
];

fn pseudo_word(rng: &mut Rng) -> String {
    const C: &[u8] = b"bdfgklmnprstvz";
    const V: &[u8] = b"aeiou";
    let mut w = String::new();
    for _ in 0..3 {
        w.push(C[rng.below(C.len())] as char);
        w.push(V[rng.below(V.len())] as char);
    }
    w.push(b"nrlx"[rng.below(4)] as char);
    w
}

fn code(rng: &mut Rng) -> String {
    let letters: String = (0..3).map(|_| (b'A' + rng.below(26) as u8) as char).collect();
    format!("{letters}-{:04}", rng.below(10_000))
}

fn capitalized(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn policy_articles() -> Vec<Article> {
    let shipping = "# Where is my parcel? Tracking a shipment\n\n\
Every parcel ships with a tracking number from its courier. Tell us your order number (it looks \
like ORD-12345) and we look up the parcel's shipment, its status and its tracking number.\n\n\
## Delivery times\n\n\
A parcel usually arrives three to five working days after dispatch. While a parcel is in transit \
the courier shows an expected delivery date; once delivered, the date of delivery is recorded."
        .to_owned();
    let refunds = "# Refund policy: the 30-day refund window\n\n\
We refund an order once, in full, when you ask within 30 days of its delivery. A refund goes back \
to the original payment method within five working days.\n\n\
## Outside the window\n\n\
After 30 days from delivery an order can no longer be refunded, and an order that was refunded \
already cannot be refunded a second time. An order still in transit is refunded once it arrives."
        .to_owned();
    vec![
        Article {
            name: "shipping-and-tracking.md".to_owned(),
            keyword: "parcel".to_owned(),
            code: None,
            markdown: shipping,
        },
        Article {
            name: "refund-policy.md".to_owned(),
            keyword: "refund".to_owned(),
            code: None,
            markdown: refunds,
        },
    ]
}

impl World {
    /// A world of `articles` articles (at least the two policy ones) and
    /// `tickets` tickets, from `seed`.
    pub fn generate(seed: u64, articles: usize, tickets: usize) -> World {
        let mut rng = Rng::new(seed);
        let mut all = policy_articles();
        let mut words = BTreeSet::new();
        let mut codes = BTreeSet::new();
        let mut verbs_nouns = Vec::new();
        while all.len() < articles.max(3) {
            let keyword = pseudo_word(&mut rng);
            if !words.insert(keyword.clone()) {
                continue;
            }
            let code = loop {
                let c = code(&mut rng);
                if codes.insert(c.clone()) {
                    break c;
                }
            };
            let (verb, noun, area) = (*rng.pick(&VERBS), *rng.pick(&NOUNS), *rng.pick(&AREAS));
            let kw = capitalized(&keyword);
            let markdown = format!(
                "# How to {verb} your {kw} {noun}\n\n\
The {kw} {noun} lives under {area} in your settings. This article explains how to {verb} it, \
and what to expect afterwards.\n\n\
## Steps\n\n\
1. Open Settings, then {area}.\n\
2. Choose {kw} and press Continue.\n\
3. When asked, enter the confirmation code {code} for the {kw} {noun}.\n\n\
## Good to know\n\n\
Changes to the {kw} {noun} reach every device signed in to your account within a few minutes."
            );
            verbs_nouns.push((verb, noun));
            all.push(Article {
                name: format!("faq-{:03}-{keyword}.md", all.len()),
                keyword,
                code: Some(code),
                markdown,
            });
        }
        // Classes in fixed shares, shuffled.
        let pattern = [
            (Class::Faq, 7),
            (Class::OrderStatus, 4),
            (Class::Refund, 4),
            (Class::MultiTurn, 3),
            (Class::Unsolvable, 2),
        ];
        let mut classes: Vec<Class> = (0..tickets)
            .map(|i| {
                let mut slot = i % 20;
                pattern
                    .iter()
                    .find(|(_, n)| {
                        if slot < *n {
                            true
                        } else {
                            slot -= n;
                            false
                        }
                    })
                    .map(|(c, _)| *c)
                    .expect("20 slots")
            })
            .collect();
        for i in (1..classes.len()).rev() {
            let j = rng.below(i + 1);
            classes.swap(i, j);
        }
        let mut orders = Vec::new();
        let mut tickets_out = Vec::new();
        for (i, class) in classes.into_iter().enumerate() {
            let id = i as u32 + 1;
            let t = tag(id);
            let mut order = |rng: &mut Rng, refundable: Option<bool>| -> usize {
                let number = format!("ORD-{:05}", 10_000 + orders.len() * 7 + rng.below(7));
                let delivered_ago = match refundable {
                    Some(true) => Some(2 + rng.below(26) as i64),
                    Some(false) => Some(40 + rng.below(60) as i64),
                    None if rng.unit() < 0.5 => None,
                    None => Some(1 + rng.below(90) as i64),
                };
                let delivered_on = delivered_ago.map(|d| today() - chrono::Duration::days(d));
                let ordered_on =
                    delivered_on.unwrap_or_else(today) - chrono::Duration::days(3 + rng.below(4) as i64);
                orders.push(Order {
                    id: number,
                    item: (*rng.pick(&ITEMS)).to_owned(),
                    amount_cents: 1500 + 100 * rng.below(235) as i64,
                    ordered_on,
                    delivered_on,
                    carrier: (*rng.pick(&CARRIERS)).to_owned(),
                    tracking: format!("TRK{:09}", rng.next() % 1_000_000_000),
                    eta: today() + chrono::Duration::days(1 + rng.below(5) as i64),
                });
                orders.len() - 1
            };
            let ticket = match class {
                Class::Faq => {
                    let a = 2 + rng.below(all.len() - 2);
                    let (verb, noun) = verbs_nouns[a - 2];
                    let kw = &all[a].keyword;
                    let body = match rng.below(3) {
                        0 => format!(
                            "Hi, I want to {verb} my {kw} {noun} but I cannot find how. Which code do I need?"
                        ),
                        1 => format!("How do I {verb} the {kw} {noun}? The app asks me for a code."),
                        _ => format!("Hello, I am stuck trying to {verb} my {kw} {noun}. What should I do?"),
                    };
                    Ticket {
                        id,
                        class,
                        subject: format!("{t} {} {noun}", capitalized(kw)),
                        body,
                        order: None,
                        article: Some(a),
                        reply: None,
                    }
                }
                Class::OrderStatus => {
                    let o = order(&mut rng, None);
                    let n = &orders[o].id;
                    let body = match rng.below(2) {
                        0 => format!(
                            "Hello, where is my parcel? My order number is {n} and I have not heard anything."
                        ),
                        _ => format!(
                            "Could you check the parcel for order {n}? I would like the tracking number."
                        ),
                    };
                    Ticket {
                        id,
                        class,
                        subject: format!("{t} Where is my parcel?"),
                        body,
                        order: Some(o),
                        article: Some(SHIPPING),
                        reply: None,
                    }
                }
                Class::Refund => {
                    let refundable = rng.unit() < 0.75;
                    let o = order(&mut rng, Some(refundable));
                    let (n, item) = (&orders[o].id, &orders[o].item);
                    Ticket {
                        id,
                        class,
                        subject: format!("{t} Refund request"),
                        body: format!(
                            "I would like a refund for order {n}: the {item} is not what I expected. \
                             Please refund it to my card."
                        ),
                        order: Some(o),
                        article: Some(REFUNDS),
                        reply: None,
                    }
                }
                Class::MultiTurn => {
                    let o = order(&mut rng, None);
                    let n = &orders[o].id;
                    Ticket {
                        id,
                        class,
                        subject: format!("{t} My parcel has not arrived"),
                        body: "My parcel still has not arrived and I am getting worried. Can you check where it is?"
                            .to_owned(),
                        order: Some(o),
                        article: Some(SHIPPING),
                        reply: Some(format!(
                            "My order number is {n}, it is the parcel I wrote about."
                        )),
                    }
                }
                Class::Unsolvable => Ticket {
                    id,
                    class,
                    subject: format!("{t} A request for a person"),
                    body: (*rng.pick(&UNSOLVABLE)).to_owned(),
                    order: None,
                    article: None,
                    reply: None,
                },
            };
            tickets_out.push(ticket);
        }
        World {
            seed,
            articles: all,
            orders,
            tickets: tickets_out,
        }
    }

    pub fn ticket(&self, id: u32) -> Option<&Ticket> {
        self.tickets.get(id.checked_sub(1)? as usize)
    }

    /// The ticket a conversation is about: the tag in its text.
    pub fn ticket_in(&self, text: &str) -> Option<&Ticket> {
        self.ticket(parse_tag(text)?)
    }

    /// Tickets per class, in [`Class::ALL`] order.
    pub fn mix(&self, tickets: &[Ticket]) -> [usize; 5] {
        let mut n = [0; 5];
        for t in tickets {
            n[t.class.index()] += 1;
        }
        n
    }
}

/// Checks the world's own promises; the self-test calls it.
pub fn check(world: &World) -> Result<(), String> {
    let ensure = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    let keywords: BTreeSet<&str> = world.articles.iter().map(|a| a.keyword.as_str()).collect();
    ensure(
        keywords.len() == world.articles.len(),
        "article keywords are distinct".into(),
    )?;
    for a in &world.articles {
        let lower = a.markdown.to_lowercase();
        let elsewhere = world
            .articles
            .iter()
            .filter(|b| b.name != a.name && b.markdown.to_lowercase().contains(&a.keyword))
            .count();
        ensure(
            lower.contains(&a.keyword) && elsewhere == 0,
            format!("{}: its keyword is its own", a.name),
        )?;
    }
    let ids: BTreeSet<&str> = world.orders.iter().map(|o| o.id.as_str()).collect();
    ensure(ids.len() == world.orders.len(), "order ids are distinct".into())?;
    for t in &world.tickets {
        ensure(
            parse_tag(&t.subject) == Some(t.id),
            format!("ticket {} carries its tag", t.id),
        )?;
        let text = format!("{} {}", t.subject, t.body);
        match t.class {
            Class::OrderStatus | Class::Refund => ensure(
                order_ids(&text) == vec![world.orders[t.order.unwrap()].id.clone()],
                format!("ticket {} names its order", t.id),
            )?,
            Class::MultiTurn => ensure(
                order_ids(&text).is_empty()
                    && order_ids(t.reply.as_deref().unwrap_or_default())
                        == vec![world.orders[t.order.unwrap()].id.clone()],
                format!("ticket {} names its order only in the reply", t.id),
            )?,
            Class::Faq => ensure(
                text.to_lowercase()
                    .contains(&world.articles[t.article.unwrap()].keyword),
                format!("ticket {} names its article's word", t.id),
            )?,
            Class::Unsolvable => {}
        }
    }
    Ok(())
}

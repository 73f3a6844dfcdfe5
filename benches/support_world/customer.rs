//! The simulated helpdesk customer: judges each answer against the
//! ticket's expected resolution and reacts as a person would: marks the
//! ticket solved, replies with the missing order number when asked for
//! it, or gives a 1-star rating to a wrong answer.

use super::world::{Class, Ticket, World, order_ids};

/// What the customer does after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// The answer resolves the ticket: signal `solved`.
    Solved,
    /// Reply with this message (a new turn).
    Reply(String),
    /// Wrong: signal `csat` 1.
    Reject,
}

/// The customer's judgement of `answer`, the agent's reply in turn `turn`
/// (1-based). `refund` is the order's refund at the shop now, if any.
pub fn judge(world: &World, ticket: &Ticket, turn: u32, answer: &str, refund: Option<&str>) -> Reaction {
    let order = ticket.order.map(|o| &world.orders[o]);
    let lower = answer.to_lowercase();
    match ticket.class {
        Class::MultiTurn if turn == 1 && lower.contains("order number") && order_ids(answer).len() <= 1 => {
            Reaction::Reply(ticket.reply.clone().unwrap_or_default())
        }
        Class::Faq => {
            let code = world.articles[ticket.article.unwrap_or_default()]
                .code
                .as_deref()
                .unwrap_or("\u{0}");
            verdict(answer.contains(code))
        }
        Class::OrderStatus | Class::MultiTurn => {
            let o = order.expect("an order ticket has its order");
            let status = if o.delivered_on.is_some() {
                "delivered"
            } else {
                "in transit"
            };
            verdict(answer.contains(&o.tracking) && lower.contains(status))
        }
        Class::Refund => {
            let o = order.expect("a refund ticket has its order");
            if o.refundable() {
                verdict(refund.is_some_and(|id| answer.contains(id)))
            } else {
                verdict(refund.is_none() && lower.contains("30 days"))
            }
        }
        Class::Unsolvable => Reaction::Reject,
    }
}

fn verdict(ok: bool) -> Reaction {
    if ok { Reaction::Solved } else { Reaction::Reject }
}

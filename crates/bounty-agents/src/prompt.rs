//! The chat an agent's instructions and a task's input become: the
//! system prompt, the ticket as the first user message, and for a
//! conversation of several turns every later message in order.

use bounty_core::TaskInput;
use bounty_core::conversation::MessageRole;
use bounty_models::{Message, Role};
use bounty_store::ConversationMessage;

/// What a turn that starts after the agent's own answer (a reopen resumed
/// the conversation with no new message) is told the customer did.
pub const REOPENED_NOTE: &str =
    "(The customer reopened the ticket: the last answer did not solve their problem.)";

/// System prompt: the agent's instructions, plus the output schema when
/// there is one (remote models are also asked for it through the API, and
/// local ones are constrained by grammar; saying it in words helps both).
/// User message: the ticket.
pub fn build(
    instructions: &str,
    output_schema: Option<&serde_json::Value>,
    input: &TaskInput,
) -> Vec<Message> {
    let mut system = instructions.trim().to_owned();
    if let Some(schema) = output_schema {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str("Answer with one JSON value that matches this JSON Schema:\n");
        system.push_str(&schema.to_string());
    }
    let mut user = String::with_capacity(input.body.len() + input.subject.len() + 64);
    if !input.subject.trim().is_empty() {
        user.push_str("Subject: ");
        user.push_str(input.subject.trim());
        user.push('\n');
    }
    if let Some(customer) = &input.customer {
        let who = match (&customer.name, &customer.email) {
            (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
            (Some(n), None) => Some(n.clone()),
            (None, Some(e)) => Some(e.clone()),
            (None, None) => None,
        };
        if let Some(who) = who {
            user.push_str("From: ");
            user.push_str(&who);
            user.push('\n');
        }
    }
    if !user.is_empty() {
        user.push('\n');
    }
    user.push_str(input.body.trim());
    let mut messages = Vec::with_capacity(2);
    if !system.is_empty() {
        messages.push(Message::new(Role::System, system));
    }
    messages.push(Message::new(Role::User, user));
    messages
}

/// [`build`], then the conversation after the ticket (`history`, in
/// conversation order): customer messages as user messages, the agent's
/// answers as assistant messages. Consecutive messages of one role are
/// joined (two customer messages sent before the agent answered read as
/// one), so roles alternate as chat templates expect. When the history
/// ends with the agent's answer (a reopen resumed the conversation with no
/// new message), a last user message says the customer reopened it.
pub fn build_conversation(
    instructions: &str,
    output_schema: Option<&serde_json::Value>,
    input: &TaskInput,
    history: &[ConversationMessage],
) -> Vec<Message> {
    let mut messages = build(instructions, output_schema, input);
    messages.reserve(history.len() + 1);
    for m in history {
        let role = match m.role {
            MessageRole::Customer => Role::User,
            MessageRole::Agent => Role::Assistant,
        };
        match messages.last_mut() {
            Some(last) if last.role == role => {
                last.content.push_str("\n\n");
                last.content.push_str(m.body.trim());
            }
            _ => messages.push(Message::new(role, m.body.trim())),
        }
    }
    if messages.last().is_some_and(|m| m.role == Role::Assistant) {
        messages.push(Message::new(Role::User, REOPENED_NOTE));
    }
    messages
}

#[cfg(test)]
mod tests {
    use bounty_core::task::Customer;

    use super::*;

    #[test]
    fn builds_system_and_user_messages() {
        let input = TaskInput {
            subject: "Refund".into(),
            body: "Where is my refund?".into(),
            customer: Some(Customer {
                name: Some("Ann".into()),
                email: Some("a@x.io".into()),
                id: None,
            }),
            metadata: Default::default(),
        };
        let m = build("Be kind.", None, &input);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].content, "Be kind.");
        assert_eq!(
            m[1].content,
            "Subject: Refund\nFrom: Ann <a@x.io>\n\nWhere is my refund?"
        );
        let m = build(
            "",
            Some(&serde_json::json!({"type": "object"})),
            &TaskInput {
                body: "x".into(),
                ..Default::default()
            },
        );
        assert!(m[0].content.starts_with("Answer with one JSON value"));
        assert_eq!(m[1].content, "x");
    }

    fn said(seq: i32, turn: i32, role: MessageRole, body: &str) -> ConversationMessage {
        ConversationMessage {
            seq,
            turn,
            role,
            body: body.into(),
            source: match role {
                MessageRole::Customer => bounty_core::conversation::MessageSource::Api,
                MessageRole::Agent => bounty_core::conversation::MessageSource::Agent,
            },
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_conversation_alternates_after_the_ticket() {
        let input = TaskInput {
            body: "My order is late.".into(),
            ..Default::default()
        };
        let history = [
            said(1, 1, MessageRole::Agent, "What is the order number?"),
            said(2, 2, MessageRole::Customer, "It is 1042."),
            said(3, 2, MessageRole::Customer, " And it was paid. "),
            said(4, 2, MessageRole::Agent, "It ships today."),
            said(5, 3, MessageRole::Customer, "Thanks, and the invoice?"),
        ];
        let m = build_conversation("Be kind.", None, &input, &history);
        let shape: Vec<(Role, &str)> = m.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            shape,
            [
                (Role::System, "Be kind."),
                (Role::User, "My order is late."),
                (Role::Assistant, "What is the order number?"),
                (Role::User, "It is 1042.\n\nAnd it was paid."),
                (Role::Assistant, "It ships today."),
                (Role::User, "Thanks, and the invoice?"),
            ]
        );
        // No history: the same prompt as a single-turn task.
        assert_eq!(
            build_conversation("Be kind.", None, &input, &[]),
            build("Be kind.", None, &input)
        );
        // Resumed after the agent's answer with no new message.
        let m = build_conversation("", None, &input, &history[..1]);
        assert_eq!(m.last().unwrap().content, REOPENED_NOTE);
        assert_eq!(m.len(), 3);
    }
}

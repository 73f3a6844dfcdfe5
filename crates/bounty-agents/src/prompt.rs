//! The chat an agent's instructions and a task's input become.

use bounty_core::TaskInput;
use bounty_models::{Message, Role};

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
}

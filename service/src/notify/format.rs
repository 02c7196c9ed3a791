//! The body each kind of target takes: our generic JSON, Slack's `{"text"}` and Telegram's
//! `sendMessage`. One sentence of text serves the chat targets and the generic one alike.

use serde_json::{json, Value};

use super::config::TargetKind;
use super::notification::{Kind, Notification};

/// The one-line message chat targets show.
pub fn text(n: &Notification) -> String {
    let who = match (&n.person_name, n.age) {
        (Some(name), Some(age)) => format!(": {name}, {age}"),
        (Some(name), None) => format!(": {name}"),
        _ => String::new(),
    };
    let priority = n.priority.as_deref().unwrap_or("unknown");
    match n.kind {
        Kind::CaseFiled => format!("New {priority} case #{}{who}. {}", n.case_id, n.link),
        Kind::SightingReported => format!("Sighting reported on case #{}. {}", n.case_id, n.link),
        Kind::CaseUnassigned => format!(
            "Case #{} ({priority}) has no responsible yet{who}. {}",
            n.case_id, n.link
        ),
    }
}

/// The JSON body for `kind`.
pub fn payload(kind: &TargetKind, n: &Notification) -> Value {
    match kind {
        TargetKind::Webhook => json!({
            "id": n.id,
            "kind": n.kind.as_str(),
            "case_id": n.case_id,
            "priority": n.priority,
            "status": n.status,
            "person": {"name": n.person_name, "age": n.age},
            "link": n.link,
            "at_ms": n.at_ms,
            "text": text(n),
        }),
        TargetKind::Slack => json!({ "text": text(n) }),
        TargetKind::Telegram { chat_id } => json!({
            "chat_id": chat_id,
            "text": text(n),
            "disable_web_page_preview": true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filed() -> Notification {
        Notification {
            id: "case_filed:7".into(),
            kind: Kind::CaseFiled,
            case_id: 7,
            priority: Some("critical".into()),
            status: Some("open".into()),
            person_name: Some("Ana Pérez".into()),
            age: Some(9),
            link: "https://lpm.example.org/#/cases/7".into(),
            at_ms: 42,
        }
    }

    #[test]
    fn the_text_names_the_case_priority_person_and_link() {
        assert_eq!(
            text(&filed()),
            "New critical case #7: Ana Pérez, 9. https://lpm.example.org/#/cases/7"
        );
        let mut s = filed();
        s.kind = Kind::SightingReported;
        assert_eq!(
            text(&s),
            "Sighting reported on case #7. https://lpm.example.org/#/cases/7"
        );
        let mut u = filed();
        u.kind = Kind::CaseUnassigned;
        u.age = None;
        assert_eq!(
            text(&u),
            "Case #7 (critical) has no responsible yet: Ana Pérez. https://lpm.example.org/#/cases/7"
        );
    }

    #[test]
    fn the_generic_webhook_carries_every_field_and_the_text() {
        let v = payload(&TargetKind::Webhook, &filed());
        assert_eq!(v["id"], "case_filed:7");
        assert_eq!(v["kind"], "case_filed");
        assert_eq!(v["case_id"], 7);
        assert_eq!(v["priority"], "critical");
        assert_eq!(v["status"], "open");
        assert_eq!(v["person"]["name"], "Ana Pérez");
        assert_eq!(v["person"]["age"], 9);
        assert_eq!(v["link"], "https://lpm.example.org/#/cases/7");
        assert_eq!(v["at_ms"], 42);
        assert_eq!(v["text"], text(&filed()));
    }

    #[test]
    fn slack_takes_only_text_and_telegram_a_chat_id_and_text() {
        let slack = payload(&TargetKind::Slack, &filed());
        assert_eq!(slack, json!({ "text": text(&filed()) }));
        let tg = payload(
            &TargetKind::Telegram {
                chat_id: "-100123".into(),
            },
            &filed(),
        );
        assert_eq!(tg["chat_id"], "-100123");
        assert_eq!(tg["text"], text(&filed()));
        assert_eq!(tg.as_object().map(|o| o.len()), Some(3));
    }
}

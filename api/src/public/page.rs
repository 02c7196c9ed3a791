//! The public case page and its 404, rendered on the server: plain HTML with inline CSS, no
//! JavaScript, so it works on low-end phones, in link previews (OpenGraph tags) and on paper.
//!
//! It shows only what the poster shows (name, age, gender, description, where and when last
//! seen, the agency's phone) and never the reporter, coordinates, notes or status. Every value
//! is HTML-escaped. The 404 is one constant page in both languages, so an unknown id, an
//! unpublished case and a malformed id answer byte for byte the same.

use lpm_reports::{Lang, PublicFacts, Tr};

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Words {
    missing: &'static str,
    age: &'static str,
    years: &'static str,
    unknown: &'static str,
    gender: &'static str,
    last_seen: &'static str,
    description: &'static str,
    call: &'static str,
    emergency: &'static str,
    form_title: &'static str,
    form_intro: &'static str,
    seen_at: &'static str,
    place: &'static str,
    what: &'static str,
    contact: &'static str,
    contact_hint: &'static str,
    send: &'static str,
    thanks: &'static str,
    refused: &'static str,
    unavailable: &'static str,
    too_large: &'static str,
    other: (&'static str, &'static str),
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::Es => Words {
            missing: "Se busca",
            age: "Edad",
            years: "años",
            unknown: "desconocida",
            gender: "Género",
            last_seen: "Visto por última vez",
            description: "Descripción",
            call: "Si tiene información, llame a",
            emergency: "la línea de emergencias 911",
            form_title: "Reportar un avistamiento",
            form_intro:
                "¿Vio a esta persona? Cuéntenos dónde y cuándo. Un equipo de respuesta lo revisará.",
            seen_at: "Cuándo (opcional)",
            place: "Dónde",
            what: "Qué vio",
            contact: "Su teléfono o correo (opcional)",
            contact_hint: "Solo el equipo de respuesta lo verá.",
            send: "Enviar",
            thanks: "Gracias. Su avistamiento fue enviado al equipo de respuesta.",
            refused: "Revise este campo",
            unavailable: "No pudimos recibir su avistamiento en este momento. Intente de nuevo en unos minutos o llame al número de arriba.",
            too_large: "El formulario es demasiado largo; acórtelo e intente de nuevo.",
            other: ("en", "English"),
        },
        Lang::En => Words {
            missing: "Missing",
            age: "Age",
            years: "years",
            unknown: "unknown",
            gender: "Gender",
            last_seen: "Last seen",
            description: "Description",
            call: "If you have information, call",
            emergency: "the emergency line 911",
            form_title: "Report a sighting",
            form_intro:
                "Did you see this person? Tell us where and when. A response team will review it.",
            seen_at: "When (optional)",
            place: "Where",
            what: "What you saw",
            contact: "Your phone or e-mail (optional)",
            contact_hint: "Only the response team will see it.",
            send: "Send",
            thanks: "Thank you. Your sighting was sent to the response team.",
            refused: "Please check this field",
            unavailable: "We could not take your sighting right now. Try again in a few minutes or call the number above.",
            too_large: "The form is too long; shorten it and try again.",
            other: ("es", "Español"),
        },
    }
}

/// What the form says above itself, and what it holds.
#[derive(Debug, Default)]
pub enum FormState {
    /// An empty form.
    #[default]
    Empty,
    /// The sender's sighting was stored (the page after the redirect): thank them; the form is
    /// empty again for another one.
    Sent,
    /// Refused: say why, mark the field, keep what was typed so nothing is lost.
    Refused {
        /// Why.
        problem: Problem,
        /// What the sender typed.
        typed: Typed,
    },
}

/// Why a form was refused, as the page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A field is missing or malformed; `message` is [`super::sighting::SightingError`]'s.
    Field {
        /// The form field.
        field: &'static str,
        /// What is wrong with it.
        message: &'static str,
    },
    /// Over the size bound.
    TooLarge,
    /// The system of record could not take it (shutting down, disk, MySQL down).
    Unavailable,
}

/// The form's values as the sender typed them (each cut to its field's limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Typed {
    /// `seen_at`
    pub seen_at: String,
    /// `place`
    pub place: String,
    /// `description`
    pub description: String,
    /// `contact`
    pub contact: String,
}

/// A field's message in `lang` (the validation messages are English constants).
fn field_message(lang: Lang, message: &str) -> &str {
    match (lang, message) {
        (Lang::Es, "required") => "es obligatorio",
        (Lang::Es, "too long") => "es demasiado largo",
        (Lang::Es, "control characters are not allowed") => "tiene caracteres no permitidos",
        (Lang::Es, "must not be in the future") => "no puede estar en el futuro",
        (Lang::Es, m) if m.starts_with("expected a local time") => {
            "use una fecha y hora como 2026-11-20T14:30"
        }
        (_, m) => m,
    }
}

/// The notice above the form, and the field to mark invalid.
fn notice(form: &FormState, w: &Words, lang: Lang) -> (String, Option<&'static str>) {
    match form {
        FormState::Empty => (String::new(), None),
        FormState::Sent => (
            format!("<p class=\"notice ok\" role=\"status\">{}</p>", w.thanks),
            None,
        ),
        FormState::Refused { problem, .. } => {
            let (text, field) = match problem {
                Problem::Field { field, message } => {
                    let label = match *field {
                        "place" => w.place,
                        "seen_at" => w.seen_at,
                        "description" => w.what,
                        "contact" => w.contact,
                        other => other,
                    };
                    (
                        format!(
                            "{}: {} ({})",
                            w.refused,
                            esc(label),
                            esc(field_message(lang, message))
                        ),
                        Some(*field),
                    )
                }
                Problem::TooLarge => (w.too_large.to_string(), None),
                Problem::Unavailable => (w.unavailable.to_string(), None),
            };
            (
                format!("<p class=\"notice bad\" role=\"alert\">{text}</p>"),
                field,
            )
        }
    }
}

/// Phone-first, printable, no external resources (the CSP allows inline styles only).
const STYLE: &str = "body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111;background:#fff}\
main{max-width:40rem;margin:0 auto;padding:1rem}\
.banner{background:#111;color:#fff;text-align:center;font-weight:700;font-size:1.6rem;letter-spacing:.1em;text-transform:uppercase;padding:.5rem;margin:0 0 .75rem}\
h1{font-size:2rem;line-height:1.15;margin:.25rem 0 1rem}\
dl{margin:0 0 1rem}dt{font-weight:700;margin-top:.5rem}dd{margin:0}\
.call{border:3px solid #111;padding:.75rem;font-size:1.15rem}.call strong{display:block;font-size:1.4rem}\
form{display:grid;gap:.6rem;margin-top:.5rem}label{font-weight:600}\
input,textarea,button{font:inherit;padding:.55rem;border:1px solid #555;border-radius:4px;width:100%;box-sizing:border-box}\
button{background:#111;color:#fff;font-weight:700;border:0}\
.hint{font-size:.9rem;color:#444;margin:0}.notice{padding:.6rem;border:3px solid #111;font-weight:600}.bad{border-style:dashed}[aria-invalid=true]{border:3px solid #111}.trap{position:absolute;left:-10000px}\
nav{margin-top:1.5rem;font-size:.95rem}\
@media print{form,nav,.form-intro{display:none}.banner{border:3px solid #111}}";

fn head(lang: Lang, title: &str, description: &str, url: Option<&str>) -> String {
    let og_url = url.map_or(String::new(), |u| {
        format!("<meta property=\"og:url\" content=\"{}\">", esc(u))
    });
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title><meta name=\"description\" content=\"{description}\">\
         <meta property=\"og:type\" content=\"website\"><meta property=\"og:title\" content=\"{title}\">\
         <meta property=\"og:description\" content=\"{description}\">{og_url}\
         <style>{STYLE}</style></head>",
        lang = lang.code(),
        title = esc(title),
        description = esc(description),
    )
}

/// The page of a published case in `lang`; its sighting form posts to `form_action` and shows
/// `form`'s notice and values.
pub fn render(f: &PublicFacts, form_action: &str, lang: Lang, form: &FormState) -> String {
    let w = words(lang);
    let (notice, bad_field) = notice(form, &w, lang);
    let empty = Typed::default();
    let typed = match form {
        FormState::Refused { typed, .. } => typed,
        _ => &empty,
    };
    let invalid = |name: &str| {
        if bad_field == Some(name) {
            " aria-invalid=\"true\" autofocus"
        } else {
            ""
        }
    };
    let tr = Tr::new(lang);
    let age = f
        .age
        .map_or(w.unknown.to_string(), |a| format!("{a} {}", w.years));
    let gender = tr.code(lpm_reports::i18n::Code::Gender, &f.gender);
    let seen = format!("{}, {}", f.last_seen_place, tr.wall_clock(f.last_seen_at));
    let title = format!("{}: {}", w.missing, f.full_name);
    let summary = format!("{}: {age}. {}: {seen}.", w.age, w.last_seen);
    let contact = match (&f.agency, &f.phone) {
        (Some(a), Some(p)) => format!(
            "{}: <a href=\"tel:{}\">{}</a>",
            esc(a),
            esc(&tel(p)),
            esc(p)
        ),
        (None, Some(p)) => format!("<a href=\"tel:{}\">{}</a>", esc(&tel(p)), esc(p)),
        _ => format!("<a href=\"tel:911\">{}</a>", esc(w.emergency)),
    };
    let description = f
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map_or(String::new(), |d| {
            format!("<dt>{}</dt><dd>{}</dd>", w.description, esc(d))
        });
    let (other, other_name) = w.other;
    format!(
        "{head}<body><main>\
         <p class=\"banner\">{missing}</p><h1>{name}</h1>\
         <dl><dt>{age_l}</dt><dd>{age}</dd><dt>{gender_l}</dt><dd>{gender}</dd>\
         <dt>{seen_l}</dt><dd>{seen}</dd>{description}</dl>\
         <p class=\"call\">{call}:<strong>{contact}</strong></p>\
         <section id=\"sighting\"><h2>{form_title}</h2><p class=\"form-intro\">{form_intro}</p>{notice}\
         <form method=\"post\" action=\"{action}\" accept-charset=\"utf-8\">\
         <label for=\"place\">{place}</label><input id=\"place\" name=\"place\" required maxlength=\"255\" autocomplete=\"off\" value=\"{v_place}\"{i_place}>\
         <label for=\"seen_at\">{seen_at}</label><input id=\"seen_at\" name=\"seen_at\" type=\"datetime-local\" value=\"{v_seen_at}\"{i_seen_at}>\
         <label for=\"description\">{what}</label><textarea id=\"description\" name=\"description\" required maxlength=\"2000\" rows=\"4\"{i_description}>{v_description}</textarea>\
         <label for=\"contact\">{contact_l}</label><input id=\"contact\" name=\"contact\" maxlength=\"200\" autocomplete=\"tel\" value=\"{v_contact}\"{i_contact}>\
         <p class=\"hint\">{contact_hint}</p>\
         <div class=\"trap\" aria-hidden=\"true\"><label for=\"website\">Website</label><input id=\"website\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\"></div>\
         <input type=\"hidden\" name=\"lang\" value=\"{lang}\">\
         <button type=\"submit\">{send}</button></form></section>\
         <nav><a href=\"?lang={other}\" hreflang=\"{other}\" lang=\"{other}\">{other_name}</a></nav>\
         </main></body></html>\n",
        head = head(lang, &title, &summary, Some(&f.public_url)),
        missing = w.missing,
        name = esc(&f.full_name),
        age_l = w.age,
        age = esc(&age),
        gender_l = w.gender,
        gender = esc(&gender),
        seen_l = w.last_seen,
        seen = esc(&seen),
        call = w.call,
        form_title = w.form_title,
        form_intro = w.form_intro,
        action = esc(form_action),
        place = w.place,
        seen_at = w.seen_at,
        what = w.what,
        contact_l = w.contact,
        contact_hint = w.contact_hint,
        lang = lang.code(),
        send = w.send,
        v_place = esc(&typed.place),
        v_seen_at = esc(&typed.seen_at),
        v_description = esc(&typed.description),
        v_contact = esc(&typed.contact),
        i_place = invalid("place"),
        i_seen_at = invalid("seen_at"),
        i_description = invalid("description"),
        i_contact = invalid("contact"),
    )
}

/// A phone number as a `tel:` URI keeps digits and a leading `+` only.
fn tel(phone: &str) -> String {
    phone
        .chars()
        .enumerate()
        .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
        .map(|(_, c)| c)
        .collect()
}

/// The one 404 page (both languages, no id echoed): see the module doc.
pub fn not_found() -> &'static str {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PAGE.get_or_init(|| {
        format!(
            "{}<body><main><h1>Página no encontrada</h1>\
             <p>Este enlace no existe o el caso ya no está publicado.</p>\
             <h1 lang=\"en\">Page not found</h1>\
             <p lang=\"en\">This link does not exist or the case is no longer published.</p>\
             </main></body></html>\n",
            head(
                Lang::Es,
                "Página no encontrada / Page not found",
                "lpm",
                None
            )
        )
    })
}

/// The page a client over its rate limit gets (both languages).
pub fn too_many() -> &'static str {
    "<!doctype html>\n<html lang=\"es\"><head><meta charset=\"utf-8\">\
     <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
     <title>Demasiadas solicitudes / Too many requests</title></head><body>\
     <p>Demasiadas solicitudes; intente de nuevo en unos minutos.</p>\
     <p lang=\"en\">Too many requests; try again in a few minutes.</p></body></html>\n"
}

/// The language of a request: `?lang=` when it names one, else the first of `es`/`en` in
/// `Accept-Language` by weight, else Spanish.
pub fn language(query: Option<&str>, accept: Option<&str>) -> Lang {
    if let Some(l) = query.and_then(Lang::parse) {
        return l;
    }
    let mut best: Option<(f32, Lang)> = None;
    for part in accept.unwrap_or("").split(',') {
        let mut bits = part.split(';');
        let tag = bits.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = bits
            .filter_map(|b| b.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("es") => Lang::Es,
            Some("en") => Lang::En,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::Es, |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTION: &str = "/public/cases/abc/sightings";

    fn facts() -> PublicFacts {
        PublicFacts {
            full_name: "<script>alert('x')</script> Peña".into(),
            age: Some(15),
            gender: "female".into(),
            description: Some("Chaqueta \"azul\" & mochila".into()),
            last_seen_place: "Quito".into(),
            last_seen_at: 0,
            agency: Some("DINASED".into()),
            phone: Some("+593 (2) 123-4567".into()),
            public_url: "https://x.example/public/cases/abc".into(),
        }
    }

    #[test]
    fn values_are_escaped_and_no_script_is_emitted() {
        let html = render(&facts(), ACTION, Lang::Es, &FormState::Empty);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Peña"));
        assert!(html.contains("Chaqueta &quot;azul&quot; &amp; mochila"));
        assert!(html.contains("href=\"tel:+59321234567\""), "{html}");
        assert!(html.contains("<html lang=\"es\">") && html.contains("Se busca"));
        assert!(html.contains("action=\"/public/cases/abc/sightings\""));
        assert!(html.contains("og:title"));
        let en = render(&facts(), ACTION, Lang::En, &FormState::Empty);
        assert!(en.contains("<html lang=\"en\">") && en.contains("Report a sighting"));
    }

    #[test]
    fn a_refused_form_keeps_what_was_typed_and_marks_the_field() {
        let form = FormState::Refused {
            problem: Problem::Field {
                field: "description",
                message: "required",
            },
            typed: Typed {
                place: "Parque \"El Ejido\" <b>".into(),
                contact: "099 123".into(),
                ..Typed::default()
            },
        };
        let html = render(&facts(), ACTION, Lang::Es, &form);
        assert!(
            html.contains("value=\"Parque &quot;El Ejido&quot; &lt;b&gt;\""),
            "{html}"
        );
        assert!(html.contains("value=\"099 123\""));
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("Qué vio (es obligatorio)"), "{html}");
        assert!(
            html.contains("rows=\"4\" aria-invalid=\"true\" autofocus>"),
            "{html}"
        );
        assert_eq!(html.matches("aria-invalid=\"true\"").count(), 1);
        let sent = render(&facts(), ACTION, Lang::En, &FormState::Sent);
        assert!(sent.contains("Thank you.") && !sent.contains("aria-invalid=\"true\""));
        let empty = render(&facts(), ACTION, Lang::En, &FormState::Empty);
        assert!(!empty.contains("role=\"alert\"") && !empty.contains("role=\"status\""));
    }

    #[test]
    fn the_language_comes_from_the_query_then_accept_language_then_spanish() {
        assert_eq!(language(Some("en"), Some("es")), Lang::En);
        assert_eq!(language(Some("xx"), Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(language(None, Some("fr, en;q=0.5, es;q=0.8")), Lang::Es);
        assert_eq!(language(None, Some("de")), Lang::Es);
        assert_eq!(language(None, None), Lang::Es);
        assert_eq!(language(None, Some("en;q=0")), Lang::Es);
    }

    #[test]
    fn the_not_found_page_names_no_id() {
        assert!(not_found().contains("Page not found"));
        assert!(!not_found().contains("cases/"));
    }
}

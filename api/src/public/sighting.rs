//! The public "report a sighting" form: its fields, size bound and validation, independent of
//! where a sighting is stored.
//!
//! The form on the public case page posts `application/x-www-form-urlencoded` (no JavaScript
//! needed) to `/public/cases/{public_id}/sightings`. The route that stores it
//! ([`super::submit`], in `case_sightings`, marked `source: public` for responders to triage)
//! calls this module after the per-address rate limit
//! ([`super::limiter::RatePolicy::SIGHTINGS`]).

use chrono_tz::Tz;

use super::page::Typed;
use crate::times::parse_wall_clock;

/// The largest form body accepted, in bytes: the three text fields at their limits, percent-
/// encoded, fit; anything larger is refused before it is parsed.
pub const MAX_BODY: usize = 16 * 1024;
/// Limits in characters.
pub const PLACE_MAX: usize = 255;
/// Limits in characters.
pub const DESCRIPTION_MAX: usize = 2000;
/// Limits in characters.
pub const CONTACT_MAX: usize = 200;

/// Where a sighting came from: this form.
pub const SOURCE_PUBLIC: &str = "public";

/// A validated sighting from the public form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSighting {
    /// When it was seen, local wall clock (ms since 1970 read as UTC, like `last_seen_at`);
    /// `None` when the sender did not say.
    pub seen_at: Option<i64>,
    /// Where.
    pub place: String,
    /// What they saw.
    pub description: String,
    /// How responders can reach the sender (optional; never shown on the public page).
    pub contact: Option<String>,
    /// Always [`SOURCE_PUBLIC`].
    pub source: &'static str,
}

/// Why a form was refused; `field` is the form field to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SightingError {
    /// Over [`MAX_BODY`].
    #[error("the form is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// A field is missing, too long or malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// The hidden `website` field was filled in: a bot, not a person.
    #[error("refused")]
    Bot,
}

fn invalid(field: &'static str, message: &'static str) -> SightingError {
    SightingError::Invalid { field, message }
}

/// Trims `v` and checks it is non-empty (when required), at most `max` characters and free of
/// control characters other than line breaks and tabs.
fn field(
    name: &'static str,
    v: Option<String>,
    max: usize,
    required: bool,
) -> Result<Option<String>, SightingError> {
    let v = v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    match v {
        None if required => Err(invalid(name, "required")),
        None => Ok(None),
        Some(s) if s.chars().count() > max => Err(invalid(name, "too long")),
        Some(s)
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            Err(invalid(name, "control characters are not allowed"))
        }
        Some(s) => Ok(Some(s)),
    }
}

/// Parses and validates a form body. Unknown fields are ignored (browsers may add some); a
/// field given twice keeps its last value. `tz` converts a `seen_at` with an offset.
pub fn parse(body: &[u8], tz: &Tz) -> Result<PublicSighting, SightingError> {
    if body.len() > MAX_BODY {
        return Err(SightingError::TooLarge);
    }
    let (mut seen_at, mut place, mut description, mut contact, mut website) =
        (None, None, None, None, None);
    for (k, v) in form_urlencoded::parse(body) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "seen_at" => seen_at = v,
            "place" => place = v,
            "description" => description = v,
            "contact" => contact = v,
            "website" => website = v,
            _ => {}
        }
    }
    if website.is_some_and(|w| !w.trim().is_empty()) {
        return Err(SightingError::Bot);
    }
    let seen_at = field("seen_at", seen_at, 40, false)?
        .map(|t| parse_wall_clock("seen_at", &t, tz))
        .transpose()
        .map_err(|_| invalid("seen_at", "expected a local time like 2026-11-20T14:30"))?;
    Ok(PublicSighting {
        seen_at,
        place: field("place", place, PLACE_MAX, true)?.unwrap_or_default(),
        description: field("description", description, DESCRIPTION_MAX, true)?.unwrap_or_default(),
        contact: field("contact", contact, CONTACT_MAX, false)?,
        source: SOURCE_PUBLIC,
    })
}

/// What the sender typed, for the form shown again after a refusal: each field cut to its
/// limit (a refused form must not make the page that echoes it larger than the form was).
pub fn typed(body: &[u8]) -> Typed {
    let cut = |v: &str, max: usize| v.chars().take(max).collect::<String>();
    let mut t = Typed::default();
    for (k, v) in form_urlencoded::parse(&body[..body.len().min(MAX_BODY)]) {
        match k.as_ref() {
            "seen_at" => t.seen_at = cut(&v, 40),
            "place" => t.place = cut(&v, PLACE_MAX),
            "description" => t.description = cut(&v, DESCRIPTION_MAX),
            "contact" => t.contact = cut(&v, CONTACT_MAX),
            _ => {}
        }
    }
    t
}

/// The `lang` field of the form (the page's language, sent back as a hidden field).
pub fn lang(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(&body[..body.len().min(MAX_BODY)])
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v.into_owned())
}

/// Whether a contact is a phone number (digits with the usual punctuation, 6 to 20 digits,
/// at most 40 characters, the `reporter_phone` column's size): responders then get a `tel:`
/// link. Anything else (an e-mail, a name) is kept as the reporter's name.
pub fn is_phone(contact: &str) -> bool {
    let digits = contact.chars().filter(char::is_ascii_digit).count();
    contact.chars().count() <= 40
        && (6..=20).contains(&digits)
        && contact
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> Tz {
        chrono_tz::America::Guayaquil
    }

    #[test]
    fn a_filled_form_is_accepted_and_marked_public() {
        let body =
            b"seen_at=2026-11-20T14%3A30&place=Quito%2C+El+Ejido&description=Con+mochila+azul\
                     &contact=0991234567&extra=ignored";
        let s = parse(body, &tz()).expect("valid");
        assert_eq!(s.place, "Quito, El Ejido");
        assert_eq!(s.description, "Con mochila azul");
        assert_eq!(s.contact.as_deref(), Some("0991234567"));
        assert_eq!(s.source, "public");
        assert!(s.seen_at.is_some());
        let minimal = parse(b"place=Loja&description=vista", &tz()).expect("minimal");
        assert_eq!((minimal.seen_at, minimal.contact), (None, None));
    }

    #[test]
    fn bad_forms_name_the_field() {
        let err = |b: &[u8]| parse(b, &tz()).expect_err("refused");
        assert_eq!(err(b"description=x"), invalid("place", "required"));
        assert_eq!(
            err(b"place=+++&description=x"),
            invalid("place", "required")
        );
        assert_eq!(err(b"place=x"), invalid("description", "required"));
        assert_eq!(
            err(b"place=x&description=x&seen_at=yesterday"),
            invalid("seen_at", "expected a local time like 2026-11-20T14:30")
        );
        assert_eq!(
            err(b"place=x%00y&description=x"),
            invalid("place", "control characters are not allowed")
        );
        let long = format!("place={}&description=x", "a".repeat(PLACE_MAX + 1));
        assert_eq!(err(long.as_bytes()), invalid("place", "too long"));
        assert_eq!(
            err(b"place=x&description=x&website=http%3A%2F%2Fspam"),
            SightingError::Bot
        );
    }

    #[test]
    fn a_refused_form_is_echoed_cut_to_its_limits() {
        let body = format!(
            "place={}&description=x%26y&contact=a&seen_at=2026&lang=en&website=",
            "p".repeat(PLACE_MAX + 50)
        );
        let t = typed(body.as_bytes());
        assert_eq!(t.place.chars().count(), PLACE_MAX);
        assert_eq!((t.description.as_str(), t.contact.as_str()), ("x&y", "a"));
        assert_eq!(t.seen_at, "2026");
        assert_eq!(lang(body.as_bytes()).as_deref(), Some("en"));
        assert_eq!(lang(b"place=x"), None);
    }

    #[test]
    fn phones_are_told_from_other_contacts() {
        assert!(is_phone("+593 (99) 123-4567"));
        assert!(is_phone("0991234567"));
        assert!(!is_phone("ana@example.org"));
        assert!(!is_phone("12345"), "too few digits");
        assert!(!is_phone("Ana 0991234567"));
        assert!(!is_phone(&"1".repeat(41)));
    }

    #[test]
    fn the_body_is_bounded_before_parsing() {
        let big = vec![b'a'; MAX_BODY + 1];
        assert_eq!(parse(&big, &tz()), Err(SightingError::TooLarge));
        // every field at its limit, percent-encoded as a browser sends accented text, fits
        let at_limit = format!(
            "place={}&description={}&contact={}",
            "%C3%A1".repeat(PLACE_MAX / 2),
            "a".repeat(DESCRIPTION_MAX),
            "b".repeat(CONTACT_MAX)
        );
        assert!(at_limit.len() <= MAX_BODY);
        assert!(parse(at_limit.as_bytes(), &tz()).is_ok());
    }
}

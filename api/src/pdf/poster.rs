//! The poster's data: a published case's public facts (the same the public page shows) turned
//! into `lpm_reports::Poster`, whose QR code holds the case's `public_url`.

use lpm_engine::read::CaseDetail;
use lpm_reports::{Lang, Poster};

use crate::error::ApiError;
use crate::public;

/// The poster of `d` in `lang`; 409 `not_published` unless it is published (and 404 when its
/// person row is missing: there is nothing to print).
pub fn poster(d: &CaseDetail, lang: Lang, base: &str) -> Result<Poster, ApiError> {
    let c = &d.record.case;
    let public_id = match (&c.public_id, c.public) {
        (Some(id), true) => id.clone(),
        _ => return Err(ApiError::NotPublished(c.id)),
    };
    let facts = public::facts(d, &public_id, base)
        .ok_or_else(|| ApiError::NotFound(format!("the person of case {}", c.id)))?;
    Ok(Poster {
        lang,
        case_id: c.id,
        facts,
    })
}

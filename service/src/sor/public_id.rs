//! The public id of a published case: the last path segment of its public page
//! (`/public/cases/{public_id}`) and the content of its poster's QR code.
//!
//! Why random and not derived from the case id: the public page needs no sign-in, so the id is
//! the only thing standing between a stranger and a case that was never published; 128 bits from
//! the OS's CSPRNG cannot be guessed or enumerated. Why URL-safe base64 without padding: 22
//! characters that need no escaping in a URL and keep the QR code small.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::SorError;

/// Random bytes per id (128 bits).
const BYTES: usize = 16;
/// The length of a generated id (`ceil(16 * 4 / 3)`).
pub const LEN: usize = 22;

/// A fresh public id from the operating system's CSPRNG.
pub fn generate() -> Result<String, SorError> {
    let mut b = [0u8; BYTES];
    getrandom::fill(&mut b)
        .map_err(|e| SorError::Unavailable(format!("no randomness for a public id: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// Whether `s` has the shape of a generated id: checked before any lookup, so a malformed
/// path answers the same 404 without touching the index.
pub fn well_formed(s: &str) -> bool {
    s.len() == LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_distinct_and_well_formed() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), LEN);
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        assert!(!well_formed("short"));
        assert!(!well_formed("aaaaaaaaaaaaaaaaaaaa/a"));
        assert!(!well_formed("aaaaaaaaaaaaaaaaaaaaa%"));
    }
}

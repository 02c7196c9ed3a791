//! Argon2id hashing for passwords and token secrets, and the random bytes behind ids.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`): they carry their own
//! parameters, so verification works whatever cost a hash was made with, and raising the cost
//! later does not invalidate existing hashes.

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::AuthError;

/// How expensive password hashes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordCost {
    /// Argon2id at the library default: 19 MiB, 2 passes, 1 lane (OWASP's recommendation).
    #[default]
    Default,
    /// Argon2id at its minimum cost (8 KiB, 1 pass). Only for tests: it makes a password
    /// hash as cheap to guess as a plain hash.
    Fast,
}

impl PasswordCost {
    fn params(self) -> Result<Params, AuthError> {
        match self {
            PasswordCost::Default => Ok(Params::DEFAULT),
            PasswordCost::Fast => minimum_params(),
        }
    }
}

/// Argon2id's minimum cost. Used for token secrets, which are 256 random bits: nobody can guess
/// them, so the hash only has to be one-way, not slow (see the module docs of `auth`).
fn minimum_params() -> Result<Params, AuthError> {
    Params::new(Params::MIN_M_COST, 1, 1, None).map_err(|e| AuthError::Hash(e.into()))
}

fn argon2id(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_with(secret: &[u8], params: Params) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)?;
    Ok(argon2id(params).hash_password(secret, &salt)?.to_string())
}

/// The PHC hash of a password at `cost`, with a fresh random salt.
pub(crate) fn hash_password(password: &str, cost: PasswordCost) -> Result<String, AuthError> {
    hash_with(password.as_bytes(), cost.params()?)
}

/// The PHC hash of a token secret (minimum cost, fresh salt).
pub(crate) fn hash_token_secret(secret: &str) -> Result<String, AuthError> {
    hash_with(secret.as_bytes(), minimum_params()?)
}

/// Whether `secret` matches the PHC string `phc`. The final comparison is constant-time; a
/// malformed stored hash never matches.
pub(crate) fn verify(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        // `verify_password` rehashes with the parameters stored in `phc`.
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// `N` bytes from the operating system's random generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// `N` random bytes as unpadded base64url (the alphabet `A-Za-z0-9-_`).
pub(crate) fn random_b64url<const N: usize>() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<N>()?))
}

/// `N` random bytes as lowercase hex.
pub(crate) fn random_hex<const N: usize>() -> Result<String, AuthError> {
    Ok(random_bytes::<N>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let phc = hash_password("correct horse", PasswordCost::Fast).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct horsE", &phc));
        assert!(!verify("", &phc));
    }

    #[test]
    fn default_cost_is_argon2id_19_mib() {
        let phc = hash_password("correct horse", PasswordCost::Default).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse", &phc));
    }

    #[test]
    fn salts_differ() {
        let a = hash_token_secret("same").expect("hash");
        let b = hash_token_secret("same").expect("hash");
        assert_ne!(a, b);
        assert!(verify("same", &a) && verify("same", &b));
    }

    #[test]
    fn malformed_hash_never_matches() {
        assert!(!verify("x", ""));
        assert!(!verify("x", "$argon2id$garbage"));
    }

    #[test]
    fn random_ids_have_the_right_shape() {
        let id = random_hex::<6>().expect("random");
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let secret = random_b64url::<32>().expect("random");
        assert_eq!(secret.len(), 43);
        assert!(secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(secret, random_b64url::<32>().expect("random"));
    }
}

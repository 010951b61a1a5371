//! The sealed block that carries 2FA secrets (`users/2fa-secrets.json.enc`): AES-256-GCM under a key
//! derived from the backup passphrase with Argon2id. Specified in `format-spec/gateway.md`.
//!
//! ```text
//! "SOPH2FA" (7) | version u8 = 1 | memory KiB u32 | iterations u32 | parallelism u32 | salt (16)
//!   | nonce (12) | ciphertext | tag (16)            associated data: every byte before the nonce
//! ```
//!
//! A reader trusts the Argon2id parameters before it holds a key, so [`open`] refuses any outside
//! the bounds of every other Argon2id reader ([`Argon2Params::check`]: memory ≤ 1 GiB, 1 ≤ t ≤ 64,
//! memory × t ≤ 4 GiB, 1 ≤ p ≤ 16, memory ≥ 8 KiB × p) as `Malformed` naming the block, before it
//! derives anything.

use zeroize::Zeroizing;

use crate::crypto::{self, Argon2Params, SealKey};
use crate::error::{Error, Result};

const MAGIC: &[u8; 7] = b"SOPH2FA";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 7 + 1 + 12 + 16;

pub fn seal(plaintext: &[u8], passphrase: &[u8]) -> Result<Vec<u8>> {
    let params = Argon2Params::DEFAULT;
    let salt: [u8; 16] = crypto::random_array()?;
    let key = crypto::argon2id(passphrase, &salt, params)?;
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + crypto::SEAL_OVERHEAD);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&params.memory_kib.to_le_bytes());
    out.extend_from_slice(&params.iterations.to_le_bytes());
    out.extend_from_slice(&params.parallelism.to_le_bytes());
    out.extend_from_slice(&salt);
    let header = out.clone();
    SealKey::new(*key).seal_append(plaintext, &header, &mut out)?;
    Ok(out)
}

pub fn open(sealed: &[u8], passphrase: &[u8], what: &str) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < HEADER_LEN + crypto::SEAL_OVERHEAD || &sealed[..7] != MAGIC {
        return Err(Error::malformed(what, "not a sealed 2FA block"));
    }
    if sealed[7] != VERSION {
        return Err(Error::UnsupportedVersion {
            what: what.into(),
            found: sealed[7] as u32,
            supported: VERSION as u32,
        });
    }
    let u = |at: usize| u32::from_le_bytes([sealed[at], sealed[at + 1], sealed[at + 2], sealed[at + 3]]);
    let params = Argon2Params { memory_kib: u(8), iterations: u(12), parallelism: u(16) };
    // Before any derivation: a hostile block must not make a reader spend minutes and gigabytes.
    params.check().map_err(|e| Error::malformed(what, format!("argon2id parameters: {e}")))?;
    let key = crypto::argon2id(passphrase, &sealed[20..36], params)?;
    let plain = SealKey::new(*key).open(&sealed[HEADER_LEN..], &sealed[..HEADER_LEN], &|| what.to_string())?;
    Ok(Zeroizing::new(plain))
}

#[cfg(test)]
mod tests {
    use crate::crypto::Argon2Params;
    use crate::error::Error;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let s = super::seal(b"{\"u1\":\"JBSWY3DPEHPK3PXP\"}", b"pass").unwrap();
        assert_eq!(&**super::open(&s, b"pass", "t").unwrap(), b"{\"u1\":\"JBSWY3DPEHPK3PXP\"}");
        assert!(super::open(&s, b"wrong", "t").is_err());
        assert!(!s.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
    }

    /// The block with its Argon2id parameters replaced (its seal no longer opens, which does not
    /// matter: the parameters must be refused before anything is derived).
    fn with_params(m: u32, t: u32, p: u32) -> Vec<u8> {
        let mut s = super::seal(b"{}", b"pass").unwrap();
        s[8..12].copy_from_slice(&m.to_le_bytes());
        s[12..16].copy_from_slice(&t.to_le_bytes());
        s[16..20].copy_from_slice(&p.to_le_bytes());
        s
    }

    /// Every bound `format-spec/gateway.md` §9 lists is refused as `Malformed`, naming the block and
    /// the parameter, before any key is derived (so without spending the memory or the time).
    #[test]
    fn argon2_parameters_outside_the_bounds_are_refused_before_deriving() {
        let max_m = Argon2Params::MAX_MEMORY_KIB;
        for (m, t, p, says) in [
            (max_m + 1, 1, 1, "memory"),
            (u32::MAX, 1, 1, "memory"),
            (1024, 0, 1, "iterations"),
            (1024, Argon2Params::MAX_ITERATIONS + 1, 1, "iterations"),
            (max_m, 5, 1, "work"),
            (1024, 1, 0, "parallelism"),
            (1024, 1, Argon2Params::MAX_PARALLELISM + 1, "parallelism"),
            (1024, 1, u32::MAX, "parallelism"),
            (64, 1, 16, "8 KiB per lane"),
        ] {
            match super::open(&with_params(m, t, p), b"pass", "users/2fa-secrets.json.enc") {
                Err(Error::Malformed { what, reason }) => {
                    assert_eq!(what, "users/2fa-secrets.json.enc", "m={m} t={t} p={p}");
                    assert!(reason.contains(says), "m={m} t={t} p={p}: {reason}");
                }
                other => panic!("m={m} t={t} p={p}: expected Malformed, got {other:?}"),
            }
        }
        // At the bounds the parameters pass, and the (altered) block then fails to authenticate.
        let at_bounds = with_params(8 * 16, 1, Argon2Params::MAX_PARALLELISM);
        assert!(matches!(
            super::open(&at_bounds, b"pass", "users/2fa-secrets.json.enc"),
            Err(Error::Authentication { .. })
        ));
    }
}

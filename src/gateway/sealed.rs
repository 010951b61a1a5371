//! The sealed block that carries 2FA secrets (`users/2fa-secrets.json.enc`): AES-256-GCM under a key
//! derived from the backup passphrase with Argon2id. Specified in `format-spec/gateway.md`.
//!
//! ```text
//! "SOPH2FA" (7) | version u8 = 1 | memory KiB u32 | iterations u32 | parallelism u32 | salt (16)
//!   | nonce (12) | ciphertext | tag (16)            associated data: every byte before the nonce
//! ```

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
    let key = crypto::argon2id(passphrase, &sealed[20..36], params)?;
    let plain = SealKey::new(*key).open(&sealed[HEADER_LEN..], &sealed[..HEADER_LEN], &|| what.to_string())?;
    Ok(Zeroizing::new(plain))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_wrong_passphrase() {
        let s = super::seal(b"{\"u1\":\"JBSWY3DPEHPK3PXP\"}", b"pass").unwrap();
        assert_eq!(&**super::open(&s, b"pass", "t").unwrap(), b"{\"u1\":\"JBSWY3DPEHPK3PXP\"}");
        assert!(super::open(&s, b"wrong", "t").is_err());
        assert!(!s.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
    }
}

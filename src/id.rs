//! Typed 32-byte ids. Each kind of object gets its own type so a pack id can never be passed where a
//! blob id is expected.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub const LEN: usize = 32;

            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(bytes).ok().map(Self)
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex digits: what listings show.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", $label, self.short())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| Error::malformed(format!("{} id {s:?}", $label), "not 64 hex digits"))?;
                Ok(Self(out))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A blob's id: BLAKE3 keyed with the repository's id key, over the blob's plaintext.
    BlobId, "blob"
);
id_type!(
    /// A pack's id: unkeyed BLAKE3 of the pack file's bytes (also its object name).
    PackId, "pack"
);
id_type!(
    /// A snapshot's id: unkeyed BLAKE3 of the stored (sealed) snapshot object.
    SnapshotId, "snapshot"
);
id_type!(
    /// An index segment's id: unkeyed BLAKE3 of the stored (sealed) segment.
    IndexId, "index"
);
id_type!(
    /// A key file's id: unkeyed BLAKE3 of the key file's bytes.
    KeyId, "key"
);
id_type!(
    /// A lock's id: unkeyed BLAKE3 of the stored lock object.
    LockId, "lock"
);
id_type!(
    /// A prune record's id: unkeyed BLAKE3 of the stored record object.
    PruneId, "prune record"
);
id_type!(
    /// The repository's random id, stored in `config` and inside every key.
    RepoId, "repository"
);

/// Unkeyed BLAKE3 of stored bytes: the name of every object except blobs.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Blobs carry one of these types; the type is bound into the blob's AEAD so a tree can never be
/// read back as file data or the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    Data,
    Tree,
}

impl BlobType {
    pub fn code(self) -> u8 {
        match self {
            BlobType::Data => 0,
            BlobType::Tree => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(BlobType::Data),
            1 => Some(BlobType::Tree),
            _ => None,
        }
    }
}

//! The spool moved to [`crate::source::spool`]; the gateway's dump keeps its name for it.

pub use crate::source::spool::{remove_abandoned, Spool, SpoolFile};

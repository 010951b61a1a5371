//! What a snapshot is a backup of, as its `paths` record it: folder paths, or a gateway home with
//! an optional tenant (`gateway:<absolute home>[?tenant=<id>]`, `format-spec/gateway.md` §9). The
//! label is in snapshots and exports on disk, so it is written and parsed here and nowhere else.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::Layout;

/// The start of a gateway backup's label.
pub const GATEWAY_PREFIX: &str = "gateway:";
/// Separates the home from the tenant in a tenant-scoped gateway backup's label.
const TENANT_MARK: &str = "?tenant=";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotScope {
    /// A folder backup: the backed-up roots as given.
    Paths(Vec<String>),
    /// A gateway backup of `home`, of every tenant or of one.
    Gateway { home: PathBuf, tenant: Option<String> },
}

impl SnapshotScope {
    /// The scope of a backup of the gateway at `home` (made absolute, so that every run from any
    /// folder lands in one chain of parents).
    pub fn gateway(home: &Path, tenant: Option<&str>) -> SnapshotScope {
        let home = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
        SnapshotScope::Gateway { home, tenant: tenant.map(str::to_string) }
    }

    /// The scope a snapshot's `paths` record. A gateway backup records exactly one label; a list
    /// starting with one is read as a gateway backup, as every earlier build did.
    pub fn from_paths(paths: &[String]) -> SnapshotScope {
        match paths.first().map(|p| p.parse::<SnapshotScope>()) {
            Some(Ok(g @ SnapshotScope::Gateway { .. })) => g,
            _ => SnapshotScope::Paths(paths.to_vec()),
        }
    }

    /// What a snapshot of this scope records as its `paths`.
    pub fn paths(&self) -> Vec<String> {
        match self {
            SnapshotScope::Paths(p) => p.clone(),
            SnapshotScope::Gateway { .. } => vec![self.to_string()],
        }
    }

    pub fn is_gateway(&self) -> bool {
        matches!(self, SnapshotScope::Gateway { .. })
    }

    /// The tenant of a tenant-scoped gateway backup.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            SnapshotScope::Gateway { tenant, .. } => tenant.as_deref(),
            SnapshotScope::Paths(_) => None,
        }
    }

    /// The layout of the backup's files.
    pub fn layout(&self) -> Layout {
        match self {
            SnapshotScope::Gateway { .. } => Layout::Gateway,
            SnapshotScope::Paths(_) => Layout::Files,
        }
    }
}

/// The scope as exports record it (`format-spec/export.md` §1): the paths joined by a space, or
/// the gateway label.
impl fmt::Display for SnapshotScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotScope::Paths(p) => f.write_str(&p.join(" ")),
            SnapshotScope::Gateway { home, tenant: None } => write!(f, "{GATEWAY_PREFIX}{}", home.display()),
            SnapshotScope::Gateway { home, tenant: Some(t) } => {
                write!(f, "{GATEWAY_PREFIX}{}{TENANT_MARK}{t}", home.display())
            }
        }
    }
}

/// One label: a gateway label, or else a single folder path. The tenant is what follows the last
/// `?tenant=`: tenant ids are slugs (`format-spec/gateway.md` §1), so every tenant-scoped label
/// reads back whatever its home; only an all-tenants label whose home path itself holds
/// `?tenant=` would be misread.
impl FromStr for SnapshotScope {
    type Err = std::convert::Infallible;

    fn from_str(label: &str) -> Result<SnapshotScope, Self::Err> {
        let Some(rest) = label.strip_prefix(GATEWAY_PREFIX) else {
            return Ok(SnapshotScope::Paths(vec![label.to_string()]));
        };
        Ok(match rest.rsplit_once(TENANT_MARK) {
            Some((home, tenant)) => SnapshotScope::Gateway { home: home.into(), tenant: Some(tenant.to_string()) },
            None => SnapshotScope::Gateway { home: rest.into(), tenant: None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(label: &str) -> SnapshotScope {
        let scope: SnapshotScope = label.parse().unwrap_or_else(|e| match e {});
        assert_eq!(scope.to_string(), label, "label → scope → label");
        assert_eq!(SnapshotScope::from_paths(&scope.paths()), scope, "scope → paths → scope");
        scope
    }

    #[test]
    fn gateway_labels_read_back_with_and_without_tenant() {
        let all = round_trip("gateway:/srv/sophon");
        assert_eq!(all, SnapshotScope::Gateway { home: "/srv/sophon".into(), tenant: None });
        assert!(all.is_gateway());
        assert_eq!(all.layout(), Layout::Gateway);
        let one = round_trip("gateway:/srv/sophon?tenant=acme");
        assert_eq!(one.tenant(), Some("acme"));
        assert_eq!(one, SnapshotScope::gateway(Path::new("/srv/sophon"), Some("acme")));
    }

    #[test]
    fn odd_homes_and_tenants_read_back() {
        for label in [
            "gateway:/home/ana maría/gateway home",
            "gateway:/srv/what?/x=1&y",
            "gateway:/srv/sophon?tenant=",
            "gateway:/srv/sophon?tenant=a b?c=d",
            "gateway:/srv/odd?tenant=home?tenant=acme",
            "gateway:/ünï/cødé?tenant=ténant",
            "gateway:",
        ] {
            assert!(round_trip(label).is_gateway(), "{label}");
        }
        let odd = round_trip("gateway:/srv/odd?tenant=home?tenant=acme");
        assert_eq!(odd, SnapshotScope::Gateway { home: "/srv/odd?tenant=home".into(), tenant: Some("acme".into()) });
    }

    #[test]
    fn folder_paths_stay_paths() {
        let paths = vec!["/data/a b".to_string(), "/etc".to_string(), "/x/gateway:y".to_string()];
        let scope = SnapshotScope::from_paths(&paths);
        assert_eq!(scope, SnapshotScope::Paths(paths.clone()));
        assert_eq!(scope.paths(), paths);
        assert_eq!(scope.to_string(), "/data/a b /etc /x/gateway:y");
        assert_eq!(scope.tenant(), None);
        assert_eq!(scope.layout(), Layout::Files);
        assert_eq!(SnapshotScope::from_paths(&[]), SnapshotScope::Paths(vec![]));
        // A path that only mentions a tenant is not a gateway backup's scope.
        assert_eq!(round_trip("/srv/x?tenant=acme").tenant(), None);
    }

    #[test]
    fn a_relative_home_is_made_absolute() {
        let s = SnapshotScope::gateway(Path::new("rel/home"), None);
        let SnapshotScope::Gateway { home, .. } = &s else { panic!("not a gateway scope: {s:?}") };
        assert!(home.is_absolute(), "{}", home.display());
        assert!(s.to_string().starts_with(GATEWAY_PREFIX));
    }
}

//! What a snapshot is a backup of, as its `paths` record it: folder paths, or a gateway home with
//! an optional set of categories and an optional tenant
//! (`gateway:<absolute home>[?categories=<a,b>][?tenant=<id>]`, `format-spec/gateway.md` §9). The
//! label is in snapshots and exports on disk, so it is written and parsed here and nowhere else.
//! The label is also what parents and retention groups are chosen by, so a category-only backup
//! has its own chain and its own retention group.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::Layout;

/// The start of a gateway backup's label.
pub const GATEWAY_PREFIX: &str = "gateway:";
/// Separates the home from the tenant in a tenant-scoped gateway backup's label.
const TENANT_MARK: &str = "?tenant=";
/// Separates the home from the categories of a backup of only some categories. It comes before
/// the tenant mark, so a build that knows only tenants still reads the tenant right.
const CATEGORIES_MARK: &str = "?categories=";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotScope {
    /// A folder backup: the backed-up roots as given.
    Paths(Vec<String>),
    /// A gateway backup of `home`, of every tenant or of one, of every category (`categories`
    /// empty, as in every label written before categories were recorded) or of the ones listed
    /// (sorted, each once).
    Gateway { home: PathBuf, tenant: Option<String>, categories: Vec<String> },
}

impl SnapshotScope {
    /// The scope of a backup of the gateway at `home` (made absolute, so that every run from any
    /// folder lands in one chain of parents).
    pub fn gateway(home: &Path, tenant: Option<&str>) -> SnapshotScope {
        let home = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
        SnapshotScope::Gateway { home, tenant: tenant.map(str::to_string), categories: Vec::new() }
    }

    /// The same gateway scope limited to `categories` (ids such as `memory`); an empty list means
    /// every category. The caller passes an empty list when the set covers every category, so a
    /// backup of all of them named one by one shares the chain of a plain backup.
    pub fn with_categories<S: AsRef<str>>(self, categories: &[S]) -> SnapshotScope {
        match self {
            SnapshotScope::Gateway { home, tenant, .. } => {
                let mut c: Vec<String> = categories.iter().map(|c| c.as_ref().to_string()).collect();
                c.sort();
                c.dedup();
                SnapshotScope::Gateway { home, tenant, categories: c }
            }
            paths => paths,
        }
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

    /// The categories of a gateway backup limited to some; `None` for every category (and for a
    /// folder backup).
    pub fn categories(&self) -> Option<&[String]> {
        match self {
            SnapshotScope::Gateway { categories, .. } if !categories.is_empty() => Some(categories),
            _ => None,
        }
    }

    /// The gateway home, for a gateway backup.
    pub fn home(&self) -> Option<&Path> {
        match self {
            SnapshotScope::Gateway { home, .. } => Some(home),
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
            SnapshotScope::Gateway { home, tenant, categories } => {
                write!(f, "{GATEWAY_PREFIX}{}", home.display())?;
                if !categories.is_empty() {
                    write!(f, "{CATEGORIES_MARK}{}", categories.join(","))?;
                }
                match tenant {
                    Some(t) => write!(f, "{TENANT_MARK}{t}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One label: a gateway label, or else a single folder path. The tenant is what follows the last
/// `?tenant=`: tenant ids are slugs (`format-spec/gateway.md` §1), so every tenant-scoped label
/// reads back whatever its home; only an all-tenants label whose home path itself holds
/// `?tenant=` would be misread. Before it, `?categories=` followed by a sorted list of distinct
/// category ids (lower-case letters, digits, `-`, `_`) is the categories; anything else there is
/// part of the home, so a label without categories reads as it always did.
impl FromStr for SnapshotScope {
    type Err = std::convert::Infallible;

    fn from_str(label: &str) -> Result<SnapshotScope, Self::Err> {
        let Some(rest) = label.strip_prefix(GATEWAY_PREFIX) else {
            return Ok(SnapshotScope::Paths(vec![label.to_string()]));
        };
        let (rest, tenant) = match rest.rsplit_once(TENANT_MARK) {
            Some((rest, tenant)) => (rest, Some(tenant.to_string())),
            None => (rest, None),
        };
        let (home, categories) = match rest.rsplit_once(CATEGORIES_MARK) {
            Some((home, list)) if is_category_list(list) => (home, list.split(',').map(str::to_string).collect()),
            _ => (rest, Vec::new()),
        };
        Ok(SnapshotScope::Gateway { home: home.into(), tenant, categories })
    }
}

/// Whether `list` is what [`SnapshotScope`] writes after `?categories=`.
fn is_category_list(list: &str) -> bool {
    let ids: Vec<&str> = list.split(',').collect();
    let well_formed = |id: &&str| {
        !id.is_empty() && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    ids.iter().all(well_formed) && ids.windows(2).all(|w| w[0] < w[1])
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
        assert_eq!(all, SnapshotScope::Gateway { home: "/srv/sophon".into(), tenant: None, categories: vec![] });
        assert_eq!(all.categories(), None);
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
        assert_eq!(
            odd,
            SnapshotScope::Gateway {
                home: "/srv/odd?tenant=home".into(),
                tenant: Some("acme".into()),
                categories: vec![]
            }
        );
    }

    #[test]
    fn categories_are_part_of_the_label_and_read_back() {
        let scope =
            SnapshotScope::gateway(Path::new("/srv/sophon"), Some("acme")).with_categories(&["workflows", "memory"]);
        assert_eq!(scope.to_string(), "gateway:/srv/sophon?categories=memory,workflows?tenant=acme");
        let back = round_trip("gateway:/srv/sophon?categories=memory,workflows?tenant=acme");
        assert_eq!(back, scope);
        assert_eq!(back.categories(), Some(&["memory".to_string(), "workflows".to_string()][..]));
        assert_eq!(back.tenant(), Some("acme"));
        assert_eq!(back.home(), Some(Path::new("/srv/sophon")));
        let all_tenants = round_trip("gateway:/srv/sophon?categories=memory");
        assert_eq!(all_tenants.tenant(), None);
        assert_eq!(all_tenants.categories().map(<[String]>::len), Some(1));
        // A different set is a different scope; the same set in another order is the same one.
        assert_ne!(all_tenants, round_trip("gateway:/srv/sophon"));
        let again = SnapshotScope::gateway(Path::new("/srv/sophon"), Some("acme")).with_categories(&[
            "memory",
            "workflows",
            "memory",
        ]);
        assert_eq!(again, scope);
        // What is not a sorted list of ids stays part of the home.
        for label in ["gateway:/srv/x?categories=", "gateway:/srv/x?categories=b,a", "gateway:/srv/x?categories=A b"] {
            let s = round_trip(label);
            assert_eq!(s.categories(), None, "{label}");
        }
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

//! Property tests for what sources and exports write into files other builds read back: the
//! snapshot scope label and an export's `metadata.json` round-trip through their one writer and
//! one reader, and the reader never panics on hostile JSON.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sophon::format::export_meta::{ExportInfo, ExportMetadata, Incremental, EXPORT_FORMAT_VERSION};
use sophon::format::layout::Layout;
use sophon::source::SnapshotScope;

/// Homes as absolute paths of any printable text, but never holding the tenant mark itself.
fn home() -> impl Strategy<Value = String> {
    "/[^\u{0}]{0,40}".prop_filter("no tenant mark in the home", |h| !h.contains("?tenant="))
}

/// Tenant ids are slugs; any text without `?` stands for them, and for more.
fn tenant() -> impl Strategy<Value = String> {
    "[^\u{0}?]{0,24}"
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,24}"
}

fn incremental() -> impl Strategy<Value = Option<Incremental>> {
    prop::option::of((text(), text(), 1u64..1_000_000, "[0-9a-f]{64}", prop::collection::vec(text(), 0..4)).prop_map(
        |(follows, base, sequence, previous_snapshot, deleted)| Incremental {
            follows,
            base,
            sequence,
            previous_snapshot,
            deleted,
            other: Map::new(),
        },
    ))
}

fn export_info() -> impl Strategy<Value = ExportInfo> {
    (
        0..=EXPORT_FORMAT_VERSION,
        prop::option::of("exp_[0-9a-f]{16}"),
        prop::option::of(prop_oneof![Just("zip".to_string()), Just("tar.gz".to_string())]),
        prop::option::of(text()),
        prop::option::of("[0-9a-f]{64}"),
        prop::option::of(text()),
        prop::option::of(text()),
        any::<bool>(),
        incremental(),
    )
        .prop_map(|(format_version, id, format, created, snapshot, snapshot_time, scope, sealed, incremental)| {
            ExportInfo {
                format_version,
                id,
                format,
                created,
                snapshot,
                snapshot_time,
                scope,
                sealed,
                incremental,
                other: Map::new(),
            }
        })
}

fn metadata() -> impl Strategy<Value = ExportMetadata> {
    let other = prop::collection::btree_map(
        "x_[a-z]{1,8}",
        prop_oneof![text().prop_map(Value::from), any::<u32>().prop_map(Value::from)],
        0..4,
    );
    (
        prop::option::of(prop_oneof![Just(Layout::Gateway), Just(Layout::Files)]),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(prop::collection::vec(text(), 0..4)),
        prop::option::of(text()),
        prop::option::of(prop::collection::vec(text(), 0..4)),
        export_info(),
        other,
    )
        .prop_map(|(layout, sophon_version, timestamp, paths, hostname, tags, export, other)| ExportMetadata {
            layout,
            layout_version: layout.unwrap_or(Layout::Gateway).version(),
            sophon_version,
            timestamp,
            paths,
            hostname,
            tags,
            export,
            other: other.into_iter().collect(),
        })
}

proptest! {
    #[test]
    fn gateway_scope_labels_round_trip(home in home(), tenant in prop::option::of(tenant())) {
        let scope = SnapshotScope::Gateway { home: home.clone().into(), tenant: tenant.clone(), categories: vec![] };
        let label = scope.to_string();
        let expected = match &tenant {
            Some(t) => format!("gateway:{home}?tenant={t}"),
            None => format!("gateway:{home}"),
        };
        prop_assert_eq!(&label, &expected);
        let back: SnapshotScope = label.parse().unwrap_or_else(|e| match e {});
        prop_assert_eq!(back.tenant(), tenant.as_deref());
        prop_assert_eq!(&back, &scope);
        prop_assert_eq!(SnapshotScope::from_paths(&scope.paths()), scope);
    }

    #[test]
    fn folder_scopes_round_trip(paths in prop::collection::vec("/[^\u{0}]{0,30}", 0..5)) {
        let scope = SnapshotScope::from_paths(&paths);
        prop_assert!(!scope.is_gateway());
        prop_assert_eq!(scope.paths(), paths.clone());
        prop_assert_eq!(scope.to_string(), paths.join(" "));
    }

    #[test]
    fn export_metadata_round_trips_through_its_bytes(m in metadata()) {
        let bytes = m.to_bytes().unwrap();
        let back = ExportMetadata::parse(&bytes, "prop: metadata.json").unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn the_metadata_reader_never_panics_on_hostile_json(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        version in any::<i64>(),
        layout in prop_oneof![Just(json!(null)), Just(json!("files")), Just(json!("gateway")), Just(json!(7)), text().prop_map(Value::from)],
        layout_version in any::<i64>(),
    ) {
        let _ = ExportMetadata::parse(&bytes, "prop");
        let v = json!({ "layout": layout, "layout_version": layout_version, "export": { "format_version": version } });
        if let Ok(m) = ExportMetadata::from_value(v, "prop") {
            // Accepted only within the versions this build reads.
            prop_assert!(m.export.format_version <= EXPORT_FORMAT_VERSION);
            prop_assert!(m.layout_version >= 1 && m.layout_version <= m.layout().version());
        }
    }
}

#[test]
fn the_gateway_writes_the_layout_version_exports_check() {
    // The dump still has its own copy of the constant; the two must not drift apart.
    assert_eq!(sophon::gateway::dump::LAYOUT_VERSION, sophon::source::GATEWAY_LAYOUT_VERSION);
}

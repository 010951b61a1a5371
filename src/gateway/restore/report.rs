//! A restore's report as people read it (the "Would restore:" block the CLI prints and the
//! dashboard shows, and the "needs action" list), and how two reports of the same restore are
//! compared: the one a dry run showed and the one the real run is about to commit.

use std::path::Path;

use super::{CategoryPlan, RestoreReport, TableCounts};
use crate::units::{human_bytes, thousands};

/// The text a `--mode replace` restore must be confirmed with: the tenant it goes into, else
/// `replace`. The CLI asks for it at the terminal, the dashboard in a text field.
pub fn replace_confirmation(into_tenant: Option<&str>) -> &str {
    into_tenant.unwrap_or("replace")
}

impl RestoreReport {
    /// What must be done by hand after the restore, by kind, with the ids of the records; kinds
    /// with nothing are left out.
    pub fn needs_action(&self) -> Vec<(&'static str, &[String])> {
        let all: [(&'static str, &[String]); 6] = [
            ("connections to re-authenticate", &self.connections_to_reauthenticate),
            ("Sophon Nodes to re-pair", &self.nodes_to_repair),
            ("webhooks whose signing secrets were redacted", &self.webhooks_with_redacted_secrets),
            ("channels whose tokens were redacted", &self.channels_with_redacted_secrets),
            ("users to re-enrol in 2FA", &self.users_to_reenrol),
            ("redacted settings to check or enter again", &self.settings_to_enter),
        ];
        all.into_iter().filter(|(_, ids)| !ids.is_empty()).collect()
    }

    /// The report as lines of text: what needs the passphrase first (`passphrase_hint` says how to
    /// give it, in the words of the front end), then per category and per table what was (a dry
    /// run: would be) added, left unchanged (a redacted value counts as equal) and quarantined,
    /// the total size, the quarantine folder, and what needs action.
    pub fn lines(&self, home: &Path, passphrase_hint: &str) -> Vec<String> {
        let dry = self.dry_run;
        let mut out = Vec::new();
        if self.two_factor_sealed {
            let users = self.users_to_reenrol.len();
            out.push(format!(
                "2FA: the backup's 2FA secrets are sealed with its passphrase, which was not given: {users} user(s) {} \
                 without 2FA and must re-enrol. {passphrase_hint}",
                if dry { "would be restored" } else { "were restored" }
            ));
        }
        let sum = |f: fn(&CategoryPlan) -> u64| self.categories.iter().map(f).sum::<u64>();
        out.push(format!(
            "{}: {} added, {} unchanged, {} quarantined ({}, into {})",
            if dry { "Would restore" } else { "Restored" },
            thousands(sum(|c| c.added)),
            thousands(sum(|c| c.unchanged)),
            thousands(sum(|c| c.quarantined)),
            self.mode,
            home.display(),
        ));
        let counts = |added: u64, unchanged: u64, quarantined: u64, wiped: u64| {
            let deleted =
                if wiped > 0 { format!(" ({} present deleted first)", thousands(wiped)) } else { String::new() };
            format!(
                "{} added, {} unchanged, {} quarantined{deleted}",
                thousands(added),
                thousands(unchanged),
                thousands(quarantined)
            )
        };
        for c in &self.categories {
            let tables: Vec<&TableCounts> = self.tables.iter().filter(|t| t.category == c.category).collect();
            let wiped = tables.iter().map(|t| t.wiped).sum();
            let what = match c.category.as_str() {
                "documents" => {
                    format!("{} records, {} files, {}", thousands(c.records), thousands(c.files), human_bytes(c.bytes))
                }
                "mcp" | "config" | "license" => format!("{} file(s)", c.files),
                _ if c.files > 0 => format!("{} records, {} file(s)", thousands(c.records), thousands(c.files)),
                _ => format!("{} records", thousands(c.records)),
            };
            out.push(format!("  {}: {what}: {}", c.category, counts(c.added, c.unchanged, c.quarantined, wiped)));
            if tables.len() > 1 || (c.files > 0 && !tables.is_empty()) {
                for t in tables {
                    out.push(format!("    {}: {}", t.table, counts(t.added, t.unchanged, t.quarantined, t.wiped)));
                }
            }
        }
        out.push(format!("Total size: {}", human_bytes(self.total_bytes)));
        if let Some(q) = &self.quarantine {
            out.push(format!("Quarantine{}: {q}", if dry { " (would be)" } else { "" }));
        }
        let todo = self.needs_action();
        if !todo.is_empty() {
            out.push(if dry { "Would need action:" } else { "Needs action:" }.to_string());
            for (what, ids) in todo {
                out.push(format!("  {what}: {}", ids.join(", ")));
            }
        }
        out
    }
}

/// How the restore about to be committed differs from the one a dry run showed, one line per
/// difference (empty: the same). The restore id, the quarantine folder named after it and the
/// dry-run flag always differ and are not compared; nor is how many present records a replace
/// deletes first (`wiped`): a replace clears the categories in scope whatever they hold by then,
/// and a live gateway keeps writing some of them (its audit log, to begin with). Everything the
/// restore does with the backup's records and files is compared: what is added, left unchanged or
/// quarantined, per category and table, the tenants created and cleared, the conflicts, and what
/// needs action.
pub(super) fn differences(shown: &RestoreReport, now: &RestoreReport) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: the preview showed {a}, now {b}"));
        }
    };
    diff("mode", shown.mode.clone(), now.mode.clone());
    let cat = |c: Option<&CategoryPlan>| match c {
        Some(c) => format!(
            "{} records, {} added, {} unchanged, {} quarantined, {} file(s), {}",
            c.records, c.added, c.unchanged, c.quarantined, c.files, c.bytes
        ),
        None => "nothing".into(),
    };
    let mut names: Vec<&str> = shown.categories.iter().chain(&now.categories).map(|c| c.category.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let find = |r: &RestoreReport| r.categories.iter().find(|c| c.category == name).cloned();
        diff(name, cat(find(shown).as_ref()), cat(find(now).as_ref()));
    }
    let table = |t: Option<&TableCounts>| match t {
        Some(t) => format!("{} added, {} unchanged, {} quarantined", t.added, t.unchanged, t.quarantined),
        None => "nothing".into(),
    };
    let mut tables: Vec<&str> = shown.tables.iter().chain(&now.tables).map(|t| t.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    for name in tables {
        let find = |r: &RestoreReport| r.tables.iter().find(|t| t.table == name).cloned();
        diff(&format!("table {name}"), table(find(shown).as_ref()), table(find(now).as_ref()));
    }
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    type List = fn(&RestoreReport) -> &[String];
    let lists: [(&str, List); 10] = [
        ("tenants to create", |r| &r.tenants_to_create),
        ("tenants to wipe", |r| &r.tenants_to_wipe),
        ("tenants removed", |r| &r.tenants_removed),
        ("connections to re-authenticate", |r| &r.connections_to_reauthenticate),
        ("Sophon Nodes to re-pair", |r| &r.nodes_to_repair),
        ("webhooks with redacted secrets", |r| &r.webhooks_with_redacted_secrets),
        ("channels with redacted secrets", |r| &r.channels_with_redacted_secrets),
        ("users to re-enrol in 2FA", |r| &r.users_to_reenrol),
        ("settings to enter", |r| &r.settings_to_enter),
        ("conflicts", |r| &r.conflicts),
    ];
    for (what, get) in lists {
        diff(what, list(get(shown)), list(get(now)));
    }
    diff("2FA sealed", shown.two_factor_sealed.to_string(), now.two_factor_sealed.to_string());
    diff("total size", shown.total_bytes.to_string(), now.total_bytes.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RestoreReport {
        RestoreReport {
            restore_id: "a".into(),
            dry_run: true,
            mode: "additive".into(),
            categories: vec![CategoryPlan {
                category: "agents".into(),
                records: 1234,
                added: 1000,
                unchanged: 230,
                quarantined: 4,
                ..Default::default()
            }],
            tables: vec![TableCounts {
                table: "agents".into(),
                category: "agents".into(),
                added: 1000,
                unchanged: 230,
                quarantined: 4,
                ..Default::default()
            }],
            quarantine: Some("/h/quarantine/a".into()),
            nodes_to_repair: vec!["nod_1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_would_restore_block_and_its_needs_action() {
        let r = report();
        let lines = r.lines(Path::new("/h"), "hint");
        assert_eq!(lines[0], "Would restore: 1,000 added, 230 unchanged, 4 quarantined (additive, into /h)");
        assert_eq!(lines[1], "  agents: 1,234 records: 1,000 added, 230 unchanged, 4 quarantined");
        assert_eq!(lines[2], "Total size: 0 B");
        assert_eq!(lines[3], "Quarantine (would be): /h/quarantine/a");
        assert_eq!(lines[4], "Would need action:");
        assert_eq!(lines[5], "  Sophon Nodes to re-pair: nod_1");
        assert_eq!(r.needs_action().len(), 1);
    }

    #[test]
    fn a_restore_differs_from_its_preview_only_in_what_it_does() {
        let shown = report();
        let mut now = report();
        now.restore_id = "b".into();
        now.dry_run = false;
        now.quarantine = Some("/h/quarantine/b".into());
        now.tables[0].wiped = 12;
        assert!(differences(&shown, &now).is_empty(), "what a replace deletes first is not compared");
        now.categories[0].added = 999;
        now.conflicts.push("agents/agt_1".into());
        let d = differences(&shown, &now);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("agents: the preview showed 1234 records, 1000 added"), "{d:?}");
        assert_eq!(d[1], "conflicts: the preview showed none, now agents/agt_1");
    }

    #[test]
    fn replace_is_confirmed_with_the_tenant_or_the_word() {
        assert_eq!(replace_confirmation(Some("acme")), "acme");
        assert_eq!(replace_confirmation(None), "replace");
    }
}

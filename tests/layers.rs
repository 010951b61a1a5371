//! The layers of `src/` (ARCHITECTURE.md, DESIGN.md "Layers"): a module may use its own layer and
//! the layers below it, never one above. Read from the source text with plain std: every
//! `crate::X` and `super::…` path in the library, and every `sophon::X` and `crate::X` path in the
//! binary, outside comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The single table of layers, bottom up. Why each module sits where it does:
/// 0 vocabulary: names and encodings every layer shares, no I/O (`units`: option values such as
///   sizes and percentages, parsed once for the CLI, cron and the dashboard).
/// 1 primitives: pure transformations of bytes (`liveness`: is a process still running, for locks
///   and cron runs alike).
/// 2 storage: where bytes live.
/// 3 repository: an open repository, its index, its locks (`session`: repository + lock + synced
///   index, which every operation takes).
/// 4 operations: what is done to a repository, and the sources it is done from; they serve every
///   caller, so they know nothing of the gateway or of any front end.
/// 5 gateway: the data home that is one source among others, and the scheduler that runs its jobs.
/// 6 edge: the binary (`cli`, `main`, `web`: the dashboard server, a front end beside the CLI that
///   calls the same library); nothing in the library may depend on how it is called.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("id", 0),
    ("format", 0),
    ("units", 0),
    ("chunk", 1),
    ("crypto", 1),
    ("compress", 1),
    ("liveness", 1),
    ("backend", 2),
    ("pack", 2),
    ("index", 3),
    ("repo", 3),
    ("session", 3),
    ("archive", 4),
    ("restore", 4),
    ("export", 4),
    ("check", 4),
    ("retention", 4),
    ("forget", 4),
    ("prune", 4),
    ("source", 4),
    ("gateway", 5),
    ("cron", 5),
    ("cli", 6),
    ("main", 6),
    ("web", 6),
];

/// Module pairs allowed across layers by design, each with its reason: the encodings of `format`
/// name the parameter types that primitives define, and `Error` wraps a storage error. Checked
/// like [`KNOWN`]: an entry that no longer occurs fails the test.
const ALLOWED: &[(&str, &str, &str)] = &[
    ("error", "backend", "Error::Backend wraps BackendError, which names the object that failed"),
    ("format", "chunk", "the repository config records the chunker's parameters"),
    ("format", "crypto", "key files and sealed archives record the KDF parameters; seals have a fixed overhead"),
    ("format", "compress", "the pack header records each blob's compression; blob sizes have a limit"),
];

/// Violations the tree has today, as (file, module it imports): none. An entry added here while a
/// violation is being removed fails the test once the violation is gone, so it cannot outlive it.
const KNOWN: &[(&str, &str)] = &[];

/// One reference from a file to a module of a higher layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    from_layer: u8,
    to: String,
    to_layer: u8,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: module {} (layer {}) imports {} (layer {})",
            self.file, self.line, self.from, self.from_layer, self.to, self.to_layer
        )
    }
}

/// What the check found: references upward, and files or paths it cannot place (a new module
/// missing from [`LAYERS`] must be placed there, not skipped).
#[derive(Debug, Default)]
struct Report {
    violations: Vec<Violation>,
    unplaced: Vec<String>,
}

fn layer_of(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The code of a line: comments (whole-line `//`, `///`, `//!`) contribute nothing.
fn code(line: &str) -> Option<&str> {
    let t = line.trim_start();
    (!t.starts_with("//")).then_some(line)
}

/// Every path in `line` that starts with the keyword `root` (`crate`, `super`, `sophon`): the
/// segments after it, `super` included, e.g. `super::super::gateway::x` → [super, gateway, x].
fn paths_after<'a>(line: &'a str, root: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let needle = format!("{root}::");
    let mut from = 0;
    while let Some(i) = line[from..].find(&needle) {
        let at = from + i;
        from = at + needle.len();
        // `$crate::` is `crate::`; `mycrate::` is another name; the second `super` of
        // `super::super::` is part of the first path.
        if line[..at].chars().next_back().is_some_and(is_ident) || line[..at].ends_with("::") {
            continue;
        }
        let rest = &line[from..];
        let mut segs = Vec::new();
        for seg in rest.split("::") {
            let name: &str = &seg[..seg.find(|c: char| !is_ident(c)).unwrap_or(seg.len())];
            if name.is_empty() {
                break;
            }
            segs.push(name);
            if name.len() != seg.len() {
                break;
            }
        }
        if !segs.is_empty() {
            out.push(segs);
        }
    }
    out
}

/// A `use` statement's tree, `a::{b::c, d as e, f::*}`, as full paths: [a, b, c], [a, d], [a, f, *].
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = tree.chars().peekable();
    while let Some(c) = chars.next() {
        if is_ident(c) || c == '*' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        match c {
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                tokens.push("::".into());
            }
            '{' | '}' | ',' => tokens.push(c.to_string()),
            _ => {}
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    // `x as y` names the same item: drop the alias.
    let mut plain: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "as" {
            i += 2;
            continue;
        }
        plain.push(tokens[i].clone());
        i += 1;
    }
    let mut out = Vec::new();
    let mut at = usize::from(plain.first().is_some_and(|t| t == "::"));
    use_tree(&plain, &mut at, Vec::new(), &mut out);
    out
}

fn use_tree(tokens: &[String], at: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    while let Some(t) = tokens.get(*at) {
        *at += 1;
        match t.as_str() {
            "{" => {
                while tokens.get(*at).is_some_and(|t| t != "}") {
                    use_tree(tokens, at, prefix.clone(), out);
                    if tokens.get(*at).is_some_and(|t| t == ",") {
                        *at += 1;
                    }
                }
                *at += 1;
                return;
            }
            "::" => {}
            "," | "}" => {
                *at -= 1;
                break;
            }
            name => prefix.push(name.to_string()),
        }
    }
    if !prefix.is_empty() {
        out.push(prefix);
    }
}

/// The tree of a `use` statement that starts on this line (`use`, `pub use`, `pub(crate) use`).
fn use_start(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = match t.strip_prefix("pub") {
        Some(rest) if rest.starts_with('(') => rest.split_once(')')?.1.trim_start(),
        Some(rest) => rest.trim_start(),
        None => t,
    };
    t.strip_prefix("use ")
}

/// `pub use module::{A, B};` lines of a crate root: which module each re-exported name comes from.
fn reexports(root: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in root.lines().filter_map(code) {
        let Some(rest) = line.trim().strip_prefix("pub use ") else { continue };
        let rest = rest.trim_end_matches(';');
        let Some((module, names)) = rest.split_once("::") else { continue };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.split(" as ").last().unwrap_or(name).trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.to_string());
            }
        }
    }
    out
}

/// The module path of a file under `src/`: `src/export/chain.rs` → [export, chain],
/// `src/export/mod.rs` → [export], `src/lib.rs` → [] (the library's root), `src/main.rs` → [main].
fn module_path(file: &str) -> Vec<String> {
    let rel = file.strip_prefix("src/").unwrap_or(file).trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// An inline `mod name {` opening on this line (rustfmt closes it with `}` at the same indent).
fn inline_mod(line: &str) -> Option<(usize, String)> {
    let t = line.trim_end();
    let indent = t.len() - t.trim_start().len();
    let body = t.strip_suffix('{')?.trim_end();
    let words: Vec<&str> = body.split_whitespace().collect();
    let at = words.iter().rposition(|w| *w == "mod")?;
    (at + 2 == words.len()).then(|| (indent, words[at + 1].to_string()))
}

/// Where a file sits: its module path, whether it belongs to the binary, its top module.
struct Place<'a> {
    here: Vec<String>,
    binary: bool,
    names: &'a BTreeMap<String, String>,
}

impl Place<'_> {
    /// The top-level module a path (`crate`/`super`/`sophon`/`self` first) names; `None` for
    /// paths into other crates, and `Err` for a `super` above the crate root.
    fn target(&self, segs: &[&str]) -> Option<Result<String, String>> {
        let (first, rest) = segs.split_first()?;
        match *first {
            // In the binary, `crate::` is the binary's own root; the library is `sophon::`.
            "crate" if self.binary => Some(Ok("cli".into())),
            "crate" => Some(Ok(resolve(&[], rest, self.names))),
            "sophon" if self.binary => Some(Ok(resolve(&[], rest, self.names))),
            "self" => self.here.first().cloned().map(Ok),
            "super" => {
                let ups = 1 + rest.iter().take_while(|s| **s == "super").count();
                if ups > self.here.len() {
                    return Some(Err("super:: above the crate root".into()));
                }
                let base = &self.here[..self.here.len() - ups];
                if self.binary && base.is_empty() {
                    return Some(Ok("cli".into()));
                }
                Some(Ok(resolve(base, &rest[ups - 1..], self.names)))
            }
            _ => None,
        }
    }
}

/// The check itself, over `(path under the repository, text)` pairs of every `.rs` file under `src/`.
fn check(files: &[(String, String)]) -> Report {
    let mut report = Report::default();
    let lib = files.iter().find(|(f, _)| f == "src/lib.rs").map(|(_, t)| t.as_str()).unwrap_or("");
    let names = reexports(lib);
    let lib_modules: BTreeSet<String> = lib
        .lines()
        .filter_map(code)
        .filter_map(|l| l.trim().trim_start_matches("pub ").strip_prefix("mod ")?.strip_suffix(';').map(str::to_string))
        .collect();
    for (file, text) in files {
        let path = module_path(file);
        // lib.rs is the facade that names every module; it belongs to no layer.
        let Some(from) = path.first().cloned() else { continue };
        let Some(from_layer) = layer_of(&from) else {
            report.unplaced.push(format!("{file}: module {from} has no layer in LAYERS"));
            continue;
        };
        // The binary (`main.rs` and the modules it declares) is a crate of its own over the library.
        let binary = from == "main" || !lib_modules.contains(&from);
        let root: Vec<String> = if from == "main" { Vec::new() } else { path.clone() };
        let mut inline: Vec<(usize, String)> = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        let mut n = 0;
        while n < lines.len() {
            let raw = lines[n];
            let at = n + 1;
            n += 1;
            if let Some(&(indent, _)) = inline.last() {
                if raw.trim_end() == format!("{}}}", " ".repeat(indent)) {
                    inline.pop();
                    continue;
                }
            }
            let Some(line) = code(raw) else { continue };
            if let Some(m) = inline_mod(line) {
                inline.push(m);
                continue;
            }
            let place = Place {
                here: root.iter().cloned().chain(inline.iter().map(|(_, m)| m.clone())).collect(),
                binary,
                names: &names,
            };
            let paths: Vec<Vec<String>> = match use_start(line) {
                Some(tree) => {
                    // A grouped `use` may span lines: read to its `;`.
                    let mut stmt = tree.to_string();
                    while !stmt.contains(';') && n < lines.len() {
                        stmt.push_str(code(lines[n]).unwrap_or(""));
                        n += 1;
                    }
                    expand_use(stmt.split(';').next().unwrap_or_default())
                }
                None => ["crate", "super", "sophon"]
                    .iter()
                    .flat_map(|root| {
                        paths_after(line, root).into_iter().map(move |segs| {
                            std::iter::once(root.to_string()).chain(segs.into_iter().map(str::to_string)).collect()
                        })
                    })
                    .collect(),
            };
            for segs in paths {
                let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
                let to = match place.target(&segs) {
                    None => continue,
                    Some(Err(e)) => {
                        report.unplaced.push(format!("{file}:{at}: {e}"));
                        continue;
                    }
                    Some(Ok(to)) => to,
                };
                // Items defined in lib.rs itself, and globs of it, belong to no layer.
                if to.is_empty() || to == "*" {
                    continue;
                }
                match layer_of(&to) {
                    Some(to_layer) if to_layer > from_layer => report.violations.push(Violation {
                        file: file.clone(),
                        line: at,
                        from: from.clone(),
                        from_layer,
                        to,
                        to_layer,
                    }),
                    Some(_) => {}
                    None => report.unplaced.push(format!("{file}:{at}: {to} has no layer in LAYERS")),
                }
            }
        }
    }
    report.violations.sort();
    report.violations.dedup();
    report
}

/// The top-level module a path names: the first segment under `base`, through lib.rs's re-exports.
fn resolve(base: &[String], segs: &[&str], names: &BTreeMap<String, String>) -> String {
    match base.first() {
        Some(top) => top.clone(),
        None => {
            let first = segs.first().copied().unwrap_or_default();
            names.get(first).cloned().unwrap_or_else(|| first.to_string())
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn source_tree() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap();
            (rel, text)
        })
        .collect()
}

/// The violations neither allowed nor known, and the entries of either list that no longer occur.
fn against_known(
    report: &Report,
    allowed: &[(&str, &str, &str)],
    known: &[(&str, &str)],
) -> (Vec<String>, Vec<String>) {
    let is_allowed = |v: &Violation| allowed.iter().any(|(from, to, _)| v.from == *from && v.to == *to);
    let is_known = |v: &Violation| known.contains(&(v.file.as_str(), v.to.as_str()));
    let new: Vec<String> =
        report.violations.iter().filter(|v| !is_allowed(v) && !is_known(v)).map(|v| v.to_string()).collect();
    let stale_allowed = allowed
        .iter()
        .filter(|(from, to, _)| !report.violations.iter().any(|v| v.from == *from && v.to == *to))
        .map(|(from, to, _)| format!("ALLOWED entry ({from}, {to}) no longer occurs: remove it"));
    let stale_known = known
        .iter()
        .filter(|(f, m)| !report.violations.iter().any(|v| v.file == *f && v.to == *m))
        .map(|(f, m)| format!("KNOWN entry ({f}, {m}) no longer occurs: remove it"));
    (new, stale_allowed.chain(stale_known).collect())
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let tree = source_tree();
    assert!(tree.iter().any(|(f, _)| f == "src/lib.rs"), "src/lib.rs not found");
    let report = check(&tree);
    let (new, stale) = against_known(&report, ALLOWED, KNOWN);
    let problems: Vec<&String> = report.unplaced.iter().chain(&new).chain(&stale).collect();
    assert!(
        problems.is_empty(),
        "layer check:\n{}",
        problems.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_module_of_the_library_has_a_layer() {
    let tree = source_tree();
    let lib = &tree.iter().find(|(f, _)| f == "src/lib.rs").unwrap().1;
    let declared: Vec<&str> =
        lib.lines().filter_map(|l| l.trim().strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    assert!(declared.len() >= 10, "{declared:?}");
    let missing: Vec<&&str> = declared.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(missing.is_empty(), "modules with no layer in LAYERS: {missing:?}");
}

fn fake(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect()
}

const FAKE_LIB: &str = "pub mod error;\npub mod repo;\npub mod export;\npub mod gateway;\n\
                        pub use error::{Error, Result};\npub use repo::{InitOptions, Repository};\n";

#[test]
fn the_check_catches_each_kind_of_upward_path() {
    let tree = fake(&[
        ("src/lib.rs", FAKE_LIB),
        ("src/error.rs", "use crate::repo::Repository;\n"),
        (
            "src/repo.rs",
            "use crate::{Error, Result};\n// crate::gateway in a comment is not a use\n\
             use crate::{\n    error::Error,\n    gateway::{a, b as c},\n};\nuse super::gateway;\n",
        ),
        (
            "src/export/mod.rs",
            "pub mod chain;\nuse crate::Repository;\nfn f() { let v = crate::gateway::dump::LAYOUT_VERSION; }\n\
             use super::super::nothing;\n",
        ),
        (
            "src/export/chain.rs",
            "use super::Format;\nimpl super::super::gateway::Source for X {}\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::super::gateway::x;\n}\n\
             use super::super::gateway::y;\n",
        ),
        ("src/gateway/mod.rs", "use crate::export::Format;\nuse crate::Error;\n"),
        ("src/main.rs", "mod cli;\nuse sophon::Repository;\n"),
        ("src/cli/mod.rs", "use sophon::gateway::open;\nuse super::cli_thing;\nuse crate::cli::x;\n"),
    ]);
    let report = check(&tree);
    let got: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    assert_eq!(
        got,
        [
            "src/error.rs:1: module error (layer 0) imports repo (layer 3)",
            "src/export/chain.rs:2: module export (layer 4) imports gateway (layer 5)",
            // Inside the inline test module one more `super` reaches as far.
            "src/export/chain.rs:6: module export (layer 4) imports gateway (layer 5)",
            "src/export/chain.rs:8: module export (layer 4) imports gateway (layer 5)",
            "src/export/mod.rs:3: module export (layer 4) imports gateway (layer 5)",
            // A grouped `use` over several lines counts once, at its first line.
            "src/repo.rs:3: module repo (layer 3) imports gateway (layer 5)",
            // `super` of a top-level module is the crate root.
            "src/repo.rs:7: module repo (layer 3) imports gateway (layer 5)",
        ]
    );
    assert_eq!(report.unplaced, ["src/export/mod.rs:4: super:: above the crate root"]);
}

#[test]
fn the_library_may_not_reach_the_binary_and_new_modules_need_a_layer() {
    let tree = fake(&[
        ("src/lib.rs", "pub mod gateway;\npub mod dashboard;\n"),
        ("src/gateway/mod.rs", "use crate::cli::UsageError;\n"),
        ("src/dashboard.rs", "use crate::gateway::x;\n"),
    ]);
    let report = check(&tree);
    let got: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    assert_eq!(got, ["src/gateway/mod.rs:1: module gateway (layer 5) imports cli (layer 6)"]);
    assert_eq!(report.unplaced, ["src/dashboard.rs: module dashboard has no layer in LAYERS"]);
}

#[test]
fn the_known_list_lets_through_only_what_it_names_and_goes_stale() {
    let tree = fake(&[
        ("src/lib.rs", "pub mod restore;\npub mod export;\npub mod gateway;\n"),
        ("src/restore.rs", "impl crate::gateway::restore::BackupSource for X {}\n"),
        ("src/export/mod.rs", "use crate::gateway::dump::LAYOUT_VERSION;\n"),
    ]);
    let report = check(&tree);
    let known = [("src/restore.rs", "gateway"), ("src/export/reader.rs", "gateway")];
    let (new, stale) = against_known(&report, &[], &known);
    assert_eq!(new, ["src/export/mod.rs:1: module export (layer 4) imports gateway (layer 5)"]);
    assert_eq!(stale, ["KNOWN entry (src/export/reader.rs, gateway) no longer occurs: remove it"]);
    // An allowed pair covers every file of the module, and goes stale the same way.
    let allowed =
        [("export", "gateway", "a reason"), ("restore", "gateway", "a reason"), ("format", "crypto", "a reason")];
    let (new, stale) = against_known(&report, &allowed, &[]);
    assert!(new.is_empty(), "{new:?}");
    assert_eq!(stale, ["ALLOWED entry (format, crypto) no longer occurs: remove it"]);
}

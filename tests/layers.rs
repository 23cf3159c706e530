//! Keeps the layer rule of ARCHITECTURE.md true: a module of `src/` may use only modules of its
//! own layer or below, the pure modules use nothing that does IO, and no two top-level modules
//! import each other, however indirectly. The test reads every `crate::…` path in the sources
//! (in `use` lines and inline), so a back-up import fails here naming its file, line and path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may use its own layer and the ones before it.
const LAYERS: &[(&str, &[&str])] = &[
    ("pure rules", &["calendar", "ledger"]),
    (
        "pure domain values and process services",
        &["model", "error", "clock", "keys"],
    ),
    ("persistence", &["store"]),
    ("group commit and identity", &["writer", "auth"]),
    (
        "domain services",
        &["journal", "earning", "redeem", "audit", "session", "admin"],
    ),
    ("application core", &["app"]),
    ("edges", &["http", "web", "cli", "seed"]),
];

/// Files that must stay pure (no IO of their own) although their module sits higher: they may
/// use only the two lowest layers.
const PURE_FILES: &[&str] = &[
    "src/audit/format.rs",
    "src/audit/reports.rs",
    "src/audit/tar.rs",
    "src/redeem/receipt.rs",
];
/// Modules whose every file must stay pure.
const PURE_MODULES: &[&str] = &["calendar", "ledger", "model"];
/// Tokens that mean IO, a clock or randomness; none may appear in a pure file.
const IMPURE_TOKENS: &[&str] = &[
    "sqlx",
    "rusqlite",
    "tokio",
    "std::fs",
    "std::net",
    "SystemTime",
    "Instant::now",
    "rand::",
    "OsRng",
];

#[test]
fn modules_use_only_their_layer_and_below() {
    // Proves no file imports from a layer above its own (and names each one that does).
    let layer_of = layer_table();
    let mut problems = Vec::new();
    for file in source_files() {
        let Some(module) = top_module(&file) else {
            continue;
        };
        let Some(&own) = layer_of.get(module.as_str()) else {
            problems.push(format!(
                "{}: module `{module}` is in no layer",
                file.display()
            ));
            continue;
        };
        let pure = is_pure(&file, &module);
        for (line, target) in crate_references(&file) {
            if target == module {
                continue;
            }
            let Some(&theirs) = layer_of.get(target.as_str()) else {
                problems.push(format!(
                    "{}:{line}: `crate::{target}` is in no layer",
                    file.display()
                ));
                continue;
            };
            let allowed = if pure { theirs <= 1 } else { theirs <= own };
            if !allowed {
                problems.push(format!(
                    "{}:{line}: `{module}` ({}{}) uses `crate::{target}` ({})",
                    file.display(),
                    LAYERS[own].0,
                    if pure { ", pure file" } else { "" },
                    LAYERS[theirs].0
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports against the layer rule:\n{}",
        problems.join("\n")
    );
}

#[test]
fn pure_files_do_no_io() {
    // Proves the pure modules name no database, runtime, file, network, clock or random source.
    let mut problems = Vec::new();
    for file in source_files() {
        let Some(module) = top_module(&file) else {
            continue;
        };
        if !is_pure(&file, &module) {
            continue;
        }
        for (number, line) in code_lines(&file) {
            for token in IMPURE_TOKENS {
                if line.contains(token) {
                    problems.push(format!(
                        "{}:{number}: `{token}` in a pure file",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "IO in pure files:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_import_cycles_between_top_level_modules() {
    // Proves the graph of top-level modules (an edge for every `crate::` path) has no cycle.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in source_files() {
        let Some(module) = top_module(&file) else {
            continue;
        };
        let edges = graph.entry(module.clone()).or_default();
        for (_, target) in crate_references(&file) {
            if target != module {
                edges.insert(target);
            }
        }
    }
    let cycles = find_cycles(&graph);
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn the_checker_sees_a_back_up_import() {
    // Proves the reader finds both forms of a path (so the layer test cannot pass vacuously).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sample.rs");
    std::fs::write(
        &file,
        "use crate::store::{Store, Account};\n// use crate::http::x;\nfn f() { crate::http::format_time(0); }\nuse crate::{app::App,\n    web::Page};\n",
    )
    .unwrap();
    let found: Vec<(usize, String)> = crate_references(&file);
    assert_eq!(
        found,
        vec![
            (1, "store".to_string()),
            (3, "http".to_string()),
            (4, "app".to_string()),
            (5, "web".to_string())
        ]
    );
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycles(&graph).len(), 1);
}

fn layer_table() -> BTreeMap<&'static str, usize> {
    let mut table = BTreeMap::new();
    for (index, (_, modules)) in LAYERS.iter().enumerate() {
        for module in *modules {
            table.insert(*module, index);
        }
    }
    table
}

fn is_pure(file: &Path, module: &str) -> bool {
    let relative = relative(file);
    PURE_MODULES.contains(&module) || PURE_FILES.contains(&relative.as_str())
}

fn relative(file: &Path) -> String {
    file.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Every `.rs` file under `src/` except the binary's root and the library's.
fn source_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() > 20, "found only {} source files", out.len());
    out
}

/// `src/store/sqlite/batch.rs` → `store`; `src/lib.rs` and `src/main.rs` belong to no module.
fn top_module(file: &Path) -> Option<String> {
    let relative = relative(file);
    let rest = relative.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The file's lines with comments removed, numbered from 1.
fn code_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let code = match line.find("//") {
                Some(at) => &line[..at],
                None => line,
            };
            (i + 1, code.to_string())
        })
        .collect()
}

/// Every top-level module a file names through `crate::`, with the line it is named on:
/// `crate::store::X`, and the modules inside `use crate::{a::…, b}` (which may span lines).
fn crate_references(file: &Path) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_group = false;
    for (number, line) in code_lines(file) {
        let mut rest = line.as_str();
        if in_group {
            in_group = !group_members(rest, number, &mut out);
            continue;
        }
        while let Some(at) = rest.find("crate::") {
            let preceded = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let after = &rest[at + "crate::".len()..];
            rest = after;
            if preceded {
                continue;
            }
            if let Some(group) = after.strip_prefix('{') {
                in_group = !group_members(group, number, &mut out);
                break;
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((number, name));
            }
        }
    }
    out
}

/// Reads the members of a `crate::{…}` group on one line; true when the group closed.
fn group_members(text: &str, number: usize, out: &mut Vec<(usize, String)>) -> bool {
    let mut depth = 0usize;
    let mut at_start = true;
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                if at_start && !word.is_empty() {
                    out.push((number, std::mem::take(&mut word)));
                }
                return true;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if at_start && !word.is_empty() {
                    out.push((number, std::mem::take(&mut word)));
                }
                word.clear();
                at_start = true;
                continue;
            }
            _ => {}
        }
        if depth == 0 && at_start {
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
            } else if c == ':' && !word.is_empty() {
                out.push((number, std::mem::take(&mut word)));
                at_start = false;
            }
        }
    }
    if at_start && !word.is_empty() {
        out.push((number, word));
    }
    false
}

/// The cycles of a directed graph, each as the path that closes it.
fn find_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        marks.insert(node.to_string(), Mark::OnPath);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::Unseen) {
                Mark::OnPath => {
                    let from = path.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next.clone());
                    cycles.push(cycle);
                }
                Mark::Unseen => visit(next, graph, marks, path, cycles),
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in graph.keys() {
        if marks.get(node.as_str()).copied().unwrap_or(Mark::Unseen) == Mark::Unseen {
            visit(node, graph, &mut marks, &mut Vec::new(), &mut cycles);
        }
    }
    cycles
}

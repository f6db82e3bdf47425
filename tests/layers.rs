//! The library's shape, checked from its sources: the modules are layered as `src/lib.rs`
//! lists them (a module uses only modules of lower layers), the files inside a folder have no
//! import loops, clap and the other command-line crates appear only in the binary, and the
//! server and the distributed units reach the rest of the library through its public API only.
//! (docs/how-it-works.md draws the layers.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The module path of a file under `src/` (`zarr/units.rs` -> ["zarr", "units"]).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The code of a file without comments, string literals and its `#[cfg(test)]` module (unit
/// tests may reach anywhere).
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if d == '"' && !escaped {
                        break;
                    }
                    escaped = d == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            c => out.push(c),
        }
    }
    out
}

/// The paths a file names under `prefix` (`crate` or `super`), as segment lists, with
/// `use prefix::{a, b::{c, d}}` groups expanded.
fn paths_under(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let needle = format!("{prefix}::");
    let mut at = 0;
    while let Some(i) = code[at..].find(&needle) {
        let start = at + i;
        at = start + needle.len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == ':') {
            continue;
        }
        expand(&code[at..], Vec::new(), &mut found);
    }
    found
}

/// Expands the path (or brace group) at the start of `rest`, below `base`.
fn expand(rest: &str, base: Vec<String>, found: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&inner[item_start..i], base.clone(), found);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[item_start..i], base.clone(), found);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if ident.is_empty() || ident == "self" {
        if !base.is_empty() {
            found.push(base);
        }
        return;
    }
    let mut path = base;
    path.push(ident.clone());
    let after = &rest[ident.len()..];
    match after.strip_prefix("::") {
        Some(more) => expand(more, path, found),
        None => found.push(path),
    }
}

/// What `src/lib.rs` declares: its modules, the layers they sit in (from the comment that
/// lists them), and the names it re-exports with the module each comes from.
struct Crate {
    src: PathBuf,
    layer: BTreeMap<String, usize>,
    reexports: BTreeMap<String, String>,
}

impl Crate {
    fn read() -> Crate {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let mut layer = BTreeMap::new();
        let table = lib.split("// the sources and checks both; docs/how-it-works.md draws the picture.\n").nth(1);
        let table = table.expect("lib.rs lists the layers");
        for (n, line) in table.lines().take_while(|l| l.starts_with("//")).filter(|l| l.len() > 3).enumerate() {
            let mut words = line[2..].split_whitespace();
            let _layer_name = words.next();
            for w in words.take_while(|w| !w.starts_with('(')) {
                layer.insert(w.trim_end_matches(',').to_string(), n);
            }
        }
        let mut reexports = BTreeMap::new();
        for line in lib.lines().filter(|l| l.starts_with("pub use ")) {
            let body = line.trim_start_matches("pub use ").trim_end_matches(';');
            let module = body.split("::").next().unwrap().to_string();
            let names = body.rsplit("::").next().unwrap().trim_matches(|c| c == '{' || c == '}');
            for name in names.split(',') {
                reexports.insert(name.trim().to_string(), module.clone());
            }
        }
        Crate { src, layer, reexports }
    }

    /// The top-level module a `crate::` path reaches.
    fn target(&self, path: &[String]) -> Option<String> {
        let first = path.first()?;
        if self.layer.contains_key(first) {
            return Some(first.clone());
        }
        self.reexports.get(first).cloned()
    }

    /// The library's files (the binary's excluded), with their module paths.
    fn files(&self) -> Vec<(PathBuf, Vec<String>)> {
        rust_files(&self.src)
            .into_iter()
            .filter(|f| !f.starts_with(self.src.join("bin")))
            .map(|f| {
                let m = module_of(&self.src, &f);
                (f, m)
            })
            .filter(|(_, m)| !m.is_empty())
            .collect()
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let c = Crate::read();
    assert!(c.layer.len() >= 20, "the layer table in lib.rs lists the modules: {:?}", c.layer);
    let mut wrong = Vec::new();
    for (file, module) in c.files() {
        let me = &module[0];
        let Some(&mine) = c.layer.get(me) else {
            wrong.push(format!("{}: module `{me}` is missing from lib.rs's layer table", file.display()));
            continue;
        };
        for path in paths_under(&code(&file), "crate") {
            let Some(t) = c.target(&path) else { continue };
            if &t != me && c.layer[&t] >= mine {
                wrong.push(format!(
                    "{}: `{me}` (layer {mine}) uses crate::{} (layer {})",
                    file.display(),
                    path.join("::"),
                    c.layer[&t]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

/// The import graph among the files of each folder: `super::x` and `crate::folder::x`.
fn folder_edges(c: &Crate) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, module) in c.files() {
        if module.len() < 2 {
            continue;
        }
        let me = module[..2].join("::");
        let text = code(&file);
        let mut targets: Vec<String> = paths_under(&text, "crate")
            .into_iter()
            .filter(|p| p.len() >= 2 && p[0] == module[0])
            .map(|p| p[..2].join("::"))
            .collect();
        if module.len() == 2 {
            targets.extend(paths_under(&text, "super").into_iter().map(|p| format!("{}::{}", module[0], p[0])));
        }
        for t in targets {
            let known = c.src.join(t.replace("::", "/")).with_extension("rs").exists()
                || c.src.join(t.replace("::", "/")).join("mod.rs").exists();
            if t != me && known {
                edges.entry(me.clone()).or_default().insert(t);
            }
        }
    }
    edges
}

#[test]
fn no_folder_has_an_import_loop() {
    let c = Crate::read();
    let edges = folder_edges(&c);
    assert!(edges.contains_key("serve::api"), "the graph was read: {edges:?}");
    // Depth-first search for a cycle.
    fn visit(n: &str, e: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if let Some(i) = path.iter().position(|p| p == n) {
            panic!("import loop: {} -> {n}", path[i..].join(" -> "));
        }
        if done.contains(n) {
            return;
        }
        path.push(n.to_string());
        for m in e.get(n).into_iter().flatten() {
            visit(m, e, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        visit(n, &edges, &mut Vec::new(), &mut done);
    }
}

/// Whether `name` is declared public (plain `pub`) in the module at `module` (a path under
/// `src/`), or re-exported publicly there.
fn declared_pub(c: &Crate, module: &[String], name: &str) -> bool {
    let base = c.src.join(module.join("/"));
    let file = match module {
        [] => c.src.join("lib.rs"),
        _ if base.with_extension("rs").exists() => base.with_extension("rs"),
        _ => base.join("mod.rs"),
    };
    let Ok(text) = std::fs::read_to_string(&file) else { return false };
    let kinds = ["fn", "struct", "enum", "trait", "type", "const", "static", "mod", "async fn", "unsafe fn"];
    text.lines().map(str::trim_start).any(|l| {
        kinds.iter().any(|k| {
            l.strip_prefix("pub ").and_then(|r| r.strip_prefix(k)).and_then(|r| r.strip_prefix(' ')).is_some_and(|r| {
                r.starts_with(name) && !r[name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        }) || (l.starts_with("pub use ") && l.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == name))
    })
}

#[test]
fn the_server_and_the_units_use_the_public_api_only() {
    let c = Crate::read();
    let mut private = Vec::new();
    let fronts: Vec<(PathBuf, Vec<String>)> =
        c.files().into_iter().filter(|(_, m)| m[0] == "serve" || m == &["zarr", "units"]).collect();
    assert!(fronts.len() >= 8, "{fronts:?}");
    for (file, module) in fronts {
        for path in paths_under(&code(&file), "crate") {
            if path[0] == module[0] {
                continue; // its own folder
            }
            let reachable = match c.reexports.get(&path[0]) {
                // A name the crate root re-exports, and its associated items (a public
                // function of that module's, or a variant).
                Some(m) => {
                    path.len() == 1
                        || path[1].starts_with(char::is_uppercase)
                        || declared_pub(&c, std::slice::from_ref(m), &path[1])
                }
                None => (0..path.len()).all(|i| declared_pub(&c, &path[..i], &path[i])),
            };
            if !reachable {
                private.push(format!("{}: crate::{}", file.display(), path.join("::")));
            }
        }
    }
    assert!(private.is_empty(), "the front ends use what is not public:\n{}", private.join("\n"));
}

#[test]
fn command_line_crates_only_in_the_binary() {
    let c = Crate::read();
    for (file, _) in c.files() {
        let text = code(&file);
        for krate in ["clap::", "indicatif::", "signal_hook::", "feature = \"cli\""] {
            assert!(!text.contains(krate), "{} uses {krate}: the command line belongs to src/bin/", file.display());
        }
    }
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let serve = manifest.lines().find(|l| l.starts_with("serve = [")).expect("a serve feature");
    assert!(!serve.contains("cli") && !serve.contains("clap"), "serve must not need the CLI crates: {serve}");
}

#[test]
fn the_path_parser_reads_use_groups() {
    let p = paths_under("use crate::{a::{B, c::D}, e};\nlet x = crate::f::g(1); foo::crate::h", "crate");
    let s: Vec<String> = p.iter().map(|v| v.join("::")).collect();
    assert_eq!(s, ["a::B", "a::c::D", "e", "f::g"]);
}

#[test]
fn the_binary_has_no_import_loop() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/gigascale");
    let modules: Vec<String> =
        rust_files(&bin).iter().map(|f| f.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    assert!(modules.len() >= 4, "{modules:?}");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &modules {
        let text = code(&bin.join(format!("{m}.rs")));
        let mut to = BTreeSet::new();
        for path in paths_under(&text, "crate") {
            // `crate::x::…` is module x; any other name is defined in main.rs, the root.
            to.insert(if modules.contains(&path[0]) { path[0].clone() } else { "main".into() });
        }
        if m == "main" {
            to.extend(modules.iter().filter(|o| text.contains(&format!("{o}::"))).cloned());
        }
        to.remove(m);
        edges.insert(m.clone(), to);
    }
    // Kahn's algorithm: every module can be ordered, or there is a loop.
    let mut left = edges.clone();
    while !left.is_empty() {
        let leaf = left.iter().find(|(_, to)| to.iter().all(|t| !left.contains_key(t))).map(|(m, _)| m.clone());
        let Some(leaf) = leaf else { panic!("import loop among {:?}", left) };
        left.remove(&leaf);
    }
}

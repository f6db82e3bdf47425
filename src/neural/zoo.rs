//! Models beyond the built-in ones: where gigascale looks for ncnn model files, how `--model
//! NAME` finds one there, and what `gigascale models` lists.
//!
//! The search path, in order: the directories given (`--model-dir`), those in
//! `$GIGASCALE_MODELS` (separated by `:`), and the user's data directory
//! (`$XDG_DATA_HOME/gigascale/models`, else `~/.local/share/gigascale/models`). A model is a
//! `.param` file with its `.bin` beside it, anywhere below one of them; its name is its path
//! below that directory without `.param` (`realesrgan-x4plus`, `models-se/up2x-no-denoise`).

use super::Model;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The directories searched for models: `extra` first, then `$GIGASCALE_MODELS`, then the
/// user's data directory (each only if it exists).
pub fn model_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = extra.to_vec();
    if let Some(v) = std::env::var_os("GIGASCALE_MODELS") {
        dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    dirs.extend(data.map(|d| d.join("gigascale/models")));
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// A model file found below a search directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FoundModel {
    /// Its name for `--model` (its path below the directory, without `.param`).
    pub name: String,
    /// The `.param` file.
    pub path: PathBuf,
}

/// Every `.param` file below `dirs`, in search order (sorted within a directory); at most
/// 10000, at most 8 directories deep.
pub fn find_all(dirs: &[PathBuf]) -> Vec<FoundModel> {
    let mut found = Vec::new();
    for dir in dirs {
        let mut files = Vec::new();
        walk(dir, 8, &mut files);
        files.sort();
        for path in files.into_iter().take(10_000usize.saturating_sub(found.len())) {
            let rel = path.strip_prefix(dir).unwrap_or(&path).with_extension("");
            found.push(FoundModel { name: rel.to_string_lossy().into_owned(), path });
        }
    }
    found
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth > 0 {
            walk(&p, depth - 1, out);
        } else if p.extension().is_some_and(|x| x == "param") {
            out.push(p);
        }
    }
}

/// The model `spec` names: a built-in name; a `.param` file (a path, or relative to a search
/// directory); or a name found below the search directories, matching a model's whole name
/// or its last components (`models-se/up2x-no-denoise` finds
/// `realcugan/models/models-se/up2x-no-denoise`) — exactly one file may match
/// (`up2x-no-denoise` in two folders is ambiguous: name the folder).
pub fn resolve(spec: &str, dirs: &[PathBuf]) -> Result<Model> {
    if super::is_builtin(spec) {
        return Model::builtin(spec);
    }
    if spec.ends_with(".param") {
        let file = PathBuf::from(spec);
        if file.is_file() || file.is_absolute() {
            return Model::load(&file);
        }
        let under = dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file());
        return Model::load(&under.unwrap_or(file));
    }
    let tail = format!("/{spec}");
    let matches: Vec<FoundModel> =
        find_all(dirs).into_iter().filter(|f| f.name == spec || f.name.ends_with(&tail)).collect();
    match &matches[..] {
        [one] => Model::load(&one.path),
        [] => Err(Error::usage(format!(
            "no model {spec:?}: not built in ({}) and not found in {} (--model-dir, $GIGASCALE_MODELS, \
             ~/.local/share/gigascale/models; `gigascale models` lists what is there)",
            super::BUILTINS.iter().map(|b| b.name).collect::<Vec<_>>().join(", "),
            if dirs.is_empty() { "any model directory".into() } else { format!("{} director(ies)", dirs.len()) }
        ))),
        many => Err(Error::usage(format!(
            "model {spec:?} is ambiguous: {}; name one of them",
            many.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The licence of a model file where gigascale knows it (from its file name: the model
/// families whose licence is recorded in models/README.md), else `None`.
pub fn known_licence(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy();
    if name.starts_with("realesrgan-x4plus") || name.starts_with("realesr-animevideov3") {
        return Some("BSD-3-Clause (Real-ESRGAN), MIT (ncnn conversion)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_below_the_search_directories() {
        let root = std::env::temp_dir().join(format!("gigascale-zoo-{}", std::process::id()));
        let (a, b) = (root.join("a/models-se"), root.join("a/models-pro"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("up2x.param"), "not a model").unwrap();
        }
        let dirs = vec![root.join("a")];
        let names: Vec<String> = find_all(&dirs).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["models-pro/up2x", "models-se/up2x"]);
        let e = resolve("up2x", &dirs).unwrap_err().to_string();
        assert!(e.contains("ambiguous") && e.contains("models-se/up2x"), "{e}");
        // Named with its folder, it is found (and read: this one is not a model).
        let e = resolve("models-se/up2x", &dirs).unwrap_err().to_string();
        assert!(e.contains("magic") || e.contains(".bin"), "{e}");
        assert!(resolve("nothing", &dirs).unwrap_err().to_string().contains("not found"));
        assert!(resolve("anime", &dirs).is_ok(), "built-in names come first");
        std::fs::remove_dir_all(root).unwrap();
    }
}

//! Progress events are serde's: every example line in README's "Progress events" block
//! deserialises into a `gigascale::Event` and serialises back to the same JSON, and every line
//! the binary prints with `--progress json` is such an event, byte for byte.
use crate::util::*;
use gigascale::Event;
use serde_json::Value;

/// The lines of the first ```json block after `heading` in README.md.
fn readme_block(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let after = readme.split(heading).nth(1).expect("README has the heading");
    let block = after.split("```json\n").nth(1).expect("a json block").split("```").next().unwrap();
    block.lines().map(str::to_string).collect()
}

#[test]
fn the_readme_examples_are_the_schema() {
    let lines = readme_block("### Progress events");
    assert!(lines.len() >= 10, "{lines:?}");
    let mut kinds = std::collections::BTreeSet::new();
    for line in &lines {
        let want: Value = serde_json::from_str(line).unwrap();
        let event: Event = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let got = serde_json::to_value(&event).unwrap();
        assert_eq!(got, want, "{line}");
        kinds.insert(want["event"].as_str().unwrap().to_string());
    }
    let all = ["backend", "start", "faces", "decode", "neural_start", "neural", "tiles", "resumed", "warning", "done"];
    assert_eq!(kinds, all.iter().map(|k| k.to_string()).collect(), "every kind of event has an example");
}

#[test]
fn the_binary_prints_serialised_events() {
    let d = TempDir::new("json");
    let out = d.join("o.tif");
    let o = gs(&["upscale", s(&fixture("coffee.jpg")), s(&out), "--scale", "2", "--progress", "json", "-q"]);
    ok(&o);
    let lines: Vec<String> = stderr(&o).lines().map(str::to_string).collect();
    let names: Vec<String> = lines
        .iter()
        .map(|l| {
            let e: Event = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            assert_eq!(&e.to_json(), l, "printed as serialised");
            serde_json::from_str::<Value>(l).unwrap()["event"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("backend"), "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("done"), "{names:?}");
    assert!(names.contains(&"start".to_string()) && names.contains(&"tiles".to_string()), "{names:?}");
}

//! Batches (`gigascale upscale DIR_IN DIR_OUT`): the tree mirrored, each output the bytes of
//! the same file upscaled alone, non-images ignored, a broken file failing alone (exit 1, the
//! summary names it), a rerun skipping what is done, `--jobs 2` the same bytes as one at a
//! time, and the output never the input.
use crate::util::*;
use std::path::Path;

/// A tree: two good images (one in a subdirectory), a text file, a truncated JPEG.
fn tree(d: &Path) -> std::path::PathBuf {
    let input = d.join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::copy(fixture("coffee.jpg"), input.join("a.jpg")).unwrap();
    std::fs::copy(fixture("coffee16.png"), input.join("sub/b.png")).unwrap();
    std::fs::write(input.join("notes.txt"), "not an image").unwrap();
    let jpeg = std::fs::read(fixture("coffee.jpg")).unwrap();
    std::fs::write(input.join("sub/cut.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    input
}

#[test]
fn a_folder_is_mirrored_and_a_broken_file_fails_alone() {
    let d = scratch("batch");
    let input = tree(&d);
    let out = d.join("out");
    let run =
        |args: &[&str]| bin().arg("upscale").arg(&input).arg(&out).args(["--scale", "2"]).args(args).output().unwrap();
    let o = run(&["--recursive", "--format", "png"]);
    assert_eq!(o.status.code(), Some(1), "a failed file makes the batch fail: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("2 done, 0 skipped") && err.contains("1 failed") && err.contains("cut.jpg"), "{err}");
    assert_eq!(names(&out), ["a.png", "sub"]);
    assert_eq!(names(&out.join("sub")), ["b.png"], "nothing of the broken file, no output for the text");
    // Each output is what the file gives alone.
    for (src, made) in [("a.jpg", "a.png"), ("sub/b.png", "sub/b.png")] {
        let alone = d.join("alone.png");
        ok(&bin()
            .arg("upscale")
            .arg(input.join(src))
            .arg(&alone)
            .args(["--scale", "2", "--overwrite"])
            .output()
            .unwrap());
        assert!(std::fs::read(&alone).unwrap() == std::fs::read(out.join(made)).unwrap(), "{src}");
    }
    // A rerun skips what is there (a batch cut off continues), and reports in JSON per file.
    let o = run(&["--recursive", "--format", "png", "--progress", "json"]);
    let err = stderr(&o);
    assert_eq!(err.matches("\"status\":\"skipped\"").count(), 2, "{err}");
    assert_eq!(err.matches("\"event\":\"file\"").count(), 3, "{err}");
    // Two at a time: the same bytes.
    let out2 = d.join("out2");
    let o = bin()
        .arg("upscale")
        .arg(&input)
        .arg(&out2)
        .args(["--scale", "2", "--recursive", "--format", "png", "--jobs", "2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    for f in ["a.png", "sub/b.png"] {
        assert!(std::fs::read(out.join(f)).unwrap() == std::fs::read(out2.join(f)).unwrap(), "{f} with --jobs 2");
    }
    // Without --recursive only the top folder; each input's own format.
    let top = d.join("top");
    ok(&bin().arg("upscale").arg(&input).arg(&top).args(["--scale", "2"]).output().unwrap());
    assert_eq!(names(&top), ["a.jpg"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_output_folder_is_never_the_input_or_read_as_input() {
    let d = scratch("batch-self");
    let input = tree(&d);
    std::fs::remove_file(input.join("sub/cut.jpg")).unwrap();
    let o = bin().arg("upscale").arg(&input).arg(&input).args(["--scale", "2"]).output().unwrap();
    assert!(!o.status.success() && stderr(&o).contains("is the input directory"), "{}", stderr(&o));
    // An output folder inside the input: not walked into (a rerun finds no new inputs there).
    let inner = input.join("upscaled");
    for _ in 0..2 {
        ok(&bin().arg("upscale").arg(&input).arg(&inner).args(["--scale", "2", "--recursive"]).output().unwrap());
    }
    assert_eq!(names(&inner), ["a.jpg", "sub"]);
    assert!(!inner.join("upscaled").exists());
    // The library: the same, with its report.
    std::fs::remove_dir_all(&inner).unwrap();
    let mut opts = gigascale::Request::default().scale(2.0).options().unwrap();
    opts.threads = 1;
    let mut batch = gigascale::Batch::default();
    batch.recursive = true;
    let r = gigascale::upscale_dir(&input, &d.join("lib"), &opts, &batch, &mut |_| {}).unwrap();
    assert_eq!((r.done.len(), r.skipped.len(), r.failed.len()), (2, 0, 0));
    std::fs::remove_dir_all(&d).unwrap();
}

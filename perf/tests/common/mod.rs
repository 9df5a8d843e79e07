//! What the berth-perf tests read back from a report directory.

#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};

/// The one file in `dir` ending in `.ext` (a report writes one of each).
pub(crate) fn file_with_ext(dir: &Path, ext: &str) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one .{ext} file in {}: {files:?}",
        dir.display()
    );
    files.into_iter().next().unwrap()
}

/// The JSON report berth-perf wrote to `dir`.
pub(crate) fn read_report(dir: &Path) -> serde_json::Value {
    let json = std::fs::read_to_string(file_with_ext(dir, "json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

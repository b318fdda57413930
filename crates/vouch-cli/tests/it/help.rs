//! The command tree is consistent (clap's own checks) and every subcommand's `--help` matches its snapshot in
//! `tests/it/snapshots/` exactly. After an intended change, regenerate them with
//! `VOUCH_UPDATE_SNAPSHOTS=1 cargo test -p vouch-cli --test it help` and review the diff.

use std::{collections::BTreeSet, fs, path::PathBuf};

use crate::support::vouch_command;

#[test]
fn the_command_tree_passes_clap_debug_assert() {
    vouch_cli::command().debug_assert();
}

/// Every command path: `[]`, `["keys"]`, `["keys", "new"]`, … (clap's generated `help` subcommands excluded).
fn paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    out.push(prefix.to_vec());
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_owned());
        paths(sub, &path, out);
    }
}

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots")
}

#[test]
fn help_of_every_subcommand_matches_its_snapshot() {
    let update = std::env::var_os("VOUCH_UPDATE_SNAPSHOTS").is_some();
    let dir = snapshot_dir();
    let mut all = Vec::new();
    paths(&vouch_cli::command(), &[], &mut all);
    assert!(all.len() > 30, "only {} commands", all.len());
    let mut expected_files = BTreeSet::new();
    let mut mismatches = Vec::new();
    for path in &all {
        let file = format!(
            "{}.txt",
            std::iter::once("vouch").chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join("_")
        );
        expected_files.insert(file.clone());
        let output = vouch_command().args(path).arg("--help").output().expect("vouch runs");
        assert!(output.status.success(), "vouch {} --help failed", path.join(" "));
        let help = String::from_utf8(output.stdout).expect("utf-8 help");
        let snapshot = dir.join(&file);
        if update {
            fs::create_dir_all(&dir).expect("snapshot dir");
            fs::write(&snapshot, &help).expect("writes the snapshot");
            continue;
        }
        match fs::read_to_string(&snapshot) {
            Ok(recorded) if recorded == help => {}
            Ok(recorded) => mismatches.push(format!(
                "{file}: `vouch {} --help` changed\n--- recorded\n{recorded}\n--- now\n{help}",
                path.join(" ")
            )),
            Err(_) => mismatches.push(format!("{file}: no snapshot for `vouch {} --help`", path.join(" "))),
        }
    }
    let stale: Vec<String> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(".txt") && !expected_files.contains(name))
                .collect()
        })
        .unwrap_or_default();
    if update {
        for name in &stale {
            fs::remove_file(dir.join(name)).expect("removes a stale snapshot");
        }
        return;
    }
    assert!(stale.is_empty(), "snapshots of commands that no longer exist: {stale:?}");
    assert!(
        mismatches.is_empty(),
        "{} help snapshots differ (regenerate with VOUCH_UPDATE_SNAPSHOTS=1 and review):\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}

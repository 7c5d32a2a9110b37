//! The key server benchmark runs once in test mode (small counts), on SQLite and on
//! PostgreSQL, so it cannot rot: every phase reports, and every fetch of the HTTP phase and
//! of each floor run consumed a one-time prekey.

#![allow(clippy::expect_used, clippy::panic)]

use std::process::Command;

fn run_bench(extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_e2ee-keyserver-bench"))
        .args([
            "--targets",
            "4",
            "--keys-per-target",
            "100",
            "--fetches",
            "64",
        ])
        .args(["--concurrency", "4", "--pool", "4"])
        .args(extra)
        .output()
        .expect("the benchmark runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The lines starting with `prefix`, each checked to say all of its fetches took a key.
fn every_fetch_consumed_a_key(stdout: &str, prefix: &str) -> usize {
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with(prefix)).collect();
    for line in &lines {
        let count = line
            .split(" in ")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .expect("a count");
        assert!(
            line.contains(&format!("({count} consumed a one-time prekey)")),
            "not every fetch consumed a key: {line}"
        );
    }
    lines.len()
}

fn check(stdout: &str, floors: usize) {
    assert_eq!(
        every_fetch_consumed_a_key(stdout, "bundle fetches:"),
        1,
        "{stdout}"
    );
    assert_eq!(
        every_fetch_consumed_a_key(stdout, "floor ("),
        floors,
        "{stdout}"
    );
    assert!(stdout.contains("HTTP alone (GET /health"), "{stdout}");
}

#[test]
fn the_benchmark_runs_on_sqlite() {
    check(&run_bench(&[]), 2);
}

#[test]
fn the_benchmark_runs_on_postgres() {
    let url = std::env::var("E2EE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    check(&run_bench(&["--postgres", &url]), 1);
}

#[test]
fn a_key_budget_too_small_for_every_run_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_e2ee-keyserver-bench"))
        .args([
            "--targets",
            "1",
            "--keys-per-target",
            "100",
            "--fetches",
            "64",
        ])
        .output()
        .expect("the benchmark runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot give"));
}

//! `dmabuf bench`: every case measures both sides and reports a finite ratio; `--json` gives
//! the documented fields; the help says how long a run takes. (Numbers are not asserted: they
//! depend on the machine and its load.)
#![cfg(target_os = "linux")]

use dmabuf_cli::bench::{Args, measure, table};
use std::process::Command;

#[test]
fn every_case_measures_both_sides() {
    let rows = measure(&Args {
        rounds: 1,
        quick: true,
        ..Args::default()
    });
    assert_eq!(rows.len(), 7);
    for r in &rows {
        assert!(r.value_ns > 0.0 && r.baseline_ns > 0.0, "{r:?}");
        assert!(r.ratio.is_finite() && r.ratio > 0.0, "{r:?}");
        assert!(r.ratio_min <= r.ratio && r.ratio <= r.ratio_max, "{r:?}");
    }
    let printed = table(&rows);
    assert_eq!(printed.lines().count(), 1 + rows.len());
    assert!(printed.contains("lock_all 8 of 1024"));
    assert!(printed.contains("seen acquisition, validator on"));
    assert!(printed.contains("resv get_fences(READ) of 4, no lock"));
    assert!(printed.contains("timeline point lookup, 4096 pending"));
    assert!(
        !dmabuf::lockdep::is_enabled(),
        "bench leaves the validator off"
    );
}

#[test]
fn json_has_the_documented_fields() {
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(["bench", "--quick", "--rounds", "1", "--json"])
        .output()
        .expect("run dmabuf");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 7);
    for r in rows {
        for field in ["name", "baseline"] {
            assert!(r[field].is_string(), "{field} in {r}");
        }
        for field in ["value_ns", "baseline_ns", "ratio", "ratio_min", "ratio_max"] {
            assert!(r[field].as_f64().is_some_and(|v| v > 0.0), "{field} in {r}");
        }
    }
}

#[test]
fn help_says_how_long_it_takes() {
    for flag in ["-h", "--help"] {
        let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
            .args(["bench", flag])
            .env("NO_COLOR", "1")
            .output()
            .expect("run dmabuf");
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("in about 1 second"), "{flag}: {help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("run dmabuf");
    assert!(String::from_utf8_lossy(&out.stdout).contains("in about 1 second"));
}

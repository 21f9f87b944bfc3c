//! `switchboard bench`: every scenario runs end to end on a small scale (its own registry,
//! gateway and upstream processes), every request succeeds, and the report holds the figures
//! and ratios the README quotes; with ContextForge installed, the side-by-side run too.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

use crate::harness::{available, bin};

fn bench(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(bin())
        .args(["bench", "--duration-secs", "1", "--concurrency", "4"])
        .args(extra)
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

fn runs<'a>(report: &'a Value, scenario: &str) -> Vec<&'a Value> {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["scenario"] == scenario)
        .collect()
}

#[test]
fn every_scenario_runs_direct_and_through_the_gateway_without_an_error() {
    let report = bench(&[
        "--clients",
        "300",
        "--clients-rate",
        "300",
        "--list-tools",
        "2000",
    ]);
    for run in report["runs"].as_array().unwrap() {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["requests"].as_u64().unwrap() > 0, "{run}");
        let (p50, p99, max) = (
            run["p50_ms"].as_f64().unwrap(),
            run["p99_ms"].as_f64().unwrap(),
            run["max_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{run}");
    }
    // Both eras, both paths, for calls and for the 2,001-tool listing.
    for scenario in ["call", "list"] {
        let runs = runs(&report, scenario);
        for era in ["2025-11-25", "2026-07-28"] {
            for path in ["direct", "gateway"] {
                assert!(
                    runs.iter().any(|r| r["era"] == era && r["path"] == path),
                    "{scenario} {era} {path}: {report}"
                );
            }
        }
    }
    for scenario in ["open", "connect"] {
        assert_eq!(runs(&report, scenario).len(), 2, "{scenario}: {report}");
    }
    // Discovery: the health check, the full answer, and the answer revalidated by its ETag.
    assert_eq!(runs(&report, "discovery").len(), 3, "{report}");
    // The gateway's own CPU and memory are read for every run through it.
    let call = runs(&report, "call");
    let through = call.iter().find(|r| r["path"] == "gateway").unwrap();
    assert!(through["used"]["gateway"]["cpu_cores"].as_f64().unwrap() > 0.0);
    assert!(through["used"]["gateway"]["peak_rss_mb"].as_f64().unwrap() > 1.0);
    // Every one of the held clients was answered at least once, direct and through the gateway.
    let clients = runs(&report, "clients");
    assert_eq!(clients.len(), 2, "{report}");
    for run in clients {
        assert!(run["requests"].as_u64().unwrap() >= 300, "{report}");
    }
    // Resident memory, and the process's own (anonymous) part of it, of the upstream and of
    // the gateway holding them.
    let memory = |moment: &str| report["memory"][moment].as_f64().unwrap_or(0.0);
    for holder in ["upstream", "gateway"] {
        for (rss, anon) in [
            (
                format!("{holder}_with_300_clients_connected_mb"),
                format!("{holder}_with_300_clients_connected_anon_mb"),
            ),
            (
                format!("{holder}_peak_with_300_clients_mb"),
                format!("{holder}_peak_with_300_clients_anon_mb"),
            ),
        ] {
            let (rss, anon) = (memory(&rss), memory(&anon));
            assert!(rss > 1.0 && 0.0 < anon && anon <= rss, "{holder}: {report}");
        }
    }
    assert_eq!(report["machine"]["gateway_audit_sync"], "disk");
    let ratios: Vec<&str> = report["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    assert!(
        ratios.contains(&"tools/call 2026-07-28: gateway throughput / direct"),
        "{ratios:?}"
    );
    assert!(
        ratios.contains(&"discovery throughput / health check"),
        "{ratios:?}"
    );
    assert!(
        ratios.contains(&"300 held clients: gateway's own memory per client / upstream's"),
        "{ratios:?}"
    );
    assert!(
        ratios.contains(&"discovery revalidated (304) throughput / health check"),
        "{ratios:?}"
    );
}

/// `--audit-sync os` and `--gateway-workers` reach the gateway the benchmark starts, and its
/// calls succeed.
#[test]
fn the_gateway_can_be_measured_with_records_written_but_not_waited_on_to_sync() {
    let report = bench(&[
        "--scenarios",
        "open",
        "--open-rate",
        "100",
        "--audit-sync",
        "os",
        "--gateway-workers",
        "1",
    ]);
    assert_eq!(report["machine"]["gateway_audit_sync"], "os");
    assert_eq!(report["machine"]["gateway_workers"], 1);
    let open = runs(&report, "open");
    assert_eq!(open.len(), 2, "{report}");
    for run in open {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["requests"].as_u64().unwrap() > 0, "{run}");
    }
}

/// The `mcpgateway` of the virtual environment `.ci/run` makes, or why not.
fn contextforge() -> Option<PathBuf> {
    let venv = match std::env::var("SWITCHBOARD_CONTEXTFORGE_VENV") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            PathBuf::from(std::env::var("HOME").ok()?).join(".cache/switchboard-contextforge-venv")
        }
    };
    let executable = venv.join("bin/mcpgateway");
    available(
        "IBM ContextForge (pip install -r tests/python/contextforge-requirements.txt into ~/.cache/switchboard-contextforge-venv)",
        executable.exists(),
    )
    .then_some(executable)
}

#[test]
fn contextforge_serves_the_same_calls_side_by_side() {
    let Some(executable) = contextforge() else {
        return;
    };
    let report = bench(&[
        "--scenarios",
        "call",
        "--contextforge",
        executable.to_str().unwrap(),
    ]);
    let forge = runs(&report, "call")
        .into_iter()
        .find(|r| r["path"] == "contextforge")
        .cloned()
        .unwrap_or_else(|| panic!("no ContextForge run: {report}"));
    assert_eq!(forge["errors"], 0, "{forge}");
    assert!(forge["requests"].as_u64().unwrap() > 0, "{forge}");
    assert!(
        report["ratios"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["what"]
                == "tools/call 2025-11-25: Switchboard gateway throughput / ContextForge"),
        "{report}"
    );
}

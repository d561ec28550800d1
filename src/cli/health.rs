//! `reelbase health`: fetches the detailed report from a running server and prints it for a
//! person, one line per component with a mark for what is wrong (`--json` prints it raw).
//! Exit code 0 when `ok`, 1 when `degraded`, 2 when the server cannot be asked: fit for
//! scripts and cron.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::config::Settings;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Base URL of the server (default: http:// and REELBASE_BIND).
    #[arg(long)]
    url: Option<String>,
    /// An API key; prefer the REELBASE_API_KEY variable, which stays out of `ps`.
    #[arg(long, env = "REELBASE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print the report as JSON, unchanged.
    #[arg(long)]
    json: bool,
}

const UNREACHABLE: u8 = 2;

const NOT_MEASURED: &str = "unknown: the server could not measure it in time";

pub async fn run(settings: &Settings, args: HealthArgs) -> ExitCode {
    let base = args.url.clone().unwrap_or_else(|| default_url(settings));
    let url = format!("{}/health/detailed", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(settings.health_timeout + Duration::from_secs(3))
        .build()
        .unwrap_or_default();
    let mut request = client.get(&url);
    if let Some(key) = &args.api_key {
        request = request.header("x-api-key", key);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let class = crate::integrations::classify(&error).as_str();
            eprintln!("reelbase health: cannot reach {base} ({class})");
            return ExitCode::from(UNREACHABLE);
        }
    };
    let status = response.status();
    let Ok(report) = response.json::<Value>().await else {
        eprintln!("reelbase health: {base} answered {status} without a JSON report");
        return ExitCode::from(UNREACHABLE);
    };
    if !status.is_success() {
        let message = report["error"]["message"].as_str().unwrap_or("no message");
        let hint = if status == 401 {
            " (give an API key: REELBASE_API_KEY or --api-key)"
        } else {
            ""
        };
        eprintln!("reelbase health: {base} answered {status}: {message}{hint}");
        return ExitCode::from(UNREACHABLE);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render(&base, &report));
    }
    if report["status"] == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn default_url(settings: &Settings) -> String {
    let mut addr = settings.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// The report for a person: `ok`, `WARN` or `FAIL` in front of each component.
pub fn render(base: &str, report: &Value) -> String {
    let mut out = String::new();
    let overall = report["status"].as_str().unwrap_or("unknown");
    let version = report["version"].as_str().unwrap_or("?");
    let _ = writeln!(
        out,
        "reelbase {version} at {base}: {}",
        overall.to_uppercase()
    );
    let mut line = |mark: &str, name: &str, text: String| {
        let _ = writeln!(out, "  {mark:<4}  {name:<11} {text}");
    };
    for (name, service) in report["services"].as_object().into_iter().flatten() {
        let status = service["status"].as_str().unwrap_or("?");
        let mark = match status {
            "ok" => "ok",
            "degraded" => "WARN",
            _ => "FAIL",
        };
        let error = service["error"]
            .as_str()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        line(
            mark,
            name,
            format!("{status}{error}, {} ms", service["latency_ms"]),
        );
    }
    // A block the server could not measure in time is `null`: say so, never print it as facts.
    let unknown = |block: &str| report[block].is_null();
    if unknown("schema") {
        line("WARN", "schema", NOT_MEASURED.to_owned());
    } else {
        let schema = &report["schema"];
        let applied = schema["applied"].as_array().map_or(0, Vec::len);
        let required = schema["required"].as_array().map_or(0, Vec::len);
        line(
            ok_or(schema["ok"].as_bool(), "FAIL"),
            "schema",
            format!("{applied} applied, {required} required"),
        );
    }
    let r = &report["resources"];
    line(
        "ok",
        "resources",
        format!(
            "cpu {}, memory {}% used ({} MiB available), disk {} MiB available",
            match r["cpu_used_percent"].as_f64() {
                Some(cpu) => format!("{cpu}%"),
                None => "not sampled yet".to_owned(),
            },
            r["memory_used_percent"],
            r["memory_available_mb"],
            r["disk"]["available_mb"]
        ),
    );
    if unknown("pipeline") {
        line("WARN", "pipeline", NOT_MEASURED.to_owned());
    } else {
        let p = &report["pipeline"];
        let ready: Vec<&str> = p["processors"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, ready)| ready.as_bool() == Some(true))
            .map(|(name, _)| name.as_str())
            .collect();
        let intact = p["scripts_integrity"]["ok"].as_bool() == Some(true)
            && p["models_integrity"]["ok"].as_bool() == Some(true);
        line(
            ok_or(Some(intact && p["ffmpeg"] == true), "WARN"),
            "pipeline",
            format!(
                "ffmpeg {}; scripts {} ({}/{} match); models {}; processors ready: {}",
                if p["ffmpeg"] == true {
                    "runs"
                } else {
                    "MISSING"
                },
                p["scripts_count"],
                p["scripts_integrity"]["matched"],
                p["scripts_integrity"]["total"],
                p["models_count"],
                if ready.is_empty() {
                    "none".to_owned()
                } else {
                    ready.join(", ")
                }
            ),
        );
        for (name, why) in p["processor_problems"].as_object().into_iter().flatten() {
            line(
                "--",
                "",
                format!("{name} not ready: {}", why.as_str().unwrap_or("?")),
            );
        }
    }
    if unknown("identities") {
        line("WARN", "identities", NOT_MEASURED.to_owned());
    } else {
        let i = &report["identities"];
        let synced = i["synced"].as_bool() == Some(true) && i["index_ok"].as_bool() == Some(true);
        line(
            ok_or(Some(synced), "WARN"),
            "identities",
            format!(
                "{} on disk, {} in the database, index {}, {}",
                i["files_count"],
                i["db_count"],
                if i["index_ok"] == true {
                    "ok"
                } else {
                    "NOT OK"
                },
                if i["synced"] == true {
                    "in sync"
                } else {
                    "NOT in sync"
                }
            ),
        );
    }
    let t = &report["integrations"]["tmdb"];
    let (mark, text) = match t["api_reachable"].as_bool() {
        None if t["enabled"] == true => ("WARN", "enabled without an API key".to_owned()),
        None => ("--", "disabled".to_owned()),
        Some(true) if t["error"].is_null() => ("ok", "reachable".to_owned()),
        Some(reachable) => {
            let how = if reachable {
                "reachable"
            } else {
                "unreachable"
            };
            (
                "WARN",
                format!("{how} ({})", t["error"].as_str().unwrap_or("?")),
            )
        }
    };
    line(mark, "tmdb", text);
    out
}

fn ok_or(good: Option<bool>, bad: &'static str) -> &'static str {
    if good == Some(true) { "ok" } else { bad }
}

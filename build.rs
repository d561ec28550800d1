//! Captures the facts `/health` reports about the build itself: the short git commit and the
//! build time. Both come from the build, never from a constant in the source.
//!
//! - `REELBASE_GIT_HASH` overrides the hash for packagers building from a source tarball.
//! - Outside a git checkout a debug build says so (`not-a-git-build`); a release build refuses to
//!   build instead, so a shipped binary never carries a placeholder.
//! - `SOURCE_DATE_EPOCH` (reproducible builds) overrides the build time.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=REELBASE_GIT_HASH");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    watch_git_head();

    embed_migrations();
    let hash = git_hash();
    println!("cargo:rustc-env=REELBASE_BUILD_GIT_HASH={hash}");
    println!(
        "cargo:rustc-env=REELBASE_BUILD_TIMESTAMP={}",
        build_timestamp()
    );
}

fn git_hash() -> String {
    if let Ok(hash) = std::env::var("REELBASE_GIT_HASH") {
        let hash = hash.trim().to_owned();
        if !hash.is_empty() {
            return hash;
        }
    }
    let output = Command::new("git")
        .args(["rev-parse", "--short=8", "HEAD"])
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ if std::env::var("PROFILE").as_deref() == Ok("release") => {
            panic!(
                "release builds need the git commit: build from a git checkout or set \
                 REELBASE_GIT_HASH"
            )
        }
        _ => "not-a-git-build".to_owned(),
    }
}

/// Re-run the build script when HEAD moves, so the hash never goes stale.
fn watch_git_head() {
    let Ok(out) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
    else {
        return;
    };
    if !out.status.success() {
        return;
    }
    let git_dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    println!("cargo:rerun-if-changed={git_dir}/HEAD");
    println!("cargo:rerun-if-changed={git_dir}/packed-refs");
    let head = std::fs::read_to_string(format!("{git_dir}/HEAD")).unwrap_or_default();
    if let Some(reference) = head.strip_prefix("ref: ") {
        println!("cargo:rerun-if-changed={git_dir}/{}", reference.trim());
    }
}

/// Lists `migrations/*.sql` for `include_str!`, in file-name order, so a new migration is
/// embedded by adding its file. Names must be `NNNN_words.sql`: the number fixes the order.
fn embed_migrations() {
    println!("cargo:rerun-if-changed=migrations");
    let dir =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("migrations");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("migrations/ exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    let mut code = String::from("pub const MIGRATIONS: &[(&str, &str)] = &[\n");
    for name in &names {
        let (number, rest) = name.split_at(4.min(name.len()));
        let valid = number.bytes().all(|b| b.is_ascii_digit())
            && rest.starts_with('_')
            && rest.trim_end_matches(".sql")[1..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        assert!(
            valid,
            "migration {name:?} must be named NNNN_lowercase_words.sql"
        );
        let path = dir.join(name);
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(out, code).expect("write migrations list");
}

fn build_timestamp() -> String {
    let seconds = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value
            .trim()
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("SOURCE_DATE_EPOCH must be whole seconds, got {value:?}")),
        Err(_) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970");
            now.as_secs() as i64
        }
    };
    rfc3339_utc(seconds)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, using the proleptic Gregorian calendar
/// (days are converted to a civil date through 400-year eras of 146,097 days).
fn rfc3339_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3_600,
        secs_of_day % 3_600 / 60,
        secs_of_day % 60
    )
}

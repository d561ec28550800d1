//! The runtime of the script processors: the Python environment the set-up command makes
//! (`REELBASE_PYTHON_ENV`), the scripts folder, and the models that ship inside the packages
//! installed there.
//!
//! Models are not copied into `models/`: each one has a pointer file there
//! (`models/<name>.json`) naming the package that carries it and the SHA-256 of every file of
//! it, relative to the environment's `site-packages`. The models manifest covers the pointers;
//! the pointers cover the packaged files. Either kind of change turns the processors that need
//! the model off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::manifest::HashCache;

/// Variables that keep every library in the environment away from the network.
pub const OFFLINE_ENV: &[(&str, &str)] = &[
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("PYTHONUNBUFFERED", "1"),
];

/// Where the scripts, their interpreter and the model pointers are.
#[derive(Debug, Clone)]
pub struct ScriptEnv {
    /// The Python environment (a venv): `bin/python`, `lib/python3.*/site-packages`.
    pub env_dir: PathBuf,
    /// The Node.js packages (`node_modules` inside) of the scripts written in JavaScript.
    pub node_dir: PathBuf,
    pub scripts_dir: PathBuf,
    pub models_dir: PathBuf,
}

impl ScriptEnv {
    /// Absolute paths, so a script's working folder does not matter.
    pub fn new(env_dir: &Path, scripts_dir: &Path, models_dir: &Path) -> Self {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        Self {
            env_dir: absolute(env_dir),
            node_dir: absolute(Path::new("./.node")),
            scripts_dir: absolute(scripts_dir),
            models_dir: absolute(models_dir),
        }
    }

    /// The Node.js environment (`REELBASE_NODE_ENV`) for the scripts written in JavaScript.
    pub fn with_node(mut self, node_dir: &Path) -> Self {
        self.node_dir = std::path::absolute(node_dir).unwrap_or_else(|_| node_dir.to_owned());
        self
    }

    /// How to start script `name`: `scripts/<name>.js` in Node.js when it exists (its packages
    /// found through `NODE_PATH`), otherwise `scripts/<name>.py` in the Python environment,
    /// isolated (`-I`): the scripts folder is not on the import path, so a file dropped there
    /// cannot stand in for a library, and no PYTHON* variable or user site is read.
    pub fn command(&self, name: &str) -> Result<ScriptCommand, String> {
        let js = self.scripts_dir.join(format!("{name}.js"));
        if js.is_file() {
            let modules = self.node_dir.join("node_modules");
            if !modules.is_dir() {
                return Err(format!(
                    "the Node.js environment {} is missing (run tools/setup)",
                    self.node_dir.display()
                ));
            }
            return Ok(ScriptCommand {
                program: PathBuf::from("node"),
                args: vec![js],
                env: vec![("NODE_PATH".into(), modules.into_os_string())],
            });
        }
        let (python, script) = (self.python(), self.script(name));
        if !python.exists() {
            return Err(format!(
                "the Python environment {} is missing (run tools/setup)",
                self.env_dir.display()
            ));
        }
        if !script.is_file() {
            return Err(format!("the script {} is missing", script.display()));
        }
        Ok(ScriptCommand {
            program: python,
            args: vec!["-I".into(), script],
            env: Vec::new(),
        })
    }

    pub fn python(&self) -> PathBuf {
        self.env_dir.join("bin").join("python")
    }

    pub fn script(&self, name: &str) -> PathBuf {
        self.scripts_dir.join(format!("{name}.py"))
    }

    /// The environment's `site-packages`, where packaged models live.
    pub fn site_packages(&self) -> Option<PathBuf> {
        let lib = std::fs::read_dir(self.env_dir.join("lib")).ok()?;
        lib.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path().join("site-packages"))
            .find(|p| p.is_dir())
    }

    /// The model `name` (`models/<name>.json`), located and checked against its pointer.
    pub fn model(&self, name: &str, hashes: &HashCache) -> Result<PathBuf, String> {
        let pointer = Pointer::read(&self.models_dir, name)?;
        let base = match pointer.runtime {
            Runtime::Python => self.site_packages().ok_or_else(|| {
                format!(
                    "the Python environment {} has no site-packages (run tools/setup)",
                    self.env_dir.display()
                )
            })?,
            Runtime::Node => {
                let modules = self.node_dir.join("node_modules");
                if !modules.is_dir() {
                    return Err(format!(
                        "the Node.js environment {} is missing (run tools/setup)",
                        self.node_dir.display()
                    ));
                }
                modules
            }
        };
        pointer.verify(&base, hashes)?;
        Ok(base.join(&pointer.root))
    }
}

/// A script's program, arguments and extra environment.
#[derive(Debug, Clone)]
pub struct ScriptCommand {
    pub program: PathBuf,
    pub args: Vec<PathBuf>,
    pub env: Vec<(String, std::ffi::OsString)>,
}

/// Which package tree carries a model.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// The Python environment's `site-packages` (the default).
    #[default]
    Python,
    /// The Node.js environment's `node_modules`.
    Node,
}

/// `models/<name>.json`: a model that ships inside an installed package.
#[derive(Debug, Deserialize)]
pub struct Pointer {
    pub name: String,
    /// The distribution and version that carries it, as pinned in `requirements.txt` (or
    /// `node/package.json`).
    pub package: String,
    /// Where the package is installed: `python` (default) or `node`.
    #[serde(default)]
    pub runtime: Runtime,
    /// What a processor is handed: a file or folder, relative to `site-packages` (or
    /// `node_modules`).
    pub root: String,
    /// Every file of the model, relative to `site-packages`, with its SHA-256.
    pub files: BTreeMap<String, String>,
}

impl Pointer {
    pub fn read(models_dir: &Path, name: &str) -> Result<Self, String> {
        let path = models_dir.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("model pointer {}: {e}", path.display()))?;
        let pointer: Pointer = serde_json::from_str(&text)
            .map_err(|e| format!("model pointer {}: {e}", path.display()))?;
        let inside = |p: &str| {
            Path::new(p)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        };
        if pointer.files.is_empty() || !pointer.files.keys().all(|p| inside(p)) {
            return Err(format!(
                "model pointer {}: `files` must list paths inside site-packages",
                path.display()
            ));
        }
        if !inside(&pointer.root) {
            return Err(format!(
                "model pointer {}: `root` must lie inside site-packages",
                path.display()
            ));
        }
        Ok(pointer)
    }

    /// Every listed file is present with its hash.
    pub fn verify(&self, site_packages: &Path, hashes: &HashCache) -> Result<(), String> {
        for (file, expected) in &self.files {
            match hashes.sha256(&site_packages.join(file)) {
                Ok(actual) if actual.eq_ignore_ascii_case(expected) => {}
                Ok(_) => {
                    return Err(format!(
                        "model {}: {file} differs from its pointer (reinstall {})",
                        self.name, self.package
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "model {}: {file}: {e} (install {})",
                        self.name, self.package
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer_with(dir: &Path, files: &str, root: &str) -> Result<Pointer, String> {
        let text = format!(r#"{{"name":"m","package":"p==1","root":"{root}","files":{files}}}"#);
        std::fs::write(dir.join("m.json"), text).unwrap();
        Pointer::read(dir, "m")
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("reelbase-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn pointers_stay_inside_site_packages() {
        let dir = scratch("pointer-paths");
        let ok = pointer_with(&dir, r#"{"pkg/a.bin":"00"}"#, "pkg");
        assert!(ok.is_ok());
        assert!(pointer_with(&dir, r#"{"../a.bin":"00"}"#, "pkg").is_err());
        assert!(pointer_with(&dir, r#"{"/etc/passwd":"00"}"#, "pkg").is_err());
        assert!(pointer_with(&dir, r#"{"pkg/a.bin":"00"}"#, "../x").is_err());
        assert!(pointer_with(&dir, "{}", "pkg").is_err());
    }

    #[test]
    fn a_changed_model_file_fails_verification() {
        let dir = scratch("pointer-hashes");
        std::fs::create_dir(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("pkg/a.bin"), b"weights").unwrap();
        let hash = super::super::manifest::sha256_file(&dir.join("pkg/a.bin")).unwrap();
        let pointer = pointer_with(&dir, &format!(r#"{{"pkg/a.bin":"{hash}"}}"#), "pkg").unwrap();
        let hashes = HashCache::default();
        assert!(pointer.verify(&dir, &hashes).is_ok());
        std::fs::write(dir.join("pkg/a.bin"), b"other weights").unwrap();
        assert!(pointer.verify(&dir, &hashes).is_err());
        std::fs::remove_file(dir.join("pkg/a.bin")).unwrap();
        assert!(pointer.verify(&dir, &hashes).is_err());
    }
}

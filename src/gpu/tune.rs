//! Kernels with several forms (tile shapes, register blocks, …) choose one per adapter and
//! shape class: timed once on the first call of the class and remembered, in memory and in a
//! small JSON file keyed by adapter, driver and library version, like cubecl's autotune.
//! [`Tuning::Defaults`] (the default options' choice where `WGKERNELS_TUNE=off` is set)
//! takes each kernel's default form instead, so tests and CI run the same kernels every run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use super::lock;
use crate::{Error, Result};

/// How a kernel with several forms chooses one ([`GpuOptions::tuning`](crate::GpuOptions::tuning)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// Each kernel's default form for the adapter's device type, never timed. The default
    /// where `WGKERNELS_TUNE=off` is set.
    Defaults,
    /// Time every form on the first call of each shape class and keep the fastest, in memory
    /// and, where `cache` is a path, in that JSON file for later processes on the same
    /// adapter, driver and library version. A cache that cannot be read or written only
    /// costs the timing again.
    Measure {
        /// The cache file; [`Tuning::default_cache`] by default.
        cache: Option<PathBuf>,
    },
    /// Run the form of this name wherever a kernel has one (others take their defaults):
    /// for testing and benchmarking each form on every adapter. Several names separated by
    /// commas (`"tiled,loop"`) force each kernel's first form among them.
    Force(String),
}

impl Default for Tuning {
    /// [`Measure`](Tuning::Measure) with the [default cache](Tuning::default_cache); but
    /// [`Defaults`](Tuning::Defaults) where the environment has `WGKERNELS_TUNE=off`.
    fn default() -> Self {
        match std::env::var("WGKERNELS_TUNE").as_deref() {
            Ok("off" | "0" | "false") => Tuning::Defaults,
            _ => Tuning::Measure {
                cache: Tuning::default_cache(),
            },
        }
    }
}

impl Tuning {
    /// `$WGKERNELS_TUNE_CACHE`, else `$XDG_CACHE_HOME/wgkernels/tune.json`, else
    /// `$HOME/.cache/wgkernels/tune.json`; `None` where none is set.
    pub fn default_cache() -> Option<PathBuf> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(path) = var("WGKERNELS_TUNE_CACHE") {
            return Some(path.into());
        }
        let dir = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(dir.join("wgkernels").join("tune.json"))
    }
}

/// The cache key of an adapter: its name, backend, vendor and device ids, driver and the
/// library's version — what a choice depends on.
pub(crate) fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} | {:?} {:04x}:{:04x} | {} {} | wgkernels {}",
        info.name,
        info.backend,
        info.vendor,
        info.device,
        info.driver,
        info.driver_info,
        env!("CARGO_PKG_VERSION")
    )
}

/// The choices of one device.
pub(crate) struct Tuner {
    mode: Tuning,
    /// Adapter, driver and library version: the cache file's key.
    adapter: String,
    /// Shape class → the chosen form's name.
    chosen: Mutex<HashMap<String, String>>,
}

impl Tuner {
    /// The tuner of the adapter named `adapter` ([`adapter_key`]).
    pub(crate) fn new(mode: Tuning, adapter: String) -> Tuner {
        let chosen = match &mode {
            Tuning::Measure { cache: Some(path) } => {
                read_cache(path).remove(&adapter).unwrap_or_default()
            }
            _ => HashMap::new(),
        };
        Tuner {
            mode,
            adapter,
            chosen: Mutex::new(chosen),
        }
    }

    /// The form already chosen for `class`, without timing anything: a forced form where it
    /// is one of `forms`, else the remembered choice, else `default`.
    pub(crate) fn chosen(&self, class: &str, forms: &[String], default: &str) -> String {
        if let Tuning::Force(names) = &self.mode {
            let forced = names
                .split(',')
                .map(str::trim)
                .find(|name| forms.iter().any(|f| f == name));
            return forced.unwrap_or(default).to_string();
        }
        if let Tuning::Measure { .. } = self.mode {
            if let Some(form) = lock(&self.chosen).get(class) {
                if forms.contains(form) {
                    return form.clone();
                }
            }
        }
        default.to_string()
    }

    /// The form to run for `class`: [`chosen`](Self::chosen), or, on the first call of the
    /// class when measuring, the fastest of `forms` by `run` (which runs a form to completion
    /// and is timed twice, after a first run that compiles it). The caller runs the winner.
    ///
    /// A form that fails (a driver that cannot build it, memory it cannot get) is left out
    /// and the others compete; only a lost device, or every form failing, is an `Err` (the
    /// first form's).
    pub(crate) fn choose(
        &self,
        class: &str,
        forms: &[String],
        default: &str,
        mut run: impl FnMut(&str) -> Result<()>,
    ) -> Result<String> {
        let cache = match &self.mode {
            Tuning::Measure { cache } if !lock(&self.chosen).contains_key(class) => cache,
            _ => return Ok(self.chosen(class, forms, default)),
        };
        let mut best: Option<(f64, &String)> = None;
        let mut first_error = None;
        for form in forms {
            let mut time = || -> Result<f64> {
                run(form)?;
                let mut seconds = f64::INFINITY;
                for _ in 0..2 {
                    let start = Instant::now();
                    run(form)?;
                    seconds = seconds.min(start.elapsed().as_secs_f64());
                }
                Ok(seconds)
            };
            match time() {
                Ok(seconds) if best.is_none_or(|(fastest, _)| seconds < fastest) => {
                    best = Some((seconds, form));
                }
                Ok(_) => {}
                Err(lost @ Error::DeviceLost(_)) => return Err(lost),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let winner = match (best, first_error) {
            (Some((_, form)), _) => form.clone(),
            (None, Some(error)) => return Err(error),
            (None, None) => default.to_string(),
        };
        lock(&self.chosen).insert(class.to_string(), winner.clone());
        if let Some(path) = cache {
            // Best effort: another process may write the same file; the last writer wins, and
            // a lost entry only costs its timing again.
            let mut all = read_cache(path);
            all.insert(self.adapter.clone(), lock(&self.chosen).clone());
            write_cache(path, &all);
        }
        Ok(winner)
    }

    /// Every choice made or loaded so far, `(class, form)`, sorted.
    pub(crate) fn choices(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = lock(&self.chosen)
            .iter()
            .map(|(class, form)| (class.clone(), form.clone()))
            .collect();
        all.sort();
        all
    }
}

type Cache = HashMap<String, HashMap<String, String>>;

fn read_cache(path: &PathBuf) -> Cache {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_cache(path: &PathBuf, cache: &Cache) {
    let Ok(text) = serde_json::to_vec_pretty(cache) else {
        return;
    };
    let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&temporary, text))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(forms: &[&str]) -> Vec<String> {
        forms.iter().map(|f| f.to_string()).collect()
    }

    /// A form that fails is left out; a lost device or every form failing is the error.
    #[test]
    fn a_failing_form_is_left_out() {
        let measuring = || Tuner::new(Tuning::Measure { cache: None }, "test".into());
        let forms = names(&["broken", "slow", "fast"]);
        let tuner = measuring();
        let chosen = tuner.choose("class", &forms, "slow", |form| match form {
            "broken" => Err(Error::Shader {
                op: "test",
                label: form.into(),
                message: "cannot build".into(),
            }),
            "slow" => {
                std::thread::sleep(std::time::Duration::from_millis(5));
                Ok(())
            }
            _ => Ok(()),
        });
        assert_eq!(chosen.unwrap(), "fast");
        assert_eq!(tuner.choices(), [("class".into(), "fast".into())]);

        let lost = measuring().choose("class", &forms, "slow", |form| match form {
            "fast" => Err(Error::DeviceLost("gone".into())),
            _ => Ok(()),
        });
        assert!(matches!(lost, Err(Error::DeviceLost(_))));
        let none = measuring().choose("class", &forms, "slow", |_| {
            Err(Error::OutOfMemory {
                op: "test",
                arg: "output",
                bytes: 1,
                in_use: 0,
                budget: None,
            })
        });
        assert!(matches!(none, Err(Error::OutOfMemory { .. })));
    }

    /// A forced list gives each kernel the first of its own forms it names, else its default;
    /// nothing is timed.
    #[test]
    fn a_forced_list_picks_each_kernels_first_named_form() {
        let tuner = Tuner::new(Tuning::Force("tiled, tiles".into()), "test".into());
        let never = |_: &str| -> Result<()> { panic!("a forced form is never timed") };
        let gemm = names(&["tiled", "rows"]);
        let attention = names(&["tiles", "rows"]);
        let harmonics = names(&["loop", "unrolled"]);
        assert_eq!(tuner.choose("a", &gemm, "rows", never).unwrap(), "tiled");
        assert_eq!(
            tuner.choose("b", &attention, "rows", never).unwrap(),
            "tiles"
        );
        assert_eq!(
            tuner.choose("c", &harmonics, "unrolled", never).unwrap(),
            "unrolled"
        );
    }
}

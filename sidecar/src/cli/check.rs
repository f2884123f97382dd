//! `rampart-sidecar check --config FILE`.

use std::path::Path;
use std::process::ExitCode;

use rampart_sidecar::config::Config;
use rampart_sidecar::directory::Directory;
use rampart_sidecar::policy::{lint, Policy};

pub fn run(config_path: &Path, strict: bool) -> Result<ExitCode, String> {
    let mut errors = Vec::new();
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let directory = Directory::load(&config.directory)
        .map_err(|e| errors.push(e.to_string()))
        .ok();
    let policy = Policy::load(&config.policy)
        .map_err(|e| errors.push(e.to_string()))
        .ok();
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Err(format!(
            "{} error(s): the sidecar would refuse this configuration",
            errors.len()
        ));
    }
    let (Some(directory), Some(policy)) = (directory, policy) else {
        return Err("internal: files loaded without errors yet missing".into());
    };
    let warnings = lint::lint(
        &policy,
        lint::Context {
            config: Some(&config),
            directory: Some(&directory),
        },
    );
    for w in &warnings {
        println!("warning: {}: {w}", policy.source().path().display());
    }
    println!(
        "ok: config {}, policy {} ({}), directory {} ({} services), {} warning(s)",
        config.source.path().display(),
        policy.source().path().display(),
        policy.source().version(),
        directory.source().path().display(),
        directory.services().len(),
        warnings.len()
    );
    Ok(if strict && !warnings.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

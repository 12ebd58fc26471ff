//! `okrsync check [--online]`: validate the configuration; with `--online`, reach every store,
//! analytics source and sink once.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::config;
use crate::daemon::Shutdown;
use crate::sources::AnySource;

pub(super) async fn check(
    path: &Path,
    env: &HashMap<String, String>,
    online: bool,
) -> Result<ExitCode> {
    let settings = match config::load(path, env) {
        Ok(s) => s,
        Err(e) => {
            crate::note!("{}: {}", path.display(), e.to_string().trim_end());
            return Ok(ExitCode::from(2));
        }
    };
    crate::outln!(
        "{}: OK ({}, {})",
        path.display(),
        crate::text::plural(settings.stores.len() as u64, "store"),
        crate::text::plural(settings.key_results.len() as u64, "key result"),
    );
    for n in &settings.notes {
        crate::outln!("note: {n}");
    }
    if !online {
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    let shutdown = Shutdown::never();
    // A check should answer quickly: one retry, short backoff (a sync uses the full policy).
    let quick = |mut s: crate::config::StoreSettings| {
        s.max_retries = s.max_retries.min(1);
        s.retry_base = s.retry_base.min(std::time::Duration::from_millis(500));
        s
    };
    // Time zones read here are reused for the analytics checks.
    let mut zones: HashMap<String, String> = HashMap::new();
    for store in &settings.stores {
        let store = quick(store.clone());
        let result = match AnySource::new(&store, &crate::runtime::Clock::System) {
            Ok(source) => match source.check_online(&shutdown).await {
                Ok(notes) => {
                    if let Some(tz) = store.timezone {
                        zones.insert(store.name.clone(), tz.name());
                    } else if let Ok(info) = source.store_info(&shutdown).await {
                        zones.insert(store.name.clone(), info.timezone.name());
                    }
                    Ok(notes)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(notes) => {
                crate::outln!("store {}: OK", store.name);
                for n in notes {
                    crate::outln!("  - {n}");
                }
            }
            Err(e) => {
                failed = true;
                crate::outln!("store {}: FAILED: {e}", store.name);
            }
        }
    }
    for a in &settings.analytics {
        let mut a = a.clone();
        a.max_retries = a.max_retries.min(1);
        a.retry_base = a.retry_base.min(std::time::Duration::from_millis(500));
        let linked = a.stores.first().cloned().unwrap_or_default();
        let Some(tz) = zones.get(&linked).cloned() else {
            crate::outln!(
                "analytics {} ({}): not checked: the time zone of store `{linked}` is unknown (its check failed above)",
                a.name,
                a.provider.name()
            );
            failed = true;
            continue;
        };
        let result = match crate::sources::analytics::AnyAnalytics::new(
            &a,
            &crate::runtime::Clock::System,
        ) {
            Ok(source) => source.check_online(&tz, &shutdown).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(notes) => {
                crate::outln!("analytics {} ({}): OK", a.name, a.provider.name());
                for n in notes {
                    crate::outln!("  - {n}");
                }
            }
            Err(e) => {
                failed = true;
                crate::outln!("analytics {} ({}): FAILED: {e}", a.name, a.provider.name());
            }
        }
    }
    for s in &settings.sinks {
        use crate::sinks::Sink;
        let result = match crate::sinks::AnySink::new(s, &crate::runtime::Clock::System) {
            Ok(sink) => sink.check_online().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(notes) => {
                crate::outln!("sink {} ({}): OK", s.name, s.kind.name());
                for n in notes {
                    crate::outln!("  - {n}");
                }
            }
            Err(e) => {
                failed = true;
                crate::outln!("sink {} ({}): FAILED: {e}", s.name, s.kind.name());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

//! `okrsync connect woocommerce|shopify`: ask for a store's credentials (hidden input, or
//! flags and environment variables for scripts), verify them with one call through the
//! store's own source (`AnySource::store_info`, the path `check --online` takes: same HTTP
//! client, retries and redaction), then append the store to the config with its secrets in
//! separate 0600 files. Nothing is written unless the store answered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::init::{NO_STORES_COMMENT, NO_STORES_LINE};
use crate::cli::ConnectPlatform;
use crate::config::{self, ExposeSecret, SecretString};
use crate::daemon::{Clock, Shutdown};
use crate::sources::AnySource;

/// A store about to be added.
struct NewStore {
    /// "WooCommerce" or "Shopify", for messages.
    label: &'static str,
    /// The config's `platform` value.
    platform: &'static str,
    name: String,
    /// `url` (WooCommerce) or `shop` (Shopify), and its value.
    location_key: &'static str,
    location: String,
    /// Other keys (`client_id`) and their values.
    plain: Vec<(&'static str, String)>,
    /// Secret keys (`consumer_key`, …) and their values.
    secrets: Vec<(&'static str, SecretString)>,
}

impl NewStore {
    /// The `[[stores]]` table; each secret as `secret_line(key, value)`.
    fn block(&self, header: &str, secret_line: impl Fn(&str, &SecretString) -> String) -> String {
        let mut s = String::from("\n");
        s.push_str(header);
        s.push_str("[[stores]]\n");
        s.push_str(&format!("name = {}\n", toml_str(&self.name)));
        s.push_str(&format!("platform = {}\n", toml_str(self.platform)));
        s.push_str(&format!(
            "{} = {}\n",
            self.location_key,
            toml_str(&self.location)
        ));
        for (key, value) in &self.plain {
            s.push_str(&format!("{key} = {}\n", toml_str(value)));
        }
        for (key, value) in &self.secrets {
            s.push_str(&secret_line(key, value));
            s.push('\n');
        }
        s.push_str(
            "# Cron schedule with a seconds field (UTC): every 15 minutes.\nschedule = \"0 */15 * * * *\"\n",
        );
        s
    }
}

pub(super) async fn connect(
    path: &Path,
    platform: ConnectPlatform,
    env: &HashMap<String, String>,
) -> Result<ExitCode> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} does not exist: run `okrsync --config {} init` first (or pass --config FILE)",
            path.display(),
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let base_dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let current = super::load_settings(path, env)?;
    let taken: Vec<&str> = current.stores.iter().map(|s| s.name.as_str()).collect();

    let (store, secrets_dir) = match platform {
        ConnectPlatform::Woocommerce {
            url,
            name,
            consumer_key,
            consumer_key_env,
            consumer_secret_env,
            secrets_dir,
        } => {
            let name = store_name(name, &url, &taken)?;
            let key = match consumer_key {
                Some(k) => nonempty("consumer key", SecretString::from(k.trim().to_string()))?,
                None => secret_input(
                    "WooCommerce consumer key (ck_…)",
                    "--consumer-key-env",
                    consumer_key_env.as_deref(),
                    env,
                )?,
            };
            let secret = secret_input(
                "WooCommerce consumer secret (cs_…)",
                "--consumer-secret-env",
                consumer_secret_env.as_deref(),
                env,
            )?;
            (
                NewStore {
                    label: "WooCommerce",
                    platform: "woocommerce",
                    name,
                    location_key: "url",
                    location: url.trim().trim_end_matches('/').to_string(),
                    plain: Vec::new(),
                    secrets: vec![("consumer_key", key), ("consumer_secret", secret)],
                },
                secrets_dir,
            )
        }
        ConnectPlatform::Shopify {
            shop,
            name,
            access_token_env,
            client_id,
            client_secret_env,
            secrets_dir,
        } => {
            let name = store_name(name, &shop, &taken)?;
            let (plain, secrets) = match client_id {
                Some(id) => {
                    let secret = secret_input(
                        "Shopify app client secret",
                        "--client-secret-env",
                        client_secret_env.as_deref(),
                        env,
                    )?;
                    (
                        vec![("client_id", id.trim().to_string())],
                        vec![("client_secret", secret)],
                    )
                }
                None => {
                    let token = secret_input(
                        "Shopify Admin API access token (shpat_…)",
                        "--access-token-env",
                        access_token_env.as_deref(),
                        env,
                    )?;
                    (Vec::new(), vec![("access_token", token)])
                }
            };
            (
                NewStore {
                    label: "Shopify",
                    platform: "shopify",
                    name,
                    location_key: "shop",
                    location: shop.trim().trim_end_matches('/').to_string(),
                    plain,
                    secrets,
                },
                secrets_dir,
            )
        }
    };

    // The config without the starter's "no store yet" line (and its comment), which TOML
    // would refuse next to a [[stores]] table.
    let base_text: String = text
        .lines()
        .filter(|l| {
            l.split_whitespace().collect::<String>() != NO_STORES_LINE.replace(' ', "")
                && !NO_STORES_COMMENT.contains(l)
        })
        .map(|l| format!("{l}\n"))
        .collect();

    // Validate the store as it will be configured, with the secrets in memory only.
    let candidate = base_text.clone()
        + &store.block("", |key, value| {
            format!("{key} = {}", toml_str(value.expose_secret()))
        });
    let settings = config::load_from_str(&candidate, &base_dir, None, env).map_err(|e| {
        anyhow::anyhow!(
            "the store cannot be added to {}: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    let Some(mut settings_store) = settings.stores.into_iter().find(|s| s.name == store.name)
    else {
        bail!("internal error: the new store `{}` is missing", store.name);
    };
    // One answer is enough to know: one retry, short backoff (as `check --online`).
    settings_store.max_retries = settings_store.max_retries.min(1);
    settings_store.retry_base = settings_store
        .retry_base
        .min(std::time::Duration::from_millis(500));
    crate::note!("Checking the credentials with {}…", store.location);
    let info = match AnySource::new(&settings_store, &Clock::System) {
        Ok(source) => source.store_info(&Shutdown::never()).await,
        Err(e) => Err(e),
    };
    let info = match info {
        Ok(info) => info,
        Err(e) => {
            crate::note!(
                "error: {} store `{}` at {} could not be verified: {e}",
                store.label,
                store.name,
                store.location
            );
            crate::note!(
                "Nothing was written: check the address and the credentials, then run the command again."
            );
            return Ok(ExitCode::from(3));
        }
    };

    // Verified: write the secrets, then the config.
    let (dir, dir_ref) = match secrets_dir {
        None => (base_dir.join("secrets"), "secrets".to_string()),
        Some(d) => {
            create_private_dir(&d)?;
            let abs =
                std::fs::canonicalize(&d).with_context(|| format!("resolving {}", d.display()))?;
            let r = abs.display().to_string();
            (abs, r)
        }
    };
    create_private_dir(&dir)?;
    let mut written = Vec::new();
    let mut refs = HashMap::new();
    for (key, value) in &store.secrets {
        let file = format!("{}.{key}", store.name);
        let p = dir.join(&file);
        if let Err(e) = super::write_private(&p, value.expose_secret()) {
            remove_all(&written);
            return Err(e);
        }
        written.push(p);
        refs.insert(*key, format!("{dir_ref}/{file}"));
    }
    let header = format!(
        "# Added by `okrsync connect {}`: the store reported time zone {} and currency {}\n\
         # (read again at each sync; set timezone = \"…\" to override). Its secrets are in the\n\
         # files below (mode 0600).\n",
        store.platform,
        info.timezone.name(),
        info.currency
    );
    let new_text = base_text
        + &store.block(&header, |key, _| {
            format!("{key}_file = {}", toml_str(&refs[key]))
        });
    if let Err(e) = config::load_from_str(&new_text, &base_dir, Some(path), env) {
        remove_all(&written);
        bail!(
            "internal error: the new configuration does not validate (nothing was written): {}",
            e.to_string().trim_end()
        );
    }
    if let Err(e) = replace_file(path, &new_text) {
        remove_all(&written);
        return Err(e);
    }
    crate::outln!(
        "Connected {} store `{}` ({}): time zone {}, currency {}.",
        store.label,
        store.name,
        store.location,
        info.timezone.name(),
        info.currency
    );
    crate::outln!("Added it to {}; its secrets are in:", path.display());
    for p in &written {
        crate::outln!("  {}", p.display());
    }
    crate::outln!(
        "Next: `okrsync check --online` (the full check), `okrsync sync`, then add key results with store = \"{}\".",
        store.name
    );
    Ok(ExitCode::SUCCESS)
}

/// The store's name: `--name`, or the first label of the host (`shop` for
/// `https://www.shop.example`, `my-store` for `my-store.myshopify.com`), or `main` for an
/// address that is an IP.
fn store_name(given: Option<String>, location: &str, taken: &[&str]) -> Result<String> {
    let name = match given {
        Some(n) => n.trim().to_string(),
        None => {
            let with_scheme = if location.contains("://") {
                location.trim().to_string()
            } else {
                format!("https://{}", location.trim())
            };
            let host = reqwest::Url::parse(&with_scheme)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let host = host.strip_prefix("www.").unwrap_or(&host);
            let first = host.split('.').next().unwrap_or_default();
            let label: String = first
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
                .to_ascii_lowercase();
            if label.is_empty() || label.chars().all(|c| c.is_ascii_digit()) || host.contains(':') {
                "main".to_string()
            } else {
                label
            }
        }
    };
    if taken.contains(&name.as_str()) {
        bail!("a store named `{name}` is already configured: pass --name NAME");
    }
    Ok(name)
}

/// A secret from the environment variable named by `--…-env`, else asked for on the terminal
/// without echo.
fn secret_input(
    what: &str,
    flag: &str,
    var: Option<&str>,
    env: &HashMap<String, String>,
) -> Result<SecretString> {
    let value = match var {
        Some(var) => match env.get(var) {
            Some(v) => v.trim().to_string(),
            None => bail!("{what}: environment variable {var} (given by {flag}) is not set"),
        },
        None => rpassword::prompt_password(format!("{what}: "))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot ask for the {what} on a terminal ({e}): pass {flag} VAR with the name of an environment variable holding it"
                )
            })?
            .trim()
            .to_string(),
    };
    nonempty(what, SecretString::from(value))
}

fn nonempty(what: &str, s: SecretString) -> Result<SecretString> {
    if s.expose_secret().is_empty() {
        bail!("the {what} is empty");
    }
    Ok(s)
}

/// A TOML basic string (JSON's escapes are valid TOML).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Replaces `path` by `text` atomically (a temporary file beside it, then a rename), keeping
/// the file's permissions.
fn replace_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let perms = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "okrsync.toml".into());
    let tmp = path.with_file_name(format!(".{file_name}.connect-tmp"));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.set_permissions(perms)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_come_from_the_host() {
        let n = |loc: &str| store_name(None, loc, &[]).unwrap();
        assert_eq!(n("https://www.Shop.example.com/"), "shop");
        assert_eq!(n("my-store.myshopify.com"), "my-store");
        assert_eq!(n("http://127.0.0.1:8080"), "main");
        assert!(store_name(None, "https://shop.example", &["shop"]).is_err());
        assert_eq!(
            store_name(Some("eu".into()), "x.example", &["shop"]).unwrap(),
            "eu"
        );
    }
}

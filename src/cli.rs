//! Command-line definitions (clap). No logic: see `commands/` for what each command does.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// okrsync keeps your OKR key results current from your store's orders.
#[derive(Debug, Parser)]
#[command(name = "okrsync", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML); `OKRSYNC__SECTION__KEY` variables override its keys.
    #[arg(
        long,
        global = true,
        default_value = "okrsync.toml",
        env = "OKRSYNC_CONFIG"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Output of a listing that spreadsheets may also read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

/// What `kpis --compare` compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum CompareArg {
    /// The period just before (the 30 days before `last_30_days`, the same span of last month
    /// for `month_to_date`, …).
    PreviousPeriod,
    /// The same dates a year earlier.
    PreviousYear,
}

/// What `okrsync export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportWhat {
    /// Every KPI of every store over `--window`.
    Kpis,
    /// Every check-in of every key result.
    Checkins,
    /// Every stored order, any status.
    Orders,
}

/// The file format of `okrsync export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: sync every store now and then on its schedule until SIGINT/SIGTERM.
    Run,
    /// Sync now (all stores, or one), then update key results.
    Sync {
        /// Only this store.
        #[arg(long)]
        store: Option<String>,
        /// Ignore cursors and re-read the whole history (idempotent: nothing is counted twice).
        #[arg(long)]
        full: bool,
    },
    /// Print KPIs for a store (or "all") over a window.
    Kpis {
        /// A store name or "all" (default: the only store, or all).
        #[arg(long)]
        store: Option<String>,
        /// today, yesterday, last_7_days, last_30_days, last_90_days, week_to_date,
        /// month_to_date, quarter_to_date, year_to_date, previous_month, previous_quarter,
        /// previous_year, or YYYY-MM-DD..YYYY-MM-DD.
        #[arg(long, default_value = "last_30_days")]
        window: String,
        /// Also compute product_net_sales and product_units for this product id or SKU.
        #[arg(long)]
        product: Option<String>,
        /// A table for people, or JSON for scripts (plain numbers, rates as fractions).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also show each KPI over the earlier span and the change (docs/kpis.md).
        #[arg(long, value_enum)]
        compare: Option<CompareArg>,
    },
    /// Print key results with their current value, progress and status.
    Krs {
        /// A table for people, or JSON for scripts (plain numbers, rates as fractions).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Print a key result's check-ins (each change of its value), oldest first.
    History {
        /// The key result's id (as in `okrsync krs`).
        kr_id: String,
        /// Only check-ins made on or after this day (YYYY-MM-DD, in the key result's time zone).
        #[arg(long)]
        since: Option<String>,
        /// A table for people, JSON for scripts, or CSV for spreadsheets (plain numbers).
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Send check-ins waiting in the outbox to their sinks now (also those waiting for a retry).
    Push {
        /// Only this sink.
        #[arg(long)]
        sink: Option<String>,
        /// List what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// First make a digest now (as `[digest]` schedules it) and queue it for its sinks.
        #[arg(long)]
        digest: bool,
    },
    /// Print the sync log (syncs and deliveries), newest first.
    Logs {
        /// Only the runs of this store or analytics source.
        #[arg(long)]
        store: Option<String>,
        /// How many runs to show, newest first (at least 1).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Only failed and partial runs.
        #[arg(long)]
        failed: bool,
        /// A table for people (times in the stores' or this computer's zone), or JSON for
        /// scripts (times in UTC).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Validate the configuration and print every problem; `--online` also calls each store.
    Check {
        /// Also call each store, analytics source and sink once to check its credentials.
        #[arg(long)]
        online: bool,
    },
    // ── Reading the past and explaining a number (issue 18) ──
    /// Show what makes a KPI: the orders counted (and their refunds), those left out and why,
    /// the customers counted as repeat / returning / new, the days of sessions.
    Explain {
        /// The KPI id (as in `okrsync kpis`), e.g. net_sales.
        kpi: String,
        /// A store name or "all" (default: the only store, or all).
        #[arg(long)]
        store: Option<String>,
        /// A window as in `okrsync kpis`.
        #[arg(long, default_value = "last_30_days")]
        window: String,
        /// The product id or SKU, for product_net_sales and product_units.
        #[arg(long)]
        product: Option<String>,
        /// Output: a table to read, JSON for scripts, CSV for a spreadsheet.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Export KPIs, check-ins or orders for a spreadsheet or a BI tool.
    Export {
        /// What to export: every KPI of every store over --window, every check-in, or every
        /// stored order (no customer data).
        #[arg(long, value_enum)]
        what: ExportWhat,
        /// CSV (header row, RFC 4180) or JSON (an array of objects).
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// For `--what kpis`: the window, as in `okrsync kpis`.
        #[arg(long, default_value = "last_30_days")]
        window: String,
        /// Write to this file (atomically: a temporary file renamed into place); default stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Copy the database to FILE (SQLite online backup; safe while the daemon runs).
    Backup {
        /// Where to write the copy (created readable by you only).
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    // --- onboarding and deployment (demo, init, connect, health) ---
    /// Run the whole pipeline against built-in simulated stores on 127.0.0.1.
    Demo {
        /// Keep the demo config and database here (default: a temporary directory deleted on
        /// exit; with --serve, ./okrsync-demo).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Days of simulated history.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Keep the simulated stores running after the demo, so that `sync`, `run` and
        /// `check --online` work on the demo config; Ctrl-C (or SIGTERM) stops them.
        #[arg(long)]
        serve: bool,
        /// The global --config, hidden here: demo writes its own config into --dir and ignores
        /// it (it holds the global option's value when given before or after `demo`).
        #[arg(long, hide = true)]
        config: Option<PathBuf>,
    },
    /// Write a commented starter configuration to the --config path (default ./okrsync.toml);
    /// never overwrites an existing file.
    Init,
    /// Add a store to the configuration: ask for its credentials, verify them with one call,
    /// read its time zone and currency, and append it with its secrets in separate 0600 files.
    Connect {
        #[command(subcommand)]
        platform: ConnectPlatform,
    },
    /// Check that the status server of a running daemon answers `GET /healthz` (for container
    /// health checks): exit 0 when it answers 200, 1 otherwise.
    Health {
        /// The URL to probe (default: http://<[http] listen of the config>/healthz).
        #[arg(long)]
        url: Option<String>,
    },
}

/// The platform of `okrsync connect`.
#[derive(Debug, Subcommand)]
pub enum ConnectPlatform {
    /// A WooCommerce store (REST API key with Read permission: WooCommerce → Settings →
    /// Advanced → REST API).
    Woocommerce {
        /// The site URL, e.g. https://shop.example.com.
        #[arg(long)]
        url: String,
        /// The store's name in the config (default: from the site's host name).
        #[arg(long)]
        name: Option<String>,
        /// The consumer key (ck_…); asked for when neither this nor --consumer-key-env is given.
        #[arg(long, conflicts_with = "consumer_key_env")]
        consumer_key: Option<String>,
        /// Read the consumer key from this environment variable.
        #[arg(long, value_name = "VAR")]
        consumer_key_env: Option<String>,
        /// Read the consumer secret (cs_…) from this environment variable; asked for with
        /// hidden input when not given.
        #[arg(long, value_name = "VAR")]
        consumer_secret_env: Option<String>,
        /// Directory for the secret files (default: `secrets` beside the config file).
        #[arg(long, value_name = "DIR")]
        secrets_dir: Option<PathBuf>,
    },
    /// A Shopify store: a legacy custom app's Admin API access token, or a Dev Dashboard app's
    /// client ID and secret (scopes read_orders, read_all_orders, read_customers).
    Shopify {
        /// The shop, e.g. my-store.myshopify.com (or a full https:// URL).
        #[arg(long)]
        shop: String,
        /// The store's name in the config (default: from the shop's host name).
        #[arg(long)]
        name: Option<String>,
        /// Read the Admin API access token (shpat_…) of a legacy custom app from this
        /// environment variable; asked for with hidden input when neither this nor --client-id
        /// is given.
        #[arg(long, value_name = "VAR", conflicts_with = "client_id")]
        access_token_env: Option<String>,
        /// A Dev Dashboard app's Client ID, instead of an access token: okrsync exchanges it
        /// and the client secret for tokens itself.
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
        /// Read the app's client secret from this environment variable (with --client-id);
        /// asked for with hidden input when not given.
        #[arg(long, value_name = "VAR", requires = "client_id")]
        client_secret_env: Option<String>,
        /// Directory for the secret files (default: `secrets` beside the config file).
        #[arg(long, value_name = "DIR")]
        secrets_dir: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    /// Every argument of every command, with the path of commands leading to it, that has
    /// no help text (`--help` and `--version` excepted).
    fn undocumented(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                found.push(format!("{path} {id}"));
            }
        }
        if cmd.get_about().is_none() && cmd.get_long_about().is_none() {
            found.push(format!("{path} (the command itself)"));
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }

    #[test]
    fn every_command_and_argument_has_help() {
        let mut cmd = super::Cli::command();
        cmd.build();
        let mut found = Vec::new();
        undocumented(&cmd, "okrsync", &mut found);
        assert!(found.is_empty(), "without help text: {found:?}");
        // And every command's help renders.
        for sub in cmd.get_subcommands_mut() {
            let help = sub.render_help().to_string();
            assert!(help.contains("Usage"), "{help}");
        }
    }

    #[test]
    fn logs_limit_zero_is_refused() {
        let err = super::Cli::try_parse_from(["okrsync", "logs", "--limit", "0"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let msg = err.to_string();
        assert!(msg.contains("--limit"), "{msg}");
        assert!(super::Cli::try_parse_from(["okrsync", "logs", "--limit", "1"]).is_ok());
    }
}

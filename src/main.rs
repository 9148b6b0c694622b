//! The `portcullis` command: runs the gateway.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use portcullis::admin::Control;
use portcullis::config::NodeConfig;
use portcullis::model::load_standalone_file;
use portcullis::plugins::{credentials, Registry};
use portcullis::proxy::Shared;
use portcullis::snapshot::{compile, Snapshot};
use portcullis::store::EmbeddedStore;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Portcullis: an API gateway that authenticates API consumers with JSON Web Tokens before
/// proxying their requests upstream (a drop-in for APISIX's jwt-auth and Kong's jwt plugin).
///
/// Without a subcommand, `portcullis` is `portcullis run -c config/config.yaml`.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway (the default).
    Run(RunArgs),
    /// Import a Kong declarative file (`_format_version: "3.0"`: services, routes, consumers
    /// with jwt_secrets, plugins) into the configuration store. Every object is validated as
    /// the Admin API would; if any is refused nothing is written. What cannot be translated is
    /// listed. Run it while the gateway is stopped (the store is locked while it runs).
    Import(ImportArgs),
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The Kong declarative file (YAML or JSON).
    file: PathBuf,
    /// Node config file (for data_dir).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Default)]
struct RunArgs {
    /// Node config file. A missing file at the default path means built-in defaults.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Declarative routes/services/upstreams/consumers file (APISIX standalone `apisix.yaml`
    /// shape, YAML or JSON); overrides `standalone` in the config. Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    standalone: Option<PathBuf>,
}

const DEFAULT_CONFIG: &str = "config/config.yaml";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Import(args)) => import(args),
        None => run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let explicit = args.config.is_some();
    let path = args.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let mut config = NodeConfig::load_or_default(&path, explicit)?;
    if let Some(file) = args.standalone {
        config.standalone = Some(file);
    }
    init_logging(&config.log_level);

    if let Some(key) = config
        .ensure_admin_key()
        .context("cannot set up the admin key")?
    {
        println!(
            "portcullis: generated an admin API key (kept in {}): {key}",
            config.data_dir.join("admin_key").display()
        );
    }

    let standalone = config.standalone.clone();
    let snapshot = match &standalone {
        Some(file) => load(file).map_err(|e| anyhow::anyhow!(e))?,
        None => Snapshot::empty(),
    };
    let shared = Arc::new(Shared::new(config, snapshot));
    let cfg = &shared.config;
    // The Admin API and its store are the configuration source unless a standalone file is;
    // the stored configuration is loaded and published before any worker accepts a request.
    let admin = if standalone.is_some() {
        tracing::info!(
            "standalone mode: the Admin API is off, the configuration comes from the file"
        );
        None
    } else {
        let store = EmbeddedStore::open(&cfg.data_dir)?;
        let control = Control::open(Box::new(store), shared.clone(), Box::new(Registry))
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg.data_dir.display()))?;
        if cfg.admin.enabled {
            let addr =
                portcullis::admin::start(cfg.admin.clone(), cfg.server_header.clone(), control)
                    .with_context(|| {
                        format!("cannot listen on {} for the Admin API", cfg.admin.listen)
                    })?;
            Some(addr)
        } else {
            None
        }
    };
    let gateway = portcullis::runtime::start(shared.clone())?;
    tracing::info!(
        listen = ?cfg.node_listen,
        admin = ?admin,
        workers = cfg.workers,
        driver = gateway.driver,
        "portcullis {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let reload: Option<portcullis::runtime::Reload> =
        standalone.map(|file| -> portcullis::runtime::Reload { Box::new(move || load(&file)) });
    gateway.wait(reload)?;
    Ok(())
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let explicit = args.config.is_some();
    let path = args.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let config = NodeConfig::load_or_default(&path, explicit)?;
    let doc = read_document(&args.file).map_err(|e| anyhow::anyhow!(e))?;
    if !portcullis::kong::is_kong(&doc) {
        anyhow::bail!(
            "{}: not a Kong declarative file (no _format_version)",
            args.file.display()
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let store = EmbeddedStore::open(&config.data_dir)?;
    match portcullis::kong::import::into_store(Box::new(store), &doc) {
        Ok(report) => {
            for s in &report.skipped {
                println!("not imported: {s}");
            }
            println!(
                "imported {} objects from {} into {}",
                report.written,
                args.file.display(),
                config.data_dir.display()
            );
            Ok(())
        }
        Err(errors) => anyhow::bail!(
            "{}: nothing imported:\n  {}",
            args.file.display(),
            errors.join("\n  ")
        ),
    }
}

fn read_document(file: &std::path::Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("failed to read config file {}: {e}", file.display()))?;
    let json = file.extension().is_some_and(|e| e == "json");
    portcullis::model::parse_text(&text, json).map_err(|e| format!("{}: {e}", file.display()))
}

/// Loads, validates and compiles a standalone file (APISIX's shape, or a Kong declarative
/// file); every problem is in the error.
fn load(file: &std::path::Path) -> Result<Snapshot, String> {
    let doc = read_document(file)?;
    if portcullis::kong::is_kong(&doc) {
        return portcullis::kong::import::snapshot(&doc).map_err(|e| {
            format!(
                "{}: invalid configuration:\n  {}",
                file.display(),
                e.join("\n  ")
            )
        });
    }
    let set = load_standalone_file(file, &Registry).map_err(|e| {
        format!(
            "{}: invalid configuration:\n  {}",
            file.display(),
            e.0.join("\n  ")
        )
    })?;
    let index = credentials::index_of(&set.consumers)
        .map_err(|e| format!("{}: invalid configuration:\n  {e}", file.display()))?;
    compile(&set, std::sync::Arc::new(index)).map_err(|e| format!("{}: {e}", file.display()))
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

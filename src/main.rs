//! The `portcullis` command: runs the gateway.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use portcullis::admin::{AtRest, Control};
use portcullis::config::NodeConfig;
use portcullis::jwt::{Alg, SignKey};
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
    /// Make or examine JSON Web Tokens (instead of pasting secrets into a website).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Sign a token offline and print it.
    ///
    /// Example (seed 000's consumer): portcullis token sign --secret
    /// jack-hs256-secret-that-is-very-long --claim key=jack-key --expires-in 3600
    Sign(SignArgs),
    /// Decode a token and say why jwt-auth or Kong's jwt would refuse it.
    Inspect(InspectArgs),
}

#[derive(clap::Args)]
struct SignArgs {
    /// Algorithm: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA.
    #[arg(long, default_value = "HS256")]
    alg: String,
    /// HMAC secret (HS algorithms). Prefer --secret-file or PORTCULLIS_JWT_SECRET: command
    /// lines are visible to other users of the machine.
    #[arg(long, env = "PORTCULLIS_JWT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// File holding the HMAC secret (a trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// The secret is standard base64 (jwt-auth's base64_secret).
    #[arg(long)]
    base64_secret: bool,
    /// PEM private key file (RS*, PS*, ES*, EdDSA).
    #[arg(long, value_name = "FILE")]
    private_key: Option<PathBuf>,
    /// A payload claim NAME=VALUE; VALUE is JSON when it parses as JSON (numbers, true,
    /// objects), else a string. Repeat for more claims.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// Add exp = now + SECONDS.
    #[arg(long, value_name = "SECONDS")]
    expires_in: Option<u64>,
    /// Add nbf = now.
    #[arg(long)]
    not_before_now: bool,
    /// A header field NAME=VALUE (e.g. kid=my-key).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The token (a leading "Bearer " is ignored).
    token: String,
    /// Check the signature with this HMAC secret.
    #[arg(long, env = "PORTCULLIS_JWT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Check the signature with this PEM public key file.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// The credential's algorithm (defaults to the token's own alg when it is a known one).
    #[arg(long)]
    alg: Option<String>,
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
        Some(Command::Token(TokenCommand::Sign(args))) => token_sign(args),
        Some(Command::Token(TokenCommand::Inspect(args))) => token_inspect(args),
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
    portcullis::jwt::p256::set_table_budget(config.jwt_es256_tables);

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
    // Read the trusted CA certificates now: a bad file stops the start, not the first request.
    shared
        .upstream_tls
        .load()
        .map_err(|e| anyhow::anyhow!("cannot set up TLS to upstreams: {e}"))?;
    // The Admin API and its store are the configuration source unless a standalone file is;
    // the stored configuration is loaded and published before any worker accepts a request.
    let admin = if standalone.is_some() {
        tracing::info!(
            "standalone mode: the Admin API is off, the configuration comes from the file"
        );
        None
    } else {
        let at_rest = at_rest(cfg)?;
        let store = EmbeddedStore::open(&cfg.data_dir)?;
        let control = Control::open(Box::new(store), shared.clone(), Box::new(Registry), at_rest)
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
    let at_rest = at_rest(&config)?;
    let store = EmbeddedStore::open(&config.data_dir)?;
    match portcullis::kong::import::into_store(Box::new(store), &doc, at_rest) {
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

/// How the store's secret fields are sealed: `data_encryption`, with the keyring loaded (or
/// generated) from `data_dir`.
fn at_rest(config: &NodeConfig) -> anyhow::Result<AtRest> {
    let keyring = config
        .keyring()
        .context("cannot set up the store encryption keyring")?;
    AtRest::new(keyring, config.data_encryption.enable_encrypt_fields)
        .map_err(|e| anyhow::anyhow!(e))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn parse_alg(name: &str) -> anyhow::Result<Alg> {
    Alg::parse(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown algorithm {name:?} (one of: {})",
            Alg::ALL.map(|a| a.as_str()).join(" ")
        )
    })
}

fn name_value(arg: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("{arg:?}: expected NAME=VALUE"))?;
    let value =
        serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.into()));
    Ok((name.to_string(), value))
}

fn token_sign(args: SignArgs) -> anyhow::Result<()> {
    let alg = parse_alg(&args.alg)?;
    let key = if alg.is_hmac() {
        let secret = match (&args.secret, &args.secret_file) {
            (_, Some(f)) => std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            (Some(s), None) => s.clone(),
            (None, None) => anyhow::bail!("{} needs --secret or --secret-file", alg.as_str()),
        };
        let bytes = if args.base64_secret {
            portcullis::plugins::jwt_auth::decode_std_base64(&secret)
                .ok_or_else(|| anyhow::anyhow!("--base64-secret: the secret is not base64"))?
        } else {
            secret.into_bytes()
        };
        SignKey::Hmac(bytes)
    } else {
        let f = args
            .private_key
            .ok_or_else(|| anyhow::anyhow!("{} needs --private-key FILE", alg.as_str()))?;
        SignKey::Pem(
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?,
        )
    };
    let mut payload = serde_json::Map::new();
    for c in &args.claims {
        let (k, v) = name_value(c)?;
        payload.insert(k, v);
    }
    let now = unix_now();
    if let Some(secs) = args.expires_in {
        payload.insert("exp".into(), (now + secs as i64).into());
    }
    if args.not_before_now {
        payload.insert("nbf".into(), now.into());
    }
    let mut header = serde_json::Map::new();
    for h in &args.headers {
        let (k, v) = name_value(h)?;
        header.insert(k, v);
    }
    let token = portcullis::jwt::sign(alg, &key, &header, &serde_json::Value::Object(payload))
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    println!("{token}");
    Ok(())
}

fn token_inspect(args: InspectArgs) -> anyhow::Result<()> {
    use portcullis::jwt::{inspect::inspect, VerifyKey};
    let token_alg = args
        .token
        .split('.')
        .next()
        .and_then(|h| {
            base64_simd::URL_SAFE_NO_PAD
                .decode_to_vec(h.trim_start_matches("Bearer "))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).and_then(Alg::parse));
    let alg = match &args.alg {
        Some(a) => Some(parse_alg(a)?),
        None => token_alg,
    };
    let key = match (&args.secret, &args.public_key, alg) {
        (Some(s), _, Some(a)) if a.is_hmac() => Some(VerifyKey::hmac(a, s.as_bytes())),
        (_, Some(f), Some(a)) => Some(
            VerifyKey::public_pem(
                a,
                &std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?,
        ),
        (Some(_), _, _) | (_, Some(_), _) => anyhow::bail!("cannot tell the algorithm: pass --alg"),
        _ => None,
    };
    let r = inspect(&args.token, unix_now(), key.as_ref());
    let pretty = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
            .unwrap_or_else(|| "(does not decode)".into())
    };
    println!("header:  {}", pretty(&r.header));
    println!("payload: {}", pretty(&r.payload));
    for n in &r.notes {
        println!("note: {n}");
    }
    let verdict = |name: &str, problems: &[String]| {
        if problems.is_empty() {
            println!(
                "{name}: would accept (given a matching credential{})",
                if key.is_some() {
                    ""
                } else {
                    "; signature not checked"
                }
            );
        } else {
            for p in problems {
                println!("{name}: would refuse: {p}");
            }
        }
    };
    verdict("jwt-auth (APISIX)", &r.apisix);
    verdict("jwt (Kong)", &r.kong);
    if r.apisix.is_empty() || r.kong.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("both plugins would refuse this token"))
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

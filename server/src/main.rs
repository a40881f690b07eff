//! `askwell-server` command line: `serve`, `vapid generate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use askwell_server::{app, AppState, StaticFiles, Store, VapidKeys};
use clap::{Args, Parser, Subcommand};

/// Askwell's server: subscriptions, topics, VAPID-signed Web Push, the prompt funnel.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage VAPID keys.
    #[command(subcommand)]
    Vapid(VapidCommand),
}

#[derive(Subcommand)]
enum VapidCommand {
    /// Print a new VAPID private key (base64url) and its public key.
    Generate,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ASKWELL_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Folder for the embedded database and the VAPID key.
    #[arg(long, env = "ASKWELL_DATA_DIR", default_value = "./askwell-data")]
    data_dir: PathBuf,
    /// Database URL; default: an SQLite file in the data dir.
    #[arg(long, env = "ASKWELL_DATABASE_URL")]
    database_url: Option<String>,
    /// VAPID private key (base64url); default: generated once into the data dir.
    #[arg(long, env = "ASKWELL_VAPID_PRIVATE_KEY", hide_env_values = true)]
    vapid_private_key: Option<String>,
    /// Serve this folder at `/` (the demo serves `www/`).
    #[arg(long)]
    site: Option<PathBuf>,
    /// Serve this folder at `/pkg/` (the demo serves the built npm package).
    #[arg(long)]
    pkg: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Vapid(VapidCommand::Generate) => {
            let keys = VapidKeys::generate();
            println!("ASKWELL_VAPID_PRIVATE_KEY={}", keys.private_key_base64());
            println!("public key: {}", keys.public_key_base64());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("askwell-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let store = match &args.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_in_dir(&args.data_dir).await,
    }
    .map_err(|err| format!("cannot open the database: {err}"))?;
    let vapid = match &args.vapid_private_key {
        Some(key) => VapidKeys::from_private_base64(key, "ASKWELL_VAPID_PRIVATE_KEY"),
        None => VapidKeys::load_or_generate(&args.data_dir),
    }
    .map_err(|err| err.to_string())?;
    let files = StaticFiles {
        site: args.site,
        pkg: args.pkg,
    };
    let state = AppState {
        store,
        vapid: Arc::new(vapid),
        files,
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.bind))?;
    let address = listener.local_addr().map_err(|err| err.to_string())?;
    // The demo tooling and tests wait for this exact line.
    println!("askwell-server listening on http://{address}/");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|err| format!("server failed: {err}"))
}

async fn shutdown_signal() {
    // If installing the handler fails we simply run until killed.
    let _ = tokio::signal::ctrl_c().await;
}

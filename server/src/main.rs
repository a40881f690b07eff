//! `askwell-server` command line: `serve`, `vapid generate`, `send`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use askwell_server::delivery::{Deliverer, DeliveryConfig};
use askwell_server::notification::{NotificationRequest, NotifyRequest, Target};
use askwell_server::store::{Created, Schedule};
use askwell_server::validate::EndpointPolicy;
use askwell_server::vapid::check_subject;
use askwell_server::{app, ErrorCode, Server, ServerConfig, Settings, StaticFiles, Store, VapidKeys};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

/// Askwell's server: subscriptions, topics, VAPID-signed Web Push, the prompt funnel.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and the delivery workers.
    Serve(ServeArgs),
    /// Manage VAPID keys.
    #[command(subcommand)]
    Vapid(VapidCommand),
    /// Send a notification to a topic, a user or everyone, and deliver it now.
    ///
    /// With --at, --local-time or --window (`POST /v1/notify`'s `deliver`,
    /// checked the same way) it delivers what is due now; `serve` sends the
    /// rest when due. Example: send --topic news --title "Good morning"
    /// --local-time 09:00
    Send(SendArgs),
    /// Post a synthetic population's funnel events to a running server (for
    /// the demo dashboard; stored as synthetic, never mixed with real data).
    Simulate(SimulateArgs),
}

#[derive(Args)]
struct SimulateArgs {
    /// The running askwell-server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Its admin token (synthetic data needs it).
    #[arg(long, env = "ASKWELL_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Simulated devices.
    #[arg(long, default_value_t = 4000)]
    devices: u32,
    /// Days of history (at most 29).
    #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=29))]
    days: u32,
    /// Random seed: the same seed makes the same people (a rerun adds nothing).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Subcommand)]
enum VapidCommand {
    /// Print a new VAPID private key (base64url) and its public key.
    Generate,
}

/// Where the data lives, how push is signed and which zone a scheduled
/// notification falls back to (shared by `serve` and `send`).
#[derive(Args)]
struct Common {
    /// Folder for the embedded database and the VAPID key.
    #[arg(long, env = "ASKWELL_DATA_DIR", default_value = "./askwell-data")]
    data_dir: PathBuf,
    /// Database URL; default: an SQLite file in the data dir.
    #[arg(long, env = "ASKWELL_DATABASE_URL")]
    database_url: Option<String>,
    /// VAPID private key (base64url); default: generated once into the data dir.
    #[arg(long, env = "ASKWELL_VAPID_PRIVATE_KEY", hide_env_values = true)]
    vapid_private_key: Option<String>,
    /// Contact for push services: mailto:you@example.com or an https:// URL.
    #[arg(long, env = "ASKWELL_VAPID_SUBJECT")]
    vapid_subject: Option<String>,
    /// Dev only: accept http:// and loopback/private push endpoints (local test push services).
    #[arg(long, env = "ASKWELL_ALLOW_INSECURE_ENDPOINTS", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    allow_insecure_endpoints: bool,
    /// IANA time zone a scheduled notification's `local_time` or `window` is
    /// read in for a recipient whose user and subscription have none.
    #[arg(long, env = "ASKWELL_DEFAULT_TIME_ZONE", default_value = "UTC")]
    default_time_zone: String,
    /// Delivery policy (JSON file): caps per person, quiet hours, categories;
    /// checked at start, every bad field named (README, *Delivery policy*).
    #[arg(long, env = "ASKWELL_DELIVERY_POLICY")]
    delivery_policy: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on.
    #[arg(long, env = "ASKWELL_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Token for the admin API (`Authorization: Bearer …`); unset disables it.
    #[arg(long, env = "ASKWELL_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Comma-separated origins allowed to call the API from browsers (CORS).
    #[arg(long, env = "ASKWELL_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Secret the app's backend signs user ids with (hex HMAC-SHA256 of the
    /// id); a device is bound to a user only with such a proof. Unset: no
    /// user binding.
    #[arg(long, env = "ASKWELL_IDENTITY_SECRET", hide_env_values = true)]
    identity_secret: Option<String>,
    /// Delivery worker tasks.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Seconds a worker holds a claimed delivery; after a crash, another
    /// process (or this one, restarted) takes it over once the lease ends.
    #[arg(long, env = "ASKWELL_DELIVERY_LEASE_SECONDS", default_value_t = 120)]
    lease_seconds: u64,
    /// Days funnel events are kept; older ones are deleted (hourly sweep).
    #[arg(long, env = "ASKWELL_EVENT_RETENTION_DAYS", default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=3650))]
    event_retention_days: u32,
    /// Most client connections open at once (lowered to fit `ulimit -n`).
    #[arg(long, env = "ASKWELL_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a client has to send its request headers; also how long an
    /// idle kept-alive connection stays open.
    #[arg(long, env = "ASKWELL_HEADER_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_seconds: u64,
    /// Seconds a client has to send a request body.
    #[arg(long, env = "ASKWELL_BODY_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout_seconds: u64,
    /// Seconds for a whole request, body and answer included.
    #[arg(long, env = "ASKWELL_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_seconds: u64,
    /// Comma-separated addresses or CIDR ranges of reverse proxies whose
    /// `X-Forwarded-For` is trusted for the client address (per-client
    /// limits). Default: none — forwarded headers are ignored.
    #[arg(long, env = "ASKWELL_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<String>,
    /// A JSON file of journey definitions (an array, each with its `id`)
    /// stored at start; one that is unchanged keeps its version.
    #[arg(long, env = "ASKWELL_JOURNEYS")]
    journeys: Option<PathBuf>,
    /// Serve this folder at `/` (the demo serves `www/`).
    #[arg(long)]
    site: Option<PathBuf>,
    /// Serve this folder at `/pkg/` (the demo serves the built npm package).
    #[arg(long)]
    pkg: Option<PathBuf>,
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    common: Common,
    /// Send to subscribers of this topic.
    #[arg(long, conflicts_with_all = ["user", "all"])]
    topic: Option<String>,
    /// Send to this app user's subscriptions.
    #[arg(long, conflicts_with = "all")]
    user: Option<String>,
    /// Send to every subscription.
    #[arg(long)]
    all: bool,
    /// Notification title.
    #[arg(long)]
    title: String,
    /// Notification body.
    #[arg(long, default_value = "")]
    body: String,
    /// Page to open on click.
    #[arg(long)]
    url: Option<String>,
    /// Not before this instant (RFC 3339, such as 2026-12-24T18:00:00Z; at
    /// most 365 days ahead): `deliver.at` of `POST /v1/notify`.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// At the next HH:MM (24-hour clock) on each recipient's clock (after
    /// --at, if given): `deliver.local_time`.
    #[arg(long, value_name = "HH:MM", conflicts_with = "window")]
    local_time: Option<String>,
    /// Now for recipients inside START-END on their clock, else at its next
    /// start (such as 09:00-21:00; 21:00-07:00 spans midnight): `deliver.window`.
    #[arg(long, value_name = "START-END")]
    window: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Send(args) => send(args).await,
        Command::Simulate(args) => simulate(args).await,
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

/// Opens the store and the keys and builds the server: its state and its
/// deliverer, counting into one metrics registry.
async fn open(
    common: &Common,
    settings: Settings,
    files: StaticFiles,
    lease: std::time::Duration,
) -> Result<Server, String> {
    let subject = common
        .vapid_subject
        .as_deref()
        .ok_or("ASKWELL_VAPID_SUBJECT is required: mailto:you@your-domain or https://your-domain/contact")?;
    // Before the data dir is created: a typo should leave nothing behind.
    check_subject(subject)?;
    let store = match &common.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_in_dir(&common.data_dir).await,
    }
    .map_err(|err| format!("cannot open the database: {err}"))?;
    let vapid = match &common.vapid_private_key {
        Some(key) => VapidKeys::from_private_base64(key, "ASKWELL_VAPID_PRIVATE_KEY"),
        None => VapidKeys::load_or_generate(&common.data_dir),
    }
    .map_err(|err| err.to_string())?;
    if common.allow_insecure_endpoints {
        tracing::warn!("INSECURE: accepting http:// and loopback/private push endpoints (--allow-insecure-endpoints); never use this in production");
    }
    Server::build(ServerConfig {
        store,
        vapid,
        vapid_subject: subject.to_owned(),
        settings,
        files,
        delivery: DeliveryConfig {
            allow_insecure: common.allow_insecure_endpoints,
            lease,
            ..DeliveryConfig::default()
        },
    })
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let trusted_proxies = args
        .trusted_proxies
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| askwell_server::client::Network::parse(p).map_err(|why| format!("ASKWELL_TRUSTED_PROXIES: {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    let allowed_origins = args
        .allowed_origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| askwell_server::origin::parse(o).map_err(|why| format!("ASKWELL_ALLOWED_ORIGINS: {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    let default_time_zone = default_time_zone(&args.common.default_time_zone)?;
    let delivery_policy = delivery_policy(&args.common)?;
    let limits = askwell_server::serve::Limits {
        max_connections: args.max_connections.max(1),
        header_timeout: std::time::Duration::from_secs(args.header_timeout_seconds),
        body_timeout: std::time::Duration::from_secs(args.body_timeout_seconds),
        request_timeout: std::time::Duration::from_secs(args.request_timeout_seconds),
    };
    let settings = Settings {
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        endpoints: EndpointPolicy {
            allow_insecure: args.common.allow_insecure_endpoints,
        },
        allowed_origins,
        identity_secret: args.identity_secret.filter(|s| !s.is_empty()).map(String::into_bytes),
        trusted_proxies,
        default_time_zone: Some(default_time_zone),
        delivery_policy,
    };
    let files = StaticFiles {
        site: args.site,
        pkg: args.pkg,
    };
    let lease = std::time::Duration::from_secs(args.lease_seconds.max(1));
    let Server { state, deliverer } = open(&args.common, settings, files, lease).await?;
    if let Some(path) = &args.journeys {
        let stored = askwell_server::journeys::load_file(&state.store, path).await?;
        tracing::info!(journeys = stored, file = %path.display(), "journeys loaded");
    }
    let stop = askwell_server::Stop::new();
    let workers: Vec<_> = (0..args.workers.max(1))
        .map(|_| tokio::spawn(deliverer.clone().run(state.wake.clone(), stop.clone())))
        .collect();
    let journeys = tokio::spawn(
        askwell_server::journeys::Runner::new(state.store.clone(), state.settings.default_zone())
            .with_metrics(state.metrics.clone())
            .run(std::time::Duration::from_secs(1), state.wake.clone(), stop.clone()),
    );
    let rollouts = tokio::spawn(askwell_server::rollout::run(
        state.clone(),
        std::time::Duration::from_secs(5),
        stop.clone(),
    ));
    let sweeper = tokio::spawn(sweep_events(
        state.store.clone(),
        args.event_retention_days,
        stop.clone(),
    ));
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.bind))?;
    let address = listener.local_addr().map_err(|err| err.to_string())?;
    // The demo tooling and tests wait for this exact line.
    println!("askwell-server listening on http://{address}/");
    let served = askwell_server::serve::serve(listener, app(state), limits, shutdown_signal()).await;
    stop.raise();
    for worker in workers {
        let _ = worker.await;
    }
    sweeper.abort();
    let _ = journeys.await;
    let _ = rollouts.await;
    served.map_err(|err| format!("server failed: {err}"))
}

/// `ASKWELL_DELIVERY_POLICY`, read and checked before anything is opened;
/// none lets every push through.
fn delivery_policy(common: &Common) -> Result<askwell::delivery::DeliveryPolicy, String> {
    match &common.delivery_policy {
        Some(path) => askwell_server::respect::load_file(path),
        None => Ok(askwell::delivery::DeliveryPolicy::default()),
    }
}

/// `ASKWELL_DEFAULT_TIME_ZONE`, checked against the bundled tz database
/// before anything is opened (like the other settings): a typo is a startup
/// error, not every zone-less recipient timed in UTC.
fn default_time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    askwell_server::users::time_zone(name.trim())
        .and_then(|canonical| askwell::journey::zone(&canonical))
        .ok_or_else(|| {
            format!(
                "ASKWELL_DEFAULT_TIME_ZONE: {name:?} is not an IANA time zone name the bundled tz database knows (such as UTC or Europe/Berlin)"
            )
        })
}

/// Deletes funnel events past the retention period, at start and hourly.
async fn sweep_events(store: Store, days: u32, stop: askwell_server::Stop) {
    while !stop.is_raised() {
        let before = askwell_server::store::now_ms() - i64::from(days) * askwell_server::store::DAY_MS;
        match store.events_sweep(before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "deleted events past the retention period"),
            Err(err) => tracing::error!(error = %err, "event retention sweep failed; next try in an hour"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            () = stop.raised() => return,
        }
    }
}

async fn send(args: SendArgs) -> Result<(), String> {
    // Checked before anything is opened: a refused notification leaves no trace.
    let now = askwell_server::store::now_ms();
    let (notification, schedule) = send_request(&args, now)?
        .prepare_scheduled(now)
        .map_err(|err| format!("{err} ({})", err.code()))?;
    let default_zone = default_time_zone(&args.common.default_time_zone)?;
    let lease = DeliveryConfig::default().lease;
    // The policy binds `send` too: it holds or drops what `serve` would.
    let settings = Settings {
        default_time_zone: Some(default_zone.clone()),
        delivery_policy: delivery_policy(&args.common)?,
        ..Settings::default()
    };
    let Server { state, deliverer } = open(&args.common, settings, StaticFiles::default(), lease).await?;
    let created = state
        .store
        .notification_create_scheduled(&notification, &schedule, &default_zone)
        .await
        .map_err(|e| e.to_string())?;
    if schedule == Schedule::default() {
        eprintln!("notification {}: {} recipients", created.id, created.recipients);
    } else {
        let zone = default_zone.iana_name().unwrap_or(&args.common.default_time_zone);
        eprintln!(
            "notification {}: {} recipients, {} scheduled, {} in the default time zone ({zone})",
            created.id, created.recipients, created.scheduled, created.defaulted_time_zone
        );
    }
    deliver_now(&state.store, &deliverer, &created).await
}

/// The `POST /v1/notify` request `send` stands for, so both go through the
/// same checks and payload building ([`NotifyRequest::prepare_scheduled`]).
fn send_request(args: &SendArgs, now_ms: i64) -> Result<NotifyRequest, String> {
    // clap refuses two of them at once; none at all is ours to refuse.
    if args.topic.is_none() && args.user.is_none() && !args.all {
        return Err("choose one of --topic, --user or --all".into());
    }
    Ok(NotifyRequest {
        to: Target {
            topic: args.topic.clone(),
            user: args.user.clone(),
            all: args.all.then_some(true),
            condition: None,
            segment: None,
        },
        notification: NotificationRequest {
            title: args.title.clone(),
            body: Some(args.body.clone()),
            url: args.url.clone(),
            ..NotificationRequest::default()
        },
        deliver: deliver(args, now_ms)?,
        ..NotifyRequest::default()
    })
}

/// `--at`, `--local-time` and `--window` as the API's `deliver`. Each is
/// first read alone by the API's own reader (`notification::schedule`), so a fault
/// names the option it came from in the API's words; the whole request is
/// then checked as `POST /v1/notify` checks it.
fn deliver(args: &SendArgs, now_ms: i64) -> Result<Option<Value>, String> {
    let options = [
        ("--at", "at", &args.at),
        ("--local-time", "local_time", &args.local_time),
        ("--window", "window", &args.window),
    ];
    let mut deliver = serde_json::Map::new();
    for (option, member, text) in options {
        let Some(text) = text else { continue };
        let value = if member == "window" {
            // The one spelling of ours: START-END for the API's [start, end].
            let (start, end) = text.split_once('-').ok_or_else(|| {
                format!(
                    "{option} {text:?}: expected START-END (24-hour clock), such as 09:00-21:00 ({})",
                    ErrorCode::InvalidSchedule
                )
            })?;
            json!([start, end])
        } else {
            json!(text)
        };
        askwell_server::notification::schedule(Some(json!({ member: value.clone() })), now_ms)
            .map_err(|err| format!("{option} {text:?}: {err} ({})", err.code()))?;
        deliver.insert(member.to_owned(), value);
    }
    Ok((!deliver.is_empty()).then_some(Value::Object(deliver)))
}

/// Runs delivery rounds until every delivery of the notification due now
/// is final (scheduled ones are left to `serve`'s workers), then prints
/// its counts.
async fn deliver_now(store: &Store, deliverer: &Arc<Deliverer>, created: &Created) -> Result<(), String> {
    let id = &created.id;
    loop {
        deliverer.round().await.map_err(|e| e.to_string())?;
        let counts = store
            .notification_counts(id)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        // Every final status (a push the person turned off, `muted`, or
        // one never sent, `withheld`, is as done as a delivered one).
        let done = counts.delivered
            + counts.failed
            + counts.pruned
            + counts.cancelled
            + counts.capped
            + counts.collapsed
            + counts.muted
            + counts.paused
            + counts.too_large
            + counts.withheld;
        // Held by the delivery policy: due later, like scheduled ones.
        let due = created.recipients - counts.scheduled - counts.held - counts.awaiting_winner;
        progress(done, due, counts.retrying);
        if done >= due {
            eprintln!();
            if counts.scheduled + counts.held > 0 {
                eprintln!(
                    "{} deliveries are due later ({} held by the delivery policy): `askwell-server serve` sends them then",
                    counts.scheduled + counts.held,
                    counts.held
                );
            }
            println!(
                "{}",
                json!({
                    "id": id,
                    "recipients": created.recipients,
                    "scheduled": created.scheduled,
                    "defaulted_time_zone": created.defaulted_time_zone,
                    "counts": counts,
                })
            );
            return Ok(());
        }
        if counts.queued == 0 {
            // Only retries left: wait for the next one to come due.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

async fn simulate(args: SimulateArgs) -> Result<(), String> {
    use askwell_server::simulate::{events, Population, DEMO_ARMS};
    let population = Population {
        devices: args.devices,
        days: args.days,
        seed: args.seed,
        now_ms: askwell_server::store::now_ms(),
    };
    let events = events(population, DEMO_ARMS);
    let client = reqwest::Client::new();
    let url = format!("{}/v1/events", args.server.trim_end_matches('/'));
    let (mut stored, total) = (0, events.len());
    for (sent, batch) in events.chunks(askwell_server::routes::MAX_EVENTS_BATCH).enumerate() {
        let body = serde_json::json!({ "synthetic": true, "events": batch }).to_string();
        let response = client
            .post(&url)
            .bearer_auth(&args.admin_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|err| format!("cannot reach {url}: {err} (is `cargo xtask demo` running?)"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {reply}"));
        }
        stored += reply["stored"].as_u64().unwrap_or(0);
        eprint!(
            "\r{} / {total} events posted",
            ((sent + 1) * askwell_server::routes::MAX_EVENTS_BATCH).min(total)
        );
    }
    eprintln!();
    println!(
        "SYNTHETIC data: {} devices, {total} events ({stored} new). Open the dashboard and choose \"Synthetic\".",
        args.devices
    );
    Ok(())
}

/// A one-line progress bar on stderr.
fn progress(done: i64, total: i64, retrying: i64) {
    let width = 30;
    let filled = if total > 0 {
        (done * width / total) as usize
    } else {
        width as usize
    };
    let bar: String = "#".repeat(filled) + &"-".repeat(width as usize - filled.min(width as usize));
    eprint!("\r[{bar}] {done}/{total} sent, {retrying} retrying");
}

async fn shutdown_signal() {
    // If installing the handler fails we simply run until killed.
    let _ = tokio::signal::ctrl_c().await;
}

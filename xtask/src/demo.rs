//! `cargo xtask demo`: build the package and the server, then serve `www/`.

use std::process::Command;

use crate::run::status;
use crate::{package, root, setup};

/// Admin token the demo uses unless ASKWELL_ADMIN_TOKEN is set (local use only).
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";
/// VAPID contact the demo uses unless ASKWELL_VAPID_SUBJECT is set.
pub const DEMO_SUBJECT: &str = "mailto:demo@askwell.dev";
/// The demo's identity secret (a real app keeps its own out of the page:
/// only its backend makes user proofs with it).
pub const DEMO_IDENTITY_SECRET: &str = "demo-identity-secret";
/// The demo's delivery policy (README, *Delivery policy*): caps, quiet hours
/// 22:00–07:00, the demo's categories. Only `cargo xtask demo` runs with it:
/// the end-to-end server (`steps::demo_server`) does not, because its tests
/// push at any hour and quiet hours would hold their pushes.
pub const DEMO_POLICY: &str = "www/policy.json";

/// Builds everything and runs askwell-server on `--bind` (default 127.0.0.1:8080).
pub fn run(args: &[String]) -> Result<(), String> {
    let bind = match args {
        [] => std::env::var("ASKWELL_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into()),
        [flag, value] if flag == "--bind" => value.clone(),
        _ => return Err("usage: cargo xtask demo [--bind ADDR]".into()),
    };
    setup::ensure(setup::Needs::BUILD)?;
    package::build()?.print();
    let root = root();
    status(
        Command::new("cargo")
            .current_dir(&root)
            .args(["build", "--package", "askwell-server"]),
    )?;
    println!("\nAskwell demo: open http://{bind}/ (Ctrl-C stops it; data in ./askwell-data)\n");
    let token = std::env::var("ASKWELL_ADMIN_TOKEN").unwrap_or_else(|_| DEMO_ADMIN_TOKEN.into());
    println!("Admin API token for this demo: {token} (set ASKWELL_ADMIN_TOKEN to choose another)");
    println!("Funnel dashboard: http://{bind}/dashboard.html — for sample data run `cargo xtask simulate` in another terminal");
    // ASKWELL_DELIVERY_POLICY names another policy file; set but empty, none.
    let policy = std::env::var("ASKWELL_DELIVERY_POLICY").unwrap_or_else(|_| DEMO_POLICY.into());
    let mut serve = Command::new(root.join("target/debug/askwell-server"));
    serve
        .current_dir(&root)
        .args([
            "serve",
            "--site",
            "www",
            "--pkg",
            "pkg",
            "--journeys",
            "www/journeys.json",
            "--bind",
            &bind,
        ])
        .env("ASKWELL_ADMIN_TOKEN", token)
        .env(
            "ASKWELL_IDENTITY_SECRET",
            std::env::var("ASKWELL_IDENTITY_SECRET").unwrap_or_else(|_| DEMO_IDENTITY_SECRET.into()),
        )
        .env(
            "ASKWELL_VAPID_SUBJECT",
            std::env::var("ASKWELL_VAPID_SUBJECT").unwrap_or_else(|_| DEMO_SUBJECT.into()),
        );
    if policy.is_empty() {
        // The server would refuse an empty path.
        serve.env_remove("ASKWELL_DELIVERY_POLICY");
        println!("Delivery policy: none (ASKWELL_DELIVERY_POLICY is empty)");
    } else {
        serve.args(["--delivery-policy", &policy]);
        println!(
            "Delivery policy: {policy} (quiet hours are on each device's clock; ASKWELL_DELIVERY_POLICY= for none)"
        );
    }
    status(&mut serve)
}

/// Posts a synthetic population to the running demo (`askwell-server simulate`).
pub fn simulate(args: &[String]) -> Result<(), String> {
    let server = match args {
        [] => "http://127.0.0.1:8080".to_owned(),
        [flag, value] if flag == "--server" => value.clone(),
        _ => return Err("usage: cargo xtask simulate [--server URL]".into()),
    };
    let token = std::env::var("ASKWELL_ADMIN_TOKEN").unwrap_or_else(|_| DEMO_ADMIN_TOKEN.into());
    status(
        Command::new("cargo")
            .current_dir(root())
            .args([
                "run",
                "--quiet",
                "--package",
                "askwell-server",
                "--",
                "simulate",
                "--server",
                &server,
            ])
            .env("ASKWELL_ADMIN_TOKEN", token),
    )
}

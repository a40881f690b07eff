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
    status(
        Command::new(root.join("target/debug/askwell-server"))
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
            ),
    )
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

//! `cargo xtask demo`: build the package and the server, then serve `www/`.

use std::process::Command;

use crate::run::status;
use crate::{package, root, setup};

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
    status(
        Command::new(root.join("target/debug/askwell-server"))
            .current_dir(&root)
            .args(["serve", "--site", "www", "--pkg", "pkg", "--bind", &bind]),
    )
}

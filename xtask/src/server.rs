//! A real askwell-server process for the steps that drive one (end to end,
//! API contract, fresh Vite app): built in debug, started on an ephemeral
//! port, killed when its handle drops.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Builds the debug askwell-server that [`Server::start`] runs.
pub(crate) fn build(root: &Path) -> Result<(), String> {
    let built = Command::new("cargo")
        .current_dir(root)
        .args(["build", "--quiet", "--package", "askwell-server"])
        .status();
    if built.is_ok_and(|s| s.success()) {
        Ok(())
    } else {
        Err("cannot build askwell-server".into())
    }
}

/// A running server; killed when dropped, so a step that ends early (or
/// panics) never leaves one holding a port or the runner's output pipe.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing `/`.
    pub(crate) url: String,
}

impl Server {
    /// Runs askwell-server on an ephemeral port over `data` with extra `args`
    /// and `envs`, and waits for its "listening" line.
    pub(crate) fn start(root: &Path, data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Self, String> {
        let mut child = Command::new(root.join("target/debug/askwell-server"))
            .current_dir(root)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .env("ASKWELL_VAPID_SUBJECT", crate::demo::DEMO_SUBJECT)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start askwell-server: {err}"))?;
        let stdout = child.stdout.take().ok_or("askwell-server has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = lines.by_ref().map_while(Result::ok).find_map(|line| {
            line.split_once("listening on ")
                .map(|(_, url)| url.trim_end_matches('/').to_owned())
        });
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        match url {
            Some(url) => Ok(Self { child, url }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err("askwell-server exited before listening".into())
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

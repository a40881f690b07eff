//! A throwaway local PostgreSQL cluster for the server's Postgres tests
//! (Debian's `postgresql` package), started on a free port and removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{output, status};

/// A running cluster; stopped and deleted when dropped.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub url: String,
}

impl Cluster {
    /// Initialises and starts a cluster in a fresh temporary directory.
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()?;
        let dir = std::env::temp_dir().join(format!("askwell-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let root = running_as_root();
        if root {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            status(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let data = dir.join("data");
        as_owner(root, &bin.join("initdb"), |c| {
            c.arg("-D")
                .arg(&data)
                .args(["--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
        })?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            dir.display()
        );
        as_owner(root, &bin.join("pg_ctl"), |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-w", "-t", "60", "-o", &options, "-l"])
                .arg(dir.join("log"))
                .arg("start");
        })?;
        Ok(Self {
            bin,
            dir,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let root = running_as_root();
        let data = self.dir.join("data");
        let _ = as_owner(root, &self.bin.join("pg_ctl"), |c| {
            c.arg("-D").arg(&data).args(["-m", "immediate", "stop"]);
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed PostgreSQL's binaries (`/usr/lib/postgresql/N/bin`).
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed (Debian package postgresql)".to_owned())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql".into())
}

fn running_as_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

fn as_owner(root: bool, program: &Path, args: impl FnOnce(&mut Command)) -> Result<(), String> {
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    args(&mut cmd);
    status(&mut cmd)
}

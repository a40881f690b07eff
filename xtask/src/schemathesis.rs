//! The API contract step of `cargo xtask test`: schemathesis (from PyPI, with
//! every dependency pinned in `xtask/schemathesis-requirements.txt`, in a
//! virtualenv under `target/`) fuzzes a fresh askwell-server against
//! `server/openapi.yaml` for a bounded time. Any 5xx, undocumented status,
//! content type or header, missing `Allow` on a 405, or response breaking its
//! schema fails the step; the output names the seed and a `curl` to reproduce.
//!
//! `server/tests/schemathesis/hooks.py` gives generated subscriptions a real
//! P-256 key (so the routes behind one are reached) and an endpoint under the
//! reserved `.invalid` domain (so the server's delivery workers push nowhere).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{output, status};
use crate::server::{self, Server};
use crate::tally::Tally;

/// Every package, pinned; the virtualenv is rebuilt when this text changes.
const REQUIREMENTS: &str = include_str!("../schemathesis-requirements.txt");
/// The fuzzing and stateful phases repeat until this budget is spent
/// (≈8,000 requests on two cores).
const BUDGET_SECONDS: &str = "60";
/// Hard stop for the whole run: the budget plus loading, the coverage phase
/// and shrinking a failure.
const KILL_AFTER_SECONDS: &str = "150";
/// What fails the step. Not `positive_data_acceptance`: the schema cannot say
/// "a point on the curve" or "a public host"; not `negative_data_rejection`:
/// `/v1/events` stores a batch's valid events beside its rejected ones.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance,\
                      unsupported_method,allow_header_conformance";
const ADMIN_TOKEN: &str = "schemathesis-admin-token";

const STEP: &str =
    "API contract (schemathesis against server/openapi.yaml: no 5xx, only documented statuses, headers and shapes)";

/// Runs the step: install if needed, build, start a server on a fresh data
/// dir, run schemathesis, stop the server.
pub(crate) fn step(root: &Path, tally: &mut Tally) {
    let prepared = ensure(root).and_then(|exe| server::build(root).map(|()| exe));
    let exe = match prepared {
        Ok(exe) => exe,
        Err(err) => return tally.fail(STEP, &err),
    };
    let work = root.join("target/schemathesis");
    let data = work.join("data");
    let _ = fs::remove_dir_all(&data);
    if let Err(err) = fs::create_dir_all(&work) {
        return tally.fail(STEP, &format!("{}: {err}", work.display()));
    }
    let envs = [
        ("ASKWELL_ADMIN_TOKEN", ADMIN_TOKEN),
        ("ASKWELL_IDENTITY_SECRET", "schemathesis-identity-secret"),
        ("RUST_LOG", "error"),
    ];
    // Killed when the step ends, however it ends.
    let server = match Server::start(root, &data, &[], &envs) {
        Ok(server) => server,
        Err(err) => return tally.fail(STEP, &err),
    };
    tally.step(STEP, &mut command(root, &exe, &work, &server.url));
}

/// The virtualenv's `schemathesis`, installed first if missing or stale.
fn ensure(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target/schemathesis-venv");
    let exe = venv.join("bin/schemathesis");
    let stamp = venv.join("askwell-requirements.txt");
    let current = fs::read_to_string(&stamp).is_ok_and(|text| text == REQUIREMENTS);
    if current && output(Command::new(&exe).arg("--version")).is_some() {
        return Ok(exe);
    }
    eprintln!("installing schemathesis into {} (pinned; once)", venv.display());
    status(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
    status(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--requirement",
            ])
            .arg(root.join("xtask/schemathesis-requirements.txt")),
    )?;
    fs::write(&stamp, REQUIREMENTS).map_err(|err| format!("{}: {err}", stamp.display()))?;
    Ok(exe)
}

/// `schemathesis run` against `url`, bounded by `timeout(1)`, run in `work`
/// (where it keeps the failures `st replay` reproduces).
fn command(root: &Path, exe: &Path, work: &Path, url: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.current_dir(work)
        .args(["--kill-after=10", KILL_AFTER_SECONDS])
        .arg(exe)
        .arg("run")
        .arg(root.join("server/openapi.yaml"))
        .args(["--url", url])
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["--checks", CHECKS])
        .args([
            "--max-examples",
            "50",
            "--max-time",
            BUDGET_SECONDS,
            "--request-timeout",
            "10",
        ])
        .args([
            "--generation-database",
            "none",
            "--no-color",
            "--output-truncate",
            "true",
        ])
        .env("SCHEMATHESIS_HOOKS", root.join("server/tests/schemathesis/hooks.py"));
    cmd
}

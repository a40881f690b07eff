//! Running child processes with readable errors.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

/// Runs `cmd` with inherited output; an error names the command and its status.
pub fn status(cmd: &mut Command) -> Result<(), String> {
    let shown = describe(cmd);
    eprintln!("$ {shown}");
    let status = cmd.status().map_err(|err| format!("cannot run `{shown}`: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// Runs `cmd` quietly and returns its stdout, or `None` if it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd`, echoing its stdout and stderr live, and returns both (merged, in
/// arrival order) with whether it succeeded.
pub fn tee(cmd: &mut Command) -> Result<(bool, String), String> {
    let shown = describe(cmd);
    eprintln!("$ {shown}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run `{shown}`: {err}"))?;
    let (sender, lines) = mpsc::channel();
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let sender = sender.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("{line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(sender);
    let collected: Vec<String> = lines.iter().collect();
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait().map_err(|err| format!("`{shown}`: {err}"))?;
    Ok((status.success(), collected.join("\n")))
}

/// The command line as a person would type it.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

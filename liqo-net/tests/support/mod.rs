//! What the data-plane tests share: the gate that skips them without root (but fails them
//! under CI), command helpers, and a network namespace removed on drop.
//!
//! Each test file uses a different part of it, so unused items are expected per test crate.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether a test may run: true as root with every program in `programs` (checked with its
/// version flag) and every path in `paths`; false (skip) otherwise, unless `CI` is set, where
/// a missing requirement fails the test.
pub(crate) fn requirements_met(test: &str, programs: &[&str], paths: &[&str]) -> bool {
    let mut missing = Vec::new();
    if effective_uid() != Some(0) {
        missing.push("root".to_owned());
    }
    for program in programs {
        let flag = if matches!(*program, "ip" | "ping") {
            "-V"
        } else {
            "--version"
        };
        if !succeeds(Command::new(program).arg(flag)) {
            missing.push(format!("the `{program}` program"));
        }
    }
    for path in paths {
        if !Path::new(path).exists() {
            missing.push((*path).to_owned());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs {what}; CI is set, so it must not be skipped"
    );
    eprintln!("skipping {test}: needs {what}");
    false
}

/// The effective user id, from `/proc/self/status` (no `unsafe` needed).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs `cmd`, panics with its stderr unless it succeeds, returns its stdout.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `cmd` succeeds (output discarded).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace `liqo-test-<tag>-<pid>` with `lo` up, deleted on drop (also when the
/// test panics).
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    pub(crate) fn new(tag: &str) -> Self {
        let name = format!("liqo-test-{tag}-{}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A command run inside the namespace.
    pub(crate) fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// `ip -n <ns> <args>`, which must succeed.
    pub(crate) fn ip(&self, args: &[&str]) -> String {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Whether `ip -n <ns> link show <link>` finds the link.
    pub(crate) fn has_link(&self, link: &str) -> bool {
        succeeds(Command::new("ip").args(["-n", &self.name, "link", "show", link]))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !succeeds(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("could not delete network namespace {}", self.name);
        }
    }
}

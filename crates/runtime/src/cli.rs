//! Command-line parsing. Global flags follow runsc's names.

use clap::{Args, Parser, Subcommand};
use rvisor_kernel::syscalls::{self, names, Status};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "rvisor", version, about = "An application kernel for containers")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct GlobalOpts {
    /// The platform that runs application code: systrap (seccomp traps, the
    /// default) or ptrace (PTRACE_SYSEMU, for hosts without seccomp).
    #[arg(long, global = true, default_value = "systrap", value_parser = ["ptrace", "systrap"])]
    pub platform: String,
    /// Log every system call with decoded arguments and result.
    #[arg(long, global = true)]
    pub strace: bool,
    /// Log Sentry internals.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Write logs (and --strace) to FILE instead of standard error.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a program in a fresh sandbox, with the caller's standard streams.
    Do(DoArgs),
    /// Print the syscall table with each entry's support status.
    Syscalls,
    /// The gofer: serves a root directory to a sandbox over a socket (internal).
    #[command(hide = true)]
    Gofer {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        fd: i32,
        #[arg(long)]
        read_only: bool,
    },
    /// The sandbox process `rvisor do` turns into (internal).
    #[command(hide = true)]
    Boot {
        #[arg(long)]
        request_fd: i32,
    },
}

#[derive(Args)]
pub struct DoArgs {
    /// Give the program a terminal (a sandbox pty bridged to this one), with job
    /// control, as `docker run -t` does; standard input must be a terminal.
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<String>,
}

pub fn print_syscalls() {
    for &(nr, name) in names::NAMES {
        let (status, note) = match syscalls::status_of(nr) {
            Status::Supported => ("supported", ""),
            Status::Partial(n) => ("partial", n),
            Status::Missing(n) => ("missing", n),
        };
        if note.is_empty() {
            println!("{nr:4} {name:24} {status}");
        } else {
            println!("{nr:4} {name:24} {status:9}  {note}");
        }
    }
}

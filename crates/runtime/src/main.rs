//! `rvisor`: the command-line front end and (later) OCI runtime.

mod cli;
mod request;
mod sandbox;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        cli::Command::Do(args) => sandbox::run_do(&cli.global, args),
        cli::Command::Boot { request_fd } => sandbox::run_boot(request_fd),
        cli::Command::Gofer { root, fd, read_only } => rvisor_gofer::gofer_main(&root, fd, read_only),
        cli::Command::Syscalls => {
            cli::print_syscalls();
            0
        }
    };
    std::process::exit(code);
}

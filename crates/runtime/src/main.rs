//! `rvisor`: the command-line front end and OCI runtime.

mod cgroup;
mod cli;
mod commands;
mod confine;
mod container;
mod control;
mod exec;
mod features;
mod filter;
mod gofers;
mod landlock;
mod network;
mod oci;
mod pod;
mod publish;
mod request;
mod sandbox;
mod seccomp;

use clap::Parser;
use cli::Command;

fn main() {
    let cli = cli::Cli::parse();
    let g = &cli.global;
    let done = |r: commands::Result<()>| r.map(|()| 0);
    let result = match cli.command {
        Command::Do(args) => Ok(sandbox::run_do(g, args)),
        Command::Boot { request_fd, ready_fd } => Ok(sandbox::run_boot(request_fd, ready_fd)),
        Command::Gofer { fd, roots } => match confine::gofer() {
            Ok(()) => rvisor_gofer::gofer_main(fd, &roots),
            Err(e) => Err(e),
        },
        Command::Syscalls => {
            cli::print_syscalls();
            Ok(0)
        }
        Command::Spec { bundle } => done(commands::spec(&bundle)),
        Command::Features => done(features::print()),
        Command::Create(a) => commands::create(g, &a, false).map(|_| 0),
        Command::Start { id } => done(commands::start(g, &id)),
        Command::Run { create, detach: true } => done(commands::run_detached(g, &create)),
        Command::Run { create, detach: false } => done(commands::run_foreground(g, &create)),
        Command::State { id } => done(commands::state(g, &id)),
        Command::Kill { all, id, signal } => done(commands::kill(g, &id, &signal, all)),
        Command::Delete { force, id } => done(commands::delete(g, &id, force)),
        Command::List { format, quiet } => done(commands::list(g, &format, quiet)),
        Command::Ps { format, id } => done(commands::ps(g, &id, &format)),
        Command::Events { stats, interval, id } => done(commands::events(g, &id, stats, &interval)),
        Command::Usage { id } => done(commands::usage(g, &id)),
        Command::Exec(a) => exec::exec(g, &a),
        Command::Pause { id } => done(commands::pause(g, &id, true)),
        Command::Resume { id } => done(commands::pause(g, &id, false)),
        Command::Update(a) => done(commands::update(g, &a)),
        Command::ExecWait { request_fd, ready_fd } => Ok(exec::exec_wait(request_fd, ready_fd)),
    };
    std::process::exit(result.unwrap_or_else(|e| commands::failed(g, &e)));
}

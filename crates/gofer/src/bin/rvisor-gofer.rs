//! A stand-alone gofer: `rvisor-gofer [gofer] --fd N --root FD[:ro]...`, the
//! arguments of `rvisor gofer`. The crate's tests spawn it; the runtime runs the
//! same code as its own `gofer` subcommand.

use rvisor_gofer::RootArg;

fn usage() -> ! {
    eprintln!("usage: rvisor-gofer [gofer] --fd N --root FD[:ro]...");
    std::process::exit(2)
}

fn main() {
    let mut roots: Vec<RootArg> = Vec::new();
    let mut fd = None;
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "gofer") {
        args.next();
    }
    while let Some(a) = args.next() {
        let value = args.next().and_then(|v| v.into_string().ok()).unwrap_or_else(|| usage());
        match a.to_str() {
            Some("--root") => roots.push(value.parse().unwrap_or_else(|_| usage())),
            Some("--fd") => fd = Some(value.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    let Some(fd) = fd else { usage() };
    rvisor_gofer::gofer_main(fd, &roots)
}

//! A stand-alone gofer: `rvisor-gofer [gofer] --root DIR --fd N [--read-only]`,
//! the arguments of `rvisor gofer`. The crate's tests spawn it; the runtime runs
//! the same code as its own `gofer` subcommand.

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: rvisor-gofer [gofer] --root DIR --fd N [--read-only]");
    std::process::exit(2)
}

fn main() {
    let mut root = None;
    let mut fd = None;
    let mut read_only = false;
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "gofer") {
        args.next();
    }
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--root") => root = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            Some("--fd") => {
                fd = args.next().and_then(|v| v.to_str().and_then(|s| s.parse().ok()));
                if fd.is_none() {
                    usage()
                }
            }
            Some("--read-only") => read_only = true,
            _ => usage(),
        }
    }
    let (Some(root), Some(fd)) = (root, fd) else { usage() };
    rvisor_gofer::gofer_main(&root, fd, read_only)
}

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

#[derive(Args, Clone, Default)]
pub struct GlobalOpts {
    /// The platform that runs application code: systrap (seccomp traps, the
    /// default), ptrace (PTRACE_SYSEMU, for hosts without seccomp) or kvm (guest
    /// ring 3 of a VM per process: hardware isolation, needs /dev/kvm).
    #[arg(long, global = true, default_value = "systrap", value_parser = ["ptrace", "systrap", "kvm"])]
    pub platform: String,
    /// systrap: patch syscall sites that trap again and again (`mov $nr, %eax;
    /// syscall`) to call the Sentry without a host signal, as runsc's systrap
    /// does (see docs/systrap-patching.md). On by default where the host has
    /// user-mode fsgsbase; `--systrap-patch=false` keeps every call a trap.
    #[arg(long, global = true, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub systrap_patch: bool,
    /// Log every system call with decoded arguments and result.
    #[arg(long, global = true)]
    pub strace: bool,
    /// Log Sentry internals.
    #[arg(long, global = true)]
    pub debug: bool,
    /// The Sentry's seccomp filter allows a host call it lacks and has the host log
    /// it (dmesg: `syscall=N`) instead of killing the sandbox, to find what is missing.
    #[arg(long, global = true, env = "RVISOR_DEBUG_SECCOMP")]
    pub debug_seccomp: bool,
    /// Write logs (and --strace) to FILE instead of standard error.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The format of --log: text, or json (one object a line, as runc writes
    /// for containerd).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Where container state lives.
    #[arg(long, global = true, default_value = crate::container::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Accepted for runc compatibility (a systemd cgroupsPath is understood
    /// without it).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// The network: none (the sandbox's own loopback only), host (inet
    /// sockets are host sockets, in a container's network namespace: less
    /// isolated) or sandbox (the sandbox's own network stack takes over the
    /// interfaces of the network namespace it joins, as runsc's default).
    /// Without this flag, a container follows its spec: a network namespace
    /// with a path (a pod's) means sandbox, a new one means none, and none at
    /// all means the host's, as runc gives; `do` means sandbox with --netns,
    /// else none. Sandbox needs a namespace to join: it would take the
    /// host's own interfaces.
    #[arg(long, global = true, value_parser = ["none", "host", "sandbox"])]
    pub network: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a program in a fresh sandbox, with the caller's standard streams.
    Do(DoArgs),
    /// Print the syscall table with each entry's support status.
    Syscalls,
    /// Write a default OCI config.json into the bundle directory.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print what this runtime honours of an OCI bundle (hooks, mount options,
    /// namespaces, capabilities, cgroups, seccomp) as the runtime spec's features
    /// JSON, as `runc features` does for containerd
    Features,
    /// Create a container from an OCI bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Create and start a container, and wait for it (unless --detach).
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container runs.
        #[arg(short, long)]
        detach: bool,
    },
    /// Print a container's OCI state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init, or to all its
    /// processes.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped (or, with --force, any) container.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the processes of a container (sandbox pids; json: an array of them).
    Ps {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
    },
    /// Print a container's statistics as runc does: every --interval until it stops,
    /// or once with --stats (JSON: {"type":"stats","id":ID,"data":{cpu,memory,pids}},
    /// measured by the sandbox for the container's own processes).
    Events {
        #[arg(long)]
        stats: bool,
        /// How often, as Go writes durations (5s, 500ms, 1m30s).
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Print the sandbox's memory by kind (anonymous, tmpfs, page cache, the
    /// Sentry's own) and how much of it the host backs, in bytes, as JSON.
    Usage { id: String },
    /// Run a new process in a running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's cgroup limits.
    Update(UpdateArgs),
    /// The gofer: serves a sandbox's host directories over a socket (internal).
    #[command(hide = true)]
    Gofer {
        #[arg(long)]
        fd: i32,
        /// An inherited directory descriptor to serve, `FD` or `FD:ro`.
        #[arg(long = "root")]
        roots: Vec<rvisor_gofer::RootArg>,
    },
    /// The sandbox process `rvisor do` turns into (internal).
    #[command(hide = true)]
    Boot {
        #[arg(long)]
        request_fd: i32,
        #[arg(long)]
        ready_fd: Option<i32>,
    },
    /// What `rvisor exec --detach` leaves behind: it stands for the exec'd
    /// process and ends with its status (internal).
    #[command(hide = true)]
    ExecWait {
        #[arg(long)]
        request_fd: i32,
        #[arg(long)]
        ready_fd: i32,
    },
}

#[derive(Args, Clone)]
pub struct CreateArgs {
    /// The bundle: a directory with config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the sandbox process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A Unix socket to send the container terminal's master to, when the
    /// process asks for a terminal.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (the sandbox has its own mounts).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many more descriptors (3, 4, …, after LISTEN_FDS's) to the
    /// container's process, as runc does.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Clone)]
pub struct UpdateArgs {
    /// The new resources as OCI JSON (LinuxResources); "-" reads standard input.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(short, long)]
    pub memory: Option<i64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<i64>,
    #[arg(long)]
    pub cpu_shares: Option<i64>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Args, Clone)]
pub struct ExecArgs {
    /// An OCI process (JSON) to run instead of COMMAND.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs; the pid in --pid-file stands for it.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Add or replace an environment variable (KEY=VALUE).
    #[arg(short, long)]
    pub env: Vec<String>,
    #[arg(long)]
    pub cwd: Option<String>,
    /// UID[:GID].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Pass descriptors 3 to 3+N-1 to the process, as runc does.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct DoArgs {
    /// Give the program a terminal (a sandbox pty bridged to this one), with job
    /// control, as `docker run -t` does; standard input must be a terminal.
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Bind-mount a host directory or file into the sandbox, as `docker run -v`
    /// does: HOST:SANDBOX, read-write (writes reach the host), or HOST:SANDBOX:ro.
    #[arg(short = 'v', long = "volume", value_name = "HOST:SANDBOX[:ro]")]
    pub volumes: Vec<String>,
    /// Join this network namespace (such as /var/run/netns/NAME); the
    /// network is then sandbox unless --network says otherwise.
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
    /// Forward a host port to a port of the sandbox, as `docker run -p` does:
    /// the host listens on HOST_PORT (on HOST_IP, by default on every
    /// address, IPv4 and IPv6) and connects each connection to the sandbox's
    /// listener on SANDBOX_PORT on its loopback (UDP with /udp). Not with
    /// --network=host, where the sandbox's servers listen on the host's ports.
    #[arg(short = 'p', long = "publish", value_name = "[HOST_IP:]HOST_PORT:SANDBOX_PORT[/tcp|/udp]")]
    pub publish: Vec<String>,
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

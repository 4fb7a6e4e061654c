//! A Kubernetes pod's containers share one sandbox, as in runsc: the pod's
//! first container (the CRI plugin marks it "sandbox") boots it, and each other
//! container (marked "container", naming the sandbox) is added to it with its
//! own root, mounts and init, sharing the sandbox's network. On the host such a
//! container is one small process standing for it, not a second Sentry.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

/// A pod's bundles and the state root its containers share.
struct Pod {
    dir: PathBuf,
    platform: &'static str,
    /// Makes its container ids its own: an id names the container's cgroup
    /// too, which other tests' containers must not share.
    suffix: String,
}

impl Pod {
    fn new(v: Variant) -> Pod {
        static PODS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = scratch_path("pod");
        fs::create_dir_all(&dir).unwrap();
        let suffix = format!("-{}-{}", std::process::id(), PODS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        Pod { dir, platform: v.platform, suffix }
    }

    /// The id of its container `name`.
    fn id(&self, name: &str) -> String {
        format!("{name}{}", self.suffix)
    }

    fn rvisor(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rvisor());
        c.args(platform_args(self.platform)).arg("--root").arg(self.dir.join("state")).args(args);
        c
    }

    fn output(&self, args: &[&str]) -> Outcome {
        run(self.rvisor(args), Input::Bytes(Vec::new()))
    }

    /// A bundle `name` over `root` running `args`, with the pod's `annotations`.
    fn bundle(&self, name: &str, root: Value, args: &[&str], annotations: Value) -> String {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir).unwrap();
        let o = self.output(&["spec", "--bundle", dir.to_str().unwrap()]);
        assert_eq!(o.status, 0, "rvisor spec: {}", o.describe());
        let path = dir.join("config.json");
        let mut c: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        c["root"] = root;
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        c["annotations"] = annotations;
        fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
        dir.display().to_string()
    }

    /// `rvisor run` of `bundle` as container `name`, driven line by line.
    fn run(&self, bundle: &str, name: &str) -> Interactive {
        Interactive::spawn(self.rvisor(&["run", "--bundle", bundle, &self.id(name)]))
    }

    /// `rvisor COMMAND` for container `name`, then `args`.
    fn on(&self, command: &str, name: &str, args: &[&str]) -> Outcome {
        let id = self.id(name);
        let mut all = vec![command, id.as_str()];
        all.extend_from_slice(args);
        self.output(&all)
    }

    fn status(&self, name: &str) -> Result<(String, i64), String> {
        let id = self.id(name);
        let o = self.output(&["state", &id]);
        let s: Value = serde_json::from_slice(&o.stdout).map_err(|e| format!("rvisor state {id}: {e}: {}", o.describe()))?;
        Ok((s["status"].as_str().unwrap_or("").to_string(), s["pid"].as_i64().unwrap_or(0)))
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        for entry in fs::read_dir(self.dir.join("state")).into_iter().flatten().flatten() {
            let _ = self.rvisor(&["delete", "--force", &entry.file_name().to_string_lossy()]).output();
        }
    }
}

fn sandbox_marks(id: &str) -> Value {
    json!({"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": id})
}

fn container_marks(sandbox: &str) -> Value {
    json!({"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": sandbox})
}

/// The pod's sandbox serves on its own loopback, which no other sandbox can
/// reach: a container that hears it runs in the same Sentry.
const LOOPBACK_SERVER: &str = "import os, socket\nl = socket.socket()\nl.bind(('127.0.0.1', 7070))\nl.listen(8)\nprint('listening', flush=True)\nwhile True:\n    c, _ = l.accept()\n    c.sendall(('pod sandbox, marker: %s' % os.path.exists('/marker')).encode())\n    c.close()\n";

/// Waits until `done` holds (the sandbox lets go of what an ended container
/// held on its own threads, after the container's exit is reported).
fn settles(done: impl Fn() -> bool, what: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout();
    while !done() {
        if std::time::Instant::now() > deadline {
            return Err(what.to_string());
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// The gofer of the sandbox whose host process is `sandbox`.
fn sandbox_gofer(sandbox: i32) -> Result<i32, String> {
    let tree = process_tree(sandbox);
    tree.into_iter().find(|p| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(b"gofer"))).ok_or_else(|| "the sandbox has no gofer".to_string())
}

/// How many sockets host process `pid` holds.
fn sockets_of(pid: i32) -> usize {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten();
    fds.filter(|e| fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))).count()
}

fn expect_outcome(o: &Outcome, status: i32) -> Result<(), String> {
    if o.status != status {
        return Err(format!("expected exit status {status}:\n{}", o.describe()));
    }
    Ok(())
}

#[test]
fn pod_containers_share_one_sandbox() {
    matrix("pod_containers_share_one_sandbox", &[Link::Static], |v| {
        let pod = Pod::new(v);
        let sandbox = pod.bundle("sandbox", json!({"path": "/", "readonly": true}), &["/usr/bin/python3", "-c", LOOPBACK_SERVER], sandbox_marks(&pod.id("pod")));
        let mut pause = pod.run(&sandbox, "pod");
        pause.expect_line("listening")?;
        let gofer = sandbox_gofer(pause.pid())?;
        let gofer_sockets = sockets_of(gofer);
        // The container's own root: a program and a marker the sandbox's lacks.
        let rootfs = pod.dir.join("member-rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| e.to_string())?;
        fs::copy(compile("pod_member", v.link), rootfs.join("pod_member")).map_err(|e| e.to_string())?;
        fs::write(rootfs.join("marker"), "member root\n").map_err(|e| e.to_string())?;
        let member = pod.bundle("member", json!({"path": rootfs, "readonly": true}), &["/pod_member", "7070"], container_marks(&pod.id("pod")));

        // Its own PID namespace: its init is PID 1 and sees only itself.
        let mut m1 = pod.run(&member, "m1");
        m1.expect_line("marker: member root")?;
        m1.expect_line("pid 1, 1 processes")?;
        m1.expect_line("server: pod sandbox, marker: False")?;
        // The container's pid is the process that stands for it, which booted
        // no Sentry and started no gofer (the sandbox's serves its root).
        let (status, pid) = pod.status("m1")?;
        if status != "running" || pid != i64::from(m1.pid()) {
            return Err(format!("m1 is {status} with pid {pid}, not running as {}", m1.pid()));
        }
        let tree = process_tree(m1.pid());
        if tree.len() != 1 {
            return Err(format!("the pod container's host processes are {tree:?}, not just itself"));
        }
        // Each container lists its own processes.
        let ps = pod.on("ps", "m1", &[]);
        if ps.status != 0 || !ps.stdout_str().contains("/pod_member 7070") || ps.stdout_str().contains("python3") {
            return Err(format!("rvisor ps m1:\n{}", ps.describe()));
        }
        let ps = pod.on("ps", "pod", &[]);
        if ps.status != 0 || !ps.stdout_str().contains("python3") || ps.stdout_str().contains("pod_member") {
            return Err(format!("rvisor ps pod:\n{}", ps.describe()));
        }
        // So do its stats (relayed by the process standing for it): the member's
        // small static program holds less memory than the pod container's python3.
        let rss = |c: &str| -> Result<u64, String> {
            let o = pod.on("events", c, &["--stats"]);
            let e: serde_json::Value = serde_json::from_str(o.stdout_str().trim()).map_err(|err| format!("rvisor events --stats {c} ({err}):\n{}", o.describe()))?;
            e["data"]["memory"]["usage"]["usage"].as_u64().filter(|&n| n > 0).ok_or_else(|| format!("rvisor events --stats {c}: {e}"))
        };
        let (m1_rss, pod_rss) = (rss("m1")?, rss("pod")?);
        if m1_rss >= pod_rss {
            return Err(format!("memory of m1 {m1_rss} and of the pod container {pod_rss}: not each its own"));
        }
        // exec runs in the container's root.
        let exec = pod.on("exec", "m1", &["/pod_member", "marker"]);
        expect_outcome(&exec, 0)?;
        expect_stdout(&exec, "marker: member root\n")?;
        // A container that cannot start is not left behind.
        let bad = pod.bundle("bad", json!({"path": rootfs, "readonly": true}), &["/missing"], container_marks(&pod.id("pod")));
        let o = pod.output(&["run", "--bundle", &bad, &pod.id("bad")]);
        if o.status == 0 || !o.stderr_str().contains("/missing") || pod.on("state", "bad", &[]).status == 0 {
            return Err(format!("a pod container whose program is missing:\n{}\n{}", o.describe(), pod.on("state", "bad", &[]).describe()));
        }
        // A detached exec: the process standing for it passes its signals on
        // to the exec'd process, whose pid is in the container's namespace.
        let pid_file = pod.dir.join("exec.pid");
        let (exec_stdin, _keep_open) = std::io::pipe().map_err(|e| e.to_string())?;
        let detached = pod
            .rvisor(&["exec", "--detach", "--pid-file", pid_file.to_str().unwrap_or_default(), &pod.id("m1"), "/pod_member", "7070"])
            .stdin(exec_stdin)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        let stands_for: i32 = fs::read_to_string(&pid_file).map_err(|e| e.to_string())?.trim().parse().map_err(|e| format!("pid file: {e}"))?;
        let listed = |cmd: &str| pod.on("ps", "m1", &[]).stdout_str().lines().filter(|l| l.ends_with(cmd)).count();
        if !detached.success() || listed("/pod_member 7070") != 2 {
            return Err(format!("exec --detach: {detached}; rvisor ps m1:\n{}", pod.on("ps", "m1", &[]).describe()));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(stands_for), nix::sys::signal::Signal::SIGTERM).map_err(|e| e.to_string())?;
        settles(|| listed("/pod_member 7070") == 1, "the exec'd process outlived the SIGTERM passed on to it")?;
        // Its exit status is its init's; the pod's sandbox runs on, and lets
        // go of the container's file systems (the gofer's connections for
        // them close).
        m1.send_line()?;
        expect_outcome(&m1.finish(), 7)?;
        settles(|| sockets_of(gofer) == gofer_sockets, "the container's gofer connections are still open")?;
        if pod.status("m1")?.0 != "stopped" || pod.status("pod")?.0 != "running" {
            return Err(format!("after m1 ended: m1 {:?}, pod {:?}", pod.status("m1"), pod.status("pod")));
        }

        // A signal reaches the container's init.
        let mut m2 = pod.run(&member, "m2");
        m2.expect_line("marker: member root")?;
        m2.expect_line("pid 1, 1 processes")?;
        m2.expect_line("server: pod sandbox, marker: False")?;
        expect_outcome(&pod.on("kill", "m2", &["TERM"]), 0)?;
        expect_outcome(&m2.finish(), 128 + libc::SIGTERM)?;

        // A spec that names a PID namespace by path (a pod with
        // shareProcessNamespace) shares the pod sandbox's: the sandbox's
        // python and this init.
        let shared = pod.dir.join("member/config.json");
        let mut c: Value = serde_json::from_slice(&fs::read(&shared).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let namespaces = c["linux"]["namespaces"].as_array_mut().ok_or("no namespaces in the spec")?;
        namespaces.retain(|n| n["type"] != "pid");
        namespaces.push(json!({"type": "pid", "path": format!("/proc/{}/ns/pid", pause.pid())}));
        fs::write(&shared, serde_json::to_vec(&c).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        // The pod's containers end with its sandbox.
        let mut m3 = pod.run(&member, "m3");
        m3.expect_line("marker: member root")?;
        let line = m3.next_line()?;
        if line.starts_with("pid 1,") || !line.ends_with(", 2 processes") {
            return Err(format!("a container sharing the pod's PID namespace says {line:?}"));
        }
        m3.expect_line("server: pod sandbox, marker: False")?;
        // One created and never started ends with the pod too, and holds
        // nothing up: the sandbox's init ends (by SIGTERM) and so does the
        // sandbox.
        let quiet = std::process::Stdio::null;
        let created = pod.rvisor(&["create", "--bundle", &member, &pod.id("m4")]).stdin(quiet()).stdout(quiet()).stderr(quiet()).status().map_err(|e| e.to_string())?;
        if !created.success() || pod.status("m4")?.0 != "created" {
            return Err(format!("create m4: {created}, {:?}", pod.status("m4")));
        }
        expect_outcome(&pod.on("kill", "pod", &["TERM"]), 0)?;
        expect_outcome(&pause.finish(), 128 + libc::SIGTERM)?;
        expect_outcome(&m3.finish(), 128 + libc::SIGKILL)?;
        settles(|| pod.status("m4").is_ok_and(|s| s.0 == "stopped"), "the never started m4 is not stopped")
    });
}

#[test]
fn a_pod_container_needs_its_sandbox() {
    matrix("a_pod_container_needs_its_sandbox", &[Link::Static], |v| {
        let pod = Pod::new(v);
        let args = ["/bin/true"];
        let root = json!({"path": "/", "readonly": true});
        let missing = pod.bundle("missing", root.clone(), &args, container_marks("nosuchpod"));
        let o = pod.output(&["run", "--bundle", &missing, &pod.id("c1")]);
        if o.status == 0 || !o.stderr_str().contains("pod sandbox: container nosuchpod does not exist") {
            return Err(format!("a container of a missing pod sandbox:\n{}", o.describe()));
        }
        let unnamed = pod.bundle("unnamed", root, &args, json!({"io.kubernetes.cri.container-type": "container"}));
        let o = pod.output(&["run", "--bundle", &unnamed, &pod.id("c2")]);
        if o.status == 0 || !o.stderr_str().contains("names no pod sandbox") {
            return Err(format!("a pod container naming no sandbox:\n{}", o.describe()));
        }
        Ok(())
    });
}

/// In a pod's network namespace, the pod's sandbox takes the interface (the
/// sandbox network, as runsc's default), and every container of the pod
/// serves at the pod's address through it. When the sandbox's init ends, so
/// does the pod: a container still serving is killed.
#[test]
fn pod_containers_share_the_pods_network() {
    matrix("pod_containers_share_the_pods_network", &[Link::Static], |v| {
        let ns = Netns::new(213)?;
        let pod = Pod::new(v);
        let root = json!({"path": "/", "readonly": true});
        let mut running = Vec::new();
        // The sandbox answers once and ends; the other container serves on.
        for (i, (id, marks, serve)) in [("pod", sandbox_marks(&pod.id("pod")), "if True"), ("web", container_marks(&pod.id("pod")), "while True")].into_iter().enumerate() {
            let port = 8080 + i;
            let script = format!("import socket\nl = socket.socket()\nl.bind(('0.0.0.0', {port}))\nl.listen(1)\nprint('listening', flush=True)\n{serve}:\n    c, peer = l.accept()\n    c.sendall(b'{id}')\n    c.close()\n");
            let bundle = pod.bundle(id, root.clone(), &["/usr/bin/python3", "-c", &script], marks);
            let spec = PathBuf::from(&bundle).join("config.json");
            let mut c: Value = serde_json::from_slice(&fs::read(&spec).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            let namespaces = c["linux"]["namespaces"].as_array_mut().ok_or("no namespaces in the spec")?;
            namespaces.retain(|n| n["type"] != "network");
            namespaces.push(json!({"type": "network", "path": ns.path()}));
            fs::write(&spec, serde_json::to_vec(&c).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            let mut r = pod.run(&bundle, id);
            r.expect_line("listening")?;
            running.push(r);
        }
        let addrs = ns.ip(&format!("-o -4 addr show dev {}", ns.ns_if))?;
        if addrs.contains(&ns.ns_addr.to_string()) {
            return Err(format!("the pod's sandbox did not take the interface: the host's stack still has {addrs}"));
        }
        for (i, id) in [(1, "web"), (0, "pod")] {
            let reply = TcpStream::connect((ns.ns_addr, 8080 + i as u16)).and_then(|mut s| {
                let mut reply = String::new();
                s.read_to_string(&mut reply).map(|_| reply)
            });
            if reply.as_deref().ok() != Some(id) {
                return Err(format!("container {id} answered {reply:?}"));
            }
        }
        let web = running.pop().ok_or("no web container")?;
        let sandbox = running.pop().ok_or("no pod sandbox")?;
        expect_outcome(&sandbox.finish(), 0)?;
        expect_outcome(&web.finish(), 128 + libc::SIGKILL)
    });
}

/// A pod container run with --preserve-fds gets the descriptors too: they travel
/// to the pod's sandbox after its standard streams.
#[test]
fn pod_container_gets_preserved_descriptors() {
    matrix("pod_container_gets_preserved_descriptors", &[Link::Static], |v| {
        let pod = Pod::new(v);
        let rootfs = pod.dir.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).map_err(|e| e.to_string())?;
        fs::copy(compile("oci_init", v.link), rootfs.join("bin/init")).map_err(|e| e.to_string())?;
        let root = json!({"path": rootfs, "readonly": true});
        let sandbox = pod.bundle("sandbox", root.clone(), &["/bin/init", "serve"], sandbox_marks(&pod.id("pod")));
        let mut pause = pod.run(&sandbox, "pod");
        pause.expect_line("started pid 1")?;
        let member = pod.bundle("member", root, &["/bin/init", "fds"], container_marks(&pod.id("pod")));
        let id = pod.id("m");
        let want = "LISTEN_FDS=- LISTEN_PID=-\nfd 3: pipe\nfd 4: pipe\nread from fd 4: to the member\n";
        runs_with_pipes_at_3_and_4(pod.rvisor(&["run", "--bundle", &member, "--preserve-fds", "2", &id]), "to the member\n", want)
    });
}

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
}

impl Pod {
    fn new(v: Variant) -> Pod {
        let dir = scratch_path("pod");
        fs::create_dir_all(&dir).unwrap();
        Pod { dir, platform: v.platform }
    }

    fn rvisor(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rvisor());
        c.arg(format!("--platform={}", self.platform)).arg("--root").arg(self.dir.join("state")).args(args);
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

    /// `rvisor run` of `bundle` as container `id`, driven line by line.
    fn run(&self, bundle: &str, id: &str) -> Interactive {
        Interactive::spawn(self.rvisor(&["run", "--bundle", bundle, id]))
    }

    fn status(&self, id: &str) -> Result<(String, i64), String> {
        let o = self.output(&["state", id]);
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

/// Waits until host process `pid` has ended.
fn gone(pid: i32) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout();
    while fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        if std::time::Instant::now() > deadline {
            return Err(format!("host process {pid} is still there"));
        }
        std::thread::yield_now();
    }
    Ok(())
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
        let sandbox = pod.bundle("sandbox", json!({"path": "/", "readonly": true}), &["/usr/bin/python3", "-c", LOOPBACK_SERVER], sandbox_marks("pod"));
        let mut pause = pod.run(&sandbox, "pod");
        pause.expect_line("listening")?;
        // The container's own root: a program and a marker the sandbox's lacks.
        let rootfs = pod.dir.join("member-rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| e.to_string())?;
        fs::copy(compile("pod_member", v.link), rootfs.join("pod_member")).map_err(|e| e.to_string())?;
        fs::write(rootfs.join("marker"), "member root\n").map_err(|e| e.to_string())?;
        let member = pod.bundle("member", json!({"path": rootfs, "readonly": true}), &["/pod_member", "7070"], container_marks("pod"));

        let mut m1 = pod.run(&member, "m1");
        m1.expect_line("marker: member root")?;
        m1.expect_line("server: pod sandbox, marker: False")?;
        // The container's pid is the process that stands for it, which booted
        // no Sentry: its only child is its gofer.
        let (status, pid) = pod.status("m1")?;
        if status != "running" || pid != i64::from(m1.pid()) {
            return Err(format!("m1 is {status} with pid {pid}, not running as {}", m1.pid()));
        }
        let tree = process_tree(m1.pid());
        if tree.len() != 2 {
            return Err(format!("the pod container's host processes are {tree:?}: more than itself and its gofer"));
        }
        // Each container lists its own processes.
        let ps = pod.output(&["ps", "m1"]);
        if ps.status != 0 || !ps.stdout_str().contains("/pod_member 7070") || ps.stdout_str().contains("python3") {
            return Err(format!("rvisor ps m1:\n{}", ps.describe()));
        }
        let ps = pod.output(&["ps", "pod"]);
        if ps.status != 0 || !ps.stdout_str().contains("python3") || ps.stdout_str().contains("pod_member") {
            return Err(format!("rvisor ps pod:\n{}", ps.describe()));
        }
        // exec runs in the container's root.
        let exec = pod.output(&["exec", "m1", "/pod_member", "marker"]);
        expect_outcome(&exec, 0)?;
        expect_stdout(&exec, "marker: member root\n")?;
        // Its exit status is its init's; the pod's sandbox runs on, and lets
        // go of the container's file systems (its gofer ends).
        m1.send_line()?;
        gone(tree[1])?;
        expect_outcome(&m1.finish(), 7)?;
        if pod.status("m1")?.0 != "stopped" || pod.status("pod")?.0 != "running" {
            return Err(format!("after m1 ended: m1 {:?}, pod {:?}", pod.status("m1"), pod.status("pod")));
        }

        // A signal reaches the container's init.
        let mut m2 = pod.run(&member, "m2");
        m2.expect_line("marker: member root")?;
        m2.expect_line("server: pod sandbox, marker: False")?;
        expect_outcome(&pod.output(&["kill", "m2", "TERM"]), 0)?;
        expect_outcome(&m2.finish(), 128 + libc::SIGTERM)?;

        // The pod's containers end with its sandbox.
        let mut m3 = pod.run(&member, "m3");
        m3.expect_line("marker: member root")?;
        m3.expect_line("server: pod sandbox, marker: False")?;
        expect_outcome(&pod.output(&["delete", "--force", "pod"]), 0)?;
        expect_outcome(&m3.finish(), 128 + libc::SIGKILL)?;
        expect_outcome(&pause.finish(), 128 + libc::SIGKILL)
    });
}

#[test]
fn a_pod_container_needs_its_sandbox() {
    matrix("a_pod_container_needs_its_sandbox", &[Link::Static], |v| {
        let pod = Pod::new(v);
        let args = ["/bin/true"];
        let root = json!({"path": "/", "readonly": true});
        let missing = pod.bundle("missing", root.clone(), &args, container_marks("nosuchpod"));
        let o = pod.output(&["run", "--bundle", &missing, "c1"]);
        if o.status == 0 || !o.stderr_str().contains("pod sandbox: container nosuchpod does not exist") {
            return Err(format!("a container of a missing pod sandbox:\n{}", o.describe()));
        }
        let unnamed = pod.bundle("unnamed", root, &args, json!({"io.kubernetes.cri.container-type": "container"}));
        let o = pod.output(&["run", "--bundle", &unnamed, "c2"]);
        if o.status == 0 || !o.stderr_str().contains("names no pod sandbox") {
            return Err(format!("a pod container naming no sandbox:\n{}", o.describe()));
        }
        Ok(())
    });
}

/// In a pod's network namespace, the pod's sandbox takes the interface (the
/// sandbox network, as runsc's default), and every container of the pod
/// serves at the pod's address through it.
#[test]
fn pod_containers_share_the_pods_network() {
    matrix("pod_containers_share_the_pods_network", &[Link::Static], |v| {
        let ns = Netns::new(213)?;
        let pod = Pod::new(v);
        let root = json!({"path": "/", "readonly": true});
        let mut running = Vec::new();
        for (i, (id, marks)) in [("pod", sandbox_marks("pod")), ("web", container_marks("pod"))].into_iter().enumerate() {
            let port = 8080 + i;
            let script = format!("import socket\nl = socket.socket()\nl.bind(('0.0.0.0', {port}))\nl.listen(1)\nprint('listening', flush=True)\nc, peer = l.accept()\nc.sendall(b'{id}')\nc.close()\n");
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
        // The pod's container first: once the sandbox's init ends, so does
        // the whole pod.
        for (i, id) in [(1, "web"), (0, "pod")] {
            let reply = TcpStream::connect((ns.ns_addr, 8080 + i as u16)).and_then(|mut s| {
                let mut reply = String::new();
                s.read_to_string(&mut reply).map(|_| reply)
            });
            if reply.as_deref().ok() != Some(id) {
                return Err(format!("container {id} answered {reply:?}"));
            }
            let r = running.pop().ok_or("no container left")?;
            expect_outcome(&r.finish(), 0)?;
        }
        Ok(())
    });
}

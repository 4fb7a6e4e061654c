//! containerd drives rvisor through its runc shim (`ctr run --runc-binary`),
//! as Kubernetes does through a RuntimeClass whose handler names rvisor as
//! the shim's `BinaryName`: a container's exit code; a running container's
//! output and input, `ctr task ps`, `ctr task exec`, and `ctr task kill`; and
//! a pod's containers in its sandbox's, marked as the CRI plugin marks them.
//!
//! The test installs containerd (Debian's package) when the host lacks it,
//! and runs a private containerd daemon of its own.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

const IMAGE: &str = "docker.io/library/rvisor-test:latest";

/// A containerd daemon with its own root, state and socket; stopped on drop.
struct Containerd {
    daemon: Child,
    dir: PathBuf,
}

impl Containerd {
    fn start() -> Containerd {
        ensure_installed("containerd", "containerd");
        let dir = scratch_path("containerd");
        fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        fs::write(
            dir.join("config.toml"),
            format!("version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{d}/sock\"\n"),
        )
        .unwrap();
        let mut daemon = Command::new("containerd").arg("--config").arg(dir.join("config.toml")).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start containerd");
        // It says when it serves; its log keeps draining into nothing after that.
        let (tx, rx) = mpsc::channel();
        let log = BufReader::new(daemon.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                if line.contains("containerd successfully booted") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(timeout()).expect("containerd did not start");
        Containerd { daemon, dir }
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(self.dir.join("sock")).args(args);
        cmd
    }

    /// An image whose one layer holds the static `oci_init` as /bin/init.
    fn import_image(&self) {
        let rootfs = self.dir.join("image/rootfs");
        fs::create_dir_all(rootfs.join("bin")).unwrap();
        fs::create_dir_all(rootfs.join("tmp")).unwrap();
        fs::copy(compile("oci_init", Link::Static), rootfs.join("bin/init")).unwrap();
        let tar = self.dir.join("image.tar");
        let script = repo_root().join("tests/tools/oci-image.py");
        let o = Command::new("python3").arg(script).arg(&rootfs).arg(IMAGE).args(["/bin/init", "exec", "3"]).output().unwrap();
        assert!(o.status.success(), "oci-image.py: {}", String::from_utf8_lossy(&o.stderr));
        fs::write(&tar, o.stdout).unwrap();
        let o = self.ctr(&["images", "import"]).arg(&tar).output().unwrap();
        assert!(o.status.success(), "ctr images import: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// A runc-compatible binary for the shim: rvisor on `platform`.
    fn runtime_for(&self, platform: &str) -> PathBuf {
        let path = self.dir.join(format!("rvisor-{platform}"));
        fs::write(&path, format!("#!/bin/sh\nexec {} {} \"$@\"\n", rvisor().display(), platform_args(platform).join(" "))).unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.daemon.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let _ = self.daemon.wait();
    }
}

fn output_of(mut cmd: Command) -> Outcome {
    cmd.stdin(Stdio::null());
    run(cmd, Input::Bytes(Vec::new()))
}

fn check(o: &Outcome, code: i32, stdout: &str) -> Result<(), String> {
    if o.timed_out || o.status != code || o.stdout_str() != stdout {
        return Err(format!("want exit {code} and {stdout:?}:\n{}", o.describe()));
    }
    Ok(())
}

fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line.trim_end_matches('\r').to_string());
        }
    });
    rx
}

fn expect(lines: &mpsc::Receiver<String>, want: &str) -> Result<(), String> {
    match lines.recv_timeout(timeout()) {
        Ok(l) if l == want => Ok(()),
        other => Err(format!("expected {want:?}, got {other:?}")),
    }
}

fn drive(c: &Containerd, runtime: &Path, tag: &str) -> Result<(), String> {
    let rt = runtime.to_str().unwrap();
    // The image's own command; its exit code comes back through the shim.
    check(&output_of(c.ctr(&["run", "--rm", "--runc-binary", rt, IMAGE, &format!("once-{tag}")])), 3, "exec pid 1 ppid 0\n")?;
    serve(c, rt, &format!("serve-{tag}"), &[])?;

    // A pod, as the CRI plugin marks its containers: the sandbox container
    // boots the sandbox, and the pod's other containers run in it, each with
    // its own PID namespace (pid 1), their pids the shim's to reap.
    let pod = format!("pod-{tag}");
    let sandbox_marks = ["--annotation", "io.kubernetes.cri.container-type=sandbox", "--annotation", &format!("io.kubernetes.cri.sandbox-id={pod}")].map(String::from);
    let member_marks = ["--annotation", "io.kubernetes.cri.container-type=container", "--annotation", &format!("io.kubernetes.cri.sandbox-id={pod}")].map(String::from);
    let (mut sandbox, lines) = start_serving(c, rt, &pod, &sandbox_marks)?;
    let result = (|| {
        expect(&lines, "started pid 1")?;
        let mut args = vec!["run", "--rm", "--runc-binary", rt];
        args.extend(member_marks.iter().map(String::as_str));
        let once = format!("once-{pod}");
        args.extend([IMAGE, &once, "/bin/init", "exec", "5"]);
        check(&output_of(c.ctr(&args)), 5, "exec pid 1 ppid 0\n")?;
        serve(c, rt, &format!("web-{pod}"), &member_marks)
    })();
    let killed = output_of(c.ctr(&["task", "kill", "-s", "SIGKILL", &pod]));
    let status = sandbox.wait().map_err(|e| e.to_string())?;
    result?;
    if killed.status != 0 || status.code() != Some(137) {
        return Err(format!("the pod's sandbox ended with {status} after ctr task kill: {}", killed.describe()));
    }
    let left = output_of(c.ctr(&["containers", "ls", "-q"]));
    if !left.stdout_str().is_empty() {
        return Err(format!("containers left behind: {}", left.describe()));
    }
    Ok(())
}

/// `ctr run` of the image's `/bin/init serve` as container `id`, with `extra`
/// flags, and its output's lines.
fn start_serving(c: &Containerd, rt: &str, id: &str, extra: &[String]) -> Result<(Child, mpsc::Receiver<String>), String> {
    let mut args = vec!["run", "--rm", "--runc-binary", rt];
    args.extend(extra.iter().map(String::as_str));
    args.extend([IMAGE, id, "/bin/init", "serve"]);
    let mut serving = c.ctr(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let lines = lines_of(&mut serving);
    Ok((serving, lines))
}

/// A container serving its standard input: its output and input, `ctr task
/// ps`, `ctr task exec` and `ctr task kill` (SIGTERM), which it survives to
/// say so and exit 0.
fn serve(c: &Containerd, rt: &str, id: &str, extra: &[String]) -> Result<(), String> {
    let (mut serving, lines) = start_serving(c, rt, id, extra)?;
    let result = (|| {
        expect(&lines, "started pid 1")?;
        let mut stdin = serving.stdin.take().ok_or("no stdin")?;
        stdin.write_all(b"hello\n").map_err(|e| e.to_string())?;
        expect(&lines, "got hello")?;
        let ps = output_of(c.ctr(&["task", "ps", id]));
        if !ps.stdout_lines().iter().any(|l| l.split_whitespace().next() == Some("1")) {
            return Err(format!("ctr task ps: {}", ps.describe()));
        }
        check(&output_of(c.ctr(&["task", "exec", "--exec-id", "e1", id, "/bin/init", "exec", "4"])), 4, "exec pid 2 ppid 0\n")?;
        let kill = output_of(c.ctr(&["task", "kill", id]));
        if kill.status != 0 {
            return Err(format!("ctr task kill: {}", kill.describe()));
        }
        expect(&lines, "terminated")
    })();
    if result.is_err() {
        let _ = output_of(c.ctr(&["task", "kill", "-s", "SIGKILL", id]));
    }
    let status = serving.wait().map_err(|e| e.to_string())?;
    result?;
    if status.code() != Some(0) {
        return Err(format!("ctr run of the killed container {id}: {status}"));
    }
    Ok(())
}

#[test]
fn containerd_runs_rvisor_through_the_runc_shim() {
    let c = Containerd::start();
    c.import_image();
    matrix("containerd_runs_rvisor_through_the_runc_shim", &[Link::Static], |v| drive(&c, &c.runtime_for(v.platform), v.platform));
}

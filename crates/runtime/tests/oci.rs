//! rvisor as an OCI runtime, driven as containerd's runc shim drives runc: a
//! bundle's config.json (root, process, user, hostname, mounts) applied in the
//! sandbox, as runc applies it (compared with runc on the same bundle); the
//! create/start/state/exec/ps/kill/delete lifecycle with runc's
//! flags, exit codes and errors; a terminal through a console socket.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

/// A bundle whose rootfs holds the static `oci_init` as /bin/init, with host
/// directories and a file beside it to bind-mount; and a state root of its own.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    platform: &'static str,
}

impl Bundle {
    fn new(v: Variant) -> Bundle {
        let dir = scratch_path("bundle");
        fs::create_dir_all(dir.join("rootfs/bin")).unwrap();
        fs::copy(compile("oci_init", v.link), dir.join("rootfs/bin/init")).unwrap();
        fs::create_dir_all(dir.join("host-ro")).unwrap();
        fs::write(dir.join("host-ro/in.txt"), "from the host\n").unwrap();
        fs::create_dir_all(dir.join("host-rw")).unwrap();
        fs::set_permissions(dir.join("host-rw"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(dir.join("motd"), "message of the day\n").unwrap();
        fs::write(dir.join("termination-log"), "no news\n").unwrap();
        let b = Bundle { root: dir.join("state"), dir, platform: v.platform };
        let o = b.rvisor(&["spec", "--bundle", b.dir.to_str().unwrap()]);
        assert_eq!(o.status, 0, "rvisor spec: {}", o.describe());
        b
    }

    /// Changes config.json.
    fn config(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir.join("config.json");
        let mut c: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        f(&mut c);
        fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(rvisor());
        cmd.args(platform_args(self.platform)).arg("--root").arg(&self.root).args(args);
        cmd
    }

    fn rvisor(&self, args: &[&str]) -> Outcome {
        run(self.command(args), Input::Bytes(Vec::new()))
    }

    fn bundle_arg(&self) -> String {
        self.dir.display().to_string()
    }

    fn state(&self, id: &str) -> Result<Value, String> {
        let o = self.rvisor(&["state", id]);
        if o.status != 0 {
            return Err(format!("rvisor state: {}", o.describe()));
        }
        serde_json::from_slice(&o.stdout).map_err(|e| format!("state is not JSON ({e}): {}", o.describe()))
    }

    fn status(&self, id: &str) -> Result<String, String> {
        Ok(self.state(id)?["status"].as_str().unwrap_or("").to_string())
    }
}

/// A test that fails half way must not leave sandboxes or cgroups behind.
impl Drop for Bundle {
    fn drop(&mut self) {
        for entry in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let _ = self.command(&["delete", "--force", &entry.file_name().to_string_lossy()]).output();
        }
    }
}

/// Runs `o`'s checks: exit code and what stderr must say.
fn fails_with(o: &Outcome, what: &str) -> Result<(), String> {
    if o.status == 0 || !o.stderr_str().contains(what) {
        return Err(format!("expected a failure saying {what:?}:\n{}", o.describe()));
    }
    Ok(())
}

fn succeeds(o: &Outcome) -> Result<(), String> {
    sane(o)?;
    if o.status != 0 {
        return Err(format!("expected success:\n{}", o.describe()));
    }
    Ok(())
}

#[test]
fn oci_run_applies_the_bundle() {
    matrix("oci_run_applies_the_bundle", &[Link::Static], |v| {
        let b = Bundle::new(v);
        let (ro, rw, motd) = (b.dir.join("host-ro"), b.dir.join("host-rw"), b.dir.join("motd"));
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["init", "report", "7"]);
            c["process"]["env"] = json!(["PATH=/usr/bin:/bin", "GREETING=hi"]);
            c["process"]["cwd"] = json!("/work/here");
            c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 6]});
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 512}]);
            c["process"]["noNewPrivileges"] = json!(true);
            c["hostname"] = json!("box");
            c["root"]["readonly"] = json!(true);
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/ro", "type": "bind", "source": ro, "options": ["rbind", "ro"]}));
            mounts.push(json!({"destination": "/rw", "type": "bind", "source": rw, "options": ["rbind", "rw"]}));
            mounts.push(json!({"destination": "/etc/motd", "type": "bind", "source": motd, "options": ["bind", "ro"]}));
            // Kubernetes' file, on rvisor's devfs.
            mounts.push(json!({"destination": "/dev/termination-log", "type": "bind", "source": b.dir.join("termination-log"), "options": ["bind"]}));
            mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=700"]}));
        });
        let o = b.rvisor(&["run", "--bundle", &b.bundle_arg(), "c1"]);
        sane(&o)?;
        let want = "hostname box
uid 1000 gid 1001 groups 5 6
cwd /work/here
GREETING hi
write /rootfile: Read-only file system
read /ro/in.txt: from the host
write /ro/new.txt: Read-only file system
write /rw/out.txt: ok
read /etc/motd: message of the day
read /dev/termination-log: no news
/scratch mode 700
write /scratch/f: Permission denied
/proc/self/status readable
/dev/null writable
/dev/pts mounted
nofile 512 4096
CapEff:\t0000000020000420
CapBnd:\t0000000020000420
NoNewPrivs:\t1
";
        if o.stdout_str() != want || o.status != 7 {
            return Err(format!("want exit 7 and:\n{want}\n{}\n{}", diff(want.as_bytes(), &o.stdout), o.describe()));
        }
        // The read-write bind mount reaches the host; nothing else does.
        if fs::read_to_string(rw.join("out.txt")).ok().as_deref() != Some("written\n") {
            return Err("/rw/out.txt did not reach the host".into());
        }
        if ro.join("new.txt").exists() || b.dir.join("rootfs/rootfile").exists() || b.dir.join("rootfs/work").exists() {
            return Err("a write reached the host through a read-only mount or the root".into());
        }
        if b.status("c1")? != "stopped" {
            return Err(format!("after run: {:?}", b.state("c1")));
        }
        // The id is taken until the container is deleted.
        fails_with(&b.rvisor(&["run", "--bundle", &b.bundle_arg(), "c1"]), "already exists")?;
        succeeds(&b.rvisor(&["delete", "c1"]))?;
        fails_with(&b.rvisor(&["state", "c1"]), "does not exist")?;
        // runc, given the same bundle, says the same (it makes its mount points
        // and the cwd in the host's copy of the root, so it runs last).
        let _ = fs::remove_file(rw.join("out.txt"));
        // runc is Debian's (containerd's dependency), installed when missing.
        ensure_installed("runc", "runc");
        let mut runc = Command::new("runc");
        runc.arg("--root").arg(b.dir.join("runc-state")).args(["run", "--bundle", &b.bundle_arg(), "runc-c1"]);
        let native = run(runc, Input::Bytes(Vec::new()));
        if native.stdout != o.stdout || native.status != o.status {
            return Err(format!("runc differs:\n{}\n{}", diff(&native.stdout, &o.stdout), native.describe()));
        }
        Ok(())
    });
}

/// A child's output, a line at a time, with a deadline.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn of(r: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    fn expect(&self, want: &str) -> Result<(), String> {
        match self.0.recv_timeout(timeout()) {
            Ok(line) if line == want => Ok(()),
            Ok(line) => Err(format!("expected the line {want:?}, got {line:?}")),
            Err(e) => Err(format!("expected the line {want:?}: {e}")),
        }
    }

    /// The output ends (every writer closed it).
    fn ends(&self) -> Result<(), String> {
        match self.0.recv_timeout(timeout()) {
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(()),
            other => Err(format!("expected the output to end, got {other:?}")),
        }
    }
}

/// `rvisor create`, with the container's standard input and output as pipes.
fn create(b: &Bundle, id: &str, extra: &[&str]) -> Result<(ChildStdin, Lines), String> {
    let mut args = vec!["create", "--bundle"];
    let bundle = b.bundle_arg();
    args.push(&bundle);
    args.extend_from_slice(extra);
    args.push(id);
    let mut child = b.command(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let lines = Lines::of(child.stdout.take().unwrap());
    // (Child::wait would close the container's standard input first.)
    let stdin = child.stdin.take().unwrap();
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        return Err(format!("rvisor create: {status}: {err}"));
    }
    Ok((stdin, lines))
}

/// Waits until host process `pid` has ended.
fn gone(pid: i32) -> Result<(), String> {
    let deadline = Instant::now() + timeout();
    while Path::new(&format!("/proc/{pid}")).exists() && fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        if Instant::now() > deadline {
            return Err(format!("host process {pid} is still there"));
        }
        std::thread::yield_now();
    }
    Ok(())
}

#[test]
fn oci_lifecycle() {
    matrix("oci_lifecycle", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/init", "serve"]);
        });
        let pid_file = b.dir.join("pid");
        let (mut stdin, out) = create(&b, "c2", &["--pid-file", pid_file.to_str().unwrap()])?;
        let st = b.state("c2")?;
        let pid = st["pid"].as_i64().unwrap_or(0) as i32;
        if st["status"] != "created" || fs::read_to_string(&pid_file).ok() != Some(pid.to_string()) || pid <= 0 {
            return Err(format!("after create: {st} and pid file {:?}", fs::read_to_string(&pid_file)));
        }
        if st["bundle"] != json!(b.dir) || st["id"] != "c2" || st["ociVersion"].as_str().is_none() {
            return Err(format!("state: {st}"));
        }
        fails_with(&b.rvisor(&["create", "--bundle", &b.bundle_arg(), "c2"]), "already exists")?;
        // Init is loaded (it is PID 1) but waits for start.
        let ps = b.rvisor(&["ps", "--format", "json", "c2"]);
        if ps.stdout_str().trim() != "[1]" {
            return Err(format!("ps before start: {}", ps.describe()));
        }
        succeeds(&b.rvisor(&["start", "c2"]))?;
        out.expect("started pid 1")?;
        if b.status("c2")? != "running" {
            return Err(format!("after start: {:?}", b.state("c2")));
        }
        fails_with(&b.rvisor(&["start", "c2"]), "already running")?;

        // exec: a new process beside init, with no parent in the sandbox, whose
        // exit code is rvisor exec's.
        let e = b.rvisor(&["exec", "c2", "/bin/init", "exec", "5"]);
        if e.status != 5 || e.stdout_str() != "exec pid 2 ppid 0\n" {
            return Err(format!("exec: {}", e.describe()));
        }
        let e = b.rvisor(&["exec", "--user", "1000:1000", "--env", "GREETING=there", "--cwd", "/bin", "c2", "init", "report", "0"]);
        for want in ["uid 1000 gid 1000 groups\n", "cwd /bin\n", "GREETING there\n"] {
            if e.status != 0 || !e.stdout_str().contains(want) {
                return Err(format!("exec with --user, --env, --cwd: want {want:?}:\n{}", e.describe()));
            }
        }
        fails_with(&b.rvisor(&["exec", "c2", "/no/such/program"]), "/no/such/program")?;

        // exec --detach: returns once the process runs; the pid file names a host
        // process that stands for it: signals to it reach the process, and the
        // process ends when it ends.
        let detach = |n: u32| -> Result<(Lines, i32, ChildStdin), String> {
            let pid_file = b.dir.join(format!("exec-pid-{n}"));
            let mut c = b.command(&["exec", "--detach", "--pid-file", pid_file.to_str().unwrap(), "c2", "/bin/init", "serve"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
            let out = Lines::of(c.stdout.take().unwrap());
            let stdin = c.stdin.take().unwrap();
            if !c.wait().map_err(|e| e.to_string())?.success() {
                return Err("exec --detach failed".into());
            }
            let stand_in = fs::read_to_string(&pid_file).map_err(|e| e.to_string())?.parse().map_err(|e| format!("pid file: {e}"))?;
            Ok((out, stand_in, stdin))
        };
        let (detached_out, stand_in, _stdin) = detach(1)?;
        detached_out.expect("started pid 4")?;
        let ps = b.rvisor(&["ps", "--format", "json", "c2"]);
        if ps.stdout_str().trim() != "[1,4]" {
            return Err(format!("ps with a detached exec: {}", ps.describe()));
        }
        let table = b.rvisor(&["ps", "c2"]).stdout_str();
        if !table.contains("/bin/init serve") || !table.contains("CMD") {
            return Err(format!("ps table:\n{table}"));
        }
        let host_kill = |pid: i32, sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| e.to_string());
        host_kill(stand_in, nix::sys::signal::Signal::SIGTERM)?;
        detached_out.expect("terminated")?;
        detached_out.ends()?;
        gone(stand_in)?;
        let (detached_out, stand_in, _stdin) = detach(2)?;
        detached_out.expect("started pid 5")?;
        host_kill(stand_in, nix::sys::signal::Signal::SIGKILL)?;
        detached_out.ends()?;
        // The process closed its streams as it died; the sandbox reaps it just
        // after, so ps may list it once more as a zombie.
        let deadline = Instant::now() + timeout();
        loop {
            let ps = b.rvisor(&["ps", "--format", "json", "c2"]);
            match ps.stdout_str().trim() {
                "[1]" => break,
                "[1,5]" if Instant::now() < deadline => continue,
                _ => return Err(format!("ps after the stand-in was killed: {}", ps.describe())),
            }
        }

        // Signals reach init through the sandbox; init's handler runs.
        fails_with(&b.rvisor(&["kill", "c2", "NOSUCHSIGNAL"]), "invalid signal")?;
        fails_with(&b.rvisor(&["delete", "c2"]), "not stopped")?;
        stdin.write_all(b"hello\n").map_err(|e| e.to_string())?;
        out.expect("got hello")?;
        succeeds(&b.rvisor(&["kill", "c2", "TERM"]))?;
        out.expect("terminated")?;
        out.ends()?;
        gone(pid)?;
        if b.status("c2")? != "stopped" {
            return Err(format!("after init exited: {:?}", b.state("c2")));
        }
        fails_with(&b.rvisor(&["exec", "c2", "/bin/init"]), "stopped")?;
        fails_with(&b.rvisor(&["kill", "c2"]), "not running")?;
        fails_with(&b.rvisor(&["start", "c2"]), "stopped")?;
        let list = b.rvisor(&["list", "--format", "json"]);
        let listed: Value = serde_json::from_slice(&list.stdout).map_err(|e| format!("list: {e}: {}", list.describe()))?;
        if listed[0]["id"] != "c2" || listed[0]["status"] != "stopped" {
            return Err(format!("list: {listed}"));
        }
        succeeds(&b.rvisor(&["delete", "c2"]))?;
        if b.rvisor(&["list", "-q"]).stdout_str() != "" {
            return Err("the deleted container is still listed".into());
        }
        Ok(())
    });
}

#[test]
fn oci_create_reports_what_is_wrong() {
    matrix("oci_create_reports_what_is_wrong", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/missing"]);
        });
        // The program is looked for at create, and a failed create leaves nothing.
        fails_with(&b.rvisor(&["create", "--bundle", &b.bundle_arg(), "c3"]), "/bin/missing")?;
        fails_with(&b.rvisor(&["state", "c3"]), "does not exist")?;
        b.config(|c| c["process"]["terminal"] = json!(true));
        fails_with(&b.rvisor(&["create", "--bundle", &b.bundle_arg(), "c3"]), "--console-socket")?;
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/no/such/dir", "options": ["bind"]}));
        });
        fails_with(&b.rvisor(&["create", "--bundle", &b.bundle_arg(), "c3"]), "/no/such/dir")?;
        fails_with(&b.rvisor(&["create", "--bundle", "/nonexistent", "c3"]), "/nonexistent")?;
        fails_with(&b.rvisor(&["create", "--bundle", &b.bundle_arg(), "a/b"]), "invalid container id")?;
        fails_with(&b.rvisor(&["state", "nope"]), "does not exist")?;
        // With --log-format json, the reason is also a JSON line in the log (where
        // containerd's shim reads it).
        let log = b.dir.join("log.json");
        let o = b.rvisor(&["--log", log.to_str().unwrap(), "--log-format", "json", "delete", "nope"]);
        fails_with(&o, "does not exist")?;
        let line: Value = serde_json::from_str(fs::read_to_string(&log).map_err(|e| e.to_string())?.lines().last().unwrap_or("")).map_err(|e| e.to_string())?;
        if line["level"] != "error" || !line["msg"].as_str().unwrap_or("").contains("does not exist") {
            return Err(format!("log line: {line}"));
        }
        succeeds(&b.rvisor(&["delete", "--force", "nope"]))?;
        Ok(())
    });
}

#[test]
fn oci_delete_force_ends_a_running_container() {
    matrix("oci_delete_force_ends_a_running_container", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/init", "serve"]);
        });
        let (_child, out) = create(&b, "c4", &[])?;
        succeeds(&b.rvisor(&["start", "c4"]))?;
        out.expect("started pid 1")?;
        let pid = b.state("c4")?["pid"].as_i64().unwrap_or(0) as i32;
        succeeds(&b.rvisor(&["delete", "--force", "c4"]))?;
        gone(pid)?;
        out.ends()?;
        fails_with(&b.rvisor(&["state", "c4"]), "does not exist")?;
        Ok(())
    });
}

#[test]
fn oci_hooks_run_on_the_host() {
    matrix("oci_hooks_run_on_the_host", &[Link::Static], |v| {
        let b = Bundle::new(v);
        let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.json", b.dir.display())]});
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/init", "serve"]);
            c["hooks"] = json!({"createRuntime": [hook("createRuntime")], "prestart": [hook("prestart")], "poststart": [hook("poststart")], "poststop": [hook("poststop")]});
        });
        let seen = |name: &str| -> Result<Value, String> {
            let text = fs::read(b.dir.join(format!("{name}.json"))).map_err(|e| format!("the {name} hook did not run: {e}"))?;
            serde_json::from_slice(&text).map_err(|e| format!("{name} hook's state: {e}"))
        };
        let (_stdin, out) = create(&b, "c6", &[])?;
        let pid = b.state("c6")?["pid"].clone();
        for name in ["createRuntime", "prestart"] {
            let s = seen(name)?;
            if s["status"] != "created" || s["id"] != "c6" || s["pid"] != pid {
                return Err(format!("{name} hook's state: {s}"));
            }
        }
        if b.dir.join("poststart.json").exists() {
            return Err("poststart ran before start".into());
        }
        succeeds(&b.rvisor(&["start", "c6"]))?;
        out.expect("started pid 1")?;
        if seen("poststart")?["status"] != "running" {
            return Err(format!("poststart hook's state: {}", seen("poststart")?));
        }
        succeeds(&b.rvisor(&["delete", "--force", "c6"]))?;
        if seen("poststop")?["status"] != "stopped" {
            return Err(format!("poststop hook's state: {}", seen("poststop")?));
        }
        // A failing create hook fails create, which leaves nothing behind.
        b.config(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
        fails_with(&b.rvisor(&["create", "--bundle", &b.bundle_arg(), "c7"]), "hook /bin/false")?;
        fails_with(&b.rvisor(&["state", "c7"]), "does not exist")?;
        b.config(|c| c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 10"], "timeout": 1}]}));
        fails_with(&b.rvisor(&["run", "--detach", "--bundle", &b.bundle_arg(), "c8"]), "timed out")?;
        fails_with(&b.rvisor(&["state", "c8"]), "does not exist")?;
        Ok(())
    });
}

#[test]
fn oci_cgroup_holds_the_whole_sandbox_and_pauses() {
    matrix("oci_cgroup_holds_the_whole_sandbox_and_pauses", &[Link::Static], |v| {
        let b = Bundle::new(v);
        let path = format!("/rvisor-test/{}", unique_name("c"));
        // Two CPUs' worth of quota: the host has two, so nothing is held back.
        let limits = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 100}, "cpu": {"quota": 200_000, "period": 100_000}});
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/init", "serve"]);
            c["linux"]["cgroupsPath"] = json!(path);
            c["linux"]["resources"] = limits.clone();
            c["process"]["oomScoreAdj"] = json!(500);
        });
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let dir = |controller: &str| if v2 { PathBuf::from(format!("/sys/fs/cgroup{path}")) } else { PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}")) };
        let (_stdin, out) = create(&b, "c10", &[])?;
        succeeds(&b.rvisor(&["start", "c10"]))?;
        out.expect("started pid 1")?;
        let pid = b.state("c10")?["pid"].to_string();
        // The spec's oomScoreAdj is the whole sandbox's, on the host.
        for p in procs_of(&dir("memory"))? {
            let adj = fs::read_to_string(format!("/proc/{p}/oom_score_adj")).unwrap_or_default();
            if adj.trim() != "500" {
                return Err(format!("process {p}: oom_score_adj {adj:?}"));
            }
        }
        let procs = fs::read_to_string(dir("memory").join("cgroup.procs")).map_err(|e| format!("the cgroup: {e}"))?;
        // The Sentry, its gofer and its stubs (kvm has none: the app runs on vCPUs of
        // the Sentry's own threads).
        let least = if v.platform == "kvm" { 2 } else { 3 };
        if !procs.lines().any(|p| p == pid) || procs.lines().count() < least {
            return Err(format!("cgroup.procs {procs:?}, sandbox {pid}"));
        }
        let memory = fs::read_to_string(dir("memory").join(if v2 { "memory.max" } else { "memory.limit_in_bytes" })).unwrap_or_default();
        let pids = fs::read_to_string(dir("pids").join("pids.max")).unwrap_or_default();
        if memory.trim() != (64 << 20).to_string() || pids.trim() != "100" {
            return Err(format!("limits: memory {memory:?}, pids {pids:?}"));
        }
        // pause freezes the whole sandbox; resume thaws it, and it carries on
        // (its gofer too: a new process loads from the root).
        succeeds(&b.rvisor(&["pause", "c10"]))?;
        if b.status("c10")? != "paused" {
            return Err(format!("after pause: {:?}", b.state("c10")));
        }
        fails_with(&b.rvisor(&["exec", "c10", "/bin/init"]), "paused")?;
        fails_with(&b.rvisor(&["delete", "c10"]), "not stopped: paused")?;
        succeeds(&b.rvisor(&["resume", "c10"]))?;
        let e = b.rvisor(&["exec", "c10", "/bin/init", "report", "0"]);
        if e.status != 0 || !e.stdout_str().contains("read /ro/in.txt: No such file or directory") {
            return Err(format!("exec after resume: {}", e.describe()));
        }
        let after = fs::read_to_string(dir("memory").join("cgroup.procs")).unwrap_or_default();
        if !procs.lines().all(|p| after.lines().any(|a| a == p)) {
            return Err(format!("processes before the pause {procs:?}, after {after:?}"));
        }
        // update changes the limits.
        succeeds(&b.rvisor(&["update", "--memory", &(128 << 20).to_string(), "--pids-limit", "50", "c10"]))?;
        let memory = fs::read_to_string(dir("memory").join(if v2 { "memory.max" } else { "memory.limit_in_bytes" })).unwrap_or_default();
        if memory.trim() != (128 << 20).to_string() || fs::read_to_string(dir("pids").join("pids.max")).unwrap_or_default().trim() != "50" {
            return Err(format!("after update: memory {memory:?}"));
        }
        // The sandbox reports the limit as its memory, as runsc does (a JVM or
        // Node sizes its heap from it), and follows the update; so does its
        // /sys/fs/cgroup, which shows the CPU quota and pids limit too.
        let e = b.rvisor(&["exec", "c10", "/bin/init", "meminfo"]);
        let want = format!(
            "{} kB\nsysinfo totalram {}\nread /sys/fs/cgroup/memory.max: {}\nread /sys/fs/cgroup/cpu.max: 200000 100000\nread /sys/fs/cgroup/pids.max: 50\n",
            128 << 10,
            128 << 20,
            128 << 20
        );
        if e.status != 0 || !e.stdout_str().starts_with("MemTotal:") || !e.stdout_str().ends_with(&want) {
            return Err(format!("meminfo under a 128 MiB limit: want MemTotal and cgroup files {want:?}: {}", e.describe()));
        }
        succeeds(&b.rvisor(&["pause", "c10"]))?;
        succeeds(&b.rvisor(&["delete", "--force", "c10"]))?;
        if dir("memory").exists() {
            return Err(format!("{} is left behind", dir("memory").display()));
        }
        // Past its memory limit, the container is killed (as runc's would be).
        b.config(|c| c["process"]["args"] = json!(["/bin/init", "alloc", "256"]));
        let o = b.rvisor(&["run", "--bundle", &b.bundle_arg(), "c11"]);
        if o.status != 137 || o.stdout_str().contains("allocated") {
            return Err(format!("want exit 137 (killed) past the limit: {}", o.describe()));
        }
        succeeds(&b.rvisor(&["delete", "c11"]))?;
        b.config(|c| c["process"]["args"] = json!(["/bin/init", "alloc", "16"]));
        let o = b.rvisor(&["run", "--bundle", &b.bundle_arg(), "c12"]);
        if o.status != 0 || o.stdout_str() != "allocated\n" {
            return Err(format!("want 16 MiB to fit in 64: {}", o.describe()));
        }
        succeeds(&b.rvisor(&["delete", "c12"]))?;
        // A child past the limit is killed alone, as runc's (the memcg OOM killer's)
        // would be: init sees it killed and carries on; the sandbox counts the kill.
        b.config(|c| c["process"]["args"] = json!(["/bin/init", "oomchild", "256"]));
        let log = b.dir.join("c13.log");
        let (stdin, out) = create(&b, "c13", &["--debug", "--log", log.to_str().unwrap_or_default()])?;
        succeeds(&b.rvisor(&["start", "c13"]))?;
        let with_log = |e: String| {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            format!("{e}\nthe sandbox's log, last lines first:\n{}\ncgroup usage now: {:?}", tail.join("\n"), fs::read_to_string(dir("memory").join(if v2 { "memory.current" } else { "memory.usage_in_bytes" })))
        };
        out.expect("child killed by signal 9").map_err(with_log)?;
        out.expect("init lives on")?;
        let usage = b.rvisor(&["usage", "c13"]);
        let kills = serde_json::from_str::<Value>(usage.stdout_str().trim()).ok().and_then(|u| u["oom_kills"].as_u64());
        if kills != Some(1) {
            return Err(format!("want one OOM kill counted: {}", usage.describe()));
        }
        drop(stdin);
        out.ends()?;
        succeeds(&b.rvisor(&["delete", "--force", "c13"]))?;
        Ok(())
    });
}

/// The pids a cgroup directory holds.
fn procs_of(dir: &Path) -> Result<Vec<String>, String> {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(procs.lines().map(str::to_string).collect())
}

/// Receives the descriptor `rvisor create` sends on a console socket.
fn receive_console(listener: &std::os::unix::net::UnixListener) -> Result<OwnedFd, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).map_err(|e| e.to_string())?;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just gave this process the descriptor.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("no descriptor on the console socket".into())
}

#[test]
fn oci_terminal_through_a_console_socket() {
    matrix("oci_terminal_through_a_console_socket", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["process"]["terminal"] = json!(true);
            c["process"]["args"] = json!(["/bin/init", "serve"]);
        });
        let socket = b.dir.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(|e| e.to_string())?;
        let console = std::thread::spawn(move || receive_console(&listener));
        create(&b, "c5", &["--console-socket", socket.to_str().unwrap()])?;
        let master = std::fs::File::from(console.join().map_err(|_| "console thread panicked")??);
        succeeds(&b.rvisor(&["start", "c5"]))?;
        let mut writer = master.try_clone().map_err(|e| e.to_string())?;
        let out = Lines::of(master);
        out.expect("started pid 1")?;
        // The terminal echoes what is typed.
        writer.write_all(b"hi\n").map_err(|e| e.to_string())?;
        out.expect("hi")?;
        out.expect("got hi")?;
        // exec -t through a console socket: the terminal's size, and its
        // resizes, reach the process.
        let exec_socket = b.dir.join("exec-console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&exec_socket).map_err(|e| e.to_string())?;
        let console = std::thread::spawn(move || receive_console(&listener));
        let pid_file = b.dir.join("exec.pid");
        succeeds(&b.rvisor(&["exec", "-t", "--console-socket", exec_socket.to_str().unwrap(), "--detach", "--pid-file", pid_file.to_str().unwrap(), "c5", "/bin/init", "winsize"]))?;
        let exec_master = std::fs::File::from(console.join().map_err(|_| "console thread panicked")??);
        let exec_out = Lines::of(exec_master.try_clone().map_err(|e| e.to_string())?);
        exec_out.expect("size 0 0")?;
        rvisor_platform::hostcall::set_window_size(std::os::fd::AsFd::as_fd(&exec_master), [30, 100, 0, 0]).map_err(|e| e.to_string())?;
        exec_out.expect("size 30 100")?;
        succeeds(&b.rvisor(&["kill", "c5", "SIGTERM"]))?;
        out.expect("terminated")?;
        succeeds(&b.rvisor(&["delete", "--force", "c5"]))?;
        Ok(())
    });
}

/// A pod's container with a terminal (`kubectl run -it`): the console socket
/// gets its pty, which the pod's sandbox bridges to the container's terminal;
/// what is typed reaches it and its resizes (SIGWINCH to the process that
/// stands for the container) resize it.
#[test]
fn oci_pod_container_on_a_console_socket() {
    matrix("oci_pod_container_on_a_console_socket", &[Link::Static], |v| {
        let b = Bundle::new(v);
        let pod = format!("pod-{}", std::process::id());
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/init", "serve"]);
            c["annotations"] = json!({"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": pod});
        });
        let (_sandbox_stdin, sandbox_out) = create(&b, &pod, &[])?;
        succeeds(&b.rvisor(&["start", &pod]))?;
        sandbox_out.expect("started pid 1")?;
        b.config(|c| {
            c["process"]["terminal"] = json!(true);
            c["process"]["args"] = json!(["/bin/init", "winsize"]);
            c["annotations"] = json!({"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": pod});
        });
        let socket = b.dir.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(|e| e.to_string())?;
        let console = std::thread::spawn(move || receive_console(&listener));
        let member = format!("tty-{}", std::process::id());
        create(&b, &member, &["--console-socket", socket.to_str().unwrap()])?;
        let master = std::fs::File::from(console.join().map_err(|_| "console thread panicked")??);
        succeeds(&b.rvisor(&["start", &member]))?;
        let out = Lines::of(master.try_clone().map_err(|e| e.to_string())?);
        out.expect("size 0 0")?;
        rvisor_platform::hostcall::set_window_size(std::os::fd::AsFd::as_fd(&master), [30, 100, 0, 0]).map_err(|e| e.to_string())?;
        out.expect("size 30 100")?;
        succeeds(&b.rvisor(&["delete", "--force", &member]))?;
        succeeds(&b.rvisor(&["delete", "--force", &pod]))?;
        Ok(())
    });
}

/// The spec's seccomp profile (`linux.seccomp`) applies inside the sandbox,
/// as runc applies it on the host: a refused call's errno, an argument rule,
/// a kill; for init and for what `rvisor exec` starts.
#[test]
fn oci_seccomp_profile_applies_in_the_sandbox() {
    const SCRIPT: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\ntry:\n    os.mkdir('/made')\n    print('mkdir: ok')\nexcept OSError as e:\n    print('mkdir:', e.errno)\nr = libc.personality(0xffffffff)\nprint('personality query:', 'ok' if r >= 0 else ctypes.get_errno())\nr = libc.personality(8)\nprint('personality 8:', 'ok' if r >= 0 else ctypes.get_errno(), flush=True)\nsys.stdin.read()\nos.getppid()\nprint('survived getppid')\n";
    matrix("oci_seccomp_profile_applies_in_the_sandbox", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["root"] = json!({"path": "/", "readonly": true});
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/usr/bin/python3", "-c", SCRIPT]);
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]});
        });
        let id = format!("sc-{}", std::process::id());
        let (stdin, out) = create(&b, &id, &[])?;
        succeeds(&b.rvisor(&["start", &id]))?;
        out.expect("mkdir: 13")?;
        out.expect("personality query: ok")?;
        out.expect("personality 8: 1")?;
        // What exec starts runs under the container's profile too.
        let exec = b.rvisor(&["exec", &id, "/usr/bin/python3", "-c", "import os\ntry:\n    os.mkdir('/made')\nexcept OSError as e:\n    print('exec mkdir:', e.errno)\n"]);
        succeeds(&exec)?;
        if exec.stdout_str() != "exec mkdir: 13\n" {
            return Err(format!("exec under the profile:\n{}", exec.describe()));
        }
        // getppid kills the process: its sandbox ends with SIGSYS's status.
        let pid = b.state(&id)?["pid"].as_i64().unwrap_or(0) as i32;
        drop(stdin);
        out.ends()?;
        gone(pid)?;
        let st = b.status(&id)?;
        if st != "stopped" {
            return Err(format!("the container is {st} after getppid"));
        }
        let bad = Bundle::new(v);
        bad.config(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        fails_with(&bad.rvisor(&["create", "--bundle", &bad.bundle_arg(), &format!("sn-{}", std::process::id())]), "SCMP_ACT_NOTIFY is not supported")
    });
}

/// `linux.rootfsPropagation` is the container root's propagation type inside
/// the sandbox: rshared makes the root and every mount beneath it shared (as
/// Kubernetes' Bidirectional propagation asks), none leaves them private, and
/// an unknown type is refused.
#[test]
fn oci_rootfs_propagation_applies_inside_the_sandbox() {
    const SCRIPT: &str = r#"awk '$5 == "/" || $5 == "/proc" { print $5, ($7 ~ /^shared:/ ? "shared" : "private") }' /proc/self/mountinfo"#;
    matrix("oci_rootfs_propagation_applies_inside_the_sandbox", &[Link::Static], |v| {
        for (propagation, want) in [(Some("rshared"), "/ shared\n/proc shared\n"), (Some("shared"), "/ shared\n/proc private\n"), (None, "/ private\n/proc private\n")] {
            let b = Bundle::new(v);
            b.config(|c| {
                c["root"] = json!({"path": "/", "readonly": true});
                c["process"]["terminal"] = json!(false);
                c["process"]["args"] = json!(["/bin/sh", "-c", SCRIPT]);
                if let Some(p) = propagation {
                    c["linux"]["rootfsPropagation"] = json!(p);
                }
            });
            let o = b.rvisor(&["run", "--bundle", &b.bundle_arg(), &format!("rp-{}", std::process::id())]);
            succeeds(&o)?;
            if o.stdout_str() != want {
                return Err(format!("rootfsPropagation {propagation:?}: want\n{want}\n{}", o.describe()));
            }
        }
        // A mount's own options apply after the root's type, in order; a lone
        // shared mount made a slave has no master and turns private, as on Linux.
        const EACH: &str = r#"awk '{ t = "private"; for (i = 7; $i != "-"; i++) { if ($i ~ /^shared:/) t = "shared"; else if ($i ~ /^master:/) t = "slave"; else if ($i == "unbindable") t = "unbindable" } if ($5 ~ /^\/(m|proc)/) print $5, t }' /proc/self/mountinfo"#;
        let b = Bundle::new(v);
        b.config(|c| {
            c["root"] = json!({"path": "/", "readonly": true});
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/sh", "-c", EACH]);
            c["linux"]["rootfsPropagation"] = json!("rshared");
            let tmpfs = |at: &str, options: Value| json!({"destination": at, "type": "tmpfs", "source": "tmpfs", "options": options});
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(tmpfs("/mnt/a", json!(["nosuid"])));
            mounts.push(tmpfs("/mnt/b", json!(["private", "nosuid"])));
            mounts.push(tmpfs("/mnt/c", json!(["unbindable"])));
            mounts.push(tmpfs("/mnt/d", json!(["private", "shared", "slave"])));
            mounts.push(tmpfs("/mnt/e", json!(["shared", "private"])));
            for m in mounts.iter_mut().filter(|m| m["destination"] == "/proc") {
                m["options"] = json!(["nosuid", "rprivate"]);
            }
        });
        let o = b.rvisor(&["run", "--bundle", &b.bundle_arg(), &format!("rm-{}", std::process::id())]);
        succeeds(&o)?;
        let want = "/mnt/a shared\n/mnt/b private\n/mnt/c unbindable\n/mnt/d private\n/mnt/e private\n/proc private\n";
        if o.stdout_str() != want {
            return Err(format!("per-mount propagation: want\n{want}\n{}", o.describe()));
        }
        let bad = Bundle::new(v);
        bad.config(|c| c["linux"]["rootfsPropagation"] = json!("rwhatever"));
        fails_with(&bad.rvisor(&["create", "--bundle", &bad.bundle_arg(), &format!("rb-{}", std::process::id())]), "is not a propagation type")
    });
}

/// Podman's default seccomp profile (Debian's containers-common), made an OCI
/// spec's as an engine makes it for a container without extra capabilities:
/// a common workload runs under it unchanged, and what it refuses is refused.
#[test]
fn oci_a_default_engine_profile_lets_common_work_run() {
    const PROFILE: &str = "/usr/share/containers/seccomp.json";
    const SCRIPT: &str = "import ctypes, os, socket, subprocess, threading\nlibc = ctypes.CDLL(None, use_errno=True)\nt = threading.Thread(target=lambda: None)\nt.start()\nt.join()\nprint('thread: ok')\nprint('subprocess:', subprocess.run(['/bin/sh', '-c', 'echo $((6 * 7)) | cat'], capture_output=True, text=True).stdout.strip())\na, b = socket.socketpair()\na.send(b'x')\nprint('socketpair:', b.recv(1))\nwith open('/dev/shm/f', 'w') as f:\n    f.write('data')\nprint('file:', open('/dev/shm/f').read(), os.stat('/dev/shm/f').st_size)\nr = libc.personality(ctypes.c_ulong(0xffffffff))\nprint('personality query:', 'ok' if r >= 0 else ctypes.get_errno())\nr = libc.personality(ctypes.c_ulong(0x0040000))\nprint('personality ADDR_NO_RANDOMIZE:', 'ok' if r >= 0 else ctypes.get_errno())\n";
    ensure_installed(PROFILE, "golang-github-containers-common");
    let engine: Value = serde_json::from_slice(&fs::read(PROFILE).unwrap()).unwrap();
    // Rules for amd64 and for a container without CAP_SYS_ADMIN and the like.
    let applies = |r: &Value| {
        let inc = &r["includes"];
        let arch_ok = inc["arches"].as_array().is_none_or(|a| a.iter().any(|x| x == "amd64"));
        let caps_ok = inc["caps"].as_array().is_none_or(|c| c.is_empty());
        arch_ok && caps_ok
    };
    let syscalls: Vec<Value> = engine["syscalls"].as_array().unwrap().iter().filter(|r| applies(r)).map(|r| {
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        if let Some(args) = r["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = json!(args);
        }
        if let Some(e) = r["errnoRet"].as_u64() {
            rule["errnoRet"] = json!(e);
        }
        rule
    }).collect();
    let profile = json!({"defaultAction": engine["defaultAction"], "defaultErrnoRet": engine["defaultErrnoRet"], "syscalls": syscalls});
    matrix("oci_a_default_engine_profile_lets_common_work_run", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["root"] = json!({"path": "/", "readonly": true});
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/usr/bin/python3", "-c", SCRIPT]);
            c["linux"]["seccomp"] = profile.clone();
        });
        let o = b.rvisor(&["run", "--bundle", &b.bundle_arg(), &format!("ep-{}", std::process::id())]);
        succeeds(&o)?;
        let want = "thread: ok\nsubprocess: 42\nsocketpair: b'x'\nfile: data 4\npersonality query: ok\npersonality ADDR_NO_RANDOMIZE: 38\n";
        if o.stdout_str() != want {
            return Err(format!("under the engine's profile:\n{}", o.describe()));
        }
        Ok(())
    });
}

/// `rvisor events --stats` prints one runc-shaped stats event measured by the sandbox for
/// the container's own processes, and `rvisor usage` the sandbox's memory by kind: both
/// see the 24 MiB the container holds. Without --stats, events come every --interval
/// until the container stops, and then the command ends. Bad input is refused.
#[test]
fn oci_events_and_usage_report_what_the_container_holds() {
    matrix("oci_events_and_usage_report_what_the_container_holds", &[Link::Static], |v| {
        const HELD: u64 = 24 << 20;
        let b = Bundle::new(v);
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/init", "hold", "24"]);
        });
        let (stdin, out) = create(&b, "ev1", &[])?;
        succeeds(&b.rvisor(&["start", "ev1"]))?;
        out.expect("holding")?;
        let json_of = |o: &Outcome| -> Result<serde_json::Value, String> {
            succeeds(o)?;
            serde_json::from_str(o.stdout_str().trim()).map_err(|e| format!("not JSON ({e}): {}", o.describe()))
        };
        let e = json_of(&b.rvisor(&["events", "--stats", "ev1"]))?;
        let d = &e["data"];
        let at_least = |what: &str, got: &serde_json::Value, want: u64| match got.as_u64() {
            Some(n) if n >= want => Ok(()),
            _ => Err(format!("{what}: {got}, want at least {want} in {e}")),
        };
        if e["type"] != "stats" || e["id"] != "ev1" {
            return Err(format!("not a stats event of ev1: {e}"));
        }
        at_least("memory.usage.usage", &d["memory"]["usage"]["usage"], HELD)?;
        at_least("memory.raw.sandbox_anonymous", &d["memory"]["raw"]["sandbox_anonymous"], HELD)?;
        at_least("pids.current", &d["pids"]["current"], 1)?;
        at_least("cpu.usage.total", &d["cpu"]["usage"]["total"], 1)?;
        let u = json_of(&b.rvisor(&["usage", "ev1"]))?;
        at_least("usage anonymous", &u["anonymous"], HELD)?;
        at_least("usage total", &u["total"], u["anonymous"].as_u64().unwrap_or(u64::MAX))?;
        at_least("usage resident", &u["resident"], 1)?;
        fails_with(&b.rvisor(&["events", "--interval", "soon", "ev1"]), "not a duration")?;
        fails_with(&b.rvisor(&["events", "--stats", "no-such-container"]), "no-such-container")?;
        // The stream: two events, then the container ends and so does the stream.
        let mut events = b.command(&["events", "--interval", "20ms", "ev1"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
        let stream = Lines::of(events.stdout.take().unwrap());
        for _ in 0..2 {
            let line = stream.0.recv_timeout(timeout()).map_err(|e| format!("no event: {e}"))?;
            if !line.starts_with("{\"type\":\"stats\"") && !line.contains("\"type\":\"stats\"") {
                return Err(format!("not a stats event: {line}"));
            }
        }
        drop(stdin);
        out.ends()?;
        while stream.0.recv_timeout(timeout()).is_ok() {}
        let status = events.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("events after the container stopped: {status}"));
        }
        fails_with(&b.rvisor(&["events", "--stats", "ev1"]), "not running")?;
        succeeds(&b.rvisor(&["delete", "ev1"]))
    });
}

/// A container's sandbox enters the Sentry's Landlock domain at boot and, with
/// its state file open and control socket bound, loses the host's files but
/// /proc before it starts init's task thread (and so every later one): both fully enforced on this host (Landlock ABI 7), and the
/// container runs on every platform (the rest of the suite runs containers,
/// pods and `rvisor exec` under it too).
#[test]
fn oci_sandbox_is_in_a_landlock_domain() {
    matrix("oci_sandbox_is_in_a_landlock_domain", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["init", "report", "0"]);
        });
        let log = b.dir.join("sandbox.log");
        let o = b.rvisor(&["--debug", "--log", log.to_str().unwrap_or_default(), "run", "--bundle", &b.bundle_arg(), "ll"]);
        succeeds(&o)?;
        let text = fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        for layer in ["landlock domain", "landlock files"] {
            if !text.lines().any(|l| l.contains(layer) && l.contains("FullyEnforced")) {
                return Err(format!("no fully enforced {layer:?} in the sandbox's log:\n{text}"));
            }
        }
        Ok(())
    });
}

/// runc's --preserve-fds and socket activation: `run` hands descriptors 3, 4, …
/// to the container's process, which reads and writes the host's pipes through
/// them; LISTEN_FDS (with LISTEN_PID naming rvisor) adds its descriptors first,
/// which the process sees as LISTEN_FDS=n and LISTEN_PID=1; `exec
/// --preserve-fds` does the same for its process; a descriptor that is not open
/// is an error.
#[test]
fn oci_preserved_descriptors_and_socket_activation() {
    matrix("oci_preserved_descriptors_and_socket_activation", &[Link::Static], |v| {
        let b = Bundle::new(v);
        b.config(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["/bin/init", "fds"]);
        });
        let bundle = b.bundle_arg();
        let fds = |n: &str, read: &str| format!("LISTEN_FDS={n} LISTEN_PID={n}\nfd 3: pipe\nfd 4: pipe\nread from fd 4: {read}\n");
        runs_with_pipes_at_3_and_4(b.command(&["run", "--bundle", &bundle, "--preserve-fds", "2", "pf1"]), "ping\n", &fds("-", "ping")).map_err(|e| format!("run --preserve-fds 2: {e}"))?;
        // Socket activation: one descriptor from LISTEN_FDS, one preserved.
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "export LISTEN_PID=$$; exec \"$0\" \"$@\""]).arg(rvisor()).args(platform_args(v.platform)).arg("--root").arg(&b.root).args(["run", "--bundle", &bundle, "--preserve-fds", "1", "pf2"]).env("LISTEN_FDS", "1");
        runs_with_pipes_at_3_and_4(cmd, "pong\n", &fds("1", "pong")).map_err(|e| format!("LISTEN_FDS=1 and --preserve-fds 1: {e}"))?;
        fails_with(&b.rvisor(&["run", "--bundle", &bundle, "--preserve-fds", "3", "pf3"]), "descriptor 3 is not open")?;

        // exec into a running container.
        b.config(|c| c["process"]["args"] = json!(["/bin/init", "serve"]));
        let (stdin, lines) = create(&b, "pf4", &[])?;
        succeeds(&b.rvisor(&["start", "pf4"]))?;
        lines.expect("started pid 1")?;
        runs_with_pipes_at_3_and_4(b.command(&["exec", "--preserve-fds", "2", "pf4", "/bin/init", "fds"]), "exec\n", &fds("-", "exec")).map_err(|e| format!("exec --preserve-fds 2: {e}"))?;
        fails_with(&b.rvisor(&["exec", "--preserve-fds", "3", "pf4", "/bin/init", "fds"]), "descriptor 3 is not open")?;
        drop(stdin);
        Ok(())
    });
}

//! `--network=host`: the sandbox's inet sockets are the host's, and netlink
//! shows the host's interfaces (read-only). A sandboxed
//! client reaches a host TCP server and a host UDP socket, a sandboxed server
//! is reached from the host, refused connections and socket options behave as
//! on the host; without the flag, the host's loopback is out of reach. An OCI
//! container that names a network namespace works in it (by default with the
//! sandbox's own stack on its interfaces: see sandbox_network.rs, and
//! pods.rs for a Kubernetes pod's containers).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};

/// Run in the sandbox with the host's TCP and UDP ports as arguments.
const CLIENT: &str = r#"
import socket, sys
tcp, udp = int(sys.argv[1]), int(sys.argv[2])
print("interfaces", sorted(n for _, n in socket.if_nameindex() if not n.startswith("rv")))
s = socket.create_connection(("127.0.0.1", tcp))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("nodelay", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
s.sendall(b"ping")
print("tcp reply", s.recv(100).decode())
s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"hello", ("127.0.0.1", udp))
data, peer = u.recvfrom(100)
print("udp reply", data.decode(), peer[1] == udp)
try:
    socket.create_connection(("127.0.0.1", 1))
except ConnectionRefusedError:
    print("port 1 refused")
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
print("listening", l.getsockname()[1], flush=True)
c, _ = l.accept()
c.sendall(b"from the sandbox: " + c.recv(100))
c.close()
"#;

fn serve_udp_once(sock: UdpSocket) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 100];
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&[b"echo:", &buf[..n]].concat(), from);
        }
    })
}

fn passes_through(platform: &str) -> Result<(), String> {
    let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let (tcp_port, udp_port) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
    let (t1, t2) = (serve_tcp_once(tcp), serve_udp_once(udp));
    let spec = Spec::args(["-c", CLIENT, &tcp_port.to_string(), &udp_port.to_string()]);
    let mut run = Interactive::spawn(sandbox_command(platform, &["--network=host"], Path::new("/usr/bin/python3"), &spec));
    // The host's interfaces, through netlink (if_nameindex), as the host lists
    // them (but the veths other tests make and remove meanwhile).
    let native = Command::new("python3").args(["-c", "import socket; print('interfaces', sorted(n for _, n in socket.if_nameindex() if not n.startswith('rv')))"]).output().map_err(|e| e.to_string())?;
    run.expect_line(String::from_utf8_lossy(&native.stdout).trim_end())?;
    for want in ["nodelay 1", "tcp reply pong:ping", "udp reply echo:hello True", "port 1 refused"] {
        run.expect_line(want)?;
    }
    let line = run.next_line()?;
    let port: u16 = line.strip_prefix("listening ").and_then(|p| p.parse().ok()).ok_or_else(|| format!("want the sandbox's port, got {line:?}"))?;
    // The sandbox's server is a host socket: the host reaches it.
    let mut c = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to the sandbox's server: {e}"))?;
    c.write_all(b"hi").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    c.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    if reply != "from the sandbox: hi" {
        return Err(format!("reply {reply:?}"));
    }
    let o = run.finish();
    sane(&o)?;
    if o.status != 0 {
        return Err(o.describe());
    }
    let _ = (t1.join(), t2.join());
    Ok(())
}

#[test]
fn host_network_passes_through() {
    matrix("host_network_passes_through", &[Link::Static], |v| passes_through(v.platform));
}

/// Netlink shows the host's network but cannot change it: the host refuses,
/// as it refuses an unprivileged process.
/// IP-level control messages pass through host sockets (tests/programs/pktinfo.c,
/// on the host's loopback): what the app sends with a datagram (source, TTL,
/// TOS) reaches the host, and what the host reports of one (IP_PKTINFO...)
/// reaches the app, as natively; the host judges the errors.
#[test]
fn host_network_passes_ip_control_messages() {
    matrix("host_network_passes_ip_control_messages", &[Link::Static], |v| {
        let bin = compile("pktinfo", v.link);
        let native = run_native(&bin, &Spec::default());
        let sandbox = run_sandbox_flags(v.platform, &["--network=host"], &bin, &Spec::default());
        sane(&sandbox)?;
        expect_status(&sandbox, 0)?;
        if sandbox.stdout != native.stdout {
            return Err(format!("stdout differs from native:\n{}", diff(&native.stdout, &sandbox.stdout)));
        }
        expect_stdout_has_line(&sandbox, "  IP_PKTINFO ifindex 1 spec_dst 127.0.0.5 addr 127.0.0.5 (len 12)")
    });
}

/// TCP urgent data passes through host sockets (tests/programs/tcp_oob.c, on
/// the host's loopback): send(MSG_OOB), recv(MSG_OOB), SIOCATMARK, POLLPRI and
/// SO_OOBINLINE as natively, the host judging; but SIGURG stays with the host
/// (its socket has no owner), so that part of the program is left out.
#[test]
fn host_network_passes_urgent_data() {
    matrix("host_network_passes_urgent_data", &[Link::Static], |v| {
        let bin = compile("tcp_oob", v.link);
        let native = run_native(&bin, &Spec::default());
        let sandbox = run_sandbox_flags(v.platform, &["--network=host"], &bin, &Spec::default());
        sane(&sandbox)?;
        let without_sigurg = |out: &str| {
            let mut skip = false;
            let mut kept = String::new();
            for line in out.lines() {
                if line.starts_with("-- ") {
                    skip = line == "-- SIGURG";
                }
                if !skip && !line.ends_with(" failures") && line != "all ok" {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            kept
        };
        let (native, sandbox) = (without_sigurg(&native.stdout_str()), without_sigurg(&sandbox.stdout_str()));
        if sandbox != native {
            return Err(format!("stdout differs from native:\n{}", diff(native.as_bytes(), sandbox.as_bytes())));
        }
        if !sandbox.contains("MSG_OOB: 1 [r] (want 1 [r]): ok") {
            return Err(sandbox);
        }
        Ok(())
    });
}

#[test]
fn host_network_cannot_be_reconfigured() {
    matrix("host_network_cannot_be_reconfigured", &[Link::Static], |v| {
        let address = "10.213.250.1";
        let script = format!("ip -o link show lo | cut -d: -f2; ip addr add {address}/32 dev lo 2>&1; echo \"add: $?\"; ip link set lo mtu 1280 2>&1; echo \"mtu: $?\"");
        let o = run_sandbox_flags(v.platform, &["--network=host"], Path::new("/bin/sh"), &Spec::args(["-c", &script]));
        let lo = Command::new("ip").args(["addr", "show", "lo"]).output().map_err(|e| e.to_string())?;
        let lo = String::from_utf8_lossy(&lo.stdout).into_owned();
        if lo.contains(address) || lo.contains("mtu 1280") {
            let _ = Command::new("ip").args(["addr", "del", &format!("{address}/32"), "dev", "lo"]).output();
            return Err(format!("the sandbox changed the host's lo: {lo}\n{}", o.describe()));
        }
        sane(&o)?;
        let refused = "RTNETLINK answers: Operation not permitted";
        if o.stdout_str() != format!(" lo\n{refused}\nadd: 2\n{refused}\nmtu: 2\n") {
            return Err(o.describe());
        }
        Ok(())
    });
}

#[test]
fn without_host_network_the_hosts_loopback_is_out_of_reach() {
    matrix("without_host_network_the_hosts_loopback_is_out_of_reach", &[Link::Static], |v| {
        let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = tcp.local_addr().unwrap().port().to_string();
        let script = "import socket, sys\ntry:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n    print('reached the host')\nexcept ConnectionRefusedError:\n    print('refused')\n";
        let o = run_sandbox(v.platform, Path::new("/usr/bin/python3"), &Spec::args(["-c", script, &port]));
        sane(&o)?;
        if o.stdout_str() != "refused\n" {
            return Err(o.describe());
        }
        Ok(())
    });
}

/// A bundle over the host's root (read-only) whose process is `python3 -c
/// SCRIPT`, with a state root of its own.
struct PythonBundle {
    dir: std::path::PathBuf,
    platform: &'static str,
}

impl PythonBundle {
    fn new(v: Variant, script: &str) -> Result<PythonBundle, String> {
        let b = PythonBundle { dir: scratch_path("python-bundle"), platform: v.platform };
        std::fs::create_dir_all(&b.dir).map_err(|e| e.to_string())?;
        b.rvisor(&["spec", "--bundle", b.dir.to_str().unwrap()]).output().map_err(|e| e.to_string())?;
        b.config(|c| {
            c["root"] = serde_json::json!({"path": "/", "readonly": true});
            c["process"]["terminal"] = serde_json::json!(false);
            c["process"]["args"] = serde_json::json!(["/usr/bin/python3", "-c", script]);
        });
        Ok(b)
    }

    fn config(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.dir.join("config.json");
        let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
    }

    fn rvisor(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rvisor());
        c.args(platform_args(self.platform)).arg("--root").arg(self.dir.join("state")).args(args);
        c
    }

    /// `rvisor run` of the bundle as container `id`.
    fn run(&self, id: &str) -> Command {
        self.rvisor(&["run", "--bundle", self.dir.to_str().unwrap(), id])
    }
}

impl Drop for PythonBundle {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.dir.join("state")).into_iter().flatten().flatten() {
            let _ = self.rvisor(&["delete", "--force", &entry.file_name().to_string_lossy()]).output();
        }
    }
}

#[test]
fn oci_container_joins_its_network_namespace() {
    matrix("oci_container_joins_its_network_namespace", &[Link::Static], |v| {
        let ns = Netns::new(213)?;
        let script = "import socket\nprint(sorted(n for _, n in socket.if_nameindex()), flush=True)\nl = socket.socket()\nl.bind(('0.0.0.0', 8080))\nl.listen(1)\nprint('listening', flush=True)\nc, peer = l.accept()\nc.sendall(('hello ' + peer[0]).encode())\nc.close()\n";
        let b = PythonBundle::new(v, script)?;
        b.config(|c| {
            let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
            namespaces.retain(|n| n["type"] != "network");
            namespaces.push(serde_json::json!({"type": "network", "path": ns.path()}));
        });
        let mut child = b.run("net").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut interfaces = String::new();
        out.read_line(&mut interfaces).map_err(|e| e.to_string())?;
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        let result = (|| {
            // Its namespace's interfaces, not the host's.
            if interfaces != format!("['lo', '{}']\n", ns.ns_if) {
                return Err(format!("container's interfaces: {interfaces:?}"));
            }
            if line != "listening\n" {
                return Err(format!("container said {line:?}"));
            }
            // The container's port is in its namespace: the host reaches it
            // over the veth, at the namespace's address.
            let mut s = TcpStream::connect((ns.ns_addr, 8080)).map_err(|e| format!("connect: {e}"))?;
            let mut reply = String::new();
            s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
            if reply != format!("hello {}", ns.host_addr) {
                return Err(format!("reply {reply:?}"));
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        result?;
        if !status.success() {
            let mut err = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            return Err(format!("container: {status}: {err}"));
        }
        Ok(())
    });
}

/// A spec's net.ipv4.ip_unprivileged_port_start (containerd's
/// `enable_unprivileged_ports`) lets a container without CAP_NET_BIND_SERVICE
/// bind port 80.
#[test]
fn oci_unprivileged_port_start_from_the_spec() {
    matrix("oci_unprivileged_port_start_from_the_spec", &[Link::Static], |v| {
        let script = "import socket\ntry:\n    socket.socket().bind(('127.0.0.1', 80))\n    print('bound')\nexcept PermissionError:\n    print('EACCES')\n";
        let b = PythonBundle::new(v, script)?;
        for (n, (sysctl, want)) in [(None, "EACCES\n"), (Some("0"), "bound\n")].into_iter().enumerate() {
            b.config(|c| {
                c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
                // Not even runc's default CAP_NET_BIND_SERVICE.
                c["process"]["capabilities"] = serde_json::json!({});
                c["linux"]["sysctl"] = match sysctl {
                    Some(v) => serde_json::json!({"net.ipv4.ip_unprivileged_port_start": v}),
                    None => serde_json::json!({}),
                };
            });
            let o = run(b.run(&format!("port{n}")), Input::Bytes(Vec::new()));
            sane(&o)?;
            if o.stdout_str() != want {
                return Err(format!("sysctl {sysctl:?}: want {want:?}: {}", o.describe()));
            }
        }
        Ok(())
    });
}

//! `--network=sandbox`: `rvisor do --netns PATH` joins a network namespace
//! (an `ip netns` with a veth pair to the host, `common::Netns`) and the
//! sandbox's own network stack takes its interface: the host's stack keeps
//! none of its addresses. Through it, sandboxed TCP and UDP reach the host and
//! the host reaches sandboxed servers, and `ip` in the sandbox shows the
//! interface, addresses and routes the namespace had. Without a namespace to
//! join, sandbox networking is refused: it would take the host's interfaces.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

/// The second octet of this file's namespaces' subnets (host_network.rs has 213).
const NET: u8 = 214;

const PYTHON: &str = "/usr/bin/python3";

fn netns_flags(ns: &Netns) -> [String; 2] {
    ["--netns".to_string(), ns.path()]
}

fn sandbox_in(platform: &str, ns: &Netns, program: &str, spec: &Spec) -> std::process::Command {
    let flags = netns_flags(ns);
    sandbox_command(platform, &[&flags[0], &flags[1]], Path::new(program), spec)
}

/// Once the sandbox runs, the host's side of the namespace has no address
/// left on the interface (IPv4 removed, IPv6 disabled), and the sandbox lives on.
#[test]
fn sandbox_takes_the_namespaces_interface() {
    matrix("sandbox_takes_the_namespaces_interface", &[Link::Static], |v| {
        let ns = Netns::new(NET)?;
        // It waits for a line on its standard input: the test's go-ahead to end.
        let mut run = Interactive::spawn(sandbox_in(v.platform, &ns, "/bin/sh", &Spec::args(["-c", "echo ready; read x; echo done"])));
        run.expect_line("ready")?;
        let addrs = ns.ip(&format!("-o addr show dev {}", ns.ns_if))?;
        if addrs.contains(" inet ") || addrs.contains(" inet6 ") {
            return Err(format!("the host still has addresses on {}: {addrs}", ns.ns_if));
        }
        let disabled = std::process::Command::new("ip")
            .args(["netns", "exec", &ns.name, "cat", &format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", ns.ns_if)])
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&disabled.stdout).trim() != "1" {
            return Err(format!("IPv6 is still on in the host's {}: {disabled:?}", ns.ns_if));
        }
        run.send_line()?;
        run.expect_line("done")?;
        run.succeeds()
    });
}

/// Sandbox networking in the caller's own namespace would take the host's
/// interfaces: refused, with a message, before anything is touched.
#[test]
fn sandbox_network_needs_a_namespace() {
    matrix("sandbox_network_needs_a_namespace", &[Link::Static], |v| {
        let o = run_sandbox_flags(v.platform, &["--network=sandbox"], Path::new("/bin/true"), &Spec::args(Vec::<String>::new()));
        sane(&o)?;
        if o.status == 0 || !o.stderr_str().contains("--network=sandbox needs --netns") {
            return Err(o.describe());
        }
        Ok(())
    });
}

/// A sandboxed client reaches a host server on the veth's host end.
#[test]
fn sandboxed_tcp_client_reaches_the_host() {
    matrix("sandboxed_tcp_client_reaches_the_host", &[Link::Static], |v| {
        let ns = Netns::new(NET)?;
        let listener = TcpListener::bind((ns.host_addr, 0)).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let server = serve_tcp_once(listener);
        let script = "import socket, sys\ns = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)\ns.sendall(b'ping')\nprint(s.recv(100).decode())\n";
        let o = run(sandbox_in(v.platform, &ns, PYTHON, &Spec::args(["-c", script, &addr.ip().to_string(), &addr.port().to_string()])), Input::Bytes(Vec::new()));
        // Lets the server go if the sandbox never came.
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        let _ = server.join();
        sane(&o)?;
        if o.status != 0 || o.stdout_str() != "pong:ping\n" {
            return Err(o.describe());
        }
        Ok(())
    });
}

/// The host reaches a sandboxed server listening on 0.0.0.0, at the
/// namespace's address, and the server sees the host's address.
#[test]
fn host_reaches_a_sandboxed_tcp_server() {
    matrix("host_reaches_a_sandboxed_tcp_server", &[Link::Static], |v| {
        let ns = Netns::new(NET)?;
        let script = "import socket\nl = socket.socket()\nl.bind(('0.0.0.0', 8080))\nl.listen(1)\nprint('listening', flush=True)\nc, peer = l.accept()\nc.sendall(('hello ' + peer[0]).encode())\nc.close()\n";
        let mut run = Interactive::spawn(sandbox_in(v.platform, &ns, PYTHON, &Spec::args(["-c", script])));
        run.expect_line("listening")?;
        let mut s = TcpStream::connect_timeout(&SocketAddr::from((ns.ns_addr, 8080)), Duration::from_secs(20)).map_err(|e| format!("connect to the sandbox's server: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).map_err(|e| format!("reading the sandbox's reply: {e}"))?;
        if reply != format!("hello {}", ns.host_addr) {
            return Err(format!("reply {reply:?}"));
        }
        run.succeeds()
    });
}

/// The namespace's own host processes reach the sandbox's listeners at
/// 127.0.0.1, as they would a runc container's (containerd's `kubectl
/// port-forward` dials localhost:PORT in the pod's namespace); a listener on
/// the interface's address alone is not mirrored there.
#[test]
fn the_namespaces_loopback_reaches_sandbox_listeners() {
    matrix("the_namespaces_loopback_reaches_sandbox_listeners", &[Link::Static], |v| {
        let ns = Netns::new(NET)?;
        let script = "import socket, sys\nl = socket.socket()\nl.bind(('0.0.0.0', 8090))\nl.listen(1)\ni = socket.socket()\ni.bind((sys.argv[1], 8091))\ni.listen(1)\nprint('listening', flush=True)\nc, peer = l.accept()\nc.sendall(('hello ' + peer[0]).encode())\nc.close()\n";
        let mut run = Interactive::spawn(sandbox_in(v.platform, &ns, PYTHON, &Spec::args(["-c", script, &ns.ns_addr.to_string()])));
        run.expect_line("listening")?;
        let client = "import socket, sys\nfor port in (8091, 8090):\n    s = socket.socket()\n    try:\n        s.connect(('127.0.0.1', port))\n        print(port, s.recv(100).decode())\n    except ConnectionRefusedError:\n        print(port, 'refused')\n";
        let o = std::process::Command::new("ip").args(["netns", "exec", &ns.name, "python3", "-c", client]).output().map_err(|e| e.to_string())?;
        let out = String::from_utf8_lossy(&o.stdout);
        if out != "8091 refused\n8090 hello 127.0.0.1\n" {
            return Err(format!("from the namespace's loopback: {out:?} {}", String::from_utf8_lossy(&o.stderr)));
        }
        run.succeeds()
    });
}

/// UDP both ways: the sandbox sends to a host socket (from the source an
/// IP_PKTINFO message names), which answers to the sender's address and port,
/// and the answer's IP_PKTINFO names the interface and the address it came to;
/// a connected socket that sent to a closed port is told so (ECONNREFUSED) by
/// the host's ICMP error.
#[test]
fn udp_between_the_sandbox_and_the_host() {
    matrix("udp_between_the_sandbox_and_the_host", &[Link::Static], |v| {
        let ns = Netns::new(NET)?;
        let host = UdpSocket::bind((ns.host_addr, 0)).map_err(|e| e.to_string())?;
        host.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
        let port = host.local_addr().map_err(|e| e.to_string())?.port();
        let script = "import socket, struct, sys\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nu.bind(('0.0.0.0', 9000))\nu.setsockopt(socket.IPPROTO_IP, 8, 1)\nsource = struct.pack('i4s4s', 0, socket.inet_aton(sys.argv[4]), bytes(4))\nu.sendmsg([b'from the sandbox'], [(socket.IPPROTO_IP, 8, source)], 0, (sys.argv[1], int(sys.argv[2])))\nprint('sent', flush=True)\ndata, anc, _, peer = u.recvmsg(100, 256)\nprint('got', data.decode(), peer[0])\ninfo = [d for (l, t, d) in anc if (l, t) == (socket.IPPROTO_IP, 8)][0]\nprint('pktinfo', struct.unpack('i', info[:4])[0] == socket.if_nametoindex(sys.argv[3]), socket.inet_ntoa(info[8:12]))\nc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nc.connect((sys.argv[1], 9))\nc.send(b'x')\nc.settimeout(20)\ntry:\n    c.recv(10)\nexcept ConnectionRefusedError:\n    print('port 9 refused')\nrow = [l.split() for l in open('/proc/net/dev') if l.strip().startswith(sys.argv[3] + ':')][0]\nprint('counted', int(row[2]) >= 2 and int(row[10]) >= 3)\nimport json, subprocess\nst = json.loads(subprocess.run(['ip', '-j', '-s', 'link', 'show', 'dev', sys.argv[3]], capture_output=True, text=True).stdout)[0]['stats64']\nprint('ip -s counted', st['rx']['packets'] >= 2 and st['tx']['packets'] >= 3 and st['rx']['bytes'] > 0)\n";
        let mut run = Interactive::spawn(sandbox_in(v.platform, &ns, PYTHON, &Spec::args(["-c", script, &ns.host_addr.to_string(), &port.to_string(), &ns.ns_if, &ns.ns_addr.to_string()])));
        run.expect_line("sent")?;
        let mut buf = [0u8; 100];
        let (n, from) = host.recv_from(&mut buf).map_err(|e| format!("the host's socket heard nothing: {e}"))?;
        if &buf[..n] != b"from the sandbox" || from != SocketAddr::from((ns.ns_addr, 9000)) {
            return Err(format!("the host got {:?} from {from}", String::from_utf8_lossy(&buf[..n])));
        }
        host.send_to(b"from the host", from).map_err(|e| e.to_string())?;
        run.expect_line(&format!("got from the host {}", ns.host_addr))?;
        // IP_PKTINFO: the interface it came in on, and the address it was sent to.
        run.expect_line(&format!("pktinfo True {}", ns.ns_addr))?;
        // A connected socket hears of the host's port unreachable.
        run.expect_line("port 9 refused")?;
        // /proc/net/dev counts the interface's frames (received: the host's
        // datagram and its ICMP error; sent: the two datagrams and an ARP).
        run.expect_line("counted True")?;
        run.expect_line("ip -s counted True")?;
        run.succeeds()
    });
}

/// What identifies an `ip` line, without what the sandbox's stack may report
/// differently (interface index, flags, protocol, scope, metric, lifetimes):
/// for `ip -o addr`, the interface and `inet ADDR/PREFIX`; for `ip route`,
/// the words before the first attribute (`default via GW dev IF`, `NET/P dev IF`).
fn addr_key(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    (w.get(2) == Some(&"inet")).then(|| w[1..4].join(" "))
}

fn route_key(line: &str) -> String {
    line.split_whitespace().take_while(|w| !["proto", "scope", "src", "metric", "linkdown", "onlink", "pref"].contains(w)).collect::<Vec<_>>().join(" ")
}

/// `ip` in the sandbox shows the namespace's interface with the IPv4 address
/// and routes (the default one included) the namespace had before the
/// sandbox took it.
#[test]
fn sandbox_shows_the_namespaces_addresses_and_routes() {
    matrix("sandbox_shows_the_namespaces_addresses_and_routes", &[Link::Static], |v| {
        let ns = Netns::new(NET)?;
        let want_addrs: Vec<String> = ns.ip(&format!("-o -4 addr show dev {}", ns.ns_if))?.lines().filter_map(addr_key).collect();
        let want_routes: Vec<String> = ns.ip("-4 route")?.lines().map(route_key).collect();
        if want_addrs.is_empty() || !want_routes.iter().any(|r| r.starts_with("default via")) {
            return Err(format!("the namespace has no address or no default route: {want_addrs:?} {want_routes:?}"));
        }
        // Where packets go (`ip route get`): out through the gateway, on the
        // link, and to the sandbox itself.
        let gets = format!("for d in 1.1.1.1 {} {} 127.0.0.1; do ip route get $d; done", ns.host_addr, ns.ns_addr);
        let want_gets = ns.ip_netns_sh(&gets)?;
        let o = run(sandbox_in(v.platform, &ns, "/bin/sh", &Spec::args(["-c", &format!("ip -o -4 addr; echo --; ip -4 route; echo --; {gets}")])), Input::Bytes(Vec::new()));
        sane(&o)?;
        let out = o.stdout_str();
        let (addrs, rest) = out.split_once("--\n").ok_or_else(|| o.describe())?;
        let (routes, got_gets) = rest.split_once("--\n").ok_or_else(|| o.describe())?;
        if got_gets != want_gets {
            return Err(format!("ip route get:\n{}", diff(want_gets.as_bytes(), got_gets.as_bytes())));
        }
        let got_addrs: Vec<String> = addrs.lines().filter_map(addr_key).collect();
        let got_routes: Vec<String> = routes.lines().map(route_key).collect();
        let missing: Vec<&String> = want_addrs.iter().filter(|a| !got_addrs.contains(a)).chain(want_routes.iter().filter(|r| !got_routes.contains(r))).collect();
        if o.status != 0 || !missing.is_empty() {
            return Err(format!("missing in the sandbox: {missing:?}\n{}", o.describe()));
        }
        Ok(())
    });
}

/// What `TCP_BEHAVIOUR` does against the host, for the test's host server:
/// a connection to a closed port, a non-blocking connect, 8 MiB sent and
/// checked, half-close, the addresses each end names, 32 MiB downloaded,
/// and a reset.
const TCP_BEHAVIOUR: &str = r#"
import errno, select, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, 1), timeout=20)
    print("port 1 open")
except ConnectionRefusedError:
    print("port 1 refused")
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.setblocking(False)
print("connect_ex", errno.errorcode.get(s.connect_ex((host, port))))
_, w, _ = select.select([], [s], [], 20)
print("writable", len(w), "SO_ERROR", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
s.setblocking(True)
print("peer", s.getpeername()[0] == host, "name", s.getsockname()[0])
data = bytes(range(256)) * 32768
print("sent at once", s.send(data) == len(data))
s.shutdown(socket.SHUT_WR)
reply = b""
while True:
    more = s.recv(65536)
    if not more:
        break
    reply += more
print("server got", reply.decode(), "sent", len(data), sum(data) & 0xffffffff)
s.close()
s = socket.create_connection((host, port), timeout=20)
s.sendall(b"download")
s.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    more = s.recv(1 << 20)
    if not more:
        break
    got += more
print("downloaded", len(got), sum(got) & 0xffffffff)
s.close()
s = socket.create_connection((host, port), timeout=20)
s.sendall(b"reset")
try:
    while s.recv(100):
        pass
    print("end of stream")
except ConnectionResetError:
    print("connection reset")
"#;

/// The host's end of `TCP_BEHAVIOUR`: answers a connection with the length
/// and byte sum of what it read until the client shut its writing, sends
/// 32 MiB for "download", or resets one that starts with "reset" (SO_LINGER 0).
fn serve_behaviour(listener: TcpListener, connections: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..connections {
            // Gives up when the client stops coming (a failed run), rather
            // than holding the test for ever.
            let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&listener), nix::poll::PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(30_000u16)) != Ok(1) {
                return;
            }
            let Ok((mut c, _)) = listener.accept() else { return };
            let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
            let mut got = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                if got == b"reset" {
                    break;
                }
            }
            if got == b"reset" {
                // SO_LINGER 0: the close resets the connection.
                let _ = nix::sys::socket::setsockopt(&c, nix::sys::socket::sockopt::Linger, &libc::linger { l_onoff: 1, l_linger: 0 });
                continue;
            }
            if got == b"download" {
                let block: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
                for _ in 0..32 {
                    if c.write_all(&block).is_err() {
                        break;
                    }
                }
                continue;
            }
            let sum = got.iter().fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
            let _ = c.write_all(format!("{} {sum}", got.len()).as_bytes());
        }
    })
}

/// TCP through the sandbox's stack, and through the host's in
/// `--network=host`, behaves as Linux's own stack in the same namespace, over
/// IPv4 and IPv6: the script runs natively there first (before the sandbox
/// takes the interface), then in the sandbox, against the same host server.
#[test]
fn tcp_through_the_interface_behaves_as_native() {
    for network in ["--network=sandbox", "--network=host"] {
        for v6 in [false, true] {
            matrix(&format!("tcp_through_the_interface_behaves_as_native {network} v6={v6}"), &[Link::Static], |v| tcp_behaves_as_native(v.platform, network, v6));
        }
    }
}

fn tcp_behaves_as_native(platform: &str, network: &str, v6: bool) -> Result<(), String> {
    let ns = Netns::new(NET)?;
    let host_ip: std::net::IpAddr = if v6 { ns.host_addr6.into() } else { ns.host_addr.into() };
    let listener = TcpListener::bind((host_ip, 0)).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port().to_string();
    let server = serve_behaviour(listener, 6);
    let host = host_ip.to_string();
    let native = std::process::Command::new("ip").args(["netns", "exec", &ns.name, PYTHON, "-c", TCP_BEHAVIOUR, &host, &port]).output().map_err(|e| e.to_string())?;
    let flags = netns_flags(&ns);
    let sandbox = sandbox_command(platform, &[network, &flags[0], &flags[1]], Path::new(PYTHON), &Spec::args(["-c", TCP_BEHAVIOUR, &host, &port]));
    let o = run(sandbox, Input::Bytes(Vec::new()));
    let _ = server.join();
    sane(&o)?;
    let want = String::from_utf8_lossy(&native.stdout);
    if !native.status.success() || !want.contains("server got 8388608") {
        return Err(format!("natively: {native:?}"));
    }
    if o.status != 0 || o.stdout_str() != want {
        return Err(format!("natively:\n{want}\nin the sandbox:\n{}", o.describe()));
    }
    Ok(())
}

/// ping's output without what varies between runs: round-trip times.
fn without_times(out: &str) -> String {
    out.lines()
        .map(|line| {
            if line.starts_with("rtt ") {
                return "rtt".to_string();
            }
            let words = line.split(' ').map(|w| if w.starts_with("time=") { "time=T" } else if w.ends_with("ms") && w[..w.len() - 2].parse::<f64>().is_ok() { "Tms" } else { w });
            words.collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `ping` (iputils, through an unprivileged ping socket in the sandbox)
/// prints what it prints natively, but for the times: on loopback (IPv4 and
/// IPv6, answered by the sandbox itself), and to the host through the
/// sandbox's interface (answered by the host).
#[test]
fn ping_answers_as_native() {
    ensure_installed("ping", "iputils-ping");
    matrix("ping_answers_as_native", &[Link::Static], |v| {
        let ping = |target: &str| Spec::args(["-c", "2", "-i", "0.2", "-n", target]);
        let ns = Netns::new(NET)?;
        let host = ns.host_addr.to_string();
        let mut runs = Vec::new();
        for target in ["127.0.0.1", "::1"] {
            let native = std::process::Command::new("ping").args(ping(target).args).output().map_err(|e| e.to_string())?;
            runs.push((target, native, run_sandbox_flags(v.platform, &[], Path::new("/bin/ping"), &ping(target))));
        }
        // Natively first: the sandbox takes the namespace's interface.
        let native = std::process::Command::new("ip").args(["netns", "exec", &ns.name, "ping"]).args(ping(&host).args).output().map_err(|e| e.to_string())?;
        runs.push((host.as_str(), native, run(sandbox_in(v.platform, &ns, "/bin/ping", &ping(&host)), Input::Bytes(Vec::new()))));
        for (target, native, o) in runs {
            sane(&o)?;
            let want = without_times(&String::from_utf8_lossy(&native.stdout));
            if !native.status.success() || !want.contains("2 received") {
                return Err(format!("ping {target} natively: {native:?}"));
            }
            if o.status != 0 || without_times(&o.stdout_str()) != want {
                return Err(format!("ping {target}: natively\n{want}\nin the sandbox:\n{}", o.describe()));
            }
        }
        Ok(())
    });
}

/// A burst of connections to a sandboxed server that has not accepted yet
/// all complete and wait in its backlog, as Linux's would: each is accepted
/// later and answered.
#[test]
fn a_listeners_backlog_holds_a_burst() {
    matrix("a_listeners_backlog_holds_a_burst", &[Link::Static], |v| {
        const BURST: usize = 40;
        let ns = Netns::new(NET)?;
        let script = format!("import socket, sys\nl = socket.socket()\nl.bind(('0.0.0.0', 8080))\nl.listen(128)\nprint('listening', flush=True)\nsys.stdin.readline()\nfor i in range({BURST}):\n    c, _ = l.accept()\n    c.sendall(b'served')\n    c.close()\nprint('served all', flush=True)\n");
        let mut run = Interactive::spawn(sandbox_in(v.platform, &ns, PYTHON, &Spec::args(["-c", &script])));
        run.expect_line("listening")?;
        let mut clients = Vec::new();
        for i in 0..BURST {
            let s = TcpStream::connect_timeout(&SocketAddr::from((ns.ns_addr, 8080)), Duration::from_secs(20)).map_err(|e| format!("connection {i} before any accept: {e}"))?;
            clients.push(s);
        }
        run.send_line()?;
        for (i, mut s) in clients.into_iter().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
            let mut reply = String::new();
            s.read_to_string(&mut reply).map_err(|e| format!("connection {i}: {e}"))?;
            if reply != "served" {
                return Err(format!("connection {i} got {reply:?}"));
            }
        }
        run.expect_line("served all")?;
        run.succeeds()
    });
}

/// The host's end of tests/programs/socket_lowat_remote.c: answers each line
/// "N" with N bytes, over `connections` connections.
fn serve_counts(listener: TcpListener, connections: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..connections {
            let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&listener), nix::poll::PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(30_000u16)) != Ok(1) {
                return;
            }
            let Ok((c, _)) = listener.accept() else { return };
            let _ = c.set_nodelay(true);
            let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
            let Ok(mut out) = c.try_clone() else { return };
            for line in std::io::BufRead::lines(std::io::BufReader::new(c)) {
                let Some(n) = line.ok().and_then(|l| l.trim().parse::<usize>().ok()) else { break };
                if out.write_all(&vec![b'x'; n]).is_err() {
                    break;
                }
            }
        }
    })
}

/// SO_RCVLOWAT, SIOCOUTQ and MSG_ERRQUEUE on a connection through the
/// sandbox's stack behave as natively (tests/programs/socket_lowat_remote.c,
/// run in the namespace first, then in the sandbox, against one host server).
#[test]
fn receive_low_water_mark_through_the_interface() {
    matrix("receive_low_water_mark_through_the_interface", &[Link::Static], |v| {
        let bin = compile("socket_lowat_remote", v.link);
        let ns = Netns::new(NET)?;
        let listener = TcpListener::bind((ns.host_addr, 0)).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port().to_string();
        let server = serve_counts(listener, 2);
        let host = ns.host_addr.to_string();
        let native = std::process::Command::new("ip").args(["netns", "exec", &ns.name]).arg(&bin).args([&host, &port]).output().map_err(|e| e.to_string())?;
        let o = run(sandbox_in(v.platform, &ns, &bin.to_string_lossy(), &Spec::args([&host, &port])), Input::Bytes(Vec::new()));
        let _ = server.join();
        sane(&o)?;
        let want = String::from_utf8_lossy(&native.stdout);
        if !native.status.success() || !want.ends_with("all ok\n") {
            return Err(format!("natively: {native:?}"));
        }
        if o.status != 0 || o.stdout_str() != want {
            return Err(format!("natively:\n{want}\nin the sandbox:\n{}", o.describe()));
        }
        Ok(())
    });
}

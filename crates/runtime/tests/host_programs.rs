//! The host's own dynamic programs in the sandbox, over the overlay of the host
//! root: each command's output must equal the same command run natively.

mod common;

use common::*;
use std::process::Command;

/// Runs `script` with /bin/sh natively and in the sandbox; outputs and statuses must match.
fn same_as_native(test: &str, script: &str, input: &[u8]) {
    matrix(test, &[Link::Static], |v| {
        let mut native = Command::new("/bin/sh");
        native.args(["-c", script]);
        let n = run(native, Input::Bytes(input.to_vec()));
        let mut sandboxed = Command::new(rvisor());
        sandboxed.arg("do").args(platform_args(v.platform)).args(["--", "/bin/sh", "-c", script]);
        let s = run(sandboxed, Input::Bytes(input.to_vec()));
        if n.status != 0 {
            return Err(format!("the native run fails, so the test is wrong:\n{}", n.describe()));
        }
        if n.stdout == s.stdout && n.status == s.status {
            Ok(())
        } else {
            Err(format!("differs from native:\n{}\nnative:\n{}\nsandbox:\n{}", diff(&n.stdout, &s.stdout), n.describe(), s.describe()))
        }
    });
}

/// Runs `script` with /bin/sh in the sandbox on every platform; it must succeed and
/// print `expected` (for what has no native counterpart: the sandbox's own objects).
fn sandbox_prints(test: &str, script: &str, expected: &str) {
    matrix(test, &[Link::Static], |v| {
        let mut cmd = Command::new(rvisor());
        cmd.arg("do").args(platform_args(v.platform)).args(["--", "/bin/sh", "-c", script]);
        let o = run(cmd, Input::Bytes(Vec::new()));
        all([expect_status(&o, 0), expect_stdout(&o, expected)])
    });
}

#[test]
fn ls_sort_head() {
    same_as_native("ls_sort_head", "ls -la /usr/bin | sort | head -50", b"");
}

/// Lookups in a directory the sandbox has listed are answered from the listing:
/// attributes, names that are not there, and the files, links and directories
/// found there, opened, read and descended into afterwards.
#[test]
fn lookups_in_listed_directories() {
    same_as_native(
        "lookups_in_listed_directories",
        "ls /etc /usr/bin /usr/share/doc >/dev/null; \
         stat -c '%n %f %s %h %u %g %Y' /etc/* /usr/bin/*; \
         stat -c %n /etc/no-such-file /usr/bin/no-such-program 2>&1; \
         cat /etc/debian_version; readlink /usr/bin/python3 /etc/os-release; \
         ls /usr/share/doc/base-files; ls -d /usr/share/doc/base-files/../base-files/.",
        b"",
    );
}

/// The overlay root is one file system: every directory reports its device, so
/// `find -xdev` and `mountpoint` see no mount where the host has none, and inode
/// numbers are the host's.
#[test]
fn the_root_is_one_file_system() {
    same_as_native(
        "the_root_is_one_file_system",
        "stat -c '%i %n' / /usr /usr/lib /etc/passwd; find /usr/share/doc -xdev | wc -l; mountpoint /usr; \
         [ \"$(stat -c %d /)\" = \"$(stat -c %d /usr/lib)\" ] && echo one device",
        b"",
    );
}

#[test]
fn find_shared_libraries() {
    same_as_native("find_shared_libraries", "find /usr/lib -name '*.so*' | wc -l", b"");
}

#[test]
fn tar_round_trip() {
    same_as_native("tar_round_trip", "tar c /usr/include 2>/dev/null | tar t | wc -l", b"");
}

#[test]
fn sha256sum_of_large_files() {
    same_as_native("sha256sum_of_large_files", "sha256sum /usr/bin/bash /usr/bin/python3* $(ls /usr/lib/x86_64-linux-gnu/libc.so.6)", b"");
}

#[test]
fn shell_plumbing() {
    same_as_native(
        "shell_plumbing",
        "cat | tr a-z A-Z | sed 's/L/_/g'; echo $(( 6 * 7 )) $(echo nested) ; for i in 1 2 3; do echo $i; done | wc -l; true && false || echo or",
        b"hello world\n",
    );
}

#[test]
fn python_batteries() {
    let script = r#"
import tempfile, subprocess, sqlite3, json, hashlib, os
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "db.sqlite")
    c = sqlite3.connect(p); c.execute("create table t(x)")
    c.executemany("insert into t values (?)", [(i,) for i in range(1000)]); c.commit()
    print("sum", c.execute("select sum(x) from t").fetchone()[0]); c.close()
    print("json", json.dumps({"a": [1, 2], "b": None}, sort_keys=True))
    print("sha", hashlib.sha256(b"rvisor" * 1000).hexdigest())
    out = subprocess.run(["/bin/echo", "from a child"], capture_output=True, text=True)
    print("subprocess", out.stdout.strip(), out.returncode)
    with open(os.path.join(d, "f"), "w") as f: f.write("x" * 100000)
    print("size", os.path.getsize(os.path.join(d, "f")), sorted(os.listdir(d)))
    w = sqlite3.connect(os.path.join(d, "wal.sqlite"))
    print("wal", w.execute("pragma journal_mode=wal").fetchone()[0])
    w.execute("create table t(x)"); w.execute("insert into t values (42)"); w.commit()
    print("wal read", w.execute("select x from t").fetchone()[0]); w.close()
from multiprocessing import shared_memory
m = shared_memory.SharedMemory(create=True, size=4096)
m.buf[:5] = b"hello"
if os.fork() == 0:
    o = shared_memory.SharedMemory(name=m.name); o.buf[0:1] = b"J"; o.close(); os._exit(0)
os.wait()
print("shared memory", bytes(m.buf[:5]).decode()); m.close(); m.unlink()
import asyncio
async def run_child():
    p = await asyncio.create_subprocess_exec("/bin/echo", "async child", stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    await asyncio.sleep(0.01)
    return out.decode().strip()
print("asyncio", asyncio.run(run_child()))
async def upper(r, w):
    w.write((await r.readline()).upper()); await w.drain(); w.close()
async def unix_echo(path):
    srv = await asyncio.start_unix_server(upper, path=path)
    r, w = await asyncio.open_unix_connection(path)
    w.write(b"over a unix socket\n"); await w.drain()
    line = await r.readline(); w.close(); srv.close()
    return line.decode().strip()
with tempfile.TemporaryDirectory() as d:
    print("unix server", asyncio.run(unix_echo(os.path.join(d, "s"))))
"#;
    same_as_native("python_batteries", &format!("python3 -c '{script}'"), b"");
}

#[test]
fn gcc_compiles_and_runs() {
    same_as_native(
        "gcc_compiles_and_runs",
        "d=$(mktemp -d) && cd $d && printf '#include <stdio.h>\\nint main(void){printf(\"%d\\\\n\", 6*7);return 0;}\\n' > c.c && gcc -O2 -o c c.c && ./c && cd / && rm -r $d",
        b"",
    );
}

/// Python over loopback sockets: http.server's ThreadingHTTPServer on 127.0.0.1 port 0
/// serving a file (and a 404) to urllib, an asyncio TCP echo server and client on
/// 127.0.0.1 and ::1 (with a half-close), a refused connection, and a UDP datagram.
#[test]
fn python_loopback_network() {
    let script = r#"import asyncio, errno, http.server, os, socket, tempfile, threading, urllib.error, urllib.request
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "index.txt"), "w") as f: f.write("served over loopback\n" * 3)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=d))
    port = srv.server_address[1]
    print("http: bound to", srv.server_address[0], "port nonzero:", port > 0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}); t.start()
    fetch = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with fetch.open(f"http://127.0.0.1:{port}/index.txt", timeout=10) as r:
        print("http:", r.status, r.headers["Content-Type"], r.headers["Content-Length"]); print(r.read().decode(), end="")
    try: fetch.open(f"http://127.0.0.1:{port}/missing", timeout=10)
    except urllib.error.HTTPError as e: print("http: missing:", e.code)
    body = [fetch.open(f"http://127.0.0.1:{port}/index.txt", timeout=10).read() for _ in range(5)]
    print("http: five more fetches agree:", len(set(body)) == 1)
    srv.shutdown(); srv.server_close(); t.join()
async def upper(r, w):
    while line := await r.readline():
        w.write(line.upper()); await w.drain()
    w.close(); await w.wait_closed()
async def echo(host):
    srv = await asyncio.start_server(upper, host, 0)
    port = srv.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection(host, port)
    got = []
    for m in (b"one", b"two", b"three" * 1000):
        w.write(m + b"\n"); await w.drain()
        got.append((await r.readline()).strip())
    w.write_eof()
    eof = await r.read()
    w.close(); await w.wait_closed(); srv.close(); await srv.wait_closed()
    return [g[:5].decode() + ("..." if len(g) > 5 else "") for g in got], len(got[2]), eof
print("asyncio echo 127.0.0.1:", *asyncio.run(echo("127.0.0.1")))
print("asyncio echo ::1:", *asyncio.run(echo("::1")))
hold = socket.socket(); hold.bind(("127.0.0.1", 0))
try: socket.create_connection(("127.0.0.1", hold.getsockname()[1]), timeout=10)
except OSError as e: print("closed port:", type(e).__name__, errno.errorcode[e.errno])
hold.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.sendto(b"a datagram", u.getsockname())
data, addr = u.recvfrom(100)
print("udp:", data.decode(), "from", addr[0], "the sender's port:", addr[1] == v.getsockname()[1], "bound to", v.getsockname()[0])
"#;
    same_as_native("python_loopback_network", "python3 -", script.as_bytes());
}

/// The host's `ss` lists the sandbox's sockets over NETLINK_SOCK_DIAG, not
/// /proc/net (it used to print "Cannot open netlink socket: Protocol not
/// supported" first): a TCP listener and its connection, a UDP socket, an
/// AF_UNIX listener by path, and `-p`'s process, found by the sockets' inodes.
#[test]
fn ss_lists_sockets_over_sock_diag() {
    let script = r#"import re, socket, subprocess
t = socket.socket(); t.bind(("127.0.0.1", 7777)); t.listen(4)
c = socket.create_connection(("127.0.0.1", 7777)); a, _ = t.accept()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::1", 5353))
x = socket.socket(socket.AF_UNIX); x.bind("/tmp/ss-test.sock"); x.listen(2)
for cmd in ("ss -Htan", "ss -Hltn", "ss -Huan", "ss -Hxl", "ss -Hltnp"):
    r = subprocess.run(cmd.split(), capture_output=True, text=True)
    print(cmd + ":", "stderr " + repr(r.stderr) if r.stderr else "no stderr")
    rows = [l.split() for l in r.stdout.splitlines()]
    # Ephemeral ports, inodes and pids vary.
    rows = [[re.sub(r":3\d{4}$", ":EPHEMERAL", f) for f in row] for row in rows]
    rows = [[f if not f.isdigit() or len(f) < 5 else "INODE" for f in row] for row in rows]
    rows = [[re.sub(r"pid=\d+", "pid=P", f) for f in row] for row in rows]
    for row in sorted(rows):
        print(" ", " ".join(row))
"#;
    matrix("ss_lists_sockets_over_sock_diag", &[Link::Static], |v| {
        let mut cmd = Command::new(rvisor());
        cmd.arg("do").args(platform_args(v.platform)).args(["--", "python3", "-"]);
        let o = run(cmd, Input::Bytes(script.as_bytes().to_vec()));
        all([
            expect_status(&o, 0),
            expect_stdout(
                &o,
                "ss -Htan: no stderr\n  ESTAB 0 0 127.0.0.1:7777 127.0.0.1:EPHEMERAL\n  ESTAB 0 0 127.0.0.1:EPHEMERAL 127.0.0.1:7777\n  LISTEN 0 4 127.0.0.1:7777 0.0.0.0:*\n\
                 ss -Hltn: no stderr\n  LISTEN 0 4 127.0.0.1:7777 0.0.0.0:*\n\
                 ss -Huan: no stderr\n  UNCONN 0 0 [::1]:5353 *:*\n\
                 ss -Hxl: no stderr\n  u_str LISTEN 0 2 /tmp/ss-test.sock INODE * 0\n\
                 ss -Hltnp: no stderr\n  LISTEN 0 4 127.0.0.1:7777 0.0.0.0:* users:((\"python3\",pid=P,fd=3))\n",
            ),
        ])
    });
}

/// `ss -xa` lists every one of 1000 AF_UNIX sockets, whose dump is larger
/// than the 32 KiB `ss` reads at a time, so it comes in parts. (`ss` peeks at
/// each datagram's length first, so it also read the dump whole when it was
/// one datagram; programs/netlink_parts.c tests fixed buffers.)
#[test]
fn ss_lists_a_dump_larger_than_its_buffer() {
    let script = r#"import resource, socket, subprocess
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
pairs = [socket.socketpair() for _ in range(500)]
r = subprocess.run(["ss", "-xa"], capture_output=True, text=True)
print("stderr:", repr(r.stderr), "rows:", len(r.stdout.splitlines()) - 1)
"#;
    matrix("ss_lists_a_dump_larger_than_its_buffer", &[Link::Static], |v| {
        let mut cmd = Command::new(rvisor());
        cmd.arg("do").args(platform_args(v.platform)).args(["--", "python3", "-"]);
        let o = run(cmd, Input::Bytes(script.as_bytes().to_vec()));
        all([expect_status(&o, 0), expect_stdout(&o, "stderr: '' rows: 1000\n")])
    });
}

/// procps reads /proc/vmstat (memory in pages) and /proc/diskstats (no disks).
#[test]
fn vmstat_reads_procfs() {
    same_as_native("vmstat_reads_procfs", "vmstat 1 1 | wc -l; vmstat -s | wc -l; vmstat -D >/dev/null && echo disks ok", b"");
}

/// prlimit(1) reads and sets another process's limits (prlimit64 with its pid).
#[test]
fn prlimit_of_another_process() {
    same_as_native(
        "prlimit_of_another_process",
        "sleep 10 & p=$!; prlimit --pid $p --nofile=100:200 && prlimit --pid $p --nofile --stack --noheadings; \
         prlimit --pid $$ --core --noheadings; kill $p; prlimit --pid 999999 --core 2>/dev/null || echo no such process",
        b"",
    );
}

/// ionice sets and reads I/O priorities (ioprio_set/ioprio_get), inherited by children.
#[test]
fn ionice_classes() {
    same_as_native(
        "ionice_classes",
        "ionice; ionice -c3 ionice; ionice -c2 -n7 ionice; ionice -c2 -n1 sh -c 'ionice -p $$'; \
         ionice -c2 -n5 -p $$ && ionice && ionice -c1 -n2 -p $$ && ionice; ionice -p 999999 2>/dev/null || echo no such process",
        b"",
    );
}

/// fstat of a host file opened by name agrees with stat of the name (cp checks
/// that the file it opened is the one it stat'ed: device and inode).
#[test]
fn copies_of_host_files() {
    same_as_native(
        "copies_of_host_files",
        "d=$(mktemp -d) && cp /etc/passwd /etc/group $d && cp -a /etc/hostname $d/h && cmp $d/passwd /etc/passwd && ls $d && \
         for f in /etc/passwd /usr/bin/bash; do [ \"$(stat -c '%d %i %s %Y %h %b' - < $f)\" = \"$(stat -c '%d %i %s %Y %h %b' $f)\" ] && echo $f same; done; \
         rm -r $d",
        b"",
    );
}

/// util-linux's ipcs lists the sandbox's System V objects, made from Python through
/// ctypes (its IPC_INFO, *_INFO and *_STAT calls), and ipcrm removes them. Sandbox
/// only: the host has its own objects.
#[test]
fn ipcs_lists_the_sandbox_objects() {
    let script = "python3 -c 'import ctypes; c = ctypes.CDLL(None); \
        print(c.shmget(0x1234, 8192, 0o1600) >= 0, c.semget(0x2345, 3, 0o1600) >= 0, c.msgget(0x3456, 0o1600) >= 0)' && \
        ipcs | grep -E \"^0x0000(1234|2345|3456) \" | tr -s \" \" && ipcrm -M 0x1234 -S 0x2345 -Q 0x3456 && (ipcs | grep -c \"^0x\" || true)";
    sandbox_prints(
        "ipcs_lists_the_sandbox_objects",
        script,
        "True True True\n0x00003456 0 root 600 0 0 \n0x00001234 0 root 600 8192 0 \n0x00002345 0 root 600 3 \n0\n",
    );
}

/// /proc/self/smaps and smaps_rollup have Linux's fields in Linux's order (what psutil,
/// pmap and smem parse), and their numbers agree with each other.
#[test]
fn smaps_like_linux() {
    let script = r#"import re
def fields(text):
    return [l.split(':')[0] for l in text.splitlines() if re.match(r'^[A-Za-z_]+:', l)]
roll = open('/proc/self/smaps_rollup').read()
sm = open('/proc/self/smaps').read()
entries = re.split(r'\n(?=[0-9a-f]+-[0-9a-f]+ )', sm.strip())
print('rollup fields:', ' '.join(fields(roll)))
print('smaps fields:', ' '.join(fields(entries[0])))
print('rollup header ends with [rollup]:', roll.splitlines()[0].endswith('[rollup]'))
def kb(text, name):
    return sum(int(m) for m in re.findall(r'^' + name + r':\s+(\d+) kB', text, re.M))
total, r = kb(sm, 'Rss'), kb(roll, 'Rss')
print('rollup Rss within 10% of the sum over smaps:', abs(total - r) <= 0.1 * max(total, r))
print('every entry has Rss <= Size:', all(kb(e, 'Rss') <= kb(e, 'Size') for e in entries))
print('Pss <= Rss in the rollup:', kb(roll, 'Pss') <= r)
"#;
    same_as_native("smaps_like_linux", "python3 -", script.as_bytes());
}

/// The sandbox's network is loopback alone, as the host's tools list it: `ip`
/// (rtnetlink dumps), Python's if_nameindex and if_nametoindex (netlink and the
/// SIOCGIFINDEX ioctl), Node's os.networkInterfaces() (getifaddrs), and a connect
/// anywhere else is unreachable.
#[test]
fn only_loopback_is_there() {
    let script = "ip -o addr | tr -s ' ' && ip -o link | tr -s ' ' && \
        python3 -c 'import socket, errno; print(socket.if_nameindex(), socket.if_nametoindex(\"lo\"))
try:
    socket.create_connection((\"10.1.2.3\", 80), timeout=5)
except OSError as e:
    print(errno.errorcode[e.errno])' && \
        node -e 'const i = require(\"os\").networkInterfaces(); console.log(Object.keys(i).join(), i.lo.map(a => a.cidr + \" \" + a.internal).join())'";
    sandbox_prints(
        "only_loopback_is_there",
        script,
        "1: lo inet 127.0.0.1/8 scope host lo\\ valid_lft forever preferred_lft forever\n\
         1: lo inet6 ::1/128 scope host \\ valid_lft forever preferred_lft forever\n\
         1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\ link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n\
         [(1, 'lo')] 1\n\
         ENETUNREACH\n\
         lo 127.0.0.1/8 true,::1/128 true\n",
    );
}

/// /proc/net/tcp, tcp6, udp, udp6 and unix list the sandbox's sockets as Linux lays
/// them out (ss, netstat and psutil read them): a listener, both ends of a connection
/// and a bound UDP socket, with their addresses, states and inodes; AF_UNIX ones with
/// their flags, types, states and names (an abstract one with '@').
#[test]
fn proc_net_lists_the_sockets() {
    let script = r#"python3 -c '
import os, socket
def rows(name):
    return [l.split() for l in open("/proc/net/" + name).read().splitlines()[1:]]
def addr(field):
    ip, port = field.split(":")
    return ip, int(port, 16)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::1", 0))
port = l.getsockname()[1]
inodes = {os.fstat(s.fileno()).st_ino: n for n, s in [("listener", l), ("client", c), ("accepted", a)]}
for r in sorted(rows("tcp"), key=lambda r: inodes[int(r[9])]):
    (ip, lport), (rip, rport) = addr(r[1]), addr(r[2])
    print(inodes[int(r[9])], ip, lport == port, rip, rport == port, rport == 0, r[3])
udp = rows("udp6")
print(len(udp), udp[0][1] == "00000000000000000000000001000000:%04X" % u.getsockname()[1], udp[0][3], int(udp[0][9]) == os.fstat(u.fileno()).st_ino)
print(len(rows("tcp6")), len(rows("udp")))
ul = socket.socket(socket.AF_UNIX); ul.bind("/tmp/proc-net.sock"); ul.listen()
ud = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ud.bind("\0abstract\0name")
uc = socket.socket(socket.AF_UNIX); uc.connect("/tmp/proc-net.sock"); us, _ = ul.accept()
for r in sorted(" ".join(r[3:6] + r[7:]) for r in rows("unix")):
    print(r)
' && ss -tln 2>/dev/null | tr -s ' ' | cut -d' ' -f1,4 | sed 's/:[0-9]*$//'"#;
    sandbox_prints(
        "proc_net_lists_the_sockets",
        script,
        "accepted 0100007F True 0100007F False False 01\n\
         client 0100007F False 0100007F True False 01\n\
         listener 0100007F True 00000000 False True 0A\n\
         1 True 07 True\n\
         0 0\n\
         00000000 0001 03\n\
         00000000 0001 03 /tmp/proc-net.sock\n\
         00000000 0002 01 @abstract@name\n\
         00010000 0001 01 /tmp/proc-net.sock\n\
         State Local\n",
    );
}

/// The debugging tools that trace a program with ptrace(2), in the sandbox as on the
/// host: strace (syscall stops, the exit event; with -f the fork events, which trace
/// a shell's children from their first instruction), gdb (breakpoints in read-only text,
/// continuing past them, single steps, a fault and the backtrace) and AddressSanitizer's
/// LeakSanitizer (a thread of another process attaching to the program's threads).
/// Addresses differ (gdb cannot turn address randomization off in the sandbox), so they
/// are cut from gdb's lines; strace -f's exit_group lines are counted whether another
/// process's line split them ("<unfinished ...>") or not. The rest must equal the native
/// output.
/// `setarch -R` (personality ADDR_NO_RANDOMIZE): two runs map everything at the same
/// addresses, two plain runs do not.
#[test]
fn setarch_no_randomize() {
    same_as_native(
        "setarch_no_randomize",
        "a=$(setarch -R cat /proc/self/maps); b=$(setarch -R cat /proc/self/maps); [ \"$a\" = \"$b\" ] && echo same; \
         a=$(cat /proc/self/maps); b=$(cat /proc/self/maps); [ \"$a\" != \"$b\" ] && echo differ",
        b"",
    );
}

#[test]
fn ptrace_tools() {
    let src = programs_dir().join("debuggee.c");
    let script = format!(
        r#"d=$(mktemp -d) && gcc -g -O0 -o $d/crash {src} && gcc -g -fsanitize=address -o $d/leak {src} &&
strace -qq -o $d/trace -e trace=write,exit_group /bin/sh -c 'echo traced; exit 3'; echo "strace: $?"; cat $d/trace;
strace -f -qq -o $d/tree -e trace=execve,exit_group /bin/sh -c '/bin/true; /bin/echo child | cat'; grep -o 'execve("[^"]*"' $d/tree | sort; grep -o 'exit_group([0-9]*' $d/tree | sort | uniq -c;
gdb -q -batch -ex 'break depth' -ex run -ex 'print n' -ex continue -ex 'print n' -ex delete -ex stepi -ex continue -ex bt $d/crash 2>&1 |
  grep -E '^(#|\$|Breakpoint 1,|Program received)' | sed -E 's/0x[0-9a-f]+( in )?//g';
$d/leak x > /dev/null 2> $d/lsan; echo "leak: $?"; grep -E '^(Direct leak|SUMMARY)' $d/lsan; rm -r $d"#,
        src = src.display()
    );
    same_as_native("ptrace_tools", &script, b"");
}

/// strace -f of a program one of whose threads execs while the others wait: the
/// exec waits until strace has reaped the other thread, so its exit comes between
/// the execve's start and "superseded by execve" with the execve's result, as
/// natively. (Lines lose their process ids and the environment's address.)
#[test]
fn strace_follows_an_exec_from_a_thread() {
    ensure_installed("strace", "strace");
    let src = programs_dir().join("ptrace_exec_threads.c");
    let script = format!(
        r#"d=$(mktemp -d) && gcc -O1 -pthread -o $d/t {src} && cd $d &&
strace -f -q -o tr -e trace=execve,exit_group ./t threads-exec; echo "status $?";
sed -E 's/^[0-9]+ +//; s/0x[0-9a-f]+ \/\* [0-9]+ vars \*\//ENV/; s/pid [0-9]+/pid N/g; s/ +/ /g' tr; cd / && rm -r $d"#,
        src = src.display()
    );
    same_as_native("strace_follows_an_exec_from_a_thread", &script, b"");
}

/// Shell limits that test scripts set: `ulimit -f` stops dd, head and truncate at the
/// limit (SIGXFSZ kills them: status 153) and leaves the files at it; `ulimit -v` turns
/// an allocation past it into Python's MemoryError while smaller ones still succeed.
#[test]
fn shell_ulimits() {
    same_as_native(
        "shell_ulimits",
        "d=$(mktemp -d) && (ulimit -f 8; dd if=/dev/zero of=$d/big bs=1k count=20 2>/dev/null; echo \"dd: $?\"; \
           head -c 20000 /dev/zero > $d/big2; echo \"head: $?\"; truncate -s 1M $d/big3; echo \"truncate: $?\") 2>/dev/null; \
         ls -l $d | awk 'NR > 1 {print $5, $9}'; rm -r $d; \
         (ulimit -v 100000; python3 -c '\ntry:\n    bytearray(200 << 20)\nexcept MemoryError:\n    print(\"MemoryError\")\nprint(len(bytearray(20 << 20)))')",
        b"",
    );
}

/// A CI job's git: commits, a branch merged back, gc (pack files, renames, lock
/// files), a local clone (hard links) and a --no-local one (upload-pack and
/// index-pack over pipes). Fixed dates make the hashes the native ones.
#[test]
fn git_merge_gc_and_local_clones() {
    ensure_installed("git", "git");
    same_as_native(
        "git_merge_gc_and_local_clones",
        "d=$(mktemp -d) && cd $d && export HOME=$d GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t \
           GIT_COMMITTER_EMAIL=t@t GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z && \
         git init -q -b main r && cd r && for i in 1 2; do echo $i > f$i; git add f$i; git commit -qm c$i; done && \
         git checkout -q -b topic && echo t > ft && git add ft && git commit -qm topic && git checkout -q main && \
         echo m > fm && git add fm && git commit -qm main && git merge -q --no-edit topic && git log --oneline --graph | cat && \
         git gc -q && git count-objects -v | grep -E '^(count|in-pack|packs)' && cd .. && git clone -q r local && \
         git clone -q --no-local r copied && git -C local log --format=%H -1 && git -C copied log --oneline | wc -l; \
         status=$?; cd / && rm -rf $d; exit $status",
        b"",
    );
}

/// Container tools inside the sandbox: util-linux's unshare (a user namespace
/// mapping root, a PID namespace with its own /proc) and bubblewrap, as root and
/// as nobody (user, PID, mount, network, IPC, UTS and cgroup namespaces,
/// pivot_root, /proc/sys bound read-only on itself, a tmpfs /dev of its own).
#[test]
fn unshare_and_bubblewrap() {
    ensure_installed("bwrap", "bubblewrap");
    same_as_native(
        "unshare_and_bubblewrap",
        "unshare -r id; unshare -r cat /proc/self/uid_map /proc/self/setgroups; \
         unshare -fp --mount-proc sh -c 'echo $$; ps -o pid,ppid,comm'; \
         unshare -Urfp --mount-proc sh -c 'id -u; echo $$; grep NSpid /proc/self/status'; \
         bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev --tmpfs /tmp --hostname inner -- \
           sh -c 'id; hostname; echo pid $$; ls -A /tmp | wc -l; ls /proc >/tmp/p; grep -c \"^[0-9]\" /tmp/p; cat /proc/self/uid_map; \
                  touch /proc/sys/x 2>/dev/null || echo /proc/sys read-only'; \
         su nobody -s /bin/sh -c 'bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev -- sh -c \"id -u; echo \\$\\$; ls /dev\"'",
        b"",
    );
}

/// util-linux's setpriv dropping root for uid 1000 while passing one
/// capability on through the ambient set (as a service manager starts a
/// server that binds port 80), and without it nothing, as natively.
#[test]
fn setpriv_ambient_capabilities() {
    same_as_native(
        "setpriv_ambient_capabilities",
        "setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=+net_bind_service --ambient-caps=+net_bind_service -- \
           sh -c 'id -u; grep -E \"^Cap(Inh|Prm|Eff|Amb)\" /proc/self/status'; \
         setpriv --reuid=1000 --regid=1000 --clear-groups -- grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status",
        b"",
    );
}

/// util-linux unshare runs a shell in a new time namespace with its clocks set
/// ahead (`unshare --time --monotonic --boottime`), as natively.
#[test]
fn unshare_time_namespace() {
    same_as_native(
        "unshare_time_namespace",
        "unshare --time --fork --monotonic 86400 --boottime 7200 \
           sh -c 'cat /proc/self/timens_offsets; awk \"{ print (\\$1 >= 7200) }\" /proc/uptime'",
        b"",
    );
}

/// Headless Chromium with its own sandbox (a user, PID and network namespace
/// per zygote, seccomp-bpf, one process per renderer) renders a page whose
/// script runs: what CI runners and scrapers do with Puppeteer or Playwright.
/// Chromium's status is the script's, and its stderr (not compared) is shown
/// on a failure: on kvm it has twice printed nothing in a full run.
#[test]
fn chromium_headless_with_its_sandbox() {
    ensure_installed("chromium", "chromium");
    same_as_native(
        "chromium_headless_with_its_sandbox",
        "home=$(mktemp -d) && chmod 777 $home && \
         su nobody -s /bin/sh -c \"HOME=$home chromium --headless --disable-gpu --dump-dom \
           'data:text/html,<p id=x></p><script>document.getElementById(\\\"x\\\").textContent = 6 * 7</script>'\"; \
         status=$?; rm -rf $home; exit $status",
        b"",
    );
}

//! System calls: the table, the entry path, and one file per family.

mod aio;
mod args;
mod copy;
mod creds;
mod fs;
mod futex;
mod info;
mod inotify;
mod ipc;
mod kcmp;
mod landlock;
pub(crate) mod lock;
mod lsm;
mod memfd;
mod mempolicy;
mod mm;
mod mount;
mod mount_api;
mod namei;
pub mod names;
pub(crate) mod open;
mod pidfd;
mod pipe;
mod poll;
mod prctl;
mod probes;
mod process;
mod ptrace;
mod signal;
mod sched;
mod seccomp;
mod socket;
mod stat;
mod statmount;
pub mod table;
mod time;
mod timer;
mod xattr;

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::Fd;
use aio::*;
use args::UserCStr;
use copy::*;
use creds::*;
use fs::*;
use futex::*;
use info::*;
use inotify::*;
use ipc::*;
use kcmp::*;
use landlock::*;
use lsm::*;
use lock::sys_flock;
use memfd::sys_memfd_create;
use mempolicy::*;
use mm::*;
use mount::*;
use mount_api::*;
use namei::*;
use open::*;
use pidfd::*;
use pipe::*;
use poll::*;
use prctl::sys_prctl;
pub(crate) use prctl::UserDispatch;
use sched::*;
use seccomp::sys_seccomp;
use ptrace::*;
use socket::*;
use stat::*;
use statmount::*;
use probes::*;
use process::*;
use rvisor_abi::structs::{FutexWaitv, KernelSigaction, Msghdr, Rlimit, Stat, Sysinfo, Timespec, Timeval, Timezone, Utsname};
use rvisor_abi::{errno, UserAddr};
use crate::task::signals::SigInfo;
use signal::*;
use table::syscall_table;
pub use table::{Status, SyscallInfo};
/// The kernel release and version the sandbox reports (uname, /proc).
pub use info::{RELEASE, VERSION};
use time::*;
use timer::*;
use xattr::*;

syscall_table! {
    read(fd: Fd, buf: UserAddr, count: usize) => Supported;
    open(path: UserCStr, flags: u32, mode: u32) => Supported;
    stat(path: UserCStr, statbuf: UserRef<Stat>) => Supported;
    lstat(path: UserCStr, statbuf: UserRef<Stat>) => Supported;
    lseek(fd: Fd, offset: i64, whence: i32) => Supported;
    write(fd: Fd, buf: UserAddr, count: usize) => Supported;
    close(fd: Fd) => Supported;
    fstat(fd: Fd, statbuf: UserRef<Stat>) => Supported;
    mmap(addr: UserAddr, len: u64, prot: u32, flags: u32, fd: i32, offset: u64) => Partial("files (tmpfs, shm, memfd, the overlay root, host mounts through the gofer with stores written back; a writable shared mapping of a host file over the page-cache limit is ENODEV) and /dev/zero; MAP_LOCKED counts against RLIMIT_MEMLOCK; other device and pseudo files (proc, sys, pipes) are ENODEV");
    mprotect(addr: UserAddr, len: u64, prot: u32) => Supported;
    munmap(addr: UserAddr, len: u64) => Supported;
    brk(addr: UserAddr) => Supported;
    rt_sigaction(signo: i32, act: UserRef<KernelSigaction>, oldact: UserRef<KernelSigaction>, sigsetsize: usize) => Supported;
    rt_sigprocmask(how: i32, set: UserRef<u64>, oldset: UserRef<u64>, sigsetsize: usize) => Supported;
    rt_sigreturn() => Supported;
    ioctl(fd: Fd, request: u32, arg: u64) => Partial("FIOCLEX/FIONBIO; terminal ioctls on ptys; TCGETS and TIOCGWINSZ on host streams; seccomp listeners' SECCOMP_IOCTL_NOTIF_*; userfaultfd's UFFDIO_*; pidfds' PIDFD_GET_INFO and PIDFD_GET_*_NAMESPACE");
    pread64(fd: Fd, buf: UserAddr, count: usize, offset: i64) => Supported;
    pwrite64(fd: Fd, buf: UserAddr, count: usize, offset: i64) => Supported;
    readv(fd: Fd, iov: UserAddr, iovcnt: i32) => Supported;
    preadv(fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64) => Supported;
    pwritev(fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64) => Supported;
    preadv2(fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64, pos_h: i64, flags: i32) => Partial("RWF_* flags are accepted and ignored");
    pwritev2(fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64, pos_h: i64, flags: i32) => Partial("RWF_* flags are accepted and ignored");
    sendfile(out_fd: Fd, in_fd: Fd, offset: UserRef<i64>, count: usize) => Supported;
    copy_file_range(fd_in: Fd, off_in: UserRef<i64>, fd_out: Fd, off_out: UserRef<i64>, len: usize, flags: u32) => Supported;
    splice(fd_in: Fd, off_in: UserRef<i64>, fd_out: Fd, off_out: UserRef<i64>, len: usize, flags: u32) => Partial("a copy through the Sentry, at most 64 KiB per call; from a socket, a receive of what the pipe has room for");
    tee(fd_in: Fd, fd_out: Fd, len: usize, flags: u32) => Supported;
    vmsplice(fd: Fd, iov: UserAddr, nr_segs: usize, flags: u32) => Partial("copies, as writev/readv on the pipe; SPLICE_F_GIFT is ignored");
    close_range(first: u32, last: u32, flags: u32) => Supported;
    fallocate(fd: Fd, mode: i32, offset: i64, len: i64) => Partial("allocation (a tmpfs holds the pages, ENOSPC past its size; a read-write bind mount's host file gets the host's), FALLOC_FL_KEEP_SIZE and PUNCH_HOLE (tmpfs, host files; a hole under a shared mapping stored into is filled with zeros when the mapping's pages go back); no COLLAPSE/ZERO/INSERT_RANGE");
    writev(fd: Fd, iov: UserAddr, iovcnt: i32) => Supported;
    sched_yield() => Supported;
    dup(fd: Fd) => Supported;
    dup2(oldfd: Fd, newfd: Fd) => Supported;
    mremap(old_addr: UserAddr, old_len: u64, new_len: u64, flags: u32, new_addr: UserAddr) => Supported;
    msync(addr: UserAddr, len: u64, flags: u32) => Supported;
    mincore(addr: UserAddr, len: u64, vec: UserAddr) => Supported;
    mbind(start: UserAddr, len: u64, mode: u64, nmask: UserAddr, maxnode: u64, flags: u32) => Partial("one NUMA node: the policy is kept and reported; STRICT and MOVE find nothing to do");
    set_mempolicy(mode: i32, nmask: UserAddr, maxnode: u64) => Partial("one NUMA node: the policy is kept, inherited and reported");
    get_mempolicy(mode: UserRef<i32>, nmask: UserAddr, maxnode: u64, addr: UserAddr, flags: u64) => Supported;
    pkey_mprotect(addr: UserAddr, len: u64, prot: u32, pkey: i32) => Partial("no protection keys (as on a CPU without PKU): key -1 only");
    pkey_alloc(flags: u64, rights: u64) => Partial("no protection keys (as on a CPU without PKU): EINVAL");
    pkey_free(pkey: i32) => Partial("no protection keys: EINVAL");
    madvise(addr: UserAddr, len: u64, advice: i32) => Partial("DONTNEED, DONTNEED_LOCKED, DONTFORK/DOFORK and WIPEONFORK/KEEPONFORK act; the rest (FREE, REMOVE, the hints) is checked and ignored");
    mseal(addr: UserAddr, len: u64, flags: u64) => Supported;
    userfaultfd(flags: i32) => Partial("missing-page mode for private anonymous memory (UFFDIO_API, REGISTER, UNREGISTER, WAKE, COPY, ZEROPAGE); no write-protect or minor modes, no events, no shared memory; with ptrace, the app's own write faults are reported without UFFD_PAGEFAULT_FLAG_WRITE");
    membarrier(cmd: i32, flags: u32, cpu: i32) => Partial("no restartable sequences, so no MEMBARRIER_CMD_*_RSEQ");
    process_vm_readv(pid: i32, local: UserAddr, liovcnt: u64, remote: UserAddr, riovcnt: u64, flags: u64) => Supported;
    process_vm_writev(pid: i32, local: UserAddr, liovcnt: u64, remote: UserAddr, riovcnt: u64, flags: u64) => Supported;
    process_madvise(pidfd: Fd, iov: UserAddr, vlen: u64, advice: i32, flags: u32) => Partial("COLD, PAGEOUT, WILLNEED and COLLAPSE are checked as madvise checks them and change nothing (the memory file is never swapped out)");
    kcmp(pid1: i32, pid2: i32, kind: i32, idx1: u64, idx2: u64) => Partial("file descriptions, address spaces, descriptor tables, file-system contexts; signal handlers, I/O contexts and semaphore undo lists compare as their thread groups; files in epoll sets");
    pause() => Supported;
    getitimer(which: i32, value: UserRef<Itimerval>) => Partial("ITIMER_VIRTUAL and ITIMER_PROF both count app CPU time, checked every 10 ms");
    alarm(seconds: u32) => Supported;
    setitimer(which: i32, new: UserRef<Itimerval>, old: UserRef<Itimerval>) => Partial("ITIMER_VIRTUAL and ITIMER_PROF both count app CPU time, checked every 10 ms");
    nanosleep(req: UserRef<Timespec>, rem: UserRef<Timespec>) => Supported;
    getpid() => Supported;
    clone(flags: u64, stack: u64, parent_tid: UserAddr, child_tid: UserAddr, tls: u64) => Partial("namespace flags as unshare's");
    unshare(flags: u64) => Partial("CLONE_FILES, CLONE_FS, CLONE_SYSVSEM, CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET (its lo is up from the start), CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWCGROUP (a view of one cgroup), CLONE_NEWTIME, and CLONE_THREAD/SIGHAND/VM of a single-threaded process");
    setns(fd: Fd, nstype: i32) => Partial("mount, UTS, IPC, network, user and PID (for children: one's own or a nested one) and time namespaces, by /proc/PID/ns file or pidfd; the process's own cgroup namespace only");
    fork() => Supported;
    vfork() => Supported;
    execve(path: UserCStr, argv: UserAddr, envp: UserAddr) => Partial("64-bit ELF (static, static-pie, dynamic) and #! scripts; set-user-ID and set-group-ID bits give no privileges; 32-bit programs are ENOEXEC");
    exit(code: i32) => Supported;
    wait4(pid: i32, status: UserRef<i32>, options: u32, rusage: UserAddr) => Supported;
    kill(pid: i32, signo: i32) => Supported;
    uname(buf: UserRef<Utsname>) => Supported;
    syslog(action: i32, buf: UserAddr, len: i32) => Partial("the kernel log is empty");
    // System V IPC (syscalls/ipc.rs).
    shmget(key: i32, size: u64, flags: i32) => Supported;
    shmat(id: i32, addr: UserAddr, flags: i32) => Supported;
    shmdt(addr: UserAddr) => Supported;
    shmctl(id: i32, cmd: i32, buf: UserAddr) => Supported;
    semget(key: i32, nsems: i32, flags: i32) => Supported;
    semop(id: i32, sops: UserAddr, nsops: usize) => Supported;
    semtimedop(id: i32, sops: UserAddr, nsops: usize, timeout: UserRef<Timespec>) => Supported;
    semctl(id: i32, num: i32, cmd: i32, arg: u64) => Partial("SEM_UNDO adjustments belong to each process: CLONE_SYSVSEM does not share them");
    msgget(key: i32, flags: i32) => Supported;
    msgsnd(id: i32, msgp: UserAddr, size: i64, flags: i32) => Supported;
    msgrcv(id: i32, msgp: UserAddr, size: i64, msgtyp: i64, flags: i32) => Supported;
    msgctl(id: i32, cmd: i32, buf: UserAddr) => Supported;
    // POSIX message queues (syscalls/ipc.rs).
    mq_open(name: UserCStr, oflag: i32, mode: u32, attr: UserRef<crate::ipc::mqueue::MqAttr>) => Partial("/dev/mqueue is not mounted; SIGEV_THREAD notification is EINVAL (no netlink)");
    mq_unlink(name: UserCStr) => Supported;
    mq_timedsend(mqd: Fd, msg: UserAddr, len: usize, prio: u32, timeout: UserRef<Timespec>) => Supported;
    mq_timedreceive(mqd: Fd, msg: UserAddr, len: usize, prio: UserAddr, timeout: UserRef<Timespec>) => Supported;
    mq_notify(mqd: Fd, sevp: UserAddr) => Partial("SIGEV_SIGNAL and SIGEV_NONE; SIGEV_THREAD is EINVAL");
    mq_getsetattr(mqd: Fd, new: UserRef<crate::ipc::mqueue::MqAttr>, old: UserRef<crate::ipc::mqueue::MqAttr>) => Supported;
    sethostname(name: UserAddr, len: usize) => Supported;
    setdomainname(name: UserAddr, len: usize) => Supported;
    fcntl(fd: Fd, cmd: i32, arg: u64) => Partial("descriptor and status flags, F_DUPFD, record and OFD locks, leases (F_SETLEASE/F_GETLEASE, broken by opens and truncate), directory notifications (F_NOTIFY), pipe sizes, seals, signal-driven I/O (F_SETOWN(_EX), F_SETSIG: on files with a wait queue)");
    getcwd(buf: UserAddr, size: usize) => Supported;
    readlink(path: UserCStr, buf: UserAddr, bufsiz: usize) => Supported;
    chdir(path: UserCStr) => Supported;
    fchdir(fd: Fd) => Supported;
    rename(oldpath: UserCStr, newpath: UserCStr) => Supported;
    mkdir(path: UserCStr, mode: u32) => Supported;
    mknod(path: UserCStr, mode: u32, dev: u32) => Partial("regular files and FIFOs; device and socket nodes are EPERM");
    rmdir(path: UserCStr) => Supported;
    creat(path: UserCStr, mode: u32) => Supported;
    link(oldpath: UserCStr, newpath: UserCStr) => Supported;
    unlink(path: UserCStr) => Supported;
    symlink(target: UserCStr, path: UserCStr) => Supported;
    chmod(path: UserCStr, mode: u32) => Supported;
    fchmod(fd: Fd, mode: u32) => Supported;
    chown(path: UserCStr, uid: u32, gid: u32) => Supported;
    fchown(fd: Fd, uid: u32, gid: u32) => Supported;
    lchown(path: UserCStr, uid: u32, gid: u32) => Supported;
    umask(mask: u32) => Supported;
    truncate(path: UserCStr, length: i64) => Supported;
    ftruncate(fd: Fd, length: i64) => Supported;
    fsync(fd: Fd) => Supported;
    flock(fd: Fd, op: i32) => Supported;
    fdatasync(fd: Fd) => Supported;
    access(path: UserCStr, mode: i32) => Supported;
    statfs(path: UserCStr, buf: UserRef<Statfs>) => Partial("a tmpfs gives its size and use; other file systems' sizes are nominal");
    fstatfs(fd: Fd, buf: UserRef<Statfs>) => Partial("as statfs");
    chroot(path: UserCStr) => Supported;
    mount(source: UserCStr, target: UserCStr, fstype: UserCStr, flags: u64, data: UserAddr) => Partial("tmpfs (mode, uid, gid, size), proc, sysfs, devpts and cgroup2; bind mounts (recursive with MS_REC); MS_MOVE; remounts set the mount's read-only, nosuid, nodev, noexec and nosymfollow flags (noexec, nodev and nosymfollow are enforced; set-user-ID bits never give privileges) and a tmpfs's size; shared, slave, private and unbindable mounts (MS_REC too) propagate mounts, binds, moves and unmounts as Linux's shared subtrees; a namespace holds at most 100000 mounts (ENOSPC, as fs.mount-max), but a propagation that runs out of room keeps what it made; atime flags are kept and shown (mountinfo, statvfs), not acted on, and a less privileged namespace may change them");
    umount2(target: UserCStr, flags: i32) => Partial("a mount in use is unmounted (as with MNT_DETACH), and so are its copies in peers and slaves that have nothing mounted on them (or only what was tucked beneath them); MNT_EXPIRE is EAGAIN");
    // The new mount API (syscalls/mount_api.rs).
    open_tree(dfd: i32, path: UserCStr, flags: u32) => Supported;
    move_mount(from_dfd: i32, from_path: UserCStr, to_dfd: i32, to_path: UserCStr, flags: u32) => Partial("MOVE_MOUNT_BENEATH is EINVAL; MOVE_MOUNT_SET_GROUP tells file systems apart by device number; a detached tree is found among the caller's own descriptors (not through another process's /proc/PID/fd)");
    fsopen(fs_name: UserCStr, flags: u32) => Partial("tmpfs, proc, sysfs, devpts and cgroup2, as mount(2)");
    fsconfig(fd: i32, cmd: u32, key: UserAddr, value: UserAddr, aux: i32) => Partial("tmpfs's options are checked as given (messages for read(2)), the others' accepted as their mount(2) does; ro/rw act, other superblock flags are ignored; a reconfigure changes ro/rw on the mount picked (not on every mount of its file system) and a tmpfs's size; binary, path and fd values are not strings, which no option here takes");
    fsmount(fs_fd: Fd, flags: u32, attr_flags: u32) => Partial("atime attributes are kept and shown, not acted on");
    fspick(dfd: i32, path: UserCStr, flags: u32) => Supported;
    mount_setattr(dfd: i32, path: UserCStr, flags: u32, uattr: UserAddr, size: usize) => Partial("rdonly, nosuid, nodev, noexec and nosymfollow act; atime attributes are checked, kept and shown, not acted on; MOUNT_ATTR_IDMAP is EINVAL after its user namespace's checks (no file system here has idmapped mounts); propagation acts, with AT_RECURSIVE too; making a mount read-only does not wait for its writers (no EBUSY)");
    pivot_root(new_root: UserCStr, put_old: UserCStr) => Supported;
    sync() => Supported;
    syncfs(fd: Fd) => Supported;
    fadvise64(fd: Fd, offset: i64, len: i64, advice: i32) => Partial("advice is checked, then ignored");
    readahead(fd: Fd, offset: i64, count: usize) => Partial("checked, then nothing to do: files are read on demand");
    sync_file_range(fd: Fd, offset: i64, nbytes: i64, flags: u32) => Supported;
    gettimeofday(tv: UserRef<Timeval>, tz: UserRef<Timezone>) => Supported;
    settimeofday(tv: UserRef<Timeval>, tz: UserRef<Timezone>) => Supported;
    getrlimit(resource: u32, rlim: UserRef<Rlimit>) => Supported;
    getuid() => Supported;
    getgid() => Supported;
    setuid(uid: u32) => Supported;
    setgid(gid: u32) => Supported;
    geteuid() => Supported;
    getegid() => Supported;
    getppid() => Supported;
    setpgid(pid: i32, pgid: i32) => Supported;
    setreuid(ruid: u32, euid: u32) => Supported;
    setregid(rgid: u32, egid: u32) => Supported;
    getgroups(size: i32, list: UserAddr) => Supported;
    setgroups(size: usize, list: UserAddr) => Supported;
    setresuid(ruid: u32, euid: u32, suid: u32) => Supported;
    setresgid(rgid: u32, egid: u32, sgid: u32) => Supported;
    getpgrp() => Supported;
    setsid() => Supported;
    getresuid(ruid: UserRef<u32>, euid: UserRef<u32>, suid: UserRef<u32>) => Supported;
    getresgid(rgid: UserRef<u32>, egid: UserRef<u32>, sgid: UserRef<u32>) => Supported;
    getpgid(pid: i32) => Supported;
    setfsuid(uid: u32) => Supported;
    setfsgid(gid: u32) => Supported;
    setxattr(path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) => Partial("stored by tmpfs (and the overlay root, by copy-up); user, trusted and security names; no POSIX ACLs");
    lsetxattr(path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) => Partial("as setxattr");
    fsetxattr(fd: Fd, name: UserCStr, value: UserAddr, size: usize, flags: i32) => Partial("as setxattr");
    getxattr(path: UserCStr, name: UserCStr, value: UserAddr, size: usize) => Supported;
    lgetxattr(path: UserCStr, name: UserCStr, value: UserAddr, size: usize) => Supported;
    fgetxattr(fd: Fd, name: UserCStr, value: UserAddr, size: usize) => Supported;
    listxattr(path: UserCStr, list: UserAddr, size: usize) => Supported;
    llistxattr(path: UserCStr, list: UserAddr, size: usize) => Supported;
    flistxattr(fd: Fd, list: UserAddr, size: usize) => Supported;
    removexattr(path: UserCStr, name: UserCStr) => Supported;
    lremovexattr(path: UserCStr, name: UserCStr) => Supported;
    fremovexattr(fd: Fd, name: UserCStr) => Supported;
    setxattrat(dirfd: i32, path: UserCStr, at_flags: u32, name: UserCStr, args: UserAddr, args_size: usize) => Partial("as setxattr");
    getxattrat(dirfd: i32, path: UserCStr, at_flags: u32, name: UserCStr, args: UserAddr, args_size: usize) => Supported;
    listxattrat(dirfd: i32, path: UserCStr, at_flags: u32, list: UserAddr, size: usize) => Supported;
    removexattrat(dirfd: i32, path: UserCStr, at_flags: u32, name: UserCStr) => Supported;
    getsid(pid: i32) => Supported;
    rt_sigpending(set: UserRef<u64>, sigsetsize: usize) => Supported;
    rt_sigtimedwait(set: UserRef<u64>, info: UserAddr, timeout: UserRef<Timespec>, sigsetsize: usize) => Supported;
    signalfd(fd: i32, mask: UserRef<u64>, sizemask: usize) => Supported;
    signalfd4(fd: i32, mask: UserRef<u64>, sizemask: usize, flags: i32) => Supported;
    rt_sigqueueinfo(tgid: i32, signo: i32, info: UserRef<SigInfo>) => Supported;
    rt_sigsuspend(mask: UserRef<u64>, sigsetsize: usize) => Supported;
    sigaltstack(ss: UserRef<StackT>, old: UserRef<StackT>) => Supported;
    getrusage(who: i32, usage: UserAddr) => Partial("CPU times, peak size, minor and major faults, voluntary switches; involuntary switches stay 0");
    times(buf: UserAddr) => Partial("app CPU time as user time");
    ptrace(request: i64, pid: i32, addr: UserAddr, data: u64) => Partial("attach, seize, traceme; signal, syscall, exec, exit, fork/vfork/clone, group-stop and interrupt stops, PTRACE_LISTEN; registers, FP registers, memory, siginfo, single step; PTRACE_GET_SYSCALL_INFO; no vfork-done or seccomp events; the group's report to its parent does not wait, as on Linux, until the tracer reaped its traced threads other than the leader");
    setrlimit(resource: u32, rlim: UserRef<Rlimit>) => Supported;
    prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) => Partial("PDEATHSIG, DUMPABLE, NAME, CHILD_SUBREAPER, NO_NEW_PRIVS, SECCOMP, KEEPCAPS, CAPBSET, CAP_AMBIENT, MDWE, SYSCALL_USER_DISPATCH, GET_AUXV, GET_TID_ADDRESS; TIMERSLACK, THP_DISABLE and MCE_KILL are kept without effect; no SET_MM, SET_VMA or speculation control");
    arch_prctl(code: i32, addr: u64) => Supported;
    gettid() => Supported;
    tkill(tid: i32, signo: i32) => Supported;
    time(tloc: UserRef<i64>) => Supported;
    futex(uaddr: UserAddr, op: i32, val: u32, timeout: u64, uaddr2: UserAddr, val3: u32) => Partial("priority-inheritance locks (LOCK_PI, LOCK_PI2, TRYLOCK_PI, UNLOCK_PI, robust PI) keep Linux's word protocol and hand-over, but no priority is boosted (the host schedules); WAIT_REQUEUE_PI and CMP_REQUEUE_PI likewise (a requeued waiter waits as a PI locker)");
    futex_waitv(waiters: UserRef<FutexWaitv>, nr_futexes: u32, flags: u32, timeout: UserRef<Timespec>, clockid: i32) => Supported;
    futex_wake(uaddr: UserAddr, mask: u64, nr: i32, flags: u32) => Supported;
    futex_wait(uaddr: UserAddr, val: u64, mask: u64, flags: u32, timeout: UserRef<Timespec>, clockid: i32) => Supported;
    futex_requeue(waiters: UserRef<FutexWaitv>, flags: u32, nr_wake: i32, nr_requeue: i32) => Supported;
    sched_getaffinity(pid: i32, len: usize, mask: UserAddr) => Supported;
    sched_setaffinity(pid: i32, len: usize, mask: UserAddr) => Partial("kept and reported; the host places threads");
    getpriority(which: i32, who: i32) => Partial("nice values are kept and reported; the host schedules");
    setpriority(which: i32, who: i32, prio: i32) => Partial("nice values are kept and reported; the host schedules");
    ioprio_set(which: i32, who: i32, ioprio: i32) => Partial("kept and reported; the host schedules I/O");
    ioprio_get(which: i32, who: i32) => Supported;
    sched_getattr(pid: i32, attr: UserAddr, size: u32, flags: u32) => Supported;
    sched_setattr(pid: i32, attr: UserAddr, flags: u32) => Partial("kept and reported; SCHED_DEADLINE is never admitted (EBUSY)");
    sched_setparam(pid: i32, param: UserRef<i32>) => Partial("kept and reported; the host schedules");
    sched_getparam(pid: i32, param: UserRef<i32>) => Supported;
    sched_setscheduler(pid: i32, policy: i32, param: UserRef<i32>) => Partial("kept and reported; the host schedules");
    sched_getscheduler(pid: i32) => Supported;
    sched_get_priority_max(policy: i32) => Supported;
    sched_get_priority_min(policy: i32) => Supported;
    sched_rr_get_interval(pid: i32, interval: UserRef<Timespec>) => Supported;
    getcpu(cpu: UserRef<u32>, node: UserRef<u32>, cache: UserAddr) => Partial("CPU 0 on node 0, as the vDSO answers");
    sysinfo(info: UserRef<Sysinfo>) => Partial("load averages count the sandbox's tasks only, active unless asleep (none sleeps uninterruptibly)");
    socketpair(domain: i32, kind: i32, protocol: i32, sv: UserRef<[i32; 2]>) => Partial("AF_UNIX (stream, datagram, seqpacket); AF_INET/AF_INET6 are EOPNOTSUPP as in Linux");
    socket(domain: i32, kind: i32, protocol: i32) => Partial("AF_UNIX; AF_INET and AF_INET6 TCP, UDP and ping (ICMP echo datagram) sockets; AF_NETLINK NETLINK_ROUTE (links, addresses and routes, read-only) and NETLINK_SOCK_DIAG (the sandbox's TCP, UDP and AF_UNIX sockets, for ss); no raw or packet sockets, no other families");
    bind(fd: Fd, addr: UserAddr, len: u32) => Partial("AF_UNIX paths, abstract names and autobind; inet loopback, wildcard and the sandbox interface's own addresses (others are EADDRNOTAVAIL)");
    listen(fd: Fd, backlog: i32) => Supported;
    connect(fd: Fd, addr: UserAddr, len: u32) => Partial("AF_UNIX; inet to the sandbox's own addresses in the Sentry, completing at once; elsewhere through the sandbox network stack or, with --network=host, the host's (without either, ENETUNREACH)");
    accept(fd: Fd, addr: UserAddr, len: UserRef<u32>) => Supported;
    accept4(fd: Fd, addr: UserAddr, len: UserRef<u32>, flags: i32) => Supported;
    sendto(fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, addrlen: u32) => Partial("MSG_DONTWAIT, MSG_NOSIGNAL, MSG_CONFIRM, MSG_EOR and MSG_MORE (a UDP datagram over several sends, as UDP_CORK; streams send at once); MSG_OOB on TCP (urgent data, SIGURG to the receiver's owner) on loopback and host sockets, EOPNOTSUPP through the sandbox stack (smoltcp sends no urgent pointer); on AF_UNIX streams the last byte is the OOB byte (Linux 5.15+, SIGURG too), EOPNOTSUPP on seqpacket and datagram sockets; other flags are EOPNOTSUPP");
    recvfrom(fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, addrlen: UserRef<u32>) => Partial("MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, MSG_WAITALL (streams), SO_RCVLOWAT (streams), MSG_ERRQUEUE (UDP, as recvmsg; TCP's queue is empty: EAGAIN; AF_UNIX ignores it), MSG_OOB (TCP's urgent byte, AF_UNIX streams' OOB byte; through the sandbox stack there is none: EINVAL, urgent bytes arrive inline; UDP ignores it) (other flags are EOPNOTSUPP)");
    sendmsg(fd: Fd, msg: UserRef<Msghdr>, flags: u32) => Partial("SCM_RIGHTS and SCM_CREDENTIALS on AF_UNIX; on UDP, IP_PKTINFO, IP_TTL, IP_TOS, IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS (net/ip_control.rs); no IP options or IPv6 extension headers (EINVAL)");
    recvmsg(fd: Fd, msg: UserRef<Msghdr>, flags: u32) => Partial("SCM_RIGHTS and SCM_CREDENTIALS on AF_UNIX; on UDP, IP_PKTINFO, IP_TTL, IP_TOS, IP_ORIGDSTADDR and the IPv6 ones (net/ip_control.rs); SO_TIMESTAMP, SO_TIMESTAMPNS and their _NEW stamps on UDP; the sandbox stack's datagrams from outside show TTL 64 and TOS 0 (smoltcp does not report them); MSG_ERRQUEUE on UDP: the ICMP port unreachable of a loopback datagram to a port nobody has, queued under IP_RECVERR/IPV6_RECVERR (payload as quoted, IP_RECVERR/IPV6_RECVERR sock_extended_err and offender, no stamp or PKTINFO of the error), EAGAIN when empty; datagrams through the sandbox stack queue no errors (a connected socket still gets ECONNREFUSED); other sockets refuse the flag (EOPNOTSUPP)");
    sendmmsg(fd: Fd, msgs: UserAddr, vlen: u32, flags: u32) => Supported;
    recvmmsg(fd: Fd, msgs: UserAddr, vlen: u32, flags: u32, timeout: UserRef<Timespec>) => Partial("the timeout is checked but does not bound the call (Linux looks at it only between messages)");
    shutdown(fd: Fd, how: i32) => Supported;
    getsockopt(fd: Fd, level: i32, name: i32, value: UserAddr, len: UserRef<u32>) => Partial("SOL_SOCKET basics, SO_PASSCRED and SO_PEERCRED on AF_UNIX; the common int options of IP, IPv6 and TCP read back what was set, SO_LINGER, SO_RCVTIMEO/SO_SNDTIMEO, TCP_INFO (the state and a loopback connection's constants)");
    setsockopt(fd: Fd, level: i32, name: i32, value: UserAddr, len: u32) => Partial("SO_PASSCRED, SO_REUSEADDR/REUSEPORT (inet binds), IPV6_V6ONLY, SO_LINGER (0 resets at close), SO_RCVTIMEO/SO_SNDTIMEO; buffer sizes and the like are kept without effect; TCP_NODELAY and keepalive act on the sandbox stack's connections; IP_RECVERR and IPV6_RECVERR queue UDP's loopback errors (clearing them empties the queue), IP_RECVERR_RFC4884 and IPV6_RECVERR_RFC4884 take 0 or 1 and are kept (the loopback's errors have no extensions)");
    getsockname(fd: Fd, addr: UserAddr, len: UserRef<u32>) => Supported;
    getpeername(fd: Fd, addr: UserAddr, len: UserRef<u32>) => Supported;
    mlock(addr: UserAddr, len: u64) => Supported;
    munlock(addr: UserAddr, len: u64) => Supported;
    mlockall(flags: i32) => Supported;
    munlockall() => Supported;
    mlock2(addr: UserAddr, len: u64, flags: u32) => Supported;
    personality(persona: u32) => Partial("kept and reported; one execution domain; ADDR_NO_RANDOMIZE and STICKY_TIMEOUTS honoured");
    capget(hdr: UserRef<[u32; 2]>, data: UserAddr) => Partial("reported and changed with Linux's rules; permission checks look at the effective uid, except SCM_CREDENTIALS'");
    capset(hdr: UserRef<[u32; 2]>, data: UserAddr) => Partial("reported and changed with Linux's rules; permission checks look at the effective uid, except SCM_CREDENTIALS'");
    utime(path: UserCStr, times: UserRef<[i64; 2]>) => Supported;
    utimes(path: UserCStr, times: UserRef<[Timeval; 2]>) => Supported;
    futimesat(dirfd: i32, path: UserCStr, times: UserRef<[Timeval; 2]>) => Supported;
    set_tid_address(tidptr: UserAddr) => Supported;
    clock_gettime(clock: i32, tp: UserRef<Timespec>) => Supported;
    clock_getres(clock: i32, res: UserRef<Timespec>) => Supported;
    clock_settime(clock: i32, tp: UserRef<Timespec>) => Supported;
    timer_create(clock: i32, sevp: UserRef<Sigevent>, timerid: UserRef<i32>) => Partial("SIGEV_THREAD is left to glibc (it uses SIGEV_THREAD_ID)");
    timer_settime(timerid: i32, flags: i32, new: UserRef<Itimerspec>, old: UserRef<Itimerspec>) => Supported;
    timer_gettime(timerid: i32, cur: UserRef<Itimerspec>) => Supported;
    timer_getoverrun(timerid: i32) => Supported;
    timer_delete(timerid: i32) => Supported;
    timerfd_create(clock: i32, flags: i32) => Supported;
    timerfd_settime(fd: Fd, flags: i32, new: UserRef<Itimerspec>, old: UserRef<Itimerspec>) => Partial("an absolute CLOCK_REALTIME deadline is fixed when armed: a later clock set does not move it (TFD_TIMER_CANCEL_ON_SET does cancel)");
    timerfd_gettime(fd: Fd, cur: UserRef<Itimerspec>) => Supported;
    clock_nanosleep(clock: i32, flags: i32, req: UserRef<Timespec>, rem: UserRef<Timespec>) => Supported;
    exit_group(code: i32) => Supported;
    tgkill(tgid: i32, tid: i32, signo: i32) => Supported;
    waitid(idtype: i32, id: i32, infop: UserAddr, options: u32, rusage: UserAddr) => Supported;
    newfstatat(dirfd: i32, path: UserCStr, statbuf: UserRef<Stat>, flags: i32) => Supported;
    getdents64(fd: Fd, buf: UserAddr, count: usize) => Supported;
    getdents(fd: Fd, buf: UserAddr, count: usize) => Supported;
    openat(dirfd: i32, path: UserCStr, flags: u32, mode: u32) => Partial("O_TMPFILE on tmpfs only (EOPNOTSUPP elsewhere, as on file systems without it)");
    mkdirat(dirfd: i32, path: UserCStr, mode: u32) => Supported;
    mknodat(dirfd: i32, path: UserCStr, mode: u32, dev: u32) => Partial("regular files and FIFOs; device and socket nodes are EPERM");
    fchownat(dirfd: i32, path: UserCStr, uid: u32, gid: u32, flags: i32) => Supported;
    unlinkat(dirfd: i32, path: UserCStr, flags: i32) => Supported;
    renameat(olddirfd: i32, oldpath: UserCStr, newdirfd: i32, newpath: UserCStr) => Supported;
    linkat(olddirfd: i32, oldpath: UserCStr, newdirfd: i32, newpath: UserCStr, flags: i32) => Supported;
    symlinkat(target: UserCStr, dirfd: i32, path: UserCStr) => Supported;
    readlinkat(dirfd: i32, path: UserCStr, buf: UserAddr, bufsiz: usize) => Supported;
    fchmodat(dirfd: i32, path: UserCStr, mode: u32) => Supported;
    fchmodat2(dirfd: i32, path: UserCStr, mode: u32, flags: u32) => Supported;
    faccessat(dirfd: i32, path: UserCStr, mode: i32) => Supported;
    utimensat(dirfd: i32, path: UserAddr, times: UserRef<[Timespec; 2]>, flags: i32) => Supported;
    renameat2(olddirfd: i32, oldpath: UserCStr, newdirfd: i32, newpath: UserCStr, flags: u32) => Supported;
    statx(dirfd: i32, path: UserCStr, flags: i32, mask: u32, buf: UserAddr) => Supported;
    openat2(dirfd: i32, path: UserCStr, how: UserAddr, size: usize) => Partial("RESOLVE_CACHED never fails a lookup (only opens that would create or truncate get EAGAIN)");
    faccessat2(dirfd: i32, path: UserCStr, mode: i32, flags: i32) => Supported;
    set_robust_list(head: UserAddr, len: usize) => Supported;
    get_robust_list(pid: i32, head: UserRef<u64>, len: UserRef<u64>) => Partial("the calling thread's list only");
    rt_tgsigqueueinfo(tgid: i32, tid: i32, signo: i32, info: UserRef<SigInfo>) => Supported;
    prlimit64(pid: i32, resource: u32, new: UserRef<Rlimit>, old: UserRef<Rlimit>) => Supported;
    getrandom(buf: UserAddr, len: usize, flags: u32) => Supported;
    dup3(oldfd: Fd, newfd: Fd, flags: i32) => Supported;
    rseq(rseq: UserAddr, len: u32, flags: i32, sig: u32) => Missing("restartable sequences, on purpose: the Sentry cannot see the host preempt app code, so it could not abort a critical section another thread interleaved with on the same CPU; ENOSYS makes glibc and tcmalloc fall back to atomics");
    restart_syscall() => Supported;
    seccomp(op: u32, flags: u32, args: UserAddr) => Partial("user notification in full (listeners, RECV/SEND/ID_VALID/ADDFD/SET_FLAGS ioctls, poll, WAIT_KILLABLE_RECV, whose fatal signal is SIGKILL or a dying group); SECCOMP_RET_TRACE fails the call with ENOSYS (no ptrace seccomp events)");
    uretprobe() => Supported;
    uprobe() => Supported;
    execveat(dirfd: i32, path: UserCStr, argv: UserAddr, envp: UserAddr, flags: i32) => Supported;
    clone3(args: UserAddr, size: usize) => Partial("namespace flags as unshare's; set_tid and CLONE_INTO_CGROUP are not supported");
    pidfd_open(pid: i32, flags: u32) => Supported;
    pidfd_send_signal(pidfd: Fd, signo: i32, info: UserRef<SigInfo>, flags: u32) => Supported;
    pidfd_getfd(pidfd: Fd, targetfd: i32, flags: u32) => Supported;
    // Native AIO (syscalls/aio.rs).
    io_setup(nr_events: u32, ctxp: UserRef<u64>) => Supported;
    io_destroy(ctx: u64) => Supported;
    io_submit(ctx: u64, nr: i64, iocbpp: UserRef<u64>) => Partial("PREAD, PWRITE, PREADV, PWRITEV, FSYNC and FDSYNC run synchronously at submission; POLL waits, its result the wanted events that hold (a host stream not ready at submission never completes it)");
    io_cancel(ctx: u64, iocb: UserAddr, result: UserAddr) => Supported;
    io_getevents(ctx: u64, min_nr: i64, nr: i64, events: UserAddr, timeout: UserRef<Timespec>) => Supported;
    io_pgetevents(ctx: u64, min_nr: i64, nr: i64, events: UserAddr, timeout: UserRef<Timespec>, usig: UserRef<SigsetArg>) => Supported;
    // Pipes, eventfd, poll/select and epoll (syscalls/pipe.rs, syscalls/poll.rs).
    poll(fds: UserAddr, nfds: u32, timeout_ms: i32) => Supported;
    select(nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, timeout: UserRef<Timeval>) => Supported;
    pipe(fds: UserAddr) => Supported;
    epoll_create(size: i32) => Supported;
    epoll_wait(epfd: Fd, events: UserAddr, maxevents: i32, timeout: i32) => Supported;
    epoll_ctl(epfd: Fd, op: i32, fd: Fd, event: UserAddr) => Partial("host streams in edge-triggered mode report changes seen between waits");
    pselect6(nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, timeout: UserRef<Timespec>, sig: UserRef<SigsetArg>) => Supported;
    ppoll(fds: UserAddr, nfds: u32, tsp: UserRef<Timespec>, sigmask: UserRef<u64>, sigsetsize: usize) => Supported;
    epoll_pwait(epfd: Fd, events: UserAddr, maxevents: i32, timeout: i32, sigmask: UserRef<u64>, sigsetsize: usize) => Supported;
    eventfd(initval: u32) => Supported;
    eventfd2(initval: u32, flags: i32) => Supported;
    // inotify (syscalls/inotify.rs).
    inotify_init() => Supported;
    inotify_init1(flags: i32) => Supported;
    inotify_add_watch(fd: Fd, path: UserCStr, mask: u32) => Partial("IN_EXCL_UNLINK is accepted, but an unlinked child still reports to its directory; IN_DELETE_SELF comes at the last unlink, even while the file is open; host files never changed in the sandbox see no IN_DELETE_SELF");
    inotify_rm_watch(fd: Fd, wd: i32) => Supported;
    epoll_create1(flags: i32) => Supported;
    pipe2(fds: UserAddr, flags: i32) => Partial("O_NOTIFICATION_PIPE is ENOPKG");
    memfd_create(name: UserCStr, flags: u32) => Partial("no MFD_HUGETLB (EINVAL); seals are kept and enforced on write, truncate and shared writable mappings");
    epoll_pwait2(epfd: Fd, events: UserAddr, maxevents: i32, timeout: UserRef<Timespec>, sigmask: UserRef<u64>, sigsetsize: usize) => Supported;
    landlock_create_ruleset(attr: UserAddr, size: usize, flags: u32) => Supported;
    landlock_add_rule(ruleset_fd: Fd, rule_type: u32, rule_attr: UserAddr, flags: u32) => Supported;
    landlock_restrict_self(ruleset_fd: i32, flags: u32) => Partial("ABI 7 on the calling thread; the audit-log flags are accepted, with no audit log to write to");
    // The security modules' calls (syscalls/lsm.rs): capability and Landlock.
    lsm_list_modules(ids: UserAddr, size: UserRef<u32>, flags: u32) => Supported;
    lsm_get_self_attr(attr: u32, ctx: UserAddr, size: UserRef<u32>, flags: u32) => Partial("no active module has process attributes: EOPNOTSUPP after Linux's checks");
    lsm_set_self_attr(attr: u32, ctx: UserAddr, size: u32, flags: u32) => Partial("no active module has process attributes: EOPNOTSUPP after Linux's checks");
    // Mounts by ID (syscalls/statmount.rs).
    statmount(req: UserAddr, buf: UserAddr, bufsize: usize, flags: u32) => Partial("Linux 6.8's fields (SB_BASIC, MNT_BASIC, PROPAGATE_FROM, MNT_ROOT, MNT_POINT, FS_TYPE) and 6.10's MNT_OPTS, the strings laid out as 6.18 does (a NUL first, an empty one not given); later masks are ignored; sb_flags has only SB_RDONLY (a read-only mount(2), or a remount without MS_BIND)");
    listmount(req: UserAddr, buf: UserAddr, bufsize: usize, flags: u32) => Supported;
    cachestat(fd: Fd, range: UserRef<CachestatRange>, cstat: UserRef<crate::mm::CacheStat>, flags: u32) => Partial("the pages the Sentry holds: a tmpfs file's, and the chunks of a host file its mappings read in (while mapped, or kept for files up to 256 MiB); a host file only read or written has none here; nothing is written back in the background or evicted");
}

/// Handles the syscall the task stopped at and sets its return value.
pub fn handle(t: &mut Task) {
    // Syscall patching: a call through a patched site's entry is the site's own
    // (its return address and, from the trampoline, its number come from the
    // address space's record); a plain trap may get its site patched.
    let patching = t.kernel.platform.patch_entry();
    let mut trapped_at = None;
    if patching.is_some() {
        if let Some(c) = t.mm.patched_call(t.cpu.regs.rip) {
            let r = &mut t.cpu.regs;
            (r.rip, r.rcx, r.r11) = (c.ret, c.ret, r.eflags);
            if r.orig_rax == u64::MAX {
                r.orig_rax = u64::from(c.nr);
            }
        } else if t.cpu.compat_syscall == Some(false) && t.cpu.regs.cs == 0x33 && t.user_dispatch.is_none() && !t.thread.is_traced() {
            trapped_at = Some((t.cpu.regs.rip, t.cpu.syscall_nr()));
        }
    }
    serve(t);
    t.ptrace_step_over_syscall();
    if let (Some(entry), Some((rip, nr))) = (patching, trapped_at) {
        if t.exit.is_none() && worth_patching(nr) && t.cpu.regs.rip == rip {
            if let Some(to) = t.mm.maybe_patch(rip, nr, entry) {
                t.cpu.regs.rip = to;
            }
        }
    }
}

/// Whether a call's sites should be patched. Not exec's (after it the address
/// space is another one), nor those of the calls that copy the thread's FP state
/// into a new task: a patched call leaves it in the thread, and fetching it costs a
/// second round trip, where a trapped call brings it along.
fn worth_patching(nr: u64) -> bool {
    use rvisor_abi::nr::*;
    ![__NR_execve, __NR_execveat, __NR_clone, __NR_fork, __NR_vfork, __NR_clone3].iter().any(|&n| u64::from(n) == nr)
}

fn serve(t: &mut Task) {
    use crate::task::ptrace::StopKind;
    if compat_entry(t) {
        // The sandbox is a Linux without IA32 emulation (32-bit programs do not load),
        // where a 32-bit syscall instruction raises a general protection fault.
        t.cpu.regs.rip = t.cpu.regs.rip.wrapping_sub(2);
        t.force_signal(SigInfo::new(rvisor_abi::consts::SIGSEGV, crate::task::signals::SI_KERNEL));
        return;
    }
    t.kernel.clocks.maybe_refresh();
    if let Some(d) = t.user_dispatch {
        if prctl::syscall_dispatch(t, d) {
            return;
        }
    }
    let traced = t.thread.is_traced();
    if traced {
        // What a tracer sees in rax at the entry stop.
        t.cpu.set_return(errno!(ENOSYS).to_return());
        t.ptrace_syscall_stop(StopKind::SyscallEnter);
        // A tracer that set orig_rax to -1 skipped the call: rax is the result.
        if t.exit.is_some() || t.cpu.syscall_nr() == u64::MAX {
            t.ptrace_syscall_stop(StopKind::SyscallExit);
            return;
        }
    }
    let nr = t.cpu.syscall_nr();
    let a = t.cpu.syscall_args();
    let call = t.kernel.strace.is_some().then(|| strace_call(t, nr, a).unwrap_or_else(|| format!("syscall_{nr}({:#x}, {:#x}, {:#x}, ...)", a[0], a[1], a[2])));
    let execs = nr == u64::from(rvisor_abi::nr::__NR_execve) || nr == u64::from(rvisor_abi::nr::__NR_execveat);
    // PTRACE_EVENT_EXEC's message: the id the thread had before the exec took
    // its leader's, as the tracer sees it (Linux's exec_binprm).
    let old_tid = (traced && execs).then(|| t.tracer_view(t.tid()));
    let ret = match seccomp::check_entry(t, nr, a) {
        Some(ret) => ret,
        None => run(t, nr, a),
    };
    if let Some(call) = call {
        let shown = if t.exit.is_some() {
            "?".to_string()
        } else if (ret as i64) < 0 && (ret as i64) > -4096 {
            let code = rvisor_abi::ErrnoCode(-(ret as i64) as u16);
            format!("-1 {:?}", code)
        } else if ret > 0xffff {
            format!("{ret:#x}")
        } else {
            ret.to_string()
        };
        t.kernel.strace_line(&format!("[pid {}] {} = {}", t.tid(), call, shown));
    }
    t.cpu.set_return(ret);
    if traced && t.exit.is_none() {
        if let (0, Some(old_tid)) = (ret, old_tid) {
            t.ptrace_exec(old_tid);
        }
        t.ptrace_syscall_stop(StopKind::SyscallExit);
    }
}

/// Runs the syscall's handler; its result as the app sees it.
fn run(t: &mut Task, nr: u64, a: [u64; 6]) -> u64 {
    match dispatch(t, nr, a).unwrap_or_else(|| Err(errno!(ENOSYS))) {
        Ok(v) => v,
        Err(e) => {
            if e.code == rvisor_abi::ErrnoCode::ENOSYS {
                report_unimplemented(t, nr);
            }
            tracing::debug!("task {}: syscall {} failed: {:?}", t.tid(), names::name(nr).unwrap_or("?"), e);
            error_return(t, e)
        }
    }
}

/// A failed call's result as the app sees it.
fn error_return(t: &mut Task, e: rvisor_abi::Errno) -> u64 {
    if e.code.is_restart() {
        // Signal handling decides between EINTR and a restart.
        t.pending_restart = Some(e.code);
        errno!(EINTR).to_return()
    } else {
        e.to_return()
    }
}

/// Whether the syscall came in through a 32-bit entry: `int 0x80` (its two bytes end
/// where the syscall left rip), or any syscall instruction run in a 32-bit code
/// segment. The platform says so where it knows. A program that rewrites its own
/// syscall instruction into `int 0x80` in place may be taken at its old word.
fn compat_entry(t: &mut Task) -> bool {
    const USER_CS: u64 = 0x33;
    if let Some(compat) = t.cpu.compat_syscall {
        return compat;
    }
    let ip = t.cpu.regs.rip;
    if t.cpu.regs.cs != USER_CS {
        return true;
    }
    if ip == t.native_syscall_ip {
        return false;
    }
    let mut insn = [0u8; 2];
    let int80 = t.mm.read_bytes_remote(UserAddr(ip.wrapping_sub(2)), &mut insn) == 2 && insn == [0xcd, 0x80];
    if !int80 {
        t.native_syscall_ip = ip;
    }
    int80
}

/// Logs an unimplemented syscall the first time the sandbox sees it.
fn report_unimplemented(t: &Task, nr: u64) {
    let first = t.kernel.unimplemented_seen.lock().map(|mut s| s.insert(nr)).unwrap_or(false);
    if first {
        tracing::info!("unimplemented syscall {} ({nr}) returns ENOSYS", names::name(nr).unwrap_or("unknown"));
    }
}

/// The status of syscall `nr` as `rvisor syscalls` reports it.
pub fn status_of(nr: u32) -> Status {
    TABLE.iter().find(|e| e.nr == nr).map(|e| e.status).unwrap_or(Status::Missing("not implemented"))
}

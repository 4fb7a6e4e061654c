//! File systems: the gofer-backed host root, tmpfs, procfs, devfs, sysfs and cgroup2. Each
//! provides `Inode`s; the VFS does names and paths.

pub mod cgroup;
pub mod dev;
pub mod devpts;
pub mod dnotify;
pub mod gofer;
pub mod inotify;
pub mod memfd;
pub mod nsfs;
pub mod overlay;
pub mod proc;
pub mod seccomp_notify;
pub mod signalfd;
pub mod simple;
pub mod sys;
pub mod timerfd;
pub mod tmpfs;
pub mod userfaultfd;
pub mod epoll;
pub mod eventfd;
pub mod fasync;
pub mod fs_context;
pub mod pidfd;
pub mod pipe;
pub mod user_io;

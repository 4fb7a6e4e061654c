//! Sockets. Only what stays inside the sandbox so far: AF_UNIX socket pairs.

pub mod unix;

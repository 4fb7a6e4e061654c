//! Sockets. Only what stays inside the sandbox so far: AF_UNIX sockets.

pub mod unix;

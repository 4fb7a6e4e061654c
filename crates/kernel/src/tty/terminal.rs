//! `Terminal`: one pseudo-terminal pair, the state its master and replica share.

use super::ldisc::{master_termios, LineDiscipline, QUEUE_MAX};
use crate::task::PidNamespace;
use crate::task::signals::{self, SigInfo};
use crate::vfs::WaitQueue;
use rvisor_abi::consts::{SIGCONT, SIGHUP, SIGWINCH};
use rvisor_abi::structs::{Termios, Winsize};
use std::sync::{Condvar, Mutex, MutexGuard, Weak};
use zerocopy::IntoBytes;

const POLLIN: u32 = 0x1;
const POLLOUT: u32 = 0x4;

pub struct TermState {
    pub ldisc: LineDiscipline,
    /// The master's own settings: stored and reported, never applied.
    pub master_termios: Termios,
    pub winsize: Winsize,
    /// The session this is the controlling terminal of (0: none).
    pub session: i32,
    /// The PID namespace `session` and `fg_pgrp` are ids in.
    pub pid_ns: Weak<PidNamespace>,
    /// The foreground process group (0: none).
    pub fg_pgrp: i32,
    /// TIOCSPTLCK: the replica cannot be opened while locked (ptmx starts so).
    pub locked: bool,
    /// Open file descriptions of each side.
    pub masters: usize,
    pub replicas: usize,
    /// A replica was opened once: from then on, none left open is a hangup for
    /// the master (reads fail with EIO, as programs driving a pty expect).
    pub replica_seen: bool,
    /// Every master is closed: the replica reads EOF and writes EIO.
    pub hung_up: bool,
}

pub struct Terminal {
    /// Its number under /dev/pts.
    pub index: u32,
    /// Who owns /dev/pts/N: the uid that opened the master, as devpts makes it.
    pub owner: u32,
    /// A leaf lock: signals are sent and queues notified after it is dropped.
    state: Mutex<TermState>,
    /// Replica readers and writers wait here.
    pub replica_queue: WaitQueue,
    /// Master readers and writers wait here.
    pub master_queue: WaitQueue,
    /// The `-t` bridge's host threads wait here: for output to read, and for
    /// room to write input.
    output_ready: Condvar,
    input_taken: Condvar,
}

impl Terminal {
    pub fn new(index: u32, owner: u32, winsize: Winsize) -> Terminal {
        Terminal {
            index,
            owner,
            state: Mutex::new(TermState {
                ldisc: LineDiscipline::default(),
                master_termios: master_termios(),
                winsize,
                session: 0,
                pid_ns: Weak::new(),
                fg_pgrp: 0,
                locked: true,
                masters: 0,
                replicas: 0,
                replica_seen: false,
                hung_up: false,
            }),
            replica_queue: WaitQueue::default(),
            master_queue: WaitQueue::default(),
            output_ready: Condvar::new(),
            input_taken: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, TermState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `signo` to the foreground process group.
    pub fn signal_foreground(&self, signo: u32) {
        let (pgrp, pid_ns) = {
            let st = self.lock();
            (st.fg_pgrp, st.pid_ns.upgrade())
        };
        if let (Some(ns), true) = (pid_ns, pgrp > 0) {
            signals::send_to_process_group(&ns, pgrp, SigInfo::new(signo, signals::SI_KERNEL));
        }
    }

    fn output_changed(&self) {
        self.master_queue.notify_events(POLLIN);
        self.output_ready.notify_all();
    }

    /// Input typed at the master: up to the room left; raises the signals of
    /// signal characters. Returns how many bytes were taken.
    pub fn master_write(&self, data: &[u8]) -> usize {
        let (n, signals, echoed) = {
            let mut st = self.lock();
            let room = QUEUE_MAX.saturating_sub(st.ldisc.output.len()).min(if st.ldisc.input_room() { data.len() } else { 0 });
            let before = st.ldisc.output.len();
            let signals = st.ldisc.write_input(&data[..room]);
            let echoed = st.ldisc.output.len() != before;
            (room, signals, echoed)
        };
        for s in signals {
            self.signal_foreground(s);
        }
        if n > 0 {
            self.replica_queue.notify_events(POLLIN);
        }
        if echoed {
            self.output_changed();
        }
        n
    }

    /// Writes all of `data` as input, waiting (a host thread, not a task) while
    /// the replica's input is full.
    pub fn master_write_blocking(&self, data: &[u8]) {
        let mut at = 0;
        while at < data.len() {
            let n = self.master_write(&data[at..]);
            at += n;
            if n == 0 {
                let st = self.lock();
                if !st.ldisc.input_room() || st.ldisc.output.len() >= QUEUE_MAX {
                    drop(self.input_taken.wait(st).unwrap_or_else(|e| e.into_inner()));
                }
            }
        }
    }

    /// Output for the master: None when there is none yet; EOF (an empty
    /// vector) once every replica is closed and the output is drained.
    pub fn master_read(&self, max: usize) -> Option<Vec<u8>> {
        let out: Vec<u8> = {
            let mut st = self.lock();
            if st.ldisc.output.is_empty() {
                return (st.replicas == 0 && st.replica_seen).then(Vec::new);
            }
            let n = st.ldisc.output.len().min(max);
            st.ldisc.output.drain(..n).collect()
        };
        self.replica_queue.notify_events(POLLOUT);
        self.input_taken.notify_all();
        Some(out)
    }

    /// Waits (a host thread, not a task) until the master has output or every
    /// replica is closed, then reads like `master_read`.
    pub fn master_read_blocking(&self, max: usize) -> Vec<u8> {
        let mut st = self.lock();
        while st.ldisc.output.is_empty() && !(st.replicas == 0 && st.replica_seen) {
            st = self.output_ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        drop(st);
        self.master_read(max).unwrap_or_default()
    }

    /// What a replica read gets now: None to wait; an empty vector for EOF.
    pub fn replica_read(&self, max: usize) -> Option<Vec<u8>> {
        let data = {
            let mut st = self.lock();
            if !st.ldisc.readable() {
                return st.hung_up.then(Vec::new);
            }
            st.ldisc.read(max)
        };
        self.master_queue.notify_events(POLLOUT);
        self.input_taken.notify_all();
        Some(data)
    }

    /// Output the replica writes: how much fit (0 to wait).
    pub fn replica_write(&self, data: &[u8]) -> usize {
        let n = {
            let mut st = self.lock();
            let room = QUEUE_MAX.saturating_sub(st.ldisc.output.len());
            // OPOST may double a byte; never split a write below one byte.
            let n = data.len().min(room / 2).max(usize::from(room > 1 && !data.is_empty()));
            st.ldisc.write_output(&data[..n]);
            n
        };
        if n > 0 {
            self.output_changed();
        }
        n
    }

    pub fn set_termios(&self, t: Termios) {
        self.lock().ldisc.set_termios(t);
        self.replica_queue.notify_events(POLLIN);
    }

    pub fn flush(&self, input: bool, output: bool) {
        let mut st = self.lock();
        if input {
            st.ldisc.flush_input();
        }
        if output {
            st.ldisc.output.clear();
        }
        drop(st);
        self.replica_queue.notify_events(POLLOUT);
        self.master_queue.notify_events(POLLOUT);
        self.input_taken.notify_all();
    }

    /// TIOCSWINSZ: a change is announced to the foreground group with SIGWINCH.
    pub fn set_winsize(&self, w: Winsize) {
        let changed = {
            let mut st = self.lock();
            let changed = st.winsize.as_bytes() != w.as_bytes();
            st.winsize = w;
            changed
        };
        if changed {
            self.signal_foreground(SIGWINCH);
        }
    }

    /// An open of one side.
    pub fn opened(&self, master: bool) {
        let mut st = self.lock();
        if master {
            st.masters += 1;
        } else {
            st.replicas += 1;
            st.replica_seen = true;
        }
    }

    /// A close of one side. The last master's close hangs the terminal up: the
    /// foreground group gets SIGHUP and SIGCONT, replica reads see EOF.
    pub fn closed(&self, master: bool) {
        let hangup = {
            let mut st = self.lock();
            if master {
                st.masters = st.masters.saturating_sub(1);
                let hangup = st.masters == 0 && !st.hung_up;
                st.hung_up |= st.masters == 0;
                hangup
            } else {
                st.replicas = st.replicas.saturating_sub(1);
                false
            }
        };
        if hangup {
            self.signal_foreground(SIGHUP);
            self.signal_foreground(SIGCONT);
            self.replica_queue.notify();
        }
        self.master_queue.notify();
        self.output_ready.notify_all();
    }

    /// Poll events of the replica side.
    pub fn replica_events(&self) -> u32 {
        let st = self.lock();
        let mut ev = 0;
        if st.ldisc.readable() {
            ev |= POLLIN | 0x40;
        }
        if st.ldisc.output.len() < QUEUE_MAX {
            ev |= POLLOUT | 0x100;
        }
        if st.hung_up {
            ev |= POLLIN | 0x10;
        }
        ev
    }

    /// Poll events of the master side.
    pub fn master_events(&self) -> u32 {
        let st = self.lock();
        let mut ev = 0;
        if !st.ldisc.output.is_empty() {
            ev |= POLLIN | 0x40;
        }
        if st.ldisc.input_room() {
            ev |= POLLOUT | 0x100;
        }
        if st.replicas == 0 && st.replica_seen {
            ev |= 0x10;
        }
        ev
    }
}

//! Terminals: pseudo-terminal pairs (`Terminal`, opened through devpts), their
//! line discipline, and controlling terminals with job control.
//!
//! As on Linux, a process's controlling terminal belongs to its thread group
//! (`ThreadGroup::tty`, inherited by fork, dropped by setsid); the terminal
//! records the session it controls and its foreground process group. A
//! background process that reads its terminal gets SIGTTIN, one that changes it
//! (or writes with TOSTOP) SIGTTOU; typed signal characters go to the
//! foreground group.

mod console;
mod ldisc;
pub mod pty;
mod terminal;

pub use console::{bridge, Drained};
pub use pty::PtyFile;
pub use terminal::Terminal;

use crate::task::signals::{self, SigInfo, SIG_IGN};
use crate::task::Task;
use crate::vfs::{Dentry, FileDescription};
use rvisor_abi::consts::{SIGCONT, SIGHUP, SIGTTOU};
use rvisor_abi::{errno, error, SysResult};
use std::sync::Arc;

/// The caller's controlling terminal.
pub fn controlling(t: &Task) -> Option<Arc<Terminal>> {
    t.tg.tty.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn is_controlling(t: &Task, term: &Arc<Terminal>) -> bool {
    controlling(t).is_some_and(|c| Arc::ptr_eq(&c, term))
}

/// ENOTTY unless `term` is the caller's controlling terminal.
fn require_controlling(t: &Task, term: &Arc<Terminal>) -> SysResult<()> {
    if is_controlling(t, term) { Ok(()) } else { error!(ENOTTY) }
}

/// Linux's job control check: a process in a background group of the
/// terminal's session that reads it (SIGTTIN) or changes it (SIGTTOU) has its
/// group sent the signal and the call restarted once it continues. If the
/// signal is ignored or blocked, a read fails with EIO and a change proceeds;
/// an orphaned group (no one to continue it) gets EIO.
fn background_check(t: &Task, term: &Arc<Terminal>, signo: u32) -> SysResult<()> {
    if !is_controlling(t, term) {
        return Ok(());
    }
    let pgid = t.tg.state().pgid;
    let fg = term.lock().fg_pgrp;
    if fg == 0 || pgid == fg {
        return Ok(());
    }
    let bit = 1u64 << (signo - 1);
    let ignored = t.tg.sig().actions[(signo - 1) as usize].handler == SIG_IGN;
    let blocked = t.thread.sig().mask & bit != 0;
    if ignored || blocked {
        return if signo == SIGTTOU { Ok(()) } else { error!(EIO) };
    }
    if t.in_orphaned_pgrp() {
        return error!(EIO);
    }
    signals::send_to_process_group(t.pid_ns(), pgid, SigInfo::new(signo, signals::SI_KERNEL));
    error!(ERESTARTSYS)
}

/// tcsetattr, tcsetpgrp and friends from a background process: SIGTTOU.
pub fn check_change(t: &Task, term: &Arc<Terminal>) -> SysResult<()> {
    background_check(t, term, SIGTTOU)
}

/// TIOCSPGRP (tcsetpgrp): the group must be in the caller's session.
fn set_foreground(t: &Task, term: &Arc<Terminal>, pgrp: i32) -> SysResult<()> {
    require_controlling(t, term)?;
    check_change(t, term)?;
    if pgrp < 0 {
        return error!(EINVAL);
    }
    let pgrp = t.find_vpid(pgrp);
    let sid = t.tg.state().sid;
    let exists = t.pid_ns().groups().iter().any(|g| {
        let st = g.state();
        st.pgid == pgrp && st.sid == sid && st.zombie.is_none()
    });
    if !exists {
        return error!(EPERM);
    }
    term.lock().fg_pgrp = pgrp;
    Ok(())
}

/// Makes `term` the controlling terminal of the caller's session. TIOCSCTTY
/// asks explicitly (`steal`: take it from another session, for root); an open
/// does it implicitly, without stealing.
fn make_controlling(t: &Task, term: &Arc<Terminal>, steal: bool) -> SysResult<()> {
    let (sid, pgid) = {
        let st = t.tg.state();
        (st.sid, st.pgid)
    };
    if is_controlling(t, term) {
        return Ok(());
    }
    if sid != t.tg.tgid || controlling(t).is_some() {
        return error!(EPERM);
    }
    {
        let mut st = term.lock();
        if st.session != 0 && st.session != sid {
            if !steal || !t.tg.capable(rvisor_abi::consts::CAP_SYS_ADMIN) {
                return error!(EPERM);
            }
            let old = st.session;
            drop(st);
            for g in t.pid_ns().groups().iter().filter(|g| g.state().sid == old) {
                g.tty.lock().unwrap_or_else(|e| e.into_inner()).take();
            }
            st = term.lock();
        }
        st.session = sid;
        st.pid_ns = std::sync::Arc::downgrade(&t.tg.container.pid_ns);
        st.fg_pgrp = pgid;
    }
    *t.tg.tty.lock().unwrap_or_else(|e| e.into_inner()) = Some(term.clone());
    Ok(())
}

/// TIOCNOTTY: the caller gives up its controlling terminal; a session leader
/// gives it up for the whole session, which hangs up the foreground group.
fn give_up_controlling(t: &Task, term: &Arc<Terminal>) -> SysResult<()> {
    require_controlling(t, term)?;
    let sid = t.tg.state().sid;
    if sid == t.tg.tgid {
        disassociate(t, term, sid);
    } else {
        t.tg.tty.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    Ok(())
}

/// The session loses its terminal: its foreground group gets SIGHUP and SIGCONT.
fn disassociate(t: &Task, term: &Arc<Terminal>, sid: i32) {
    term.signal_foreground(SIGHUP);
    term.signal_foreground(SIGCONT);
    {
        let mut st = term.lock();
        st.session = 0;
        st.fg_pgrp = 0;
    }
    for g in t.pid_ns().groups().iter().filter(|g| g.state().sid == sid) {
        g.tty.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A session leader exiting releases its controlling terminal (Linux's
/// disassociate_ctty).
pub fn session_leader_exit(t: &Task) {
    if t.tg.state().sid != t.tg.tgid {
        return;
    }
    if let Some(term) = controlling(t) {
        disassociate(t, &term, t.tg.tgid);
    }
}

/// After open(2): a session leader without a controlling terminal that opens a
/// replica without O_NOCTTY acquires it, unless another session has it.
pub fn acquire_on_open(t: &Task, file: &Arc<dyn FileDescription>, noctty: bool) {
    if noctty {
        return;
    }
    let Some(replica) = file.as_any().and_then(|a| a.downcast_ref::<PtyFile>()).filter(|f| !f.master) else { return };
    if replica.term.lock().session == 0 && t.tg.state().sid == t.tg.tgid && controlling(t).is_none() {
        let _ = make_controlling(t, &replica.term, false);
    }
}

/// Opens /dev/console: the terminal of `rvisor do -t` (ENXIO without one).
pub fn open_console(t: &Task, dentry: &Arc<Dentry>, flags: u32) -> SysResult<Arc<dyn FileDescription>> {
    let term = t.kernel.console.get().cloned().ok_or_else(|| errno!(ENXIO))?;
    Ok(Arc::new(PtyFile::replica(term, dentry.clone(), flags)))
}

/// Opens /dev/tty: a new description of the caller's controlling terminal.
pub fn open_controlling(t: &Task, dentry: &Arc<Dentry>, flags: u32) -> SysResult<Arc<dyn FileDescription>> {
    let term = controlling(t).ok_or_else(|| errno!(ENXIO))?;
    Ok(Arc::new(PtyFile::replica(term, dentry.clone(), flags)))
}

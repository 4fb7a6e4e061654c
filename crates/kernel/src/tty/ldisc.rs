//! The line discipline (Linux's N_TTY) of a terminal's replica side: input from
//! the master becomes lines (ICANON, with erase/kill/EOF editing), echo and
//! signal characters; output to the master gets OPOST processing. Pure data: the
//! terminal around it delivers the signals and wakes readers and writers.

use rvisor_abi::structs::Termios;
use std::collections::VecDeque;

// c_iflag
pub const ISTRIP: u32 = 0x20;
pub const INLCR: u32 = 0x40;
pub const IGNCR: u32 = 0x80;
pub const ICRNL: u32 = 0x100;
pub const IXON: u32 = 0x400;
pub const IUTF8: u32 = 0x4000;
// c_oflag
pub const OPOST: u32 = 0x1;
pub const ONLCR: u32 = 0x4;
pub const OCRNL: u32 = 0x8;
// c_cflag
const B38400: u32 = 0xf;
const CS8: u32 = 0x30;
const CREAD: u32 = 0x80;
// c_lflag
pub const ISIG: u32 = 0x1;
pub const ICANON: u32 = 0x2;
pub const ECHO: u32 = 0x8;
pub const ECHOE: u32 = 0x10;
pub const ECHOK: u32 = 0x20;
pub const ECHONL: u32 = 0x40;
pub const NOFLSH: u32 = 0x80;
pub const TOSTOP: u32 = 0x100;
pub const ECHOCTL: u32 = 0x200;
pub const ECHOKE: u32 = 0x800;
pub const IEXTEN: u32 = 0x8000;
// c_cc indexes
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

/// Bytes either queue holds before writers wait (N_TTY_BUF_SIZE is 4 KiB per
/// line; this bounds what a reader that never reads can pin).
pub const QUEUE_MAX: usize = 64 << 10;
/// The longest canonical line; characters past it are dropped, as Linux does.
const LINE_MAX: usize = 4095;

/// Linux's `tty_std_termios` as a pty replica starts with.
pub fn default_termios() -> Termios {
    let mut t = Termios::zeroed();
    t.c_iflag = ICRNL | IXON;
    t.c_oflag = OPOST | ONLCR;
    t.c_cflag = B38400 | CS8 | CREAD;
    t.c_lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN;
    t.c_cc[..17].copy_from_slice(&[3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0]);
    t
}

/// A pty master starts raw.
pub fn master_termios() -> Termios {
    let mut t = default_termios();
    (t.c_iflag, t.c_oflag, t.c_lflag) = (0, 0, 0);
    t
}

pub struct LineDiscipline {
    pub termios: Termios,
    /// Completed input the replica may read. In canonical mode, `line_ends`
    /// counts the lines in it (a read returns at most one).
    input: VecDeque<u8>,
    /// Where each complete line ends in `input` (exclusive offsets).
    line_ends: VecDeque<usize>,
    /// The canonical line being edited.
    line: Vec<u8>,
    /// The next input character is literal (after VLNEXT).
    literal_next: bool,
    /// Output for the master to read: processed writes and echoes.
    pub output: VecDeque<u8>,
}

impl Default for LineDiscipline {
    fn default() -> Self {
        LineDiscipline { termios: default_termios(), input: VecDeque::new(), line_ends: VecDeque::new(), line: Vec::new(), literal_next: false, output: VecDeque::new() }
    }
}

impl LineDiscipline {
    fn lflag(&self, f: u32) -> bool {
        self.termios.c_lflag & f != 0
    }

    fn iflag(&self, f: u32) -> bool {
        self.termios.c_iflag & f != 0
    }

    fn cc(&self, i: usize) -> Option<u8> {
        // A control character set to 0 (_POSIX_VDISABLE) is disabled.
        Some(self.termios.c_cc[i]).filter(|&c| c != 0)
    }

    pub fn canonical(&self) -> bool {
        self.lflag(ICANON)
    }

    /// Whether a replica read would return now (data, or a canonical EOF).
    pub fn readable(&self) -> bool {
        if self.canonical() { !self.line_ends.is_empty() } else { !self.input.is_empty() }
    }

    /// Bytes a read could return now (FIONREAD).
    pub fn readable_bytes(&self) -> usize {
        if self.canonical() { self.line_ends.back().copied().unwrap_or(0) } else { self.input.len() }
    }

    /// Whether the master may write more input.
    pub fn input_room(&self) -> bool {
        self.input.len() + self.line.len() < QUEUE_MAX
    }

    /// Takes up to `max` bytes for a replica read: in canonical mode at most one
    /// line (an empty one is an EOF: a read of 0).
    pub fn read(&mut self, max: usize) -> Vec<u8> {
        let avail = if self.canonical() { self.line_ends.front().copied().unwrap_or(0) } else { self.input.len() };
        let n = avail.min(max);
        let out: Vec<u8> = self.input.drain(..n).collect();
        if self.canonical() {
            for e in self.line_ends.iter_mut() {
                *e -= n;
            }
            if self.line_ends.front() == Some(&0) {
                self.line_ends.pop_front();
            }
        }
        out
    }

    /// Switching ICANON off makes a half-edited line readable; switching it on
    /// makes pending raw input one line, as far as the reader is concerned.
    pub fn set_termios(&mut self, t: Termios) {
        let was_canonical = self.canonical();
        self.termios = t;
        if was_canonical && !self.canonical() {
            self.input.extend(self.line.drain(..));
            self.line_ends.clear();
        } else if !was_canonical && self.canonical() && !self.input.is_empty() {
            self.line_ends.clear();
            self.line_ends.push_back(self.input.len());
        }
    }

    /// Drops pending input (TCFLSH, and signal characters without NOFLSH).
    pub fn flush_input(&mut self) {
        self.input.clear();
        self.line_ends.clear();
        self.line.clear();
    }

    /// Processes output the replica writes (OPOST) into the master's queue.
    pub fn write_output(&mut self, data: &[u8]) {
        for &c in data {
            self.put_output(c);
        }
    }

    fn put_output(&mut self, c: u8) {
        let o = self.termios.c_oflag;
        if o & OPOST != 0 {
            if c == b'\n' && o & ONLCR != 0 {
                self.output.extend([b'\r', b'\n']);
                return;
            }
            if c == b'\r' && o & OCRNL != 0 {
                self.output.push_back(b'\n');
                return;
            }
        }
        self.output.push_back(c);
    }

    fn echo(&mut self, c: u8) {
        if !self.lflag(ECHO) {
            return;
        }
        if self.lflag(ECHOCTL) && (c < 0x20 && c != b'\t' && c != b'\n' || c == 0x7f) {
            self.output.extend([b'^', c ^ 0x40]);
        } else {
            self.put_output(c);
        }
    }

    /// Erases the last character of the line (a whole UTF-8 sequence with
    /// IUTF8), echoing "\b \b" with ECHOE. Returns false on an empty line.
    fn erase_char(&mut self) -> bool {
        let Some(mut c) = self.line.pop() else { return false };
        if self.iflag(IUTF8) {
            while c & 0xc0 == 0x80 {
                match self.line.pop() {
                    Some(p) => c = p,
                    None => break,
                }
            }
        }
        if self.lflag(ECHO) && self.lflag(ECHOE) {
            let width = if self.lflag(ECHOCTL) && (c < 0x20 || c == 0x7f) { 2 } else { 1 };
            for _ in 0..width {
                self.output.extend(*b"\x08 \x08");
            }
        }
        true
    }

    fn end_line(&mut self) {
        self.input.extend(self.line.drain(..));
        self.line_ends.push_back(self.input.len());
    }

    /// Processes input written to the master. Returns the signals the input
    /// raised, for the terminal's foreground process group.
    pub fn write_input(&mut self, data: &[u8]) -> Vec<u32> {
        let mut signals = Vec::new();
        for &byte in data {
            let mut c = byte;
            if self.literal_next {
                self.literal_next = false;
                self.add_char(c);
                continue;
            }
            if self.iflag(ISTRIP) {
                c &= 0x7f;
            }
            if c == b'\r' {
                if self.iflag(IGNCR) {
                    continue;
                }
                if self.iflag(ICRNL) {
                    c = b'\n';
                }
            } else if c == b'\n' && self.iflag(INLCR) {
                c = b'\r';
            }
            if self.lflag(ISIG) {
                let sig = [(VINTR, rvisor_abi::consts::SIGINT), (VQUIT, rvisor_abi::consts::SIGQUIT), (VSUSP, rvisor_abi::consts::SIGTSTP)]
                    .into_iter()
                    .find(|&(i, _)| self.cc(i) == Some(c));
                if let Some((_, signo)) = sig {
                    if !self.lflag(NOFLSH) {
                        self.flush_input();
                    }
                    self.echo(c);
                    signals.push(signo);
                    continue;
                }
            }
            if self.iflag(IXON) && (self.cc(VSTOP) == Some(c) || self.cc(VSTART) == Some(c)) {
                continue;
            }
            if !self.canonical() {
                if self.input.len() < QUEUE_MAX {
                    self.input.push_back(c);
                    self.echo(c);
                }
                continue;
            }
            if self.lflag(IEXTEN) && self.cc(VLNEXT) == Some(c) {
                self.literal_next = true;
                if self.lflag(ECHO) && self.lflag(ECHOCTL) {
                    self.output.extend(*b"^\x08");
                }
                continue;
            }
            if self.cc(VERASE) == Some(c) {
                self.erase_char();
                continue;
            }
            if self.lflag(IEXTEN) && self.cc(VWERASE) == Some(c) {
                while self.line.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    self.erase_char();
                }
                while self.line.last().is_some_and(|b| !b.is_ascii_whitespace()) {
                    self.erase_char();
                }
                continue;
            }
            if self.cc(VKILL) == Some(c) {
                if self.lflag(ECHOKE) {
                    while self.erase_char() {}
                } else {
                    self.line.clear();
                    self.echo(c);
                    if self.lflag(ECHOK) {
                        self.put_output(b'\n');
                    }
                }
                continue;
            }
            if self.cc(VEOF) == Some(c) {
                self.end_line();
                continue;
            }
            if c == b'\n' || self.cc(VEOL) == Some(c) || self.cc(VEOL2) == Some(c) {
                self.line.push(c);
                self.end_line();
                if self.lflag(ECHO) || (c == b'\n' && self.lflag(ECHONL)) {
                    self.put_output(c);
                }
                continue;
            }
            self.add_char(c);
        }
        signals
    }

    /// A character into the line (or raw input), echoed.
    fn add_char(&mut self, c: u8) {
        if self.canonical() {
            if self.line.len() < LINE_MAX {
                self.line.push(c);
                self.echo(c);
            }
        } else if self.input.len() < QUEUE_MAX {
            self.input.push_back(c);
            self.echo(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(l: &mut LineDiscipline) -> Vec<u8> {
        l.output.drain(..).collect()
    }

    #[test]
    fn canonical_lines_with_editing_and_echo() {
        let mut l = LineDiscipline::default();
        l.write_input(b"ecx\x7fho hi\r");
        assert_eq!(out(&mut l), b"ecx\x08 \x08ho hi\r\n");
        assert!(l.readable());
        assert_eq!(l.read(100), b"echo hi\n");
        assert!(!l.readable());
        l.write_input(b"one two\x17three\x15four\n");
        assert_eq!(l.read(100), b"four\n");
    }

    #[test]
    fn eof_and_partial_reads() {
        let mut l = LineDiscipline::default();
        l.write_input(b"abc\x04\x04");
        assert_eq!(l.read(2), b"ab");
        assert_eq!(l.read(10), b"c");
        assert!(l.readable());
        assert_eq!(l.read(10), b"");
        assert!(!l.readable());
    }

    #[test]
    fn signal_characters() {
        let mut l = LineDiscipline::default();
        l.write_input(b"half");
        assert_eq!(l.write_input(b"\x03"), vec![rvisor_abi::consts::SIGINT]);
        assert_eq!(l.write_input(b"\x1a\x1c"), vec![rvisor_abi::consts::SIGTSTP, rvisor_abi::consts::SIGQUIT]);
        l.write_input(b"\n");
        assert_eq!(l.read(10), b"\n");
        assert!(out(&mut l).ends_with(b"^C^Z^\\\r\n"));
    }

    #[test]
    fn raw_mode_and_output_processing() {
        let mut l = LineDiscipline::default();
        let mut t = l.termios;
        t.c_lflag &= !(ICANON | ECHO);
        l.set_termios(t);
        l.write_input(b"x\ry");
        assert_eq!(l.read(10), b"x\ny");
        l.write_output(b"a\nb");
        assert_eq!(out(&mut l), b"a\r\nb");
    }
}

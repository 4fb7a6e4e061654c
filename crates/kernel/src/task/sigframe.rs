//! Signal frames: what a handler finds on its stack (`struct rt_sigframe`), and
//! `rt_sigreturn`, which restores the interrupted state from it.

use super::signals::{SigInfo, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTART, SA_RESTORER, sigbit};
use super::Task;
use crate::mm::UserRef;
use rvisor_abi::structs::KernelSigaction;
use rvisor_abi::{errno, ErrnoCode, SysResult, UserAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct sigcontext` (x86-64), the machine state in `uc_mcontext`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SigContext {
    pub r8: u64, pub r9: u64, pub r10: u64, pub r11: u64, pub r12: u64, pub r13: u64, pub r14: u64, pub r15: u64,
    pub rdi: u64, pub rsi: u64, pub rbp: u64, pub rbx: u64, pub rdx: u64, pub rax: u64, pub rcx: u64, pub rsp: u64,
    pub rip: u64, pub eflags: u64,
    pub cs: u16, pub gs: u16, pub fs: u16, pub ss: u16,
    pub err: u64, pub trapno: u64, pub oldmask: u64, pub cr2: u64,
    pub fpstate: u64,
    pub reserved: [u64; 8],
}

/// `struct ucontext` as the kernel lays it out.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct UContext {
    pub flags: u64,
    pub link: u64,
    pub ss_sp: u64,
    pub ss_flags: i32,
    pad: i32,
    pub ss_size: u64,
    pub mcontext: SigContext,
    pub sigmask: u64,
}

/// `struct rt_sigframe`: the return address (the restorer), the context, the info.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RtSigframe {
    pretcode: u64,
    uc: UContext,
    info: SigInfo,
}

const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
/// Stack bytes below rsp the ABI lets leaf functions use; a frame skips them.
const RED_ZONE: u64 = 128;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Offset of `sw_reserved` (struct _fpx_sw_bytes) in the FXSAVE area.
const SW_RESERVED: usize = 464;
/// eflags bits sigreturn takes from the frame (Linux's FIX_EFLAGS).
const FIX_EFLAGS: u64 = 0x0004_0dd5 | 0x0001_0000;
const EFLAGS_DF_TF_RF: u64 = 0x400 | 0x100 | 0x1_0000;

/// An XSAVE image in the initial state, as a handler starts with.
fn initial_fpstate(like: &[u8]) -> Vec<u8> {
    let mut img = vec![0u8; like.len()];
    img[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
    img[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    if like.len() >= 32 {
        img[28..32].copy_from_slice(&like[28..32]);
    }
    if img.len() >= 520 {
        img[512..520].copy_from_slice(&3u64.to_le_bytes());
    }
    img
}

impl Task {
    /// Builds the frame for a handler and points the registers at it.
    pub(crate) fn setup_frame(&mut self, info: &SigInfo, act: &KernelSigaction) -> SysResult<()> {
        let signo = info.signo();
        if act.flags & SA_RESTORER == 0 {
            return Err(errno!(EFAULT));
        }
        // A syscall this signal interrupted either restarts or fails with EINTR.
        if let Some(code) = self.pending_restart.take() {
            let restart = code == ErrnoCode::ERESTARTNOINTR || (code == ErrnoCode::ERESTARTSYS && act.flags & SA_RESTART != 0);
            if restart {
                self.restart_syscall();
            } else {
                self.cpu.regs.rax = errno!(EINTR).to_return();
            }
        }
        let (altstack, mask, saved) = {
            let mut s = self.thread.sig();
            (s.altstack, s.mask, s.saved_mask.take())
        };
        let regs = self.cpu.regs;
        let on_alt = altstack.contains(regs.rsp);
        let mut sp = if act.flags & SA_ONSTACK != 0 && altstack.is_set() && !on_alt {
            altstack.sp + altstack.size
        } else {
            regs.rsp.checked_sub(RED_ZONE).ok_or_else(|| errno!(EFAULT))?
        };
        let mut fp = match self.cpu.fpstate.take() {
            Some(f) => f,
            None => self.ctx.fpstate().map_err(|_| errno!(EFAULT))?,
        };
        let xsize = fp.len();
        if xsize >= 512 {
            let sw = &mut fp[SW_RESERVED..SW_RESERVED + 24];
            sw[0..4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
            sw[4..8].copy_from_slice(&((xsize + 4) as u32).to_le_bytes());
            let xfeatures = if xsize >= 520 { u64::from_le_bytes(fp[512..520].try_into().unwrap_or([3, 0, 0, 0, 0, 0, 0, 0])) | 3 } else { 3 };
            let sw = &mut fp[SW_RESERVED..SW_RESERVED + 24];
            sw[8..16].copy_from_slice(&xfeatures.to_le_bytes());
            sw[16..20].copy_from_slice(&(xsize as u32).to_le_bytes());
        }
        sp = sp.checked_sub(xsize as u64 + 4).ok_or_else(|| errno!(EFAULT))? & !63;
        let fpstate_addr = sp;
        let mut image = fp.clone();
        image.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        self.mm.write_bytes(UserAddr(fpstate_addr), &image)?;

        let frame_size = std::mem::size_of::<RtSigframe>() as u64;
        let frame_addr = (sp.checked_sub(frame_size).ok_or_else(|| errno!(EFAULT))? & !15) - 8;
        let mcontext = SigContext {
            r8: regs.r8, r9: regs.r9, r10: regs.r10, r11: regs.r11, r12: regs.r12, r13: regs.r13, r14: regs.r14, r15: regs.r15,
            rdi: regs.rdi, rsi: regs.rsi, rbp: regs.rbp, rbx: regs.rbx, rdx: regs.rdx, rax: regs.rax, rcx: regs.rcx, rsp: regs.rsp,
            rip: regs.rip, eflags: regs.eflags,
            cs: regs.cs as u16, gs: 0, fs: 0, ss: regs.ss as u16,
            err: self.cpu.err, trapno: self.cpu.trapno, oldmask: saved.unwrap_or(mask), cr2: if info.from_kernel() && matches!(signo, 7 | 11) { u64::from_le_bytes(info.as_bytes()[16..24].try_into().unwrap_or([0; 8])) } else { 0 },
            fpstate: fpstate_addr,
            reserved: [0; 8],
        };
        let frame = RtSigframe {
            pretcode: act.restorer,
            uc: UContext {
                flags: UC_FP_XSTATE | UC_SIGCONTEXT_SS,
                link: 0,
                ss_sp: altstack.sp,
                ss_flags: if !altstack.is_set() { SS_DISABLE } else if on_alt { SS_ONSTACK } else { 0 },
                pad: 0,
                ss_size: altstack.size,
                mcontext,
                sigmask: saved.unwrap_or(mask),
            },
            info: *info,
        };
        self.mm.write_obj(UserRef::new(UserAddr(frame_addr)), &frame)?;

        let r = &mut self.cpu.regs;
        r.rdi = signo as u64;
        r.rsi = frame_addr + std::mem::offset_of!(RtSigframe, info) as u64;
        r.rdx = frame_addr + std::mem::offset_of!(RtSigframe, uc) as u64;
        r.rax = 0;
        r.rsp = frame_addr;
        r.rip = act.handler;
        r.eflags &= !EFLAGS_DF_TF_RF;
        r.cs = 0x33;
        r.ss = 0x2b;
        self.cpu.fpstate = Some(initial_fpstate(&fp));

        let nodefer = if act.flags & SA_NODEFER == 0 { sigbit(signo) } else { 0 };
        let mask = self.thread.sig().mask | act.mask | nodefer;
        self.thread.set_sigmask(mask);
        if act.flags & SA_RESETHAND != 0 {
            let mut sig = self.tg.sig();
            let a = &mut sig.actions[signo as usize - 1];
            a.handler = super::signals::SIG_DFL;
            a.flags &= !SA_RESETHAND;
        }
        Ok(())
    }

    /// rt_sigreturn: restores what `setup_frame` saved. Returns the restored rax.
    pub(crate) fn sigreturn(&mut self) -> SysResult<u64> {
        let frame_addr = self.cpu.regs.rsp.checked_sub(8).ok_or_else(|| errno!(EFAULT))?;
        let uc_addr = UserAddr(frame_addr).add(std::mem::offset_of!(RtSigframe, uc) as u64)?;
        let uc: UContext = self.mm.read_obj(UserRef::new(uc_addr))?;
        let m = uc.mcontext;
        let r = &mut self.cpu.regs;
        r.r8 = m.r8; r.r9 = m.r9; r.r10 = m.r10; r.r11 = m.r11; r.r12 = m.r12; r.r13 = m.r13; r.r14 = m.r14; r.r15 = m.r15;
        r.rdi = m.rdi; r.rsi = m.rsi; r.rbp = m.rbp; r.rbx = m.rbx; r.rdx = m.rdx; r.rax = m.rax; r.rcx = m.rcx; r.rsp = m.rsp;
        r.rip = m.rip;
        r.eflags = (r.eflags & !FIX_EFLAGS) | (m.eflags & FIX_EFLAGS);
        r.cs = 0x33;
        r.ss = 0x2b;
        if m.fpstate != 0 {
            // The frame says how big its XSAVE image is; without the magic it is
            // the legacy 512-byte FXSAVE area.
            let mut img = vec![0u8; 512];
            self.mm.read_bytes(UserAddr(m.fpstate), &mut img)?;
            let word = |at: usize| u32::from_le_bytes(img[at..at + 4].try_into().unwrap_or([0; 4]));
            if word(SW_RESERVED) == FP_XSTATE_MAGIC1 {
                let size = (word(SW_RESERVED + 16) as usize).clamp(512, 1 << 16);
                img.resize(size, 0);
                self.mm.read_bytes(UserAddr(m.fpstate), &mut img)?;
            }
            self.cpu.fpstate = Some(img);
        }
        self.thread.set_sigmask(uc.sigmask);
        let mut s = self.thread.sig();
        if uc.ss_flags & SS_DISABLE == 0 && !s.altstack.contains(self.cpu.regs.rsp) {
            s.altstack.sp = uc.ss_sp;
            s.altstack.size = uc.ss_size;
            s.altstack.disabled = false;
        }
        self.pending_restart = None;
        self.restart_block = None;
        Ok(self.cpu.regs.rax)
    }
}

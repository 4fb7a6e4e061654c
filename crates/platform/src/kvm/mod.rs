//! The KVM platform: app threads run in guest ring 3 of a VM per address space, on a
//! vCPU driven by the Sentry thread that serves them; a syscall, a fault or a kick is
//! a VM exit. No stub process, no ptrace, no host syscall from app code by any route:
//! isolation comes from hardware virtualization.
//!
//! The guest has no kernel of its own (`guest.rs` says why): the Sentry writes its
//! page tables (`vm.rs`) and reads and sets its registers through the `kvm_run` page
//! (sync regs), so a round trip is one `KVM_RUN` ioctl.
//!
//! Kicks: a Sentry thread that runs a vCPU blocks SIGURG, and its vCPU runs with it
//! unblocked (KVM_SET_SIGNAL_MASK). A kick is a SIGURG to that thread: it ends a
//! `KVM_RUN` in progress, or the next one at once, and is consumed after.

mod guest;
mod vm;

use crate::{AddressSpace, Context, CpuState, Event, Interrupter, Perms, Platform, PlatformError, Result, ThreadSeed};
use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_xcrs, kvm_xsave, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, SyncReg, VcpuExit, VcpuFd};
use std::any::Any;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use crate::lock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vm::{MemoryFile, Vm};

fn kvm_err(what: &'static str, e: kvm_ioctls::Error) -> PlatformError {
    PlatformError::Host(what, std::io::Error::from_raw_os_error(e.errno()))
}

/// What every VM of the platform shares.
struct Shared {
    kvm: Kvm,
    file: Arc<MemoryFile>,
    cpuid: CpuId,
    /// The guest's XCR0: the host's, as far as KVM supports it.
    xcr0: u64,
    cr4_extra: u64,
    /// The size of an XSAVE image for that XCR0.
    xsave_size: usize,
    /// VMs of ended address spaces, emptied, for the next ones: a new VM and its
    /// first vCPU cost ~0.8 ms here, and each memslot ~0.1 ms.
    spare_vms: Mutex<Vec<Vm>>,
}

/// How many emptied VMs to keep (each holds ~1 MiB of host kernel memory).
const SPARE_VMS: usize = 2;

pub struct KvmPlatform {
    shared: Arc<Shared>,
}

fn cpuid_entry(cpuid: &CpuId, function: u32, index: u32) -> Option<kvm_bindings::kvm_cpuid_entry2> {
    cpuid.as_slice().iter().find(|e| e.function == function && e.index == index).copied()
}

/// Opens /dev/kvm, which the Sentry does before it leaves the host's files.
pub fn open_device() -> Result<OwnedFd> {
    let fd = Kvm::open_with_cloexec(true).map_err(|e| PlatformError::Unsupported(format!("the kvm platform needs /dev/kvm: {e}")))?;
    // SAFETY: `open_with_cloexec` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl KvmPlatform {
    /// The platform on `device`, an open /dev/kvm (`open_device`).
    pub fn new(memory_fd: i32, device: OwnedFd) -> Result<KvmPlatform> {
        // SAFETY: `device` is an open /dev/kvm, whose ownership passes to `Kvm`.
        let kvm = unsafe { Kvm::from_raw_fd(device.into_raw_fd()) };
        if kvm.get_api_version() != 12 {
            return Err(PlatformError::Unsupported("the kvm platform needs /dev/kvm to be KVM (API version 12)".into()));
        }
        for (cap, name) in [(Cap::SyncRegs, "sync regs"), (Cap::UserMemory, "user memory"), (Cap::ExtCpuid, "CPUID")] {
            if !kvm.check_extension(cap) {
                return Err(PlatformError::Unsupported(format!("this host's KVM lacks {name}")));
            }
        }
        let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(|e| kvm_err("KVM_GET_SUPPORTED_CPUID", e))?;
        let phys_bits = cpuid_entry(&cpuid, 0x8000_0008, 0).map_or(36, |e| e.eax & 0xff);
        if phys_bits < 40 {
            return Err(PlatformError::Unsupported(format!("guests of this host's KVM have {phys_bits} physical address bits (40 needed)")));
        }
        let supported = cpuid_entry(&cpuid, 0xd, 0).map_or(3, |e| u64::from(e.eax) | u64::from(e.edx) << 32);
        // SAFETY: xgetbv(0) reads XCR0; every x86-64 host Linux runs on has XSAVE enabled.
        let host_xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
        let fsgsbase = cpuid_entry(&cpuid, 7, 0).is_some_and(|e| e.ebx & 1 != 0);
        let xsave_size = (std::arch::x86_64::__cpuid_count(0xd, 0).ebx as usize).max(512 + 64);
        let file = Arc::new(MemoryFile::new(memory_fd)?);
        let platform = KvmPlatform {
            shared: Arc::new(Shared {
                kvm,
                file,
                cpuid,
                xcr0: host_xcr0 & supported,
                cr4_extra: if fsgsbase { guest::CR4_FSGSBASE } else { 0 },
                xsave_size,
                spare_vms: Mutex::default(),
            }),
        };
        platform.probe_syscall_entry()?;
        Ok(platform)
    }

    /// Runs one `syscall` in a first VM (kept for the first address space): on this
    /// host's KVM (PVM) it stays in ring 3, which is what the entry page is built for;
    /// a KVM that takes it to ring 0 is refused here, clearly, rather than at the
    /// app's first syscall.
    fn probe_syscall_entry(&self) -> Result<()> {
        let shared = &self.shared;
        let vm = Vm::new(shared.kvm.create_vm().map_err(|e| kvm_err("KVM_CREATE_VM", e))?, shared.file.clone())?;
        let mut vcpu = Vcpu::create(shared, &vm)?;
        vcpu.fd.sync_regs_mut().regs = kvm_regs { rip: guest::PROBE, rflags: FLAGS_FIXED, ..Default::default() };
        vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
        let exit = vcpu.fd.run().map(|e| format!("{e:?}")).map_err(|e| kvm_err("KVM_RUN", e))?;
        vcpu.fd.clear_sync_dirty_reg(SyncReg::Register);
        let regs = vcpu.fd.sync_regs();
        if guest::port_at(regs.regs.rip) != Some(guest::SYSCALL_PORT) || regs.sregs.cs.selector != guest::USER_CS {
            return Err(PlatformError::Unsupported(format!(
                "this host's KVM does not keep a guest's syscall in ring 3 (exit {exit}, cs {:#x}): the kvm platform supports PVM hosts only so far",
                regs.sregs.cs.selector
            )));
        }
        lock(&vm.vcpus).free.push(vcpu);
        lock(&shared.spare_vms).push(vm);
        Ok(())
    }
}

impl Platform for KvmPlatform {
    fn name(&self) -> &'static str {
        "kvm"
    }

    /// There are no stubs to fork: the Sentry may be sealed at once.
    fn start_zygote(&self) -> std::io::Result<bool> {
        Ok(true)
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>> {
        let spare = lock(&self.shared.spare_vms).pop();
        let vm = match spare {
            Some(vm) => vm,
            None => Vm::new(self.shared.kvm.create_vm().map_err(|e| kvm_err("KVM_CREATE_VM", e))?, self.shared.file.clone())?,
        };
        Ok(Arc::new(KvmAddressSpace { vm: Some(vm), shared: self.shared.clone() }))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(KvmContext { shared: self.shared.clone(), bound: None, kick: Arc::default() })
    }

    fn adopt(&self, _seed: ThreadSeed) -> Result<Box<dyn Context>> {
        Ok(self.new_context())
    }

    fn max_user_address(&self) -> u64 {
        // Linux's: the top page of the lower half stays unmapped.
        0x7fff_ffff_f000
    }
}

pub struct KvmAddressSpace {
    /// Taken only by `drop`, which gives it back emptied.
    vm: Option<Vm>,
    shared: Arc<Shared>,
}

impl KvmAddressSpace {
    fn vm(&self) -> &Vm {
        self.vm.as_ref().expect("the VM lives as long as its address space")
    }
}

impl Drop for KvmAddressSpace {
    fn drop(&mut self) {
        // Every context bound to this VM holds the address space, so none runs it now.
        if let Some(vm) = self.vm.take() {
            vm.unmap(0, guest::LOWER_HALF_END);
            let mut spares = lock(&self.shared.spare_vms);
            if spares.len() < SPARE_VMS {
                spares.push(vm);
            }
        }
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map(&self, addr: u64, len: u64, file_offset: u64, perms: Perms) {
        if let Err(e) = self.vm().map(addr, len, file_offset, perms) {
            // The app faults on the page again and gets SIGBUS from the kernel's retry.
            tracing::error!("kvm: cannot map {addr:#x}+{len:#x}: {e}");
        }
    }

    fn unmap(&self, addr: u64, len: u64) {
        self.vm().unmap(addr, len);
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) {
        self.vm().protect(addr, len, perms);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A vCPU of one VM, with the upper-half area (`slot`) it runs on.
pub struct Vcpu {
    fd: VcpuFd,
    slot: usize,
    fs_base: u64,
    gs_base: u64,
    /// Its code segment selector as the last exit left it.
    cs: u16,
    /// The signal mask it runs with (KVM_SET_SIGNAL_MASK), once set.
    run_mask: Option<u64>,
}

/// A KVM ioctl request number: `_IOC(dir, KVMIO, nr, size)`.
const fn kvm_ioctl(dir: u64, nr: u64, size: u64) -> u64 {
    dir << 30 | size << 16 | 0xae << 8 | nr
}
const NONE: u64 = 0;
const WRITE: u64 = 1;
const READ: u64 = 2;

/// `KVM_SET_SIGNAL_MASK`: its argument is a 4-byte header (the mask's length) with
/// the 8-byte kernel sigset after it.
const KVM_SET_SIGNAL_MASK: u64 = kvm_ioctl(WRITE, 0x8b, 4);

/// Every ioctl the platform makes once the Sentry is sealed, for its seccomp filter.
pub const SENTRY_IOCTLS: &[u64] = &[
    kvm_ioctl(NONE, 0x01, 0),    // KVM_CREATE_VM
    kvm_ioctl(NONE, 0x04, 0),    // KVM_GET_VCPU_MMAP_SIZE
    kvm_ioctl(NONE, 0x41, 0),    // KVM_CREATE_VCPU
    kvm_ioctl(WRITE, 0x46, 32),  // KVM_SET_USER_MEMORY_REGION
    kvm_ioctl(NONE, 0x80, 0),    // KVM_RUN
    kvm_ioctl(READ, 0x83, 312),  // KVM_GET_SREGS
    kvm_ioctl(WRITE, 0x84, 312), // KVM_SET_SREGS
    kvm_ioctl(WRITE, 0x89, 8),   // KVM_SET_MSRS
    KVM_SET_SIGNAL_MASK,
    kvm_ioctl(WRITE, 0x90, 8),    // KVM_SET_CPUID2
    kvm_ioctl(READ, 0xa4, 4096),  // KVM_GET_XSAVE
    kvm_ioctl(WRITE, 0xa5, 4096), // KVM_SET_XSAVE
    kvm_ioctl(WRITE, 0xa7, 392),  // KVM_SET_XCRS
];

/// Blocks SIGURG in this thread (once): a kick then waits for the vCPU to run. The
/// mask the thread had, without SIGURG, is the one its vCPUs run with.
fn block_kicks() -> u64 {
    thread_local!(static RUN_MASK: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) });
    RUN_MASK.with(|m| {
        if let Some(v) = m.get() {
            return v;
        }
        // SAFETY: sigset_t is plain data; the calls only fill and read it.
        let old = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGURG);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            libc::sigdelset(&mut old, libc::SIGURG);
            old
        };
        // SAFETY: the first 8 bytes of a sigset_t are the kernel's 64-signal mask.
        let run = unsafe { *(&old as *const libc::sigset_t as *const u64) };
        m.set(Some(run));
        run
    })
}

/// Takes a pending kick (a blocked SIGURG), if there is one.
fn consume_kick() {
    // SAFETY: a zero timeout makes sigtimedwait poll; the set and timespec are locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGURG);
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &zero);
    }
}

impl Vcpu {
    /// A vCPU of `vm`: a released one if there is one (its FP state then is whatever
    /// its last thread left, maybe of another process), else a new one.
    fn take(shared: &Shared, vm: &Vm) -> Result<(Vcpu, bool)> {
        let free = lock(&vm.vcpus).free.pop();
        if let Some(mut v) = free {
            // Whatever mode its last thread left it in (a 32-bit code segment, or
            // the ring 0 a 32-bit `syscall` enters on PVM) is not the next one's.
            v.reset_user_mode(shared, vm, 0, 0)?;
            return Ok((v, true));
        }
        Self::create(shared, vm).map(|v| (v, false))
    }

    /// Puts the vCPU back in 64-bit ring 3 with Linux's user segments, with these
    /// FS and GS bases.
    fn reset_user_mode(&mut self, shared: &Shared, vm: &Vm, fs_base: u64, gs_base: u64) -> Result<()> {
        let mut sregs = guest::user_sregs(self.fd.get_sregs().map_err(|e| kvm_err("KVM_GET_SREGS", e))?, vm.root, self.slot, shared.cr4_extra);
        (sregs.fs.base, sregs.gs.base) = (fs_base, gs_base);
        self.fd.set_sregs(&sregs).map_err(|e| kvm_err("KVM_SET_SREGS", e))?;
        (self.fs_base, self.gs_base, self.cs) = (fs_base, gs_base, guest::USER_CS);
        Ok(())
    }

    /// Runs the app next in the code segment `cs` names (32- or 64-bit): an
    /// exception's handler left the vCPU in the 64-bit one, whatever the app ran in.
    fn use_code_segment(&mut self, cs: u64) -> Result<()> {
        let (selector, segment) = guest::user_code_segment(cs);
        if selector != self.cs {
            let mut sregs = self.fd.get_sregs().map_err(|e| kvm_err("KVM_GET_SREGS", e))?;
            sregs.cs = segment;
            self.fd.set_sregs(&sregs).map_err(|e| kvm_err("KVM_SET_SREGS", e))?;
            self.cs = selector;
        }
        Ok(())
    }

    fn create(shared: &Shared, vm: &Vm) -> Result<Vcpu> {
        let mut slots = lock(&vm.vcpus);
        let slot = slots.created;
        if slot >= guest::MAX_VCPUS {
            return Err(PlatformError::Unsupported("too many threads in one address space".into()));
        }
        vm.add_vcpu_area(slot)?;
        let mut fd = vm.fd.create_vcpu(slot as u64).map_err(|e| kvm_err("KVM_CREATE_VCPU", e))?;
        slots.created += 1;
        drop(slots);
        fd.set_cpuid2(&shared.cpuid).map_err(|e| kvm_err("KVM_SET_CPUID2", e))?;
        let sregs = fd.get_sregs().map_err(|e| kvm_err("KVM_GET_SREGS", e))?;
        fd.set_sregs(&guest::user_sregs(sregs, vm.root, slot, shared.cr4_extra)).map_err(|e| kvm_err("KVM_SET_SREGS", e))?;
        let mut xcrs = kvm_xcrs { nr_xcrs: 1, ..Default::default() };
        xcrs.xcrs[0].value = shared.xcr0;
        fd.set_xcrs(&xcrs).map_err(|e| kvm_err("KVM_SET_XCRS", e))?;
        let mut msrs: Vec<(u32, u64)> = guest::syscall_msrs().to_vec();
        msrs.extend([(guest::MSR_FS_BASE, 0), (guest::MSR_GS_BASE, 0)]);
        set_msrs(&fd, &msrs)?;
        fd.set_sync_valid_reg(SyncReg::Register);
        fd.set_sync_valid_reg(SyncReg::SystemRegister);
        let mut vcpu = Vcpu { fd, slot, fs_base: 0, gs_base: 0, cs: guest::USER_CS, run_mask: None };
        vcpu.run_with_this_threads_mask()?;
        Ok(vcpu)
    }

    /// Runs the vCPU with the calling thread's signal mask, but SIGURG (the kick)
    /// unblocked: a vCPU that moves to a thread with another mask must not let a
    /// signal that thread blocks interrupt it (or worse, be delivered there).
    fn run_with_this_threads_mask(&mut self) -> Result<()> {
        let want = block_kicks();
        if self.run_mask == Some(want) {
            return Ok(());
        }
        let arg = [8u32.to_ne_bytes(), [0; 4]].concat().into_iter().chain(want.to_ne_bytes()).collect::<Vec<u8>>();
        // SAFETY: the argument is a kvm_signal_mask header (len 8) followed by 8 bytes
        // of mask, which the ioctl reads.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), KVM_SET_SIGNAL_MASK as libc::c_ulong, arg.as_ptr()) } < 0 {
            return Err(PlatformError::Host("KVM_SET_SIGNAL_MASK", std::io::Error::last_os_error()));
        }
        self.run_mask = Some(want);
        Ok(())
    }
}

fn set_msrs(fd: &VcpuFd, msrs: &[(u32, u64)]) -> Result<()> {
    let entries: Vec<kvm_msr_entry> = msrs.iter().map(|&(index, data)| kvm_msr_entry { index, data, ..Default::default() }).collect();
    let list = Msrs::from_entries(&entries).map_err(|_| PlatformError::Unsupported("too many MSRs".into()))?;
    let set = fd.set_msrs(&list).map_err(|e| kvm_err("KVM_SET_MSRS", e))?;
    if set != entries.len() {
        return Err(PlatformError::Unsupported(format!("KVM set {set} of {} MSRs (first refused: {:#x})", entries.len(), msrs[set].0)));
    }
    Ok(())
}

/// The XSAVE image of a fresh thread: x87 control word 0x37f, MXCSR 0x1f80, every
/// other component in its initial state (header's XSTATE_BV 0).
fn initial_fpstate() -> Vec<u8> {
    let mut img = vec![0u8; 512 + 64];
    img[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
    img[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    img
}

/// The si_code of an x87 (#MF) or SIMD (#XM) exception, from the status bits that
/// are set and not masked, as Linux's `fpu__exception_code` picks it.
fn fpu_exception_code(vcpu: &Vcpu, vector: u64) -> Result<i32> {
    let x = vcpu.fd.get_xsave().map_err(|e| kvm_err("KVM_GET_XSAVE", e))?;
    let (cwd, swd, mxcsr) = (x.region[0] & 0xffff, x.region[0] >> 16, x.region[6]);
    let err = if vector == 16 { swd & !cwd } else { !(mxcsr >> 7) & mxcsr };
    Ok(match err {
        e if e & 0x01 != 0 => 7, // FPE_FLTINV
        e if e & 0x04 != 0 => 3, // FPE_FLTDIV
        e if e & 0x08 != 0 => 4, // FPE_FLTOVF
        e if e & 0x12 != 0 => 5, // FPE_FLTUND
        e if e & 0x20 != 0 => 6, // FPE_FLTRES
        _ => 0,
    })
}

/// Finishes the I/O instruction of the last exit, which KVM would otherwise complete
/// at the next entry over the registers the Sentry sets (an app's `in` would write
/// rax and skip itself): a run that exits at once does it.
fn complete_io(vcpu: &mut Vcpu) -> Result<()> {
    vcpu.fd.set_kvm_immediate_exit(1);
    let r = match vcpu.fd.run() {
        Err(e) if e.errno() == libc::EINTR => Ok(()),
        Err(e) => Err(kvm_err("KVM_RUN", e)),
        Ok(exit) => Err(PlatformError::Unsupported(format!("VM exit {exit:?} on an immediate exit"))),
    };
    vcpu.fd.set_kvm_immediate_exit(0);
    r
}

/// The thread that runs a context's vCPU, for kicks, and the app's CPU time: the
/// thread's CPU time spent inside KVM_RUN.
#[derive(Default)]
struct Kick {
    tid: AtomicI32,
    /// CPU time of finished runs.
    banked_ns: AtomicU64,
    /// The thread's CPU clock when the current run began; 0 between runs.
    run_began_ns: AtomicU64,
}

/// The calling thread's CPU clock, in nanoseconds (never 0).
fn own_cpu_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64);
    ts.max(1)
}

impl Interrupter for Kick {
    fn interrupt(&self) {
        let tid = self.tid.load(Ordering::Acquire);
        if tid != 0 {
            // SAFETY: tgkill to a thread of our own process; SIGURG is blocked there.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGURG) };
        }
    }

    fn cpu_time_ns(&self) -> u64 {
        let banked = self.banked_ns.load(Ordering::Acquire);
        let began = self.run_began_ns.load(Ordering::Acquire);
        let tid = self.tid.load(Ordering::Acquire);
        if began == 0 || tid == 0 {
            return banked;
        }
        banked + crate::hostcall::thread_cpu_ns(tid).map_or(0, |now| now.saturating_sub(began))
    }

    fn runs_on_host_thread(&self) -> bool {
        true
    }
}

pub struct KvmContext {
    shared: Arc<Shared>,
    bound: Option<(Arc<dyn AddressSpace>, Vcpu)>,
    kick: Arc<Kick>,
}

/// The flags an app may set (Linux's FIX_EFLAGS); IF and the reserved bit 1 are
/// always set.
const USER_FLAGS: u64 = 0x25_4dd5;
const FLAGS_FIXED: u64 = 0x202;

/// Exceptions that push an error code.
fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

fn to_kvm(r: &libc::user_regs_struct) -> kvm_regs {
    kvm_regs {
        rax: r.rax, rbx: r.rbx, rcx: r.rcx, rdx: r.rdx, rsi: r.rsi, rdi: r.rdi, rsp: r.rsp, rbp: r.rbp,
        r8: r.r8, r9: r.r9, r10: r.r10, r11: r.r11, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
        rip: r.rip,
        rflags: (r.eflags & USER_FLAGS) | FLAGS_FIXED,
    }
}

fn from_kvm(k: &kvm_regs, r: &mut libc::user_regs_struct) {
    (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp) = (k.rax, k.rbx, k.rcx, k.rdx, k.rsi, k.rdi, k.rsp, k.rbp);
    (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) = (k.r8, k.r9, k.r10, k.r11, k.r12, k.r13, k.r14, k.r15);
    (r.rip, r.eflags) = (k.rip, k.rflags);
}

/// What a ring-3 instruction that has no business exiting (an `in` or `out` of app
/// code, `hlt`) gets: Linux answers them with a #GP, SIGSEGV with SI_KERNEL.
const SI_KERNEL: i32 = 0x80;
fn general_protection() -> Event {
    Event::Signal { signo: libc::SIGSEGV, code: SI_KERNEL, addr: 0 }
}

impl KvmContext {
    fn vm(aspace: &Arc<dyn AddressSpace>) -> &Vm {
        aspace.as_any().downcast_ref::<KvmAddressSpace>().expect("kvm context given a foreign address space").vm()
    }

    /// This context's vCPU in `aspace`'s VM (giving back one of another VM), and
    /// whether it ran another thread before.
    fn bind(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<(&mut Vcpu, bool)> {
        if self.bound.as_ref().is_some_and(|(a, _)| !Arc::ptr_eq(a, aspace)) {
            self.release();
        }
        let mut reused = false;
        if self.bound.is_none() {
            let mut vcpu;
            (vcpu, reused) = Vcpu::take(&self.shared, Self::vm(aspace))?;
            vcpu.run_with_this_threads_mask()?;
            self.bound = Some((aspace.clone(), vcpu));
        }
        self.kick.tid.store(nix::unistd::gettid().as_raw(), Ordering::Release);
        Ok((&mut self.bound.as_mut().expect("bound above").1, reused))
    }

    /// Decodes an exception its ring-3 handler reported on `port`.
    fn exception(vm: &Vm, vcpu: &mut Vcpu, port: u16, cpu: &mut CpuState) -> Result<Event> {
        let vector = u64::from(port - guest::EXCEPTION_PORT);
        let regs = vcpu.fd.sync_regs();
        let err = has_error_code(vector);
        let words = 5 + usize::from(err);
        let frame_at = guest::exception_stack_top(vcpu.slot) - 8 * words as u64;
        // Only the handler, entered by the CPU, is there with that stack.
        if guest::port_at(regs.regs.rip) != Some(port) || regs.regs.rsp != frame_at {
            from_kvm(&regs.regs, &mut cpu.regs);
            complete_io(vcpu)?;
            return Ok(general_protection());
        }
        let mut raw = [0u8; 48];
        vm.read_kernel(frame_at, &mut raw[..8 * words]).ok_or_else(|| PlatformError::Unsupported("exception stack unmapped".into()))?;
        let word = |k: usize| u64::from_le_bytes(raw[8 * k..8 * k + 8].try_into().expect("8 bytes"));
        let (code, f) = if err { (word(0), 1) } else { (0, 0) };
        from_kvm(&regs.regs, &mut cpu.regs);
        (cpu.regs.rip, cpu.regs.eflags, cpu.regs.rsp) = (word(f), word(f + 2), word(f + 3));
        cpu.regs.cs = u64::from(guest::user_code_segment(word(f + 1)).0);
        (cpu.trapno, cpu.err) = (vector, code);
        let rip = cpu.regs.rip;
        // This host's KVM raises #UD for `int n`, which Linux (without IA32
        // emulation, as the Sentry is) answers with a #GP naming the IDT entry.
        let mut insn = [0u8; 2];
        if vector == 6 && vm.read_user(rip, &mut insn).is_some() && insn[0] == 0xcd {
            (cpu.trapno, cpu.err) = (13, u64::from(insn[1]) << 3 | 2);
            return Ok(general_protection());
        }
        let (signo, code) = match vector {
            14 if regs.sregs.cr2 == rip && guest::vsyscall(rip).is_some() => return Ok(Self::vsyscall(vm, cpu)),
            14 => {
                let code = if cpu.err & 1 == 0 { 1 } else { 2 }; // SEGV_MAPERR, SEGV_ACCERR
                return Ok(Event::Fault { addr: regs.sregs.cr2, signo: libc::SIGSEGV, code });
            }
            0 => (libc::SIGFPE, 1),             // FPE_INTDIV
            1 => (libc::SIGTRAP, 2),            // TRAP_TRACE
            3 => (libc::SIGTRAP, SI_KERNEL),
            6 => (libc::SIGILL, 2),             // ILL_ILLOPN
            16 | 19 => (libc::SIGFPE, fpu_exception_code(vcpu, vector)?),
            17 => (libc::SIGBUS, 1),            // BUS_ADRALN
            11 | 12 => (libc::SIGBUS, SI_KERNEL),
            8 | 18 => return Err(PlatformError::Unsupported(format!("guest exception {vector} at {rip:#x}"))),
            _ => (libc::SIGSEGV, SI_KERNEL),
        };
        let addr = if matches!(vector, 0 | 6 | 16 | 19) { rip } else { 0 };
        Ok(Event::Signal { signo, code, addr })
    }
}

impl KvmContext {
    /// A call into the legacy vsyscall page (its fetch faulted: nothing is mapped
    /// there), emulated as Linux does: the call's syscall, then a return to the
    /// address on the stack.
    fn vsyscall(vm: &Vm, cpu: &mut CpuState) -> Event {
        let mut ret = [0u8; 8];
        match (guest::vsyscall(cpu.regs.rip), vm.read_user(cpu.regs.rsp, &mut ret)) {
            (Some(nr), Some(())) => {
                (cpu.regs.rip, cpu.regs.rsp) = (u64::from_le_bytes(ret), cpu.regs.rsp.wrapping_add(8));
                (cpu.regs.orig_rax, cpu.regs.rax) = (nr, nr);
                cpu.compat_syscall = Some(false);
                Event::Syscall
            }
            _ => Event::Fault { addr: cpu.regs.rip, signo: libc::SIGSEGV, code: 1 },
        }
    }
}

impl Context for KvmContext {
    fn switch(&mut self, aspace: &Arc<dyn AddressSpace>, cpu: &mut CpuState) -> Result<Event> {
        let vm_of = aspace.clone();
        let vm = Self::vm(&vm_of);
        let kick = self.kick.clone();
        let shared = self.shared.clone();
        let (vcpu, reused) = self.bind(aspace)?;
        vm.flush()?;
        // A thread starts with the FP state it is given (clone), or in the initial
        // state (exec), not with what a vCPU's last thread left.
        let fp = cpu.fpstate.take().or_else(|| reused.then(initial_fpstate));
        if let Some(fp) = fp {
            let mut x = kvm_xsave::default();
            for (k, w) in fp.chunks_exact(4).take(x.region.len()).enumerate() {
                x.region[k] = u32::from_ne_bytes(w.try_into().expect("4 bytes"));
            }
            // SAFETY: a plain 4 KiB XSAVE area, as KVM_SET_XSAVE takes.
            unsafe { vcpu.fd.set_xsave(&x) }.map_err(|e| kvm_err("KVM_SET_XSAVE", e))?;
        }
        if cpu.regs.fs_base != vcpu.fs_base || cpu.regs.gs_base != vcpu.gs_base {
            set_msrs(&vcpu.fd, &[(guest::MSR_FS_BASE, cpu.regs.fs_base), (guest::MSR_GS_BASE, cpu.regs.gs_base)])?;
            (vcpu.fs_base, vcpu.gs_base) = (cpu.regs.fs_base, cpu.regs.gs_base);
        }
        vcpu.use_code_segment(cpu.regs.cs)?;
        vcpu.fd.sync_regs_mut().regs = to_kvm(&cpu.regs);
        vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
        let began = own_cpu_ns();
        kick.run_began_ns.store(began, Ordering::Release);
        let exit = match vcpu.fd.run() {
            Ok(VcpuExit::IoOut(port, _)) => Ok(Some(port)),
            Ok(VcpuExit::Intr) => Ok(None),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Ok(None),
            Ok(VcpuExit::IoIn(..)) | Ok(VcpuExit::Hlt) => Ok(Some(0)),
            Ok(other) => Err(PlatformError::Unsupported(format!("unexpected VM exit {other:?}"))),
            Err(e) => Err(kvm_err("KVM_RUN", e)),
        };
        kick.banked_ns.fetch_add(own_cpu_ns().saturating_sub(began), Ordering::AcqRel);
        kick.run_began_ns.store(0, Ordering::Release);
        vcpu.fd.clear_sync_dirty_reg(SyncReg::Register);
        let regs = vcpu.fd.sync_regs();
        (vcpu.fs_base, vcpu.gs_base) = (regs.sregs.fs.base, regs.sregs.gs.base);
        (cpu.regs.fs_base, cpu.regs.gs_base) = (vcpu.fs_base, vcpu.gs_base);
        // What the app runs in (an exception's frame says otherwise, below).
        vcpu.cs = regs.sregs.cs.selector;
        cpu.regs.cs = u64::from(guest::user_code_segment(u64::from(vcpu.cs)).0);
        let port = match exit? {
            Some(port) => port,
            None => {
                consume_kick();
                // A kick can land between a `syscall` or an exception and the entry
                // page's `out`: the event happened all the same.
                match guest::port_at(regs.regs.rip) {
                    Some(port) => port,
                    None => {
                        from_kvm(&regs.regs, &mut cpu.regs);
                        return Ok(Event::Interrupted);
                    }
                }
            }
        };
        match port {
            guest::SYSCALL_PORT if guest::port_at(regs.regs.rip) == Some(port) => {
                // A `syscall` from a 32-bit code segment (the app may far-jump to
                // Linux's user CS32) arrives in PVM's ring 0 (CS from STAR): the app
                // must not go on there. Back to 64-bit ring 3; the kernel answers a
                // 32-bit syscall as Linux without IA32 emulation does (#GP).
                let compat = regs.sregs.cs.selector != guest::USER_CS;
                if compat {
                    vcpu.reset_user_mode(&shared, vm, regs.sregs.fs.base, regs.sregs.gs.base)?;
                }
                from_kvm(&regs.regs, &mut cpu.regs);
                // `syscall` left the return address in rcx and the flags in r11.
                (cpu.regs.rip, cpu.regs.eflags, cpu.regs.orig_rax) = (regs.regs.rcx, regs.regs.r11, regs.regs.rax);
                cpu.compat_syscall = Some(compat);
                Ok(Event::Syscall)
            }
            port if (guest::EXCEPTION_PORT..guest::EXCEPTION_PORT + 32).contains(&port) => Self::exception(vm, vcpu, port, cpu),
            _ => {
                from_kvm(&regs.regs, &mut cpu.regs);
                complete_io(vcpu)?;
                Ok(general_protection())
            }
        }
    }

    fn sync(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<()> {
        Self::vm(aspace).flush()
    }

    /// The vCPU is taken at the new thread's first switch; a VM out of vCPU slots
    /// refuses here, so that clone fails with EAGAIN rather than the thread dying.
    fn new_thread(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<ThreadSeed> {
        let slots = lock(&Self::vm(aspace).vcpus);
        if slots.created >= guest::MAX_VCPUS && slots.free.is_empty() {
            return Err(PlatformError::Unsupported("too many threads in one address space".into()));
        }
        Ok(ThreadSeed(Box::new(())))
    }

    fn fpstate(&mut self) -> Result<Vec<u8>> {
        let size = self.shared.xsave_size;
        let (_, vcpu) = self.bound.as_ref().ok_or_else(|| PlatformError::Unsupported("context runs no thread".into()))?;
        let x = vcpu.fd.get_xsave().map_err(|e| kvm_err("KVM_GET_XSAVE", e))?;
        let mut img: Vec<u8> = x.region.iter().flat_map(|w| w.to_ne_bytes()).collect();
        img.truncate(size);
        Ok(img)
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.kick.clone()
    }

    fn release(&mut self) {
        if let Some((aspace, vcpu)) = self.bound.take() {
            lock(&Self::vm(&aspace).vcpus).free.push(vcpu);
        }
        self.kick.tid.store(0, Ordering::Release);
    }
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        self.release();
    }
}

//! Switch round trips on a platform: `cargo run --release --example roundtrip -- systrap 20000`.
use rvisor_platform::{by_name, CpuState, Perms};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "systrap".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20000);
    let faults = args.next().as_deref() == Some("faults");
    // SAFETY: a private 1 MiB memfd mapping for the code.
    let (fd, mem) = unsafe {
        let fd = libc::memfd_create(c"bench".as_ptr(), 0);
        libc::ftruncate(fd, 1 << 20);
        let p = libc::mmap(std::ptr::null_mut(), 1 << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        (fd, p as *mut u8)
    };
    // mov eax, 110; syscall; jmp back
    let code: &[u8] = if faults {
        // 0x400000: mov byte [rbx], al; add rbx, 4096; jmp 0x400000
        &[0x88, 0x03, 0x48, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00, 0xeb, 0xf5]
    } else {
        &[0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]
    };
    // SAFETY: writing into our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mem, code.len()) };
    let p = by_name(&name, fd).unwrap();
    let aspace = p.new_address_space().unwrap();
    let mut ctx = p.new_context();
    aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    cpu.regs.rbx = 0x1000_0000;
    let mut next_page = 0u64;
    let mut step = |ctx: &mut Box<dyn rvisor_platform::Context>, cpu: &mut CpuState| {
        if let rvisor_platform::Event::Fault { addr, .. } = ctx.switch(&aspace, cpu).unwrap() {
            // Map a fresh page of the file (wrapping in its second half).
            aspace.map(addr & !0xfff, 4096, (1 << 19) + (next_page % 64) * 4096, Perms { read: true, write: true, exec: false });
            next_page += 1;
        }
    };
    for _ in 0..1000 {
        step(&mut ctx, &mut cpu);
    }
    let mut samples = Vec::with_capacity(n as usize);
    let t0 = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        step(&mut ctx, &mut cpu);
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let total = t0.elapsed();
    samples.sort();
    println!(
        "{name}{}: {:.2} µs/round trip avg, p50 {:.2} p90 {:.2} p99 {:.2}",
        if faults { " faults" } else { "" },
        total.as_nanos() as f64 / n as f64 / 1000.0,
        samples[samples.len() / 2] as f64 / 1000.0,
        samples[samples.len() * 9 / 10] as f64 / 1000.0,
        samples[samples.len() * 99 / 100] as f64 / 1000.0
    );
}

//! Address-space creation: `cargo run --release --example spawn -- systrap 50`.
use rvisor_platform::{by_name, CpuState, Perms};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "systrap".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(50);
    // SAFETY: a private 1 MiB memfd mapping for the code.
    let (fd, mem) = unsafe {
        let fd = libc::memfd_create(c"bench".as_ptr(), 0);
        libc::ftruncate(fd, 1 << 20);
        let p = libc::mmap(std::ptr::null_mut(), 1 << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        (fd, p as *mut u8)
    };
    let code: &[u8] = &[0xb8, 110, 0, 0, 0, 0x0f, 0x05];
    // SAFETY: writing into our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mem, code.len()) };
    let p = by_name(&name, fd).unwrap();
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let aspace = p.new_address_space().unwrap();
        let t1 = t.elapsed();
        let mut ctx = p.new_context();
        aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
        let mut cpu = CpuState::default();
        cpu.regs.rip = 0x400000;
        ctx.switch(&aspace, &mut cpu).unwrap();
        let t2 = t.elapsed();
        drop(ctx);
        drop(aspace);
        let t3 = t.elapsed();
        times.push((t1, t2, t3));
    }
    times.sort_by_key(|t| t.2);
    let m = times[times.len() / 2];
    println!("{name}: median new_address_space {:?}, first event {:?}, dropped {:?}", m.0, m.1, m.2);
}

//! Host footprint of application memory: untouched memory costs nothing, released memory is
//! given back at once (munmap, MADV_DONTNEED), and a program that keeps allocating and
//! freeing stays bounded. Measured on the memory file (see `sandbox_memory_bytes`) between
//! the steps of programs that wait on stdin; natively the same programs are checked with
//! RssAnon so the programs themselves are known to do what they claim.

mod common;

use common::*;

const PAGE: u64 = 4096;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// How a run's footprint is measured.
fn footprint(native: bool, pid: libc::pid_t) -> Result<u64, String> {
    if native {
        native_anon_bytes(pid)
    } else {
        sandbox_memory_bytes(pid)
    }
}

/// Drives `bigmap MODE`: mapped -> touched 10 pages -> released, measuring at each step.
fn bigmap(test: &str, mode: &'static str) {
    let drive = |native: bool, mut p: Interactive| -> Result<(), String> {
        let who = if native {
            "native RssAnon"
        } else {
            "memory file"
        };
        p.expect_line("mapped")?;
        let mapped = footprint(native, p.pid())?;
        p.send_line()?;
        p.expect_line("touched 10 pages")?;
        let touched = footprint(native, p.pid())?;
        p.send_line()?;
        p.expect_line("released")?;
        let released = footprint(native, p.pid())?;
        p.send_line()?;
        if mode == "dontneed" {
            p.expect_line("zero after dontneed: yes")?;
        }
        p.expect_line("done")?;
        let o = p.finish();
        let grew = touched.saturating_sub(mapped);
        eprintln!(
            "{who}: mapped {mapped} B, touched {touched} B (+{} pages), released {released} B",
            grew / PAGE
        );
        all([
            sane(&o),
            expect_status(&o, 0),
            // ~10 pages: at least the 10 touched, at most a little slack, never the GiB
            // (nor 2 MiB per touch).
            if (10 * PAGE..=32 * PAGE).contains(&grew) {
                Ok(())
            } else {
                Err(format!(
                    "{who}: touching 10 pages of a 1 GiB mapping grew it by {grew} bytes ({} pages); want 10..=32 pages \
                     (mapped {mapped}, touched {touched})",
                    grew / PAGE
                ))
            },
            if released <= mapped + 8 * PAGE {
                Ok(())
            } else {
                Err(format!(
                    "{who}: after {mode} it is {released} bytes, was {mapped} before touching: not given back \
                     ({} pages kept)",
                    released.saturating_sub(mapped) / PAGE
                ))
            },
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    };
    matrix(test, LINKS, |v| {
        let bin = compile("bigmap", v.link);
        let spec = Spec::args([mode]);
        if let Err(e) = drive(true, Interactive::spawn(native_command(&bin, &spec))) {
            panic!("native run of bigmap {mode} fails, so the test program is wrong:\n{e}");
        }
        drive(
            false,
            Interactive::spawn(sandbox_command(v.platform, &[], &bin, &spec)),
        )
    });
}

#[test]
fn bigmap_munmap() {
    bigmap("bigmap_munmap", "munmap");
}

#[test]
fn bigmap_dontneed() {
    bigmap("bigmap_dontneed", "dontneed");
}

/// 20 x (malloc 2 GiB, touch one byte per MiB, free): the host footprint at the end is back
/// near where it started, and the peak resident size stays far below what was allocated.
#[test]
fn alloc_loop_footprint() {
    let drive = |native: bool, mut p: Interactive| -> Result<(), String> {
        let who = if native {
            "native RssAnon"
        } else {
            "memory file"
        };
        p.expect_line("ready")?;
        let before = footprint(native, p.pid())?;
        p.send_line()?;
        p.expect_line("done 20 x 2 GiB")?;
        let after = footprint(native, p.pid())?;
        let o = p.finish();
        eprintln!(
            "{who}: before {before} B, after {after} B, peak RSS {} KiB",
            o.maxrss_kib
        );
        // One iteration touches 2048 pages (8 MiB); 20 leaked iterations would be 160 MiB.
        let peak_limit_kib = 512 * 1024;
        all([
            sane(&o),
            expect_status(&o, 0),
            if after <= before + 16 * MIB {
                Ok(())
            } else {
                Err(format!("{who}: {before} bytes before the loop, {after} after: freed memory was not given back"))
            },
            if o.maxrss_kib <= peak_limit_kib {
                Ok(())
            } else {
                Err(format!("peak RSS of the run (largest process) {} KiB > {peak_limit_kib} KiB", o.maxrss_kib))
            },
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    };
    matrix("alloc_loop_footprint", LINKS, |v| {
        let bin = compile("alloc_loop", v.link);
        if let Err(e) = drive(
            true,
            Interactive::spawn(native_command(&bin, &Spec::default())),
        ) {
            panic!("native run of alloc_loop fails, so the test program is wrong:\n{e}");
        }
        drive(
            false,
            Interactive::spawn(sandbox_command(v.platform, &[], &bin, &Spec::default())),
        )
    });
}

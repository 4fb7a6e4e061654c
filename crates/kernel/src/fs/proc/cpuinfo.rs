//! /proc/cpuinfo, synthesized from CPUID (the kernel opens no host path, so it
//! cannot copy the host's file). The feature flags use Linux's names, in Linux's
//! order of CPUID words; flags Linux derives from other sources than CPUID are
//! left out, except constant_tsc and nonstop_tsc.

use rvisor_platform::hostcall::cpuid;
use std::fmt::Write as _;

/// Linux's flag names for the bits of one CPUID register.
type Names = &'static [(u32, &'static str)];

/// Leaf 1, EDX (word 0).
const L1_EDX: Names = &[
    (0, "fpu"), (1, "vme"), (2, "de"), (3, "pse"), (4, "tsc"), (5, "msr"), (6, "pae"), (7, "mce"), (8, "cx8"), (9, "apic"), (11, "sep"),
    (12, "mtrr"), (13, "pge"), (14, "mca"), (15, "cmov"), (16, "pat"), (17, "pse36"), (18, "pn"), (19, "clflush"), (21, "dts"), (22, "acpi"),
    (23, "mmx"), (24, "fxsr"), (25, "sse"), (26, "sse2"), (27, "ss"), (28, "ht"), (29, "tm"), (30, "ia64"), (31, "pbe"),
];
/// Leaf 0x80000001, EDX (word 1).
const X1_EDX: Names = &[(11, "syscall"), (19, "mp"), (20, "nx"), (22, "mmxext"), (25, "fxsr_opt"), (26, "pdpe1gb"), (27, "rdtscp"), (29, "lm"), (30, "3dnowext"), (31, "3dnow")];
/// Leaf 1, ECX (word 4).
const L1_ECX: Names = &[
    (0, "pni"), (1, "pclmulqdq"), (2, "dtes64"), (3, "monitor"), (4, "ds_cpl"), (5, "vmx"), (6, "smx"), (7, "est"), (8, "tm2"), (9, "ssse3"),
    (10, "cid"), (11, "sdbg"), (12, "fma"), (13, "cx16"), (14, "xtpr"), (15, "pdcm"), (17, "pcid"), (18, "dca"), (19, "sse4_1"), (20, "sse4_2"),
    (21, "x2apic"), (22, "movbe"), (23, "popcnt"), (24, "tsc_deadline_timer"), (25, "aes"), (26, "xsave"), (28, "avx"), (29, "f16c"),
    (30, "rdrand"), (31, "hypervisor"),
];
/// Leaf 0x80000001, ECX (word 6).
const X1_ECX: Names = &[
    (0, "lahf_lm"), (1, "cmp_legacy"), (2, "svm"), (3, "extapic"), (4, "cr8_legacy"), (5, "abm"), (6, "sse4a"), (7, "misalignsse"),
    (8, "3dnowprefetch"), (9, "osvw"), (10, "ibs"), (11, "xop"), (12, "skinit"), (13, "wdt"), (15, "lwp"), (16, "fma4"), (17, "tce"),
    (19, "nodeid_msr"), (21, "tbm"), (22, "topoext"), (23, "perfctr_core"), (24, "perfctr_nb"), (26, "bpext"), (27, "ptsc"),
    (28, "perfctr_llc"), (29, "mwaitx"),
];
/// Leaf 7.0, EBX (word 9).
const L7_EBX: Names = &[
    (0, "fsgsbase"), (1, "tsc_adjust"), (2, "sgx"), (3, "bmi1"), (4, "hle"), (5, "avx2"), (7, "smep"), (8, "bmi2"), (9, "erms"),
    (10, "invpcid"), (11, "rtm"), (12, "cqm"), (14, "mpx"), (15, "rdt_a"), (16, "avx512f"), (17, "avx512dq"), (18, "rdseed"), (19, "adx"),
    (20, "smap"), (21, "avx512ifma"), (23, "clflushopt"), (24, "clwb"), (25, "intel_pt"), (26, "avx512pf"), (27, "avx512er"),
    (28, "avx512cd"), (29, "sha_ni"), (30, "avx512bw"), (31, "avx512vl"),
];
/// Leaf 0xd.1, EAX (word 10).
const LD1_EAX: Names = &[(0, "xsaveopt"), (1, "xsavec"), (2, "xgetbv1"), (3, "xsaves")];
/// Leaf 7.0, ECX (word 16).
const L7_ECX: Names = &[
    (1, "avx512vbmi"), (2, "umip"), (3, "pku"), (4, "ospke"), (5, "waitpkg"), (6, "avx512_vbmi2"), (8, "gfni"), (9, "vaes"),
    (10, "vpclmulqdq"), (11, "avx512_vnni"), (12, "avx512_bitalg"), (13, "tme"), (14, "avx512_vpopcntdq"), (16, "la57"), (22, "rdpid"),
    (24, "bus_lock_detect"), (25, "cldemote"), (27, "movdiri"), (28, "movdir64b"), (29, "enqcmd"), (30, "sgx_lc"),
];
/// Leaf 7.0, EDX (word 18).
const L7_EDX: Names = &[
    (2, "avx512_4vnniw"), (3, "avx512_4fmaps"), (4, "fsrm"), (8, "avx512_vp2intersect"), (10, "md_clear"), (14, "serialize"),
    (16, "tsx_ldtrk"), (18, "pconfig"), (19, "arch_lbr"), (20, "ibt"), (22, "amx_bf16"), (23, "avx512_fp16"), (24, "amx_tile"),
    (25, "amx_int8"), (28, "flush_l1d"), (29, "arch_capabilities"),
];

fn names(out: &mut Vec<&'static str>, reg: u32, table: Names) {
    out.extend(table.iter().filter(|&&(bit, _)| reg & (1 << bit) != 0).map(|&(_, n)| n));
}

fn regs_str(regs: &[u32]) -> String {
    let bytes: Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).collect();
    String::from_utf8_lossy(&bytes).trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()
}

/// The facts every processor block repeats.
struct Cpu {
    vendor: String,
    family: u32,
    model: u32,
    stepping: u32,
    brand: String,
    mhz: f64,
    cache_kb: u32,
    level: u32,
    clflush: u32,
    phys_bits: u32,
    virt_bits: u32,
    flags: String,
}

fn probe(tsc_mhz: Option<f64>) -> Cpu {
    let [level, b, c, d] = cpuid(0, 0);
    let vendor = regs_str(&[b, d, c]);
    let [sig, ebx1, ecx1, edx1] = if level >= 1 { cpuid(1, 0) } else { [0; 4] };
    let base_family = (sig >> 8) & 0xf;
    let family = if base_family == 0xf { base_family + ((sig >> 20) & 0xff) } else { base_family };
    let model = if family >= 6 { ((sig >> 4) & 0xf) | (((sig >> 16) & 0xf) << 4) } else { (sig >> 4) & 0xf };
    let max_ext = cpuid(0x8000_0000, 0)[0];
    let brand = if max_ext >= 0x8000_0004 {
        let r: Vec<u32> = (0x8000_0002..=0x8000_0004).flat_map(|l| cpuid(l, 0)).collect();
        regs_str(&r)
    } else {
        String::new()
    };
    let [ext_ecx, ext_edx] = if max_ext >= 0x8000_0001 {
        let r = cpuid(0x8000_0001, 0);
        [r[2], r[3]]
    } else {
        [0; 2]
    };
    let l7 = if level >= 7 { cpuid(7, 0) } else { [0; 4] };
    let ld1 = if level >= 0xd { cpuid(0xd, 1)[0] } else { 0 };
    let (phys_bits, virt_bits) = if max_ext >= 0x8000_0008 {
        let a = cpuid(0x8000_0008, 0)[0];
        (a & 0xff, (a >> 8) & 0xff)
    } else {
        (36, 48)
    };
    let invariant_tsc = max_ext >= 0x8000_0007 && cpuid(0x8000_0007, 0)[3] & (1 << 8) != 0;

    // The frequency: CPUID's base frequency leaf, else the TSC's (which runs at the
    // base frequency on CPUs with an invariant TSC), else the brand string's "@ x.yzGHz".
    let mut mhz = if level >= 0x16 { cpuid(0x16, 0)[0] as f64 } else { 0.0 };
    if mhz == 0.0 {
        mhz = tsc_mhz.unwrap_or(0.0);
    }
    if mhz == 0.0 {
        if let Some(ghz) = brand.rsplit('@').next().and_then(|s| s.trim().strip_suffix("GHz")).and_then(|s| s.trim().parse::<f64>().ok()) {
            mhz = ghz * 1000.0;
        }
    }

    let cache_kb = cache_size_kb(&vendor, level, max_ext);

    let mut f = Vec::new();
    names(&mut f, edx1, L1_EDX);
    names(&mut f, ext_edx, X1_EDX);
    if invariant_tsc {
        f.extend(["constant_tsc", "nonstop_tsc"]);
    }
    names(&mut f, ecx1, L1_ECX);
    names(&mut f, ext_ecx, X1_ECX);
    names(&mut f, l7[1], L7_EBX);
    names(&mut f, ld1, LD1_EAX);
    names(&mut f, l7[2], L7_ECX);
    names(&mut f, l7[3], L7_EDX);

    Cpu {
        vendor,
        family,
        model,
        stepping: sig & 0xf,
        brand,
        mhz,
        cache_kb,
        level,
        clflush: ((ebx1 >> 8) & 0xff) * 8,
        phys_bits,
        virt_bits,
        flags: f.join(" "),
    }
}

/// "cache size" as Linux computes it: Intel's largest cache (leaf 4), else the L2
/// size of leaf 0x80000006.
fn cache_size_kb(vendor: &str, level: u32, max_ext: u32) -> u32 {
    if vendor == "GenuineIntel" && level >= 4 {
        let mut best = 0u64;
        for sub in 0..16 {
            let [a, b, c, _] = cpuid(4, sub);
            if a & 0x1f == 0 {
                break;
            }
            let ways = ((b >> 22) & 0x3ff) as u64 + 1;
            let parts = ((b >> 12) & 0x3ff) as u64 + 1;
            let line = (b & 0xfff) as u64 + 1;
            let sets = c as u64 + 1;
            best = best.max(ways * parts * line * sets);
        }
        return (best / 1024) as u32;
    }
    if max_ext >= 0x8000_0006 {
        // As Linux reports it for AMD and others: the L2 size.
        return cpuid(0x8000_0006, 0)[2] >> 16;
    }
    0
}

/// The whole file for `cpus` processors; `tsc_mhz` is the calibrated TSC
/// frequency, if known.
pub(super) fn text(cpus: usize, tsc_mhz: Option<f64>) -> String {
    let c = probe(tsc_mhz);
    let n = cpus.max(1);
    let mut s = String::new();
    for i in 0..n {
        let _ = write!(
            s,
            "processor\t: {i}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\nmodel name\t: {}\nstepping\t: {}\n\
             cpu MHz\t\t: {:.3}\ncache size\t: {} KB\nphysical id\t: 0\nsiblings\t: {n}\ncore id\t\t: {i}\ncpu cores\t: {n}\n\
             apicid\t\t: {i}\ninitial apicid\t: {i}\nfpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: {}\nwp\t\t: yes\n\
             flags\t\t: {}\nbugs\t\t:\nbogomips\t: {:.2}\nclflush size\t: {}\ncache_alignment\t: {}\n\
             address sizes\t: {} bits physical, {} bits virtual\npower management:\n\n",
            c.vendor, c.family, c.model, c.brand, c.stepping, c.mhz, c.cache_kb, c.level, c.flags, c.mhz * 2.0, c.clflush, c.clflush,
            c.phys_bits, c.virt_bits
        );
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_the_basics() {
        let t = super::text(2, Some(1000.0));
        assert_eq!(t.matches("processor\t: ").count(), 2);
        assert!(t.contains("vendor_id\t: "));
        let flags = t.lines().find(|l| l.starts_with("flags")).unwrap();
        // Every x86-64 CPU has these.
        for f in [" fpu ", " sse2 ", " lm "] {
            assert!(format!("{flags} ").contains(f), "{flags}");
        }
    }
}

//! The embedded image is a vDSO the dynamic linkers accept: an ELF shared object
//! with the kernel's soname and version node, no relocations, one read+exec
//! segment from the ELF header, and glibc's own symbol lookup finds every function.

use goblin::elf::program_header::{PF_R, PF_X, PT_LOAD};
use goblin::elf::Elf;
use rvisor_vdso::{symbols, IMAGE, IMAGE_PAGES, PAGE_SIZE};
use std::ffi::CString;

const EXPORTS: [(&str, &str, u64); 5] = [
    (
        "__vdso_clock_gettime",
        "clock_gettime",
        symbols::CLOCK_GETTIME,
    ),
    ("__vdso_gettimeofday", "gettimeofday", symbols::GETTIMEOFDAY),
    ("__vdso_time", "time", symbols::TIME),
    ("__vdso_clock_getres", "clock_getres", symbols::CLOCK_GETRES),
    ("__vdso_getcpu", "getcpu", symbols::GETCPU),
];

#[test]
fn image_is_a_small_relocation_free_shared_object() {
    let elf = Elf::parse(IMAGE).unwrap();
    assert_eq!(elf.header.e_type, goblin::elf::header::ET_DYN);
    assert_eq!(elf.header.e_machine, goblin::elf::header::EM_X86_64);
    assert_eq!(elf.soname, Some("linux-vdso.so.1"));
    assert!(elf.libraries.is_empty(), "needs {:?}", elf.libraries);
    assert!(elf.dynrelas.is_empty() && elf.dynrels.is_empty() && elf.pltrelocs.is_empty());
    assert!(
        IMAGE.len() <= 2 * PAGE_SIZE,
        "image is {} bytes",
        IMAGE.len()
    );
    assert_eq!(IMAGE_PAGES, IMAGE.len().div_ceil(PAGE_SIZE));

    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    assert_eq!(loads.len(), 1);
    assert_eq!((loads[0].p_offset, loads[0].p_vaddr), (0, 0));
    assert_eq!(loads[0].p_flags, PF_R | PF_X);
    assert!(loads[0].p_memsz as usize <= IMAGE_PAGES * PAGE_SIZE);

    // glibc and Go look symbols up through either hash table; musl through DT_HASH.
    let dyns = &elf.dynamic.as_ref().unwrap().dyns;
    for tag in [
        goblin::elf::dynamic::DT_HASH,
        goblin::elf::dynamic::DT_GNU_HASH,
    ] {
        assert!(
            dyns.iter().any(|d| d.d_tag == tag),
            "missing dynamic tag {tag:#x}"
        );
    }
}

#[test]
fn every_function_is_exported_as_linux_2_6() {
    let elf = Elf::parse(IMAGE).unwrap();
    let verdef = elf.verdef.as_ref().unwrap();
    let versym = elf.versym.as_ref().unwrap();
    let version_name = |ndx: u16| {
        verdef
            .iter()
            .find(|d| d.vd_ndx == ndx)
            .and_then(|d| d.iter().next())
            .and_then(|a| elf.dynstrtab.get_at(a.vda_name))
    };
    for (prefixed, plain, offset) in EXPORTS {
        for name in [prefixed, plain] {
            let (i, sym) = elf
                .dynsyms
                .iter()
                .enumerate()
                .find(|(_, s)| elf.dynstrtab.get_at(s.st_name) == Some(name))
                .unwrap_or_else(|| panic!("{name} not exported"));
            assert!(sym.is_function(), "{name}");
            assert_eq!(sym.st_value, offset, "{name}");
            let v = versym.get_at(i).unwrap();
            assert!(!v.is_hidden(), "{name} is not the default version");
            assert_eq!(version_name(v.vs_val & 0x7fff), Some("LINUX_2.6"), "{name}");
            let bind = sym.st_bind();
            let want = if name == prefixed {
                goblin::elf::sym::STB_GLOBAL
            } else {
                goblin::elf::sym::STB_WEAK
            };
            assert_eq!(bind, want, "{name}");
        }
    }
}

/// glibc's versioned lookup (the one `dl_vdso_vsym` uses, hash tables and all)
/// finds every symbol, at the offset lib.rs announces. The image is only looked
/// at, never called: without its parameter page below it, it must not run.
#[test]
fn glibc_finds_the_symbols() {
    let dir = std::env::temp_dir().join(format!("rvisor-vdso-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vdso.so");
    std::fs::write(&path, IMAGE).unwrap();
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: the image has no constructors, relocations or dependencies, so
    // loading it runs none of its code.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen: {:?}", unsafe {
        std::ffi::CStr::from_ptr(libc::dlerror())
    });

    let mut base = None;
    for (prefixed, plain, offset) in EXPORTS {
        for name in [prefixed, plain] {
            let cname = CString::new(name).unwrap();
            // SAFETY: looking up a symbol in a live handle with NUL-terminated strings.
            let addr = unsafe { libc::dlvsym(handle, cname.as_ptr(), c"LINUX_2.6".as_ptr()) };
            assert!(!addr.is_null(), "dlvsym({name}, LINUX_2.6) failed");
            let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
            // SAFETY: dladdr fills `info` for an address inside a loaded object.
            assert_ne!(unsafe { libc::dladdr(addr, &mut info) }, 0);
            let b = info.dli_fbase as u64;
            assert_eq!(*base.get_or_insert(b), b);
            assert_eq!(addr as u64 - b, offset, "{name}");
            // An unknown version is not found.
            // SAFETY: as above.
            let other = unsafe { libc::dlvsym(handle, cname.as_ptr(), c"LINUX_9.9".as_ptr()) };
            assert!(other.is_null(), "{name}@LINUX_9.9 found");
        }
    }
    // SAFETY: nothing from the handle is used after this.
    unsafe { libc::dlclose(handle) };
    std::fs::remove_dir_all(&dir).ok();
}

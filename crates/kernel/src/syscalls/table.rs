//! The syscall table macro: one declarative list from which come the dispatcher
//! (registers decoded into typed handler arguments), the `--strace` decoder, and
//! the support-status listing of `rvisor syscalls`.

/// How completely a syscall is implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Supported,
    Partial(&'static str),
    Missing(&'static str),
}

pub struct SyscallInfo {
    pub nr: u32,
    pub name: &'static str,
    pub status: Status,
}

/// `syscall_table! { name(arg: Type, ...) => Supported; ... }`. Each entry calls
/// `sys_<name>(task, args...)`, except `Missing` entries, which answer ENOSYS.
macro_rules! syscall_table {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) => $status:ident $(($note:literal))? ; )*) => {
        paste::paste! {
            /// Runs the handler for `nr`, or `None` if the table has no entry.
            pub(crate) fn dispatch(t: &mut $crate::task::Task, nr: u64, a: [u64; 6]) -> Option<rvisor_abi::SysResult<u64>> {
                let nr = u32::try_from(nr).ok()?;
                #[allow(unused_mut, unused_variables)]
                let mut regs = a.into_iter();
                match nr {
                    $( rvisor_abi::nr::[<__NR_ $name>] => Some(syscall_table!(@call $status, t, regs, $name, $($ty),*)), )*
                    _ => None,
                }
            }

            /// `name(arg, ...)` with each argument decoded by its type.
            pub(crate) fn strace_call(t: &$crate::task::Task, nr: u64, a: [u64; 6]) -> Option<String> {
                #[allow(unused_mut, unused_variables)]
                let mut regs = a.into_iter();
                match u32::try_from(nr).ok()? {
                    $( rvisor_abi::nr::[<__NR_ $name>] => {
                        let args: Vec<String> = vec![$(
                            <$ty as $crate::syscalls::args::SyscallArg>::strace(regs.next().unwrap_or(0), t)
                        ),*];
                        Some(format!("{}({})", stringify!($name), args.join(", ")))
                    } )*
                    _ => None,
                }
            }

            /// Every syscall the table knows, with its status.
            pub static TABLE: &[$crate::syscalls::table::SyscallInfo] = &[
                $( $crate::syscalls::table::SyscallInfo {
                    nr: rvisor_abi::nr::[<__NR_ $name>],
                    name: stringify!($name),
                    status: $crate::syscalls::table::Status::$status $(($note))?,
                }, )*
            ];
        }
    };
    (@call Missing, $t:ident, $regs:ident, $name:ident, $($ty:ty),*) => {
        Err(rvisor_abi::errno!(ENOSYS))
    };
    (@call $status:ident, $t:ident, $regs:ident, $name:ident, $($ty:ty),*) => {
        paste::paste! {
            [<sys_ $name>]($t, $( <$ty as $crate::syscalls::args::SyscallArg>::from_arg($regs.next().unwrap_or(0)) ),*)
                .map($crate::syscalls::args::IntoSyscallReturn::into_ret)
        }
    };
}

pub(crate) use syscall_table;

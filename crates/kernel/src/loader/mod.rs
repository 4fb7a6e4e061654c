//! Loading a program image into a fresh address space: the ELF segments, the
//! initial stack with argv, envp and the auxiliary vector, and the layout.

mod elf;
mod stack;

pub use elf::{check, load, ExecError, Image, LoadedImage, IMAGE_HEAD};

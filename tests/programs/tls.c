// Thread-local storage and the start-up calls glibc makes: arch_prctl, set_tid_address,
// set_robust_list; an unknown system call gives ENOSYS.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

static __thread int tls_init = 42;
static __thread int tls_zero;

int main(void) {
    check("initialised TLS variable", tls_init == 42);
    check("zeroed TLS variable", tls_zero == 0);
    tls_zero = 7;
    check("TLS variable writable", tls_zero == 7);

    unsigned long fs = 0;
    check("arch_prctl(ARCH_GET_FS)", syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) == 0);
    check("FS base == pthread_self()", fs == (uintptr_t)pthread_self());
    unsigned long self;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    check("%fs:0 points to the TCB itself", self == fs);
    check("arch_prctl(ARCH_SET_FS) to the same base", syscall(SYS_arch_prctl, ARCH_SET_FS, fs) == 0);
    check("TLS still works after ARCH_SET_FS", tls_init == 42 && tls_zero == 7);
    unsigned long gs = 1;
    check("arch_prctl(ARCH_GET_GS)", syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) == 0);
    check("GS base is 0", gs == 0);
    check("arch_prctl(bad code) -> EINVAL", syscall(SYS_arch_prctl, 0x9999, 0) == -1 && errno == EINVAL);
    check("arch_prctl(ARCH_GET_FS, bad pointer) -> EFAULT", syscall(SYS_arch_prctl, ARCH_GET_FS, (void *)1) == -1 && errno == EFAULT);

    int tid_word = 0;
    check("set_tid_address returns the tid", syscall(SYS_set_tid_address, &tid_word) == gettid());
    static struct robust_list_head head = {{&head.list}, 0, NULL};
    check("set_robust_list", syscall(SYS_set_robust_list, &head, sizeof head) == 0);
    check("set_robust_list bad size -> EINVAL", syscall(SYS_set_robust_list, &head, sizeof head + 1) == -1 && errno == EINVAL);

    check("syscall 1000 -> ENOSYS", syscall(1000) == -1 && errno == ENOSYS);
    check("syscall -1 -> ENOSYS", syscall(-1L) == -1 && errno == ENOSYS);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}

// Attacks on the kvm platform from inside the sandbox. Run it only under
// `rvisor do --platform=kvm`: it relies on the guest's layout (the upper half the
// platform maps into every address space), and natively its raw syscalls would really
// create the directory and kill the victim.
//
//   kvm_escape MKDIR_PATH VICTIM_PID
//
// The upper half holds the IDT (supervisor-only) at KBASE, the entry page (the
// `syscall` entry, then one exception handler per vector, 16 bytes apart; readable and
// executable by ring 3) at KBASE+0x1000, and per vCPU its GDT/TSS page and its
// exception stack at KBASE+0x100000. Every step prints what the Sentry answered; the
// harness checks the host: MKDIR_PATH must not exist, the victim must be alive.
// Last, a child leaves an odd MXCSR behind and exits, and the program execs itself
// (`kvm_escape mxcsr`): the new image, which may run on the child's reused vCPU, must
// start with the initial MXCSR.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sys/wait.h>
#include <unistd.h>

#define KBASE 0xffffff8000000000UL
#define ENTRY (KBASE + 0x1000)
#define HANDLER(v) (ENTRY + 0x100 + 16 * (v))
#define VCPU0 (KBASE + 0x100000)

static const char *dir;
static long victim;
static sigjmp_buf back;
static volatile int got_sig, got_code;

static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    siglongjmp(back, 1);
}

// Runs `f`; prints how it ended: its result, or the signal that stopped it.
static void attempt(const char *what, long (*f)(void)) {
    got_sig = 0;
    if (sigsetjmp(back, 1) == 0) {
        long r = f();
        printf("%s: returned %ld\n", what, r);
    } else {
        printf("%s: signal %d code %d\n", what, got_sig, got_code);
    }
}

// A syscall made by jumping straight to the entry page's `out` instead of `syscall`:
// rcx holds the return address, as `syscall` would leave it.
static long entry_call(long nr, long a, long b) {
    long r;
    __asm__ volatile("lea 1f(%%rip), %%rcx\n"
                     "jmp *%[entry]\n"
                     "1:\n"
                     : "=a"(r)
                     : "a"(nr), "D"(a), "S"(b), [entry] "r"(ENTRY)
                     : "rcx", "r11", "memory");
    return r;
}

static long via_entry_getpid(void) { return entry_call(SYS_getpid, 0, 0); }
static long via_entry_mkdir(void) { return entry_call(SYS_mkdir, (long)dir, 0700); }
static long via_entry_kill(void) { return entry_call(SYS_kill, victim, SIGKILL); }

// The `out` the entry page makes, from app code: the exit's address is not the entry's.
static long raw_out(void) {
    __asm__ volatile("mov %0, %%rdi\n"
                     "mov $0700, %%esi\n"
                     "mov %1, %%eax\n"
                     "out %%al, $0x10\n"
                     :
                     : "r"((long)dir), "i"(SYS_mkdir)
                     : "rax", "rdi", "rsi", "memory");
    return 0;
}

static long raw_in(void) {
    unsigned char v;
    __asm__ volatile("in $0x10, %0" : "=a"(v));
    return v;
}

// A forged page-fault report: the handler's `out` on a stack the app chose.
static long forged_fault(void) {
    static uint64_t fake[16];
    __asm__ volatile("mov %%rsp, %%rbx\n"
                     "lea 64(%0), %%rsp\n"
                     "jmp *%1\n"
                     :
                     : "r"(fake), "r"(HANDLER(14))
                     : "rbx", "memory");
    return 0;
}

static long read_idt(void) { return *(volatile long *)KBASE; }
static long read_gdt(void) { return *(volatile long *)VCPU0; }
static long write_entry(void) {
    *(volatile char *)ENTRY = 0x90;
    return 0;
}
static long halt(void) {
    __asm__ volatile("hlt");
    return 0;
}
static long int80(void) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(39L) : "memory");
    return r;
}

// A `syscall` from a 32-bit code segment: PVM enters it in ring 0 (CS from STAR); the
// app must not go on there. Linux without IA32 emulation answers with a #GP. The 32-bit
// code (mov eax, 20; syscall; ud2) sits on a page below 4 GiB, wherever the program is.
static long compat_syscall(void) {
    static const unsigned char code32[] = {0xb8, 20, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b};
    void *low = mmap((void *)0x10000000, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (low == MAP_FAILED)
        return -1;
    memcpy(low, code32, sizeof code32);
    __asm__ volatile("pushq $0x23\n"
                     "pushq %0\n"
                     "lretq\n"
                     :
                     : "r"((long)low)
                     : "memory");
    return 0;
}

// Writes garbage over this vCPU's exception stack, then faults: the Sentry still sees
// the real fault (its frame is written by the CPU after the garbage).
static long scribble_stack_then_fault(void) {
    for (int i = 0; i < 512; i++)
        ((volatile uint64_t *)(VCPU0 + 0x1000))[i] = 0x4141414141414141UL;
    return *(volatile long *)8;
}

static unsigned mxcsr(void) {
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "mxcsr") == 0) {
        printf("a new image's MXCSR: %#x\n", mxcsr());
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: kvm_escape MKDIR_PATH VICTIM_PID\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    dir = argv[1];
    victim = atol(argv[2]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD)
            sigaction(s, &sa, NULL);

    attempt("entry getpid", via_entry_getpid);
    attempt("entry mkdir", via_entry_mkdir);
    printf("mkdir in the sandbox: %s\n", access(dir, F_OK) == 0 ? "made" : "absent");
    attempt("entry kill", via_entry_kill);
    attempt("raw out", raw_out);
    attempt("raw in", raw_in);
    attempt("forged fault", forged_fault);
    attempt("read idt", read_idt);
    attempt("read gdt", read_gdt);
    attempt("write entry", write_entry);
    attempt("hlt", halt);
    attempt("int 0x80", int80);
    attempt("32-bit syscall", compat_syscall);
    attempt("scribbled stack", scribble_stack_then_fault);
    void *m = mmap((void *)KBASE, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("mmap over the upper half: %s\n", m == MAP_FAILED ? strerror(errno) : "mapped");
    printf("mprotect of the entry page: %s\n", mprotect((void *)ENTRY, 4096, PROT_READ | PROT_WRITE) ? strerror(errno) : "done");
    printf("getpid: %ld\n", (long)getpid());
    pid_t child = fork();
    if (child == 0) {
        unsigned odd = 0x7f80; /* round toward zero */
        __asm__ volatile("ldmxcsr %0" : : "m"(odd));
        _exit(mxcsr() == odd ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    printf("child set its MXCSR: %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
    execl("/proc/self/exe", argv[0], "mxcsr", (char *)NULL);
    printf("exec: %s\n", strerror(errno));
    return 1;
}

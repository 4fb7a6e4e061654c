// More of prctl: ambient capabilities (raised, kept by exec for a process that
// is not root, dropped with the permitted or inheritable bit), MDWE (no
// writable and executable memory, no memory made executable; inherited unless
// NO_INHERIT, kept by exec), syscall user dispatch (a thread's syscalls from
// outside, or inside, a region become SIGSYS while its selector says BLOCK;
// not inherited), and the small ones: timer slack, the tid address, THP,
// machine-check policy, the auxiliary vector.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_GET_AUXV
#define PR_GET_AUXV 0x41555856
#endif
#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#endif
#define DISPATCH_OFF 0
#define DISPATCH_EXCLUSIVE 1
#define DISPATCH_INCLUSIVE 2

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1 : r, r < 0 ? strerrorname_np(errno) : "");
}

static unsigned long long status_field(const char *name) {
    char line[256];
    unsigned long long v = ~0ULL;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name))) sscanf(line + strlen(name) + 1, "%llx", &v);
    if (f) fclose(f);
    return v;
}

static int capset_sets(uint32_t eff, uint32_t prm, uint32_t inh) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {{eff, prm, inh}, {0, 0, 0}};
    return syscall(SYS_capset, &h, d);
}

#define NET_BIND (1u << CAP_NET_BIND_SERVICE)

static void ambient(char *self) {
    show("ambient NET_BIND_SERVICE set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
    show("raise it, not inheritable", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
    show("a capability past the last", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 64, 0, 0));
    show("a stray argument", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 1, 1, 0));
    show("an unknown operation", prctl(PR_CAP_AMBIENT, 9, 1, 0, 0));
    pid_t p = fork();
    if (p == 0) {
        // As capsh does: keep the permitted set through setuid, then pass
        // one capability on to a program that is not root.
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
        setresuid(1000, 1000, 1000);
        show("capset to NET_BIND_SERVICE", capset_sets(NET_BIND, NET_BIND, NET_BIND));
        show("raise it", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
        show("it is set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
        printf("CapAmb %llx\n", status_field("CapAmb:"));
        execl(self, self, "ambient-exec", NULL);
        _exit(1);
    }
    waitpid(p, NULL, 0);
    p = fork();
    if (p == 0) {
        capset_sets(NET_BIND, NET_BIND, NET_BIND);
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
        capset_sets(NET_BIND, NET_BIND, 0);
        show("after dropping it from the inheritable set, set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
        capset_sets(NET_BIND, NET_BIND, NET_BIND);
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
        show("lower it", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_BIND_SERVICE, 0, 0));
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
        show("clear all", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
        printf("CapAmb %llx\n", status_field("CapAmb:"));
        _exit(0);
    }
    waitpid(p, NULL, 0);
    p = fork();
    if (p == 0) {
        // Giving up root: the ambient set goes, even with PR_SET_KEEPCAPS.
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        syscall(SYS_capget, &h, d);
        d[0].inheritable = NET_BIND;
        syscall(SYS_capset, &h, d);
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
        show("setuid 1000", setresuid(1000, 1000, 1000));
        printf("after it: CapAmb %llx, CapPrm kept %d\n", status_field("CapAmb:"), status_field("CapPrm:") != 0);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

static long mapping(int prot) {
    void *m = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? -1 : 0;
}

static void mdwe(char *self) {
    show("MDWE at first", prctl(PR_GET_MDWE, 0, 0, 0, 0));
    show("MDWE NO_INHERIT alone", prctl(PR_SET_MDWE, 2, 0, 0, 0));
    show("MDWE unknown bits", prctl(PR_SET_MDWE, 4, 0, 0, 0));
    pid_t p = fork();
    if (p == 0) {
        void *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        void *rx = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        show("set MDWE", prctl(PR_SET_MDWE, 1, 0, 0, 0));
        show("MDWE", prctl(PR_GET_MDWE, 0, 0, 0, 0));
        show("map RWX", mapping(PROT_READ | PROT_WRITE | PROT_EXEC));
        show("map RX", mapping(PROT_READ | PROT_EXEC));
        show("mprotect RW to RX", mprotect(rw, 4096, PROT_READ | PROT_EXEC));
        show("mprotect RX to R", mprotect(rx, 4096, PROT_READ));
        show("mprotect R to RX again", mprotect(rx, 4096, PROT_READ | PROT_EXEC));
        show("turn it off", prctl(PR_SET_MDWE, 0, 0, 0, 0));
        pid_t q = fork();
        if (q == 0) {
            show("a child's MDWE", prctl(PR_GET_MDWE, 0, 0, 0, 0));
            _exit(0);
        }
        waitpid(q, NULL, 0);
        show("add NO_INHERIT", prctl(PR_SET_MDWE, 3, 0, 0, 0));
        q = fork();
        if (q == 0) {
            show("a child's MDWE after NO_INHERIT", prctl(PR_GET_MDWE, 0, 0, 0, 0));
            _exit(0);
        }
        waitpid(q, NULL, 0);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    p = fork();
    if (p == 0) {
        prctl(PR_SET_MDWE, 1, 0, 0, 0);
        execl(self, self, "mdwe-exec", NULL);
        _exit(1);
    }
    waitpid(p, NULL, 0);
}

// A syscall stub of our own, so that a region can name exactly its code.
extern long stub_getppid(void);
extern char stub_end[];
__asm__(".text\n.globl stub_getppid\nstub_getppid:\n\tmov $110, %eax\n\tsyscall\n\tret\n.globl stub_end\nstub_end:\n\tnop\n");

static volatile char selector;
static volatile int sigsys_code, sigsys_nr;
static volatile void *sigsys_addr;

static void on_sigsys(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    selector = 0;
    sigsys_code = si->si_code;
    sigsys_nr = si->si_syscall;
    sigsys_addr = si->si_call_addr;
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RAX] = 42;
}

static void dispatch(void) {
    struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
    sigaction(SIGSYS, &sa, NULL);
    long real = getppid();
    unsigned long start = (unsigned long)stub_getppid, len = (unsigned long)stub_end - start;
    show("dispatch off with arguments", prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_OFF, 1, 0, 0));
    show("an unknown mode", prctl(PR_SET_SYSCALL_USER_DISPATCH, 3, 0, 0, 0));
    show("a region that wraps", prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_EXCLUSIVE, ~0UL, 2, &selector));
    show("an empty inclusive region", prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_INCLUSIVE, start, 0, &selector));
    show("a kernel selector", prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_EXCLUSIVE, 0, 0, (void *)0xffff800000000000UL));
    show("dispatch all but the stub", prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_EXCLUSIVE, start, len, &selector));
    selector = 1;
    long r = syscall(SYS_getppid);
    printf("blocked getppid: %ld, si_code %d, nr %d, from outside the stub %d\n", r, sigsys_code, sigsys_nr, (unsigned long)sigsys_addr - start >= len);
    selector = 1;
    r = stub_getppid();
    selector = 0;
    printf("the stub's getppid is real: %d\n", r == real);
    pid_t p = fork();
    if (p == 0) {
        selector = 1;
        printf("the child's getppid is real: %d\n", getppid() > 0 && getppid() != 42);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    show("dispatch only the stub", prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_INCLUSIVE, start, len, &selector));
    selector = 1;
    r = stub_getppid();
    printf("the stub's blocked getppid: %ld\n", r);
    selector = 1;
    r = syscall(SYS_getppid);
    selector = 0;
    printf("getppid outside is real: %d\n", r == real);
    show("dispatch off", prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_OFF, 0, 0, 0));
    p = fork();
    if (p == 0) {
        prctl(PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_EXCLUSIVE, 0, 0, &selector);
        selector = 7;
        syscall(SYS_getppid);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    printf("a selector of 7 kills with signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void small(void) {
    show("timer slack", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
    prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    show("timer slack set", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
    prctl(PR_SET_TIMERSLACK, 0, 0, 0, 0);
    show("timer slack reset", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
    int *tid_address = NULL;
    show("tid address", prctl(PR_GET_TID_ADDRESS, &tid_address, 0, 0, 0));
    printf("  it holds our tid: %d\n", tid_address && *tid_address == gettid());
    show("THP disabled", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    show("disable THP", prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
    show("THP disabled", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    show("THP with a stray argument", prctl(PR_SET_THP_DISABLE, 1, 1, 0, 0));
    show("machine-check policy", prctl(PR_MCE_KILL_GET, 0, 0, 0, 0));
    show("set it", prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0));
    unsigned long auxv[128];
    long n = prctl(PR_GET_AUXV, auxv, sizeof auxv, 0, 0);
    long page = 0;
    for (long i = 0; i + 1 < n / 8; i += 2)
        if (auxv[i] == AT_PAGESZ) page = auxv[i + 1];
    printf("auxv: ends with AT_NULL %d, AT_PAGESZ %ld, getauxval agrees %d\n", n >= 16 && auxv[n / 8 - 2] == 0, page, getauxval(AT_PAGESZ) == (unsigned long)page);
    show("auxv into 8 bytes, size", prctl(PR_GET_AUXV, auxv, 8, 0, 0) == n);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && !strcmp(argv[1], "ambient-exec")) {
        printf("after exec as uid %d: CapEff %llx CapPrm %llx CapAmb %llx\n", getuid(), status_field("CapEff:"), status_field("CapPrm:"), status_field("CapAmb:"));
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "mdwe-exec")) {
        show("MDWE after exec", prctl(PR_GET_MDWE, 0, 0, 0, 0));
        return 0;
    }
    ambient(argv[0]);
    mdwe(argv[0]);
    dispatch();
    small();
    return 0;
}

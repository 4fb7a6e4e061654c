// Registers across a `syscall` instruction, as Linux leaves them: rax the result, rcx the
// address after the instruction, r11 the flags it was made with; every other general
// register, the flags, the stack pointer, the 128-byte red zone below it and the vector
// registers unchanged. The calls have the exact shape syscall patching rewrites
// (`mov $nr, %eax; syscall`, see docs/systrap-patching.md), and run from two sites in
// tight loops on several threads at once (a rewrite lands while other threads run the
// site), with a timer signal interrupting them, and in a forked child.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

// What a probe loads before the call and finds after it. Offsets are used by the assembly.
struct probe {
    uint64_t in[14];     // 0x00: rbx rbp rdx rsi r8 r9 r10 r12 r13 r14 r15 rdi, xmm0, xmm15
    uint64_t in_flags;   // 0x70
    uint64_t out[16];    // 0x78: rax rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15 rsp
    uint64_t flags_before; // 0xf8
    uint64_t flags_after;  // 0x100
    uint64_t rsp_before;   // 0x108
    uint64_t site;         // 0x110: the address after the syscall instruction
    uint64_t xmm_out[2];   // 0x118
    uint64_t red[16];      // 0x128: the red zone after the call
};

_Static_assert(offsetof(struct probe, in_flags) == 0x70, "layout");
_Static_assert(offsetof(struct probe, out) == 0x78, "layout");
_Static_assert(offsetof(struct probe, flags_before) == 0xf8, "layout");
_Static_assert(offsetof(struct probe, red) == 0x128, "layout");

#define RED_ZONE_WORD(k) (0x5245440000000000ull | (k))

// probe_NAME(struct probe *p): one `mov $NR, %eax; syscall` site.
#define PROBE(name, nr)                                                                        \
    __asm__(".pushsection .text\n"                                                                          \
            ".globl probe_" #name "\n"                                                         \
            "probe_" #name ":\n"                                                               \
            "push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"          \
            "push %rdi\n"                                                                      \
            "pushq 0x70(%rdi)\n popfq\n"                                                       \
            "pushfq\n popq 0xf8(%rdi)\n"                                                       \
            /* the red zone: 16 words below the stack pointer */                               \
            "movabs $0x5245440000000000, %rax\n"                                               \
            ".irp k,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n"                                  \
            "lea \\k(%rax), %rcx\n mov %rcx, -8*\\k(%rsp)\n"                                   \
            ".endr\n"                                                                          \
            "mov %rsp, 0x108(%rdi)\n"                                                          \
            "lea 1f(%rip), %rax\n mov %rax, 0x110(%rdi)\n"                                     \
            "movq 0x60(%rdi), %xmm0\n movq 0x68(%rdi), %xmm15\n"                               \
            "mov 0x00(%rdi), %rbx\n mov 0x08(%rdi), %rbp\n mov 0x10(%rdi), %rdx\n"             \
            "mov 0x18(%rdi), %rsi\n mov 0x20(%rdi), %r8\n mov 0x28(%rdi), %r9\n"               \
            "mov 0x30(%rdi), %r10\n mov 0x38(%rdi), %r12\n mov 0x40(%rdi), %r13\n"             \
            "mov 0x48(%rdi), %r14\n mov 0x50(%rdi), %r15\n mov 0x58(%rdi), %rdi\n"             \
            "mov $" #nr ", %eax\n"                                                             \
            "syscall\n"                                                                        \
            "1:\n"                                                                             \
            "xchg %rdi, (%rsp)\n"                                                              \
            "mov %rax, 0x78(%rdi)\n mov %rbx, 0x80(%rdi)\n mov %rcx, 0x88(%rdi)\n"             \
            "mov %rdx, 0x90(%rdi)\n mov %rsi, 0x98(%rdi)\n mov %rbp, 0xa8(%rdi)\n"             \
            "mov %r8, 0xb0(%rdi)\n mov %r9, 0xb8(%rdi)\n mov %r10, 0xc0(%rdi)\n"               \
            "mov %r11, 0xc8(%rdi)\n mov %r12, 0xd0(%rdi)\n mov %r13, 0xd8(%rdi)\n"             \
            "mov %r14, 0xe0(%rdi)\n mov %r15, 0xe8(%rdi)\n mov %rsp, 0xf0(%rdi)\n"             \
            "mov (%rsp), %rax\n mov %rax, 0xa0(%rdi)\n"                                        \
            "movq %xmm0, 0x118(%rdi)\n movq %xmm15, 0x120(%rdi)\n"                             \
            ".irp k,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n"                                  \
            "mov -8*\\k(%rsp), %rax\n mov %rax, 0x120+8*\\k(%rdi)\n"                       \
            ".endr\n"                                                                          \
            "pushfq\n popq 0x100(%rdi)\n"                                                      \
            "cld\n"                                                                            \
            "pop %rdi\n"                                                                       \
            "pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"                \
            "ret\n"                                                                        \
            ".popsection\n")

PROBE(getppid, 110);
PROBE(getpid, 39);
void probe_getppid(struct probe *p);
void probe_getpid(struct probe *p);

static uint64_t mix(uint64_t x) {
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

// Flags a call is made with: bit 1 and IF always, then CF PF AF ZF SF DF OF from the seed.
static uint64_t flags_for(uint64_t seed) {
    return 0x202 | (seed & (0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800));
}

// The first difference from Linux's contract, or NULL.
static const char *verify(const struct probe *p, uint64_t want_rax) {
    static const int out_of_in[] = {
        // out index: rbx 1, rdx 3, rsi 4, rdi 5, rbp 6, r8 7, r9 8, r10 9, r12 11, r13 12, r14 13, r15 14
        [1] = 0, [6] = 1, [3] = 2, [4] = 3, [7] = 4, [8] = 5, [9] = 6, [11] = 7, [12] = 8, [13] = 9, [14] = 10, [5] = 11,
    };
    static const char *names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rsp"};
    static __thread char why[96];
    if (p->out[0] != want_rax) return "rax is not the result";
    if (p->out[2] != p->site) return "rcx is not the address after the syscall";
    if (p->out[10] != p->flags_before) return "r11 is not the flags of the call";
    if (p->flags_after != p->flags_before) return "the flags changed";
    if (p->out[15] != p->rsp_before) return "rsp changed";
    for (int i = 1; i < 15; i++) {
        if (i == 2 || i == 10) continue;
        if (p->out[i] != p->in[out_of_in[i]]) {
            snprintf(why, sizeof why, "%s changed", names[i]);
            return why;
        }
    }
    if (p->xmm_out[0] != p->in[12] || p->xmm_out[1] != p->in[13]) return "a vector register changed";
    for (int k = 1; k <= 16; k++)
        if (p->red[k - 1] != RED_ZONE_WORD(k)) return "the red zone was written";
    return NULL;
}

static atomic_int go;
static pid_t want_ppid, want_pid;

struct worker {
    int id, calls;
    const char *failure;
    uint64_t failed_at;
};

// Each call gets its own register values and flags, so that one thread's state showing
// up in another's (or a stale one) is caught too.
static const char *run_calls(int id, int calls, uint64_t *failed_at) {
    struct probe p;
    for (int i = 0; i < calls; i++) {
        memset(&p, 0, sizeof p);
        uint64_t seed = mix(((uint64_t)id << 32) | (uint64_t)i);
        for (int r = 0; r < 14; r++) p.in[r] = mix(seed + (uint64_t)r + 1);
        p.in_flags = flags_for(seed);
        int ppid_site = (i & 1) == 0;
        if (ppid_site) probe_getppid(&p);
        else probe_getpid(&p);
        const char *why = verify(&p, (uint64_t)(ppid_site ? want_ppid : want_pid));
        if (why) {
            *failed_at = (uint64_t)i;
            fprintf(stderr, "thread %d call %d (%s): %s\n", id, i, ppid_site ? "getppid" : "getpid", why);
            return why;
        }
    }
    return NULL;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    while (!atomic_load(&go)) {
    }
    w->failure = run_calls(w->id, w->calls, &w->failed_at);
    return NULL;
}

static volatile sig_atomic_t ticks;

static void on_alarm(int sig) {
    (void)sig;
    ticks++;
}

enum { THREADS = 4, CALLS = 3000 };

int main(void) {
    want_ppid = getppid();
    want_pid = getpid();

    uint64_t at = 0;
    check("one thread: 2000 calls at two sites leave the registers as Linux does", run_calls(100, 2000, &at) == NULL);

    // A timer interrupts the loops now and then (an interrupted call, and a signal
    // between two calls, must leave the same registers).
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_REAL, &it, NULL);

    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){.id = t, .calls = CALLS};
        pthread_create(&th[t], NULL, worker_main, &w[t]);
    }
    atomic_store(&go, 1);
    int threads_ok = 1;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        if (w[t].failure) threads_ok = 0;
    }
    check("4 threads at once at the same two sites: registers as Linux leaves them", threads_ok);

    pid_t child = fork();
    if (child == 0) {
        want_ppid = want_pid;
        want_pid = getpid();
        _exit(run_calls(200, 1000, &at) == NULL ? 0 : 1);
    }
    int st = 0;
    waitpid(child, &st, 0);
    check("a forked child: registers as Linux leaves them", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (failures == 0) printf("all ok\n");
    return failures != 0;
}

/* ptrace_floor.c - the bare PTRACE_SYSEMU floor: what any ptrace platform pays
 * per trapped syscall, with no Sentry work at all.
 *
 * The tracee (a forked child) does raw syscall(SYS_getppid) in a loop.  The
 * tracer does, per syscall:  PTRACE_SYSEMU -> waitpid -> PTRACE_GETREGS ->
 * set rax -> PTRACE_SETREGS.  Reported: ns per round trip.
 *
 * usage: ptrace_floor MODE [iterations=20000] [max_seconds=10]
 *   MODE  pinned    tracer and tracee pinned to the same CPU
 *         unpinned  scheduler's choice (on an idle 2-vCPU box: usually split)
 *         split     tracer and tracee pinned to two different CPUs
 * prints: RESULT ptrace_floor_<MODE> <ns per round trip> iters=<n> cpus=<tracer>,<tracee>
 *         where cpus are the CPUs each was last seen on (unpinned: the scheduler's
 *         placement, which decides whether this is the ~10 us or the ~50 us case).
 * Built static like the others but always run natively (it is the floor). */
#include "bench.h"
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif
#define WARM 1000

/* CPU a stopped task last ran on: field 39 of /proc/<pid>/stat */
static int task_cpu(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* skip "pid (comm)" */
  if (!p) return -1;
  int field = 2, cpu = -1;
  for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
    if (++field == 39) { cpu = atoi(tok); break; }
  return cpu;
}

static int pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return sched_setaffinity(0, sizeof s, &s);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "pinned";
  long iters = arg_long(argc, argv, 2, 20000);
  double max_s = arg_double(argc, argv, 3, 10);
  int pinned = !strcmp(mode, "pinned"), split = !strcmp(mode, "split");
  if (!pinned && !split && strcmp(mode, "unpinned")) {
    fprintf(stderr, "usage: %s pinned|unpinned|split [iters] [max_seconds]\n", argv[0]);
    return 2;
  }

  /* the CPUs we may run on */
  cpu_set_t allowed;
  sched_getaffinity(0, sizeof allowed, &allowed);
  int cpus[2] = {-1, -1}, n = 0;
  for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
    if (CPU_ISSET(c, &allowed)) cpus[n++] = c;
  if (split && n < 2) { fprintf(stderr, "split needs 2 CPUs\n"); return 1; }
  int tracer_cpu = -1, tracee_cpu = -1;
  if (pinned || split) {
    tracer_cpu = cpus[0];
    tracee_cpu = split ? cpus[1] : cpus[0];
    if (pin(tracer_cpu)) { perror("sched_setaffinity"); return 1; }
  }

  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) {
    if (split) pin(tracee_cpu);
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    for (long i = 0; i < WARM + iters; i++) syscall(SYS_getppid);
    syscall(SYS_exit_group, 0);
    _exit(0);
  }
  int st;
  if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st)) { fprintf(stderr, "tracee did not stop\n"); return 1; }
  if (ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)) {
    perror("PTRACE_SETOPTIONS");
    return 1;
  }

  struct user_regs_struct r;
  int seen_tracer = -1, seen_tracee = -1;
  long long limit = (long long)(max_s * 1e9), t0 = 0, t1 = 0;
  long stops = 0, timed = 0;
  for (;;) {
    if (ptrace(PTRACE_SYSEMU, pid, 0, 0) < 0) { perror("PTRACE_SYSEMU"); return 1; }
    if (waitpid(pid, &st, 0) < 0 || WIFEXITED(st) || WIFSIGNALED(st)) break;
    long long t = now_ns();
    if (stops == WARM) t0 = t;
    if (stops > WARM) { t1 = t; timed = stops - WARM; }
    if (ptrace(PTRACE_GETREGS, pid, 0, &r)) { perror("PTRACE_GETREGS"); return 1; }
    if (r.orig_rax == SYS_exit_group || (timed && t1 - t0 > limit)) {
      seen_tracer = sched_getcpu();
      seen_tracee = task_cpu(pid);
      break;
    }
    r.rax = 1; /* the "Sentry" answers getppid() = 1 */
    if (ptrace(PTRACE_SETREGS, pid, 0, &r)) { perror("PTRACE_SETREGS"); return 1; }
    stops++;
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  if (!timed) { fprintf(stderr, "no timed stops\n"); return 1; }
  printf("RESULT ptrace_floor_%s %.1f iters=%ld cpus=%d,%d\n", mode,
         (double)(t1 - t0) / timed, timed, seen_tracer, seen_tracee);
  return 0;
}

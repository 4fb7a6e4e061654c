/* fork_exec.c - fork a child that execve()s a static `true`; the parent waitpid()s
 * for it.  Reported: ns per fork + execve + exit + wait.
 *
 * usage: fork_exec [iterations=500] [max_seconds=10] [program]
 *   program  the static binary to exec (bench/run passes build/true, absolute);
 *            without it the program execs itself (/proc/self/exe) with the single
 *            argument "--exit", which makes it exit(0) at once. */
#include "bench.h"
#include <limits.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static char self[PATH_MAX];
static char *child_argv[3];

static void fork_exec(void) {
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); exit(1); }
  if (pid == 0) {
    execve(child_argv[0], child_argv, environ);
    _exit(127);  /* exec failed */
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); exit(1); }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "fork_exec: child (%s) status %#x%s\n", child_argv[0], st,
            WIFEXITED(st) && WEXITSTATUS(st) == 127 ? " (execve failed)" : "");
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--exit")) return 0;  /* the exec'd image */
  long iters = arg_long(argc, argv, 1, 500);
  double max_s = arg_double(argc, argv, 2, 10);
  if (argc > 3) {
    child_argv[0] = argv[3];
  } else {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) { perror("readlink /proc/self/exe"); return 1; }
    self[n] = 0;
    child_argv[0] = self;
    child_argv[1] = "--exit";
  }
  long done;
  double nsop;
  BENCH_LOOP(fork_exec(), 5, iters, 5, max_s, &done, &nsop);
  printf("RESULT fork_exec %.1f iters=%ld\n", nsop, done);
  return 0;
}

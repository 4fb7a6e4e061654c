/* fork_wait.c - fork a child that calls _exit(0) at once; the parent waitpid()s
 * for it.  Reported: ns per fork + exit + wait.
 * usage: fork_wait [iterations=2000] [max_seconds=10] */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

static void fork_wait(void) {
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); exit(1); }
  if (pid == 0) _exit(0);
  int st;
  if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); exit(1); }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "fork_wait: child status %#x\n", st);
    exit(1);
  }
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 2000);
  double max_s = arg_double(argc, argv, 2, 10);
  long done;
  double nsop;
  BENCH_LOOP(fork_wait(), 10, iters, 10, max_s, &done, &nsop);
  printf("RESULT fork_wait %.1f iters=%ld\n", nsop, done);
  return 0;
}

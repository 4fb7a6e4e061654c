/* signal_roundtrip.c - raise(SIGUSR1) with a handler installed (sigaction, no
 * flags) that counts and returns.  Reported: ns per raise + delivery + handler +
 * rt_sigreturn.  glibc 2.36's raise() is gettid, getpid, tgkill (the signal is
 * delivered on its return), then the handler's rt_sigreturn: four system calls.
 * handled= (warm-up included) must equal the raise() calls made, or the program
 * fails.
 * usage: signal_roundtrip [iterations=20000] [max_seconds=10] */
#include "bench.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }

static long raised;
static void raise_one(void) {
  if (raise(SIGUSR1)) { perror("raise"); exit(1); }
  raised++;
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 20000);
  double max_s = arg_double(argc, argv, 2, 10);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL)) { perror("sigaction"); return 1; }
  long done;
  double nsop;
  BENCH_LOOP(raise_one(), 100, iters, 100, max_s, &done, &nsop);
  if (handled != raised) {
    fprintf(stderr, "signal_roundtrip: %ld raised but %ld handled\n", raised, (long)handled);
    return 1;
  }
  printf("RESULT signal_roundtrip %.1f iters=%ld handled=%ld\n", nsop, done, (long)handled);
  return 0;
}

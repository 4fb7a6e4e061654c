/* futex_pingpong.c - two threads hand a token back and forth over two futex
 * words.  The main thread stores ping=1 and FUTEX_WAKEs it, then FUTEX_WAITs on
 * pong; the other thread waits on ping, clears it, stores pong=1 and wakes it.
 * Every wake is a real FUTEX_WAKE syscall and each side blocks in FUTEX_WAIT
 * unless the token is already there (no spinning).
 * Reported: ns per round trip (ping + pong).
 * usage: futex_pingpong [iterations=20000] [max_seconds=10] */
#include "bench.h"
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int ping, pong, stop;

static void wait_on(_Atomic int *w) {
  while (atomic_load(w) == 0)
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  atomic_store(w, 0);
}

static void wake(_Atomic int *w) {
  atomic_store(w, 1);
  syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *ponger(void *arg) {
  (void)arg;
  for (;;) {
    wait_on(&ping);
    if (atomic_load(&stop)) return NULL;
    wake(&pong);
  }
}

static void round_trip(void) {
  wake(&ping);
  wait_on(&pong);
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 20000);
  double max_s = arg_double(argc, argv, 2, 10);
  pthread_t t;
  if (pthread_create(&t, NULL, ponger, NULL)) { fprintf(stderr, "pthread_create failed\n"); return 1; }
  long done;
  double nsop;
  BENCH_LOOP(round_trip(), 100, iters, 100, max_s, &done, &nsop);
  atomic_store(&stop, 1);
  wake(&ping);
  pthread_join(t, NULL);
  printf("RESULT futex_pingpong %.1f iters=%ld\n", nsop, done);
  return 0;
}

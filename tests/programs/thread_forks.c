// Threads that fork at the same time, writing the same pages between forks: each
// fork write-protects the parent's private memory for copy-on-write, and a thread
// whose write faults while another thread's copy is on its way to the host must
// see the access retried, not a SIGSEGV. Every child checks what it inherited.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 12

static volatile long counter;
static long shared[THREADS][64];

static void *worker(void *arg) {
    long me = (long)arg;
    for (int i = 0; i < ROUNDS; i++) {
        shared[me][i] = me * 1000 + i;
        __sync_fetch_and_add(&counter, 1);
        pid_t c = fork();
        if (c == 0)
            _exit(shared[me][i] == me * 1000 + i ? 50 : 51);
        int st;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 50) {
            printf("thread %ld round %d: child status %#x\n", me, i, st);
            exit(1);
        }
    }
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("forks: %ld\n", counter);
    return 0;
}

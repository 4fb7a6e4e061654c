// getrandom(2).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

static int all_zero(const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int main(void) {
    unsigned char a[64] = {0}, b[64] = {0};
    check("getrandom 64 bytes returns 64", getrandom(a, sizeof a, 0) == 64);
    check("64 bytes not all zero", !all_zero(a, sizeof a));
    check("raw getrandom 64 bytes returns 64", syscall(SYS_getrandom, b, sizeof b, 0) == 64);
    check("two draws differ", memcmp(a, b, sizeof a) != 0);
    check("GRND_NONBLOCK", getrandom(a, 16, GRND_NONBLOCK) == 16);
    check("GRND_RANDOM", getrandom(a, 16, GRND_RANDOM | GRND_NONBLOCK) > 0);
    check("length 0 returns 0", getrandom(a, 0, 0) == 0);
    check("unknown flags -> EINVAL", syscall(SYS_getrandom, a, 16, 0x100) == -1 && errno == EINVAL);
    static unsigned char big[1 << 16];
    ssize_t n = getrandom(big, sizeof big, 0);
    check("64 KiB request fills at least 256 bytes", n >= 256);
    check("large draw not all zero", n > 0 && !all_zero(big, (size_t)n));
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}

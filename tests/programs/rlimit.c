// getrlimit/setrlimit/prlimit64 round trips and errors.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

int main(void) {
    struct rlimit orig, cur, old;
    check("getrlimit(RLIMIT_NOFILE)", getrlimit(RLIMIT_NOFILE, &orig) == 0);
    check("soft <= hard", orig.rlim_cur <= orig.rlim_max);
    check("soft NOFILE >= 3", orig.rlim_cur >= 3);

    struct rlimit want = {orig.rlim_cur / 2, orig.rlim_max};
    check("setrlimit lowers the soft limit", setrlimit(RLIMIT_NOFILE, &want) == 0);
    check("getrlimit sees it", getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_cur == want.rlim_cur && cur.rlim_max == want.rlim_max);
    check("prlimit64(0, get) sees it", prlimit(0, RLIMIT_NOFILE, NULL, &cur) == 0 && cur.rlim_cur == want.rlim_cur);
    check("prlimit64(getpid(), get) sees it", prlimit(getpid(), RLIMIT_NOFILE, NULL, &cur) == 0 && cur.rlim_cur == want.rlim_cur);
    struct rlimit raw;
    check("raw getrlimit sees it", syscall(SYS_getrlimit, RLIMIT_NOFILE, &raw) == 0 && raw.rlim_cur == want.rlim_cur);

    struct rlimit want2 = {orig.rlim_cur / 4, orig.rlim_max};
    check("prlimit64 set returns the old value",
          prlimit(0, RLIMIT_NOFILE, &want2, &old) == 0 && old.rlim_cur == want.rlim_cur && old.rlim_max == want.rlim_max);
    check("getrlimit sees the prlimit64 set", getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_cur == want2.rlim_cur);
    check("raw setrlimit", syscall(SYS_setrlimit, RLIMIT_NOFILE, &orig) == 0);
    check("restored", getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_cur == orig.rlim_cur && cur.rlim_max == orig.rlim_max);

    struct rlimit bad = {orig.rlim_max == RLIM_INFINITY ? RLIM_INFINITY : orig.rlim_max + 1, orig.rlim_max};
    if (orig.rlim_max == RLIM_INFINITY) bad = (struct rlimit){10, 5};
    check("soft > hard -> EINVAL", setrlimit(RLIMIT_NOFILE, &bad) == -1 && errno == EINVAL);
    check("unknown resource -> EINVAL", syscall(SYS_prlimit64, 0, 99, NULL, &cur) == -1 && errno == EINVAL);
    check("prlimit64 of pid -1 -> ESRCH", syscall(SYS_prlimit64, -1, RLIMIT_NOFILE, NULL, &cur) == -1 && errno == ESRCH);
    check("getrlimit unknown resource -> EINVAL", syscall(SYS_getrlimit, 99, &cur) == -1 && errno == EINVAL);

    /* Every resource can be read, and each has soft <= hard. */
    int ok = 1;
    for (int r = 0; r < RLIM_NLIMITS; r++)
        if (getrlimit(r, &cur) != 0 || cur.rlim_cur > cur.rlim_max) ok = 0;
    check("all 16 resources readable with soft <= hard", ok);

    struct rlimit stack;
    check("stack rlimit round trip",
          getrlimit(RLIMIT_STACK, &stack) == 0 && setrlimit(RLIMIT_STACK, &stack) == 0 &&
              getrlimit(RLIMIT_STACK, &cur) == 0 && cur.rlim_cur == stack.rlim_cur);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}

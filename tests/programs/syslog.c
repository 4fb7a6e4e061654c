// syslog(2) (klogctl): the log's size, reading all of it, the console actions, and
// the argument errors. Only what holds for any log is printed: the sandbox's is
// empty, the host's is not.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>

static void show(const char *what, int r) {
    int e = errno;
    printf("%s: %s\n", what, r < 0 ? strerror(e) : "ok");
}

int main(void) {
    int size = klogctl(10, NULL, 0);
    printf("SIZE_BUFFER is positive: %s\n", size > 0 ? "yes" : "no");
    char *buf = malloc(size > 0 ? size : 1);
    int n = klogctl(3, buf, size);
    printf("READ_ALL returns at most the buffer's size: %s\n", n >= 0 && n <= size ? "yes" : "no");
    printf("SIZE_UNREAD is not negative: %s\n", klogctl(9, NULL, 0) >= 0 ? "yes" : "no");
    show("READ_ALL with a NULL buffer", klogctl(3, NULL, 10));
    show("READ_ALL with a negative length", klogctl(3, buf, -1));
    show("READ with no length", klogctl(2, buf, 0));
    show("CONSOLE_LEVEL 9", klogctl(8, NULL, 9));
    show("action 99", klogctl(99, NULL, 0));
    show("OPEN", klogctl(1, NULL, 0));
    show("CLOSE", klogctl(0, NULL, 0));
    return 0;
}

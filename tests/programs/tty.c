// isatty and the terminal ioctls on stdio. Under the harness stdio are pipes (ENOTTY);
// one test gives the program a pseudo-terminal as stdin (24 rows, 80 columns).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static const char *err(void) { return errno ? strerrorname_np(errno) : "(errno 0)"; }

int main(void) {
    for (int fd = 0; fd <= 2; fd++) {
        errno = 0;
        int t = isatty(fd);
        printf("isatty(%d) = %d %s\n", fd, t, t ? "" : err());
        struct termios tio;
        errno = 0;
        int r = ioctl(fd, TCGETS, &tio);
        printf("ioctl(%d, TCGETS) = %d %s\n", fd, r, r ? err() : "");
        struct winsize ws = {0};
        errno = 0;
        r = ioctl(fd, TIOCGWINSZ, &ws);
        if (r == 0) printf("ioctl(%d, TIOCGWINSZ) = 0 rows=%d cols=%d\n", fd, ws.ws_row, ws.ws_col);
        else printf("ioctl(%d, TIOCGWINSZ) = %d %s\n", fd, r, err());
    }
    struct termios tio;
    errno = 0;
    int r = ioctl(99, TCGETS, &tio);
    printf("ioctl(99, TCGETS) = %d %s\n", r, err());
    errno = 0;
    r = isatty(99);
    printf("isatty(99) = %d %s\n", r, err());
    return 0;
}

// Pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, the replica's default
// termios, canonical input with editing and echo, output processing, raw mode,
// window size with SIGWINCH, a controlling terminal with its foreground group
// (^C reaches it; /dev/tty opens it; a background tcsetpgrp gets SIGTTOU), and
// hangups: EIO on the master once every replica is closed.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int rd(int fd, char *buf, int len) {
    int n = read(fd, buf, len - 1);
    buf[n > 0 ? n : 0] = 0;
    return n;
}

static volatile sig_atomic_t winched;
static void on_winch(int s) { (void)s; winched = 1; }

int main(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    check("posix_openpt", m >= 0);
    check("grantpt", grantpt(m) == 0);
    char *name = ptsname(m);
    check("ptsname is under /dev/pts", name && !strncmp(name, "/dev/pts/", 9));
    errno = 0;
    check("a locked replica does not open (EIO)", open(name, O_RDWR | O_NOCTTY) < 0 && errno == EIO);
    check("unlockpt", unlockpt(m) == 0);
    int s = open(name, O_RDWR | O_NOCTTY);
    check("the replica opens", s >= 0);
    check("isatty on both ends", isatty(s) && isatty(m));
    struct termios t;
    tcgetattr(s, &t);
    check("default termios is Linux's", t.c_iflag == (ICRNL | IXON) && t.c_oflag == (OPOST | ONLCR) &&
          t.c_lflag == (ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN) && t.c_cc[VINTR] == 3 && t.c_cc[VEOF] == 4);

    char buf[256];
    write(m, "ab\x7f" "c\r", 5);
    check("a canonical line, with erase and CR to NL", rd(s, buf, sizeof buf) == 3 && !strcmp(buf, "ac\n"));
    rd(m, buf, sizeof buf);
    check("its echo, with erase as backspace-space-backspace", !strcmp(buf, "ab\b \bc\r\n"));
    write(m, "partial", 7);
    struct pollfd p = {s, POLLIN, 0};
    check("no line yet: not readable", poll(&p, 1, 0) == 0);
    write(m, "\x04", 1);
    check("EOF ends the line without a newline", rd(s, buf, sizeof buf) == 7 && !strcmp(buf, "partial"));
    write(m, "\x04", 1);
    check("EOF on an empty line reads 0", read(s, buf, sizeof buf) == 0);
    rd(m, buf, sizeof buf);
    int avail = -1;
    write(m, "xyz\n", 4);
    poll(&p, 1, 5000);  // Linux hands input to the line discipline asynchronously
    ioctl(s, FIONREAD, &avail);
    check("FIONREAD counts the line", avail == 4);
    rd(s, buf, sizeof buf);
    rd(m, buf, sizeof buf);
    write(s, "out\nput\n", 8);
    check("output gets ONLCR", rd(m, buf, sizeof buf) == 10 && !strcmp(buf, "out\r\nput\r\n"));

    struct termios raw = t;
    cfmakeraw(&raw);
    tcsetattr(s, TCSANOW, &raw);
    write(m, "q\r", 2);
    check("raw mode: bytes at once, no translation", rd(s, buf, sizeof buf) == 2 && !strcmp(buf, "q\r"));
    p.revents = 0;
    check("raw mode: no echo", poll(&(struct pollfd){m, POLLIN, 0}, 1, 0) == 0);
    tcsetattr(s, TCSANOW, &t);

    signal(SIGWINCH, on_winch);
    struct winsize ws = {.ws_row = 33, .ws_col = 99}, got = {0};
    ioctl(m, TIOCSWINSZ, &ws);
    ioctl(s, TIOCGWINSZ, &got);
    check("window size set on the master reads on the replica", got.ws_row == 33 && got.ws_col == 99);
    check("tcflow TCOON", tcflow(s, TCOON) == 0);
    check("tcflow with a bad action -> EINVAL", tcflow(s, -1) == -1 && errno == EINVAL && ioctl(s, TCXONC, 4) == -1 && errno == EINVAL);
    check("no SIGWINCH for a process not in the foreground", !winched);

    // A child in its own session, with the replica as its controlling terminal.
    int ready[2];
    pipe(ready);
    pid_t c = fork();
    if (c == 0) {
        setsid();
        close(s);
        int cs = open(name, O_RDWR);  // a session leader's open makes it the controlling terminal
        int fails = 0;
        if (tcgetpgrp(cs) != getpid()) fails |= 1;
        if (tcgetsid(cs) != getpid()) fails |= 2;
        int tty = open("/dev/tty", O_RDWR);
        if (tty < 0) fails |= 4;
        // A background group changing the terminal is stopped by SIGTTOU; ignoring
        // SIGTTOU lets the change through.
        pid_t g = fork();
        if (g == 0) {
            setpgid(0, 0);
            signal(SIGTTOU, SIG_IGN);
            _exit(tcsetpgrp(cs, getpid()) == 0 ? 0 : 1);
        }
        int st;
        waitpid(g, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fails |= 8;
        if (tcgetpgrp(cs) != g) fails |= 16;
        signal(SIGTTOU, SIG_IGN);
        tcsetpgrp(cs, getpid());  // back to the foreground, from the background
        g = fork();
        if (g == 0) {
            signal(SIGTTOU, SIG_DFL);
            setpgid(0, 0);
            tcsetpgrp(cs, getpid());
            _exit(0);
        }
        waitpid(g, &st, WUNTRACED);
        if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTTOU) fails |= 32;
        kill(g, SIGKILL);
        waitpid(g, &st, 0);
        write(ready[1], &fails, sizeof fails);
        pause();  // until ^C
        _exit(0);
    }
    int fails = -1;
    read(ready[0], &fails, sizeof fails);
    check("the session leader's open made it the controlling terminal", fails >= 0 && !(fails & 3));
    check("/dev/tty opens the controlling terminal", fails >= 0 && !(fails & 4));
    check("a background tcsetpgrp with SIGTTOU ignored works", fails >= 0 && !(fails & 24));
    check("a background tcsetpgrp is stopped by SIGTTOU", fails >= 0 && !(fails & 32));
    write(m, "\x03", 1);
    int st;
    waitpid(c, &st, 0);
    check("^C kills the foreground group with SIGINT", WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
    rd(m, buf, sizeof buf);
    check("^C is echoed as ^C", !strncmp(buf, "^C", 2));

    close(s);
    errno = 0;
    check("every replica closed: the master reads EIO", read(m, buf, sizeof buf) < 0 && errno == EIO);
    close(m);
    printf("%d failures\n", failures);
    return failures != 0;
}

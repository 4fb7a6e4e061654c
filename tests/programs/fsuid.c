// setfsuid and setfsgid (run as root): the old id comes back whatever happens;
// root moves its fsuid anywhere, and file checks and new files' owners follow it
// (moving off 0 drops the file capabilities, moving back raises them); /proc shows
// it; a set*uid call moves it back to the effective uid; an unprivileged process
// moves it only among its own ids.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// The fourth id of /proc/self/status's "Uid:" or "Gid:" line.
static long status_fs(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long r = -2, a, b, c, d;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field)) && sscanf(line + strlen(field), "%ld %ld %ld %ld", &a, &b, &c, &d) == 4) r = d;
    if (f) fclose(f);
    return r;
}

int main(void) {
    char dir[] = "/tmp/rvt-fsuid-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    chmod(dir, 0777);
    char secret[300], made[300];
    snprintf(secret, sizeof secret, "%s/secret", dir);
    snprintf(made, sizeof made, "%s/made", dir);
    int fd = open(secret, O_CREAT | O_WRONLY, 0600);
    close(fd);

    check("setfsuid returns the old fsuid (0)", setfsuid(1000) == 0);
    check("and -1 only asks", setfsuid(-1) == 1000);
    check("/proc shows the fsuid", status_fs("Uid:") == 1000);
    errno = 0;
    check("a root-only file is EACCES for fsuid 1000", open(secret, O_RDONLY) == -1 && errno == EACCES);
    fd = open(made, O_CREAT | O_WRONLY, 0644);
    struct stat st;
    fstat(fd, &st);
    close(fd);
    check("a new file is owned by the fsuid", st.st_uid == 1000);
    check("getuid and geteuid stay 0", getuid() == 0 && geteuid() == 0);
    check("setfsuid back to 0 returns 1000", setfsuid(0) == 1000);
    fd = open(secret, O_RDONLY);
    check("and the file capabilities are back", fd >= 0);
    if (fd >= 0) close(fd);

    check("setfsgid returns the old fsgid (0)", setfsgid(2000) == 0);
    check("/proc shows the fsgid", status_fs("Gid:") == 2000);
    unlink(made);
    fd = open(made, O_CREAT | O_WRONLY, 0644);
    fstat(fd, &st);
    close(fd);
    check("a new file's group is the fsgid", st.st_gid == 2000);
    setfsgid(0);

    setfsuid(1234);
    check("setresuid moves the fsuid back to the effective uid", setresuid(0, 0, 0) == 0 && setfsuid(-1) == 0);

    pid_t c = fork();
    if (c == 0) {
        if (setresuid(1000, 1001, 1002) != 0) _exit(9);
        int bad = 0;
        bad |= (setfsuid(0) != 1001) << 0;       // not one of its ids: unchanged
        bad |= (setfsuid(-1) != 1001) << 1;
        bad |= (setfsuid(1002) != 1001) << 2;    // its saved uid: allowed
        bad |= (setfsuid(-1) != 1002) << 3;
        bad |= (setfsuid(1000) != 1002) << 4;    // its real uid
        bad |= (setfsuid(-1) != 1000) << 5;
        _exit(bad);
    }
    int ws;
    waitpid(c, &ws, 0);
    check("an unprivileged process moves its fsuid only among its own ids", WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    unlink(made);
    unlink(secret);
    rmdir(dir);
    printf("%d failures\n", failures);
    return failures != 0;
}

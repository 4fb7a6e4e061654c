// uname(2): fixed fields exactly, host-dependent fields as properties.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

int main(void) {
    struct utsname u;
    memset(&u, 0xff, sizeof u);
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    int major = 0, minor = 0;
    int parsed = sscanf(u.release, "%d.%d", &major, &minor) == 2;
    printf("sysname: %s\n", u.sysname);
    printf("machine: %s\n", u.machine);
    printf("nodename nonempty: %s\n", u.nodename[0] ? "yes" : "no");
    printf("release is MAJOR.MINOR: %s\n", parsed ? "yes" : "no");
    printf("release >= 4.0: %s\n", parsed && major >= 4 ? "yes" : "no");
    printf("version nonempty: %s\n", u.version[0] ? "yes" : "no");
    /* every field is NUL-terminated within its 65 bytes */
    int terminated = memchr(u.sysname, 0, sizeof u.sysname) && memchr(u.nodename, 0, sizeof u.nodename) &&
                     memchr(u.release, 0, sizeof u.release) && memchr(u.version, 0, sizeof u.version) &&
                     memchr(u.machine, 0, sizeof u.machine) && memchr(u.domainname, 0, sizeof u.domainname);
    printf("fields NUL-terminated: %s\n", terminated ? "yes" : "no");
    return 0;
}

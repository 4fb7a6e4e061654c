/* A container of a pod, for the pod tests (crates/runtime/tests/pods.rs).
 *
 *   pod_member PORT     prints its root's /marker, its pid and how many
 *                       processes its /proc shows, then what the pod's server
 *                       on 127.0.0.1:PORT (the sandbox's own loopback, so
 *                       reachable only from the same sandbox) says, then
 *                       waits for a line on stdin and exits 7
 *   pod_member marker   prints its root's /marker (as `rvisor exec` runs it)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void show_marker(void) {
    char buf[128] = {0};
    FILE *f = fopen("/marker", "r");
    if (!f) {
        printf("marker: %s\n", strerror(errno));
        return;
    }
    if (!fgets(buf, sizeof buf, f))
        strcpy(buf, "(empty)");
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    printf("marker: %s\n", buf);
}

static int count_processes(void) {
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += isdigit((unsigned char)e->d_name[0]) != 0;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: pod_member PORT|marker\n");
        return 2;
    }
    show_marker();
    if (strcmp(argv[1], "marker") == 0)
        return 0;
    printf("pid %d, %d processes\n", (int)getpid(), count_processes());
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        printf("server: %s\n", strerror(errno));
    } else {
        char buf[256] = {0};
        size_t got = 0;
        ssize_t n;
        while (got < sizeof buf - 1 && (n = read(s, buf + got, sizeof buf - 1 - got)) > 0)
            got += n;
        printf("server: %s\n", buf);
    }
    close(s);
    char line[32];
    if (!fgets(line, sizeof line, stdin))
        return 99;
    return 7;
}

// Looks up the host file argv[1] (stat: the sandbox caches the name; with argv[2]
// "list", after listing its directory, whose listing the sandbox caches too), waits
// for a line on stdin (the test replaces the file on the host meanwhile, so the
// cached name is stale), then opens the name: it must find the new file.
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *label, const char *path) {
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(label);
        printf("%s: open failed\n", label);
    } else {
        read(fd, buf, sizeof buf - 1);
        close(fd);
        printf("%s: %s", label, buf);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (argc > 2 && strcmp(argv[2], "list") == 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", argv[1]);
        DIR *d = opendir(dirname(dir));
        if (!d) return 3;
        while (readdir(d)) {
        }
        closedir(d);
    }
    struct stat st;
    printf("first: %s\n", stat(argv[1], &st) == 0 ? "found" : "missing");
    printf("ready\n");
    fflush(stdout);
    char line[8];
    fgets(line, sizeof line, stdin);
    show("second", argv[1]);
    return 0;
}

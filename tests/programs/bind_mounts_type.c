/* The type and source /proc/self/mounts and /proc/self/mountinfo give the
 * mount the directory in argv[1] is in (a bind mount of a host directory in
 * the sandbox, a mount of the host natively): the host file system's, as a
 * bind mount under runc shows, not the transport's. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

/* Whether mount point `at` holds `path`. */
static int holds(const char *at, const char *path) {
    size_t n = strlen(at);
    if (strcmp(at, "/") == 0)
        return 1;
    return strncmp(at, path, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* The mount on top at a path so far: the last of the longest mount points holding it. */
struct best {
    size_t len;
    char type[256], src[4096];
};

static void consider(struct best *b, const char *path, const char *at, const char *type, const char *src) {
    if (holds(at, path) && strlen(at) >= b->len) {
        b->len = strlen(at);
        snprintf(b->type, sizeof b->type, "%s", type);
        snprintf(b->src, sizeof b->src, "%s", src);
    }
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char line[8192], src[4096], at[4096], type[256];
    struct best b = {0};
    FILE *f = fopen("/proc/self/mounts", "r");
    if (!f)
        return 1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%4095s %4095s %255s", src, at, type) != 3)
            continue;
        consider(&b, argv[1], at, type, src);
    }
    fclose(f);
    printf("mounts: type %s source %s\n", b.type, b.src);

    b = (struct best){0};
    f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 1;
    while (fgets(line, sizeof line, f)) {
        char root[4096];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, at) != 2)
            continue;
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%255s %4095s", type, src) != 2)
            continue;
        consider(&b, argv[1], at, type, src);
    }
    fclose(f);
    printf("mountinfo: type %s source %s\n", b.type, b.src);
    return 0;
}

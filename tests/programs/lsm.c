// The Linux Security Module calls (Linux 6.8): lsm_list_modules lists the
// active modules (capability among them, wherever this runs; how many depends
// on the kernel, so only what holds everywhere is printed), and, with no
// module that has process attributes, lsm_get_self_attr and lsm_set_self_attr
// check their arguments and answer EOPNOTSUPP. Sizes are u32.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define NR_lsm_get_self_attr 459
#define NR_lsm_set_self_attr 460
#define NR_lsm_list_modules 461

#define LSM_ID_CAPABILITY 100
#define LSM_ATTR_CURRENT 100
#define LSM_ATTR_EXEC 101
#define LSM_FLAG_SINGLE 1

struct lsm_ctx {
    uint64_t id, flags, len, ctx_len;
    uint8_t ctx[];
};

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1L : r, r < 0 ? errname(errno) : "");
}

static long list(uint64_t *ids, uint32_t *size, uint32_t flags) {
    return syscall(NR_lsm_list_modules, ids, size, flags);
}

static long get(unsigned attr, void *ctx, uint32_t *size, uint32_t flags) {
    return syscall(NR_lsm_get_self_attr, attr, ctx, size, flags);
}

static long set(unsigned attr, void *ctx, uint32_t size, uint32_t flags) {
    return syscall(NR_lsm_set_self_attr, attr, ctx, size, flags);
}

int main(void) {
    uint64_t ids[32];
    uint32_t size = sizeof ids;
    memset(ids, 0xff, sizeof ids);
    long n = list(ids, &size, 0);
    check("lsm_list_modules lists some", n >= 1);
    check("its size is the list's", n >= 1 && size == n * sizeof ids[0]);
    int capability = 0;
    for (long i = 0; i < n; i++) capability |= ids[i] == LSM_ID_CAPABILITY;
    check("capability is among them", capability);
    check("nothing past the list is written", n >= 1 && n < 32 && ids[n] == UINT64_MAX);

    uint32_t small = sizeof ids[0] * n - 1;
    show("a list too small", list(ids, &small, 0));
    check("its size says what is needed", small == sizeof ids[0] * n);
    size = 0;
    show("a list of size 0", list(NULL, &size, 0));
    size = sizeof ids;
    show("list flags 1", list(ids, &size, 1));
    check("flags leave the size alone", size == sizeof ids);
    show("list size NULL", list(ids, NULL, 0));
    show("list ids NULL", list(NULL, &size, 0));

    char buf[256];
    struct lsm_ctx *ctx = (struct lsm_ctx *)buf;
    size = sizeof buf;
    show("get current", get(LSM_ATTR_CURRENT, ctx, &size, 0));
    check("no attribute: size 0", size == 0);
    size = sizeof buf;
    show("get exec without a buffer", get(LSM_ATTR_EXEC, NULL, &size, 0));
    check("no attribute: size 0 again", size == 0);
    size = sizeof buf;
    show("get an unknown attribute", get(1, ctx, &size, 0));
    show("get LSM_ATTR_UNDEF", get(0, ctx, &size, 0));
    show("get size NULL", get(LSM_ATTR_CURRENT, ctx, NULL, 0));
    show("get size unreadable", get(LSM_ATTR_CURRENT, ctx, (uint32_t *)8, 0));
    size = sizeof buf;
    show("get flags 2", get(LSM_ATTR_CURRENT, ctx, &size, 2));
    show("get single without a context", get(LSM_ATTR_CURRENT, NULL, &size, LSM_FLAG_SINGLE));
    memset(buf, 0, sizeof buf);
    show("get single of LSM_ID_UNDEF", get(LSM_ATTR_CURRENT, ctx, &size, LSM_FLAG_SINGLE));
    ctx->id = LSM_ID_CAPABILITY;
    size = sizeof buf;
    show("get single of capability", get(LSM_ATTR_CURRENT, ctx, &size, LSM_FLAG_SINGLE));
    check("single: size 0", size == 0);

    memset(buf, 0, sizeof buf);
    *ctx = (struct lsm_ctx){.id = LSM_ID_CAPABILITY, .len = sizeof *ctx + 8, .ctx_len = 8};
    show("set current of capability", set(LSM_ATTR_CURRENT, ctx, sizeof *ctx + 8, 0));
    show("set an unknown attribute", set(7, ctx, sizeof *ctx + 8, 0));
    show("set flags 1", set(LSM_ATTR_CURRENT, ctx, sizeof *ctx + 8, 1));
    show("set size below the header", set(LSM_ATTR_CURRENT, ctx, sizeof *ctx - 1, 0));
    show("set size past a page", set(LSM_ATTR_CURRENT, ctx, 4097, 0));
    show("set len past size", set(LSM_ATTR_CURRENT, ctx, sizeof *ctx + 4, 0));
    ctx->len = sizeof *ctx + 4;
    show("set ctx_len past len", set(LSM_ATTR_CURRENT, ctx, sizeof *ctx + 8, 0));
    ctx->len = sizeof *ctx + 8;
    ctx->ctx_len = UINT64_MAX - 8;
    show("set ctx_len wrapping", set(LSM_ATTR_CURRENT, ctx, sizeof *ctx + 8, 0));
    show("set NULL", set(LSM_ATTR_CURRENT, NULL, sizeof *ctx, 0));

    puts(failures ? "some failed" : "all ok");
    return failures != 0;
}

// mremap(MREMAP_DONTUNMAP): the pages move to a new mapping (chosen, or at
// MREMAP_FIXED's address) and the old range stays mapped but empty: private
// anonymous memory reads as zeros there, shared memory still shows its pages, a
// private file mapping the file again, and a range registered with a
// userfaultfd reports a missing page (the new mapping is not registered). And
// the errors: without MREMAP_MAYMOVE, lengths that differ, a new range that
// overlaps the old one, unaligned addresses, a range past its mapping.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

// Every call passes a new address: with MREMAP_DONTUNMAP Linux reads it as a
// hint, and glibc's variadic mremap would pass whatever a register holds.

#define PAGE 4096L
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static void show(const char *what, void *r) {
    if (r == MAP_FAILED)
        printf("%s: -1 %s\n", what, errname(errno));
    else
        printf("%s: ok\n", what);
}

static char *map(int flags) {
    return mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0);
}

static void fill(char *p, long len, char c) {
    for (long i = 0; i < len; i += PAGE) memset(p + i, c + i / PAGE, PAGE);
}

// Whether every page of [p, p + len) holds its byte of fill(c), or zeros for c 0.
static int holds(const char *p, long len, char c) {
    for (long i = 0; i < len; i++)
        if (p[i] != (c ? c + i / PAGE : 0)) return 0;
    return 1;
}

static void *toucher(void *arg) {
    volatile char *p = arg;
    return (void *)(intptr_t)*p;
}

static void userfault_case(void) {
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API};
    if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
        printf("userfaultfd: unavailable\n");
        return;
    }
    char *old = map(MAP_PRIVATE | MAP_ANONYMOUS);
    struct uffdio_register r = {.range = {(uintptr_t)old, 4 * PAGE}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    check("register the old range", ioctl(fd, UFFDIO_REGISTER, &r) == 0);
    static char page[PAGE];
    memset(page, 'p', PAGE);
    struct uffdio_copy c = {(uintptr_t)old, (uintptr_t)page, PAGE, 0, 0};
    check("fill its first page", ioctl(fd, UFFDIO_COPY, &c) == 0);
    char *moved = mremap(old, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    show("mremap a registered range", moved);
    if (moved == MAP_FAILED) return;
    check("the filled page moved", moved[0] == 'p');
    check("the new mapping is not registered: its missing pages read zeros", moved[PAGE] == 0);
    pthread_t th;
    pthread_create(&th, NULL, toucher, old);
    struct uffd_msg m = {0};
    struct pollfd p = {fd, POLLIN};
    while (poll(&p, 1, -1) != 1 || read(fd, &m, sizeof m) != sizeof m) {}
    check("reading the old page is a missing fault there", m.event == UFFD_EVENT_PAGEFAULT && m.arg.pagefault.address == (uintptr_t)old);
    memset(page, 'q', PAGE);
    check("fill it anew", ioctl(fd, UFFDIO_COPY, &c) == 0);
    void *got;
    pthread_join(th, &got);
    check("the reader gets the new page", (intptr_t)got == 'q');
    close(fd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);

    // Private anonymous memory: data moves, the old range reads zeros.
    char *old = map(MAP_PRIVATE | MAP_ANONYMOUS);
    fill(old, 4 * PAGE, 'a');
    char *moved = mremap(old, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    show("mremap private anonymous", moved);
    check("it moved elsewhere", moved != old);
    check("the data moved", holds(moved, 4 * PAGE, 'a'));
    check("the old range reads zeros", holds(old, 4 * PAGE, 0));
    old[0] = 'z';
    check("the old range is writable and apart", old[0] == 'z' && moved[0] == 'a');

    // MREMAP_FIXED: over what was at the new address.
    char *src = map(MAP_PRIVATE | MAP_ANONYMOUS);
    char *dst = map(MAP_PRIVATE | MAP_ANONYMOUS);
    fill(src, 4 * PAGE, 'e');
    fill(dst, 4 * PAGE, 'x');
    char *r = mremap(src, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst);
    show("mremap with MREMAP_FIXED", r);
    check("at the address asked for", r == dst);
    check("the data moved there", holds(dst, 4 * PAGE, 'e'));
    check("the old range reads zeros", holds(src, 4 * PAGE, 0));

    // A part of a mapping: its pages move, the rest stays.
    char *whole = map(MAP_PRIVATE | MAP_ANONYMOUS);
    fill(whole, 4 * PAGE, 'i');
    r = mremap(whole + PAGE, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    show("mremap the middle of a mapping", r);
    check("the middle pages moved", r != MAP_FAILED && r[0] == 'j' && r[PAGE] == 'k');
    check("the middle reads zeros, its ends are kept", whole[0] == 'i' && whole[PAGE] == 0 && whole[2 * PAGE] == 0 && whole[3 * PAGE] == 'l');

    // Shared anonymous memory: the old range still shows the pages.
    char *sh = map(MAP_SHARED | MAP_ANONYMOUS);
    fill(sh, 4 * PAGE, 'm');
    r = mremap(sh, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    show("mremap shared anonymous", r);
    check("the data is at the new address", r != MAP_FAILED && holds(r, 4 * PAGE, 'm'));
    check("and still at the old one", holds(sh, 4 * PAGE, 'm'));
    if (r != MAP_FAILED) {
        r[0] = 'W';
        check("one page for both", sh[0] == 'W');
    }

    // A private file mapping: the old range shows the file again.
    char path[] = "/tmp/mremap_dontunmap_XXXXXX";
    int fd = mkstemp(path);
    char buf[2 * PAGE];
    memset(buf, 'f', sizeof buf);
    check("a two-page file", fd >= 0 && write(fd, buf, sizeof buf) == sizeof buf);
    char *fm = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    fm[0] = 'c';
    r = mremap(fm, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    show("mremap a private file mapping", r);
    check("the changed page moved", r != MAP_FAILED && r[0] == 'c' && r[PAGE] == 'f');
    check("the old range reads the file", fm[0] == 'f' && fm[PAGE] == 'f');
    close(fd);
    unlink(path);

    userfault_case();

    // The errors.
    char *e = map(MAP_PRIVATE | MAP_ANONYMOUS);
    show("without MREMAP_MAYMOVE", mremap(e, 4 * PAGE, 4 * PAGE, MREMAP_DONTUNMAP, NULL));
    show("a longer new length", mremap(e, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    show("a shorter new length", mremap(e, 4 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    show("lengths equal only once rounded", mremap(e, 4 * PAGE, 4 * PAGE - 1, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    show("a new address over the old range", mremap(e, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, e + PAGE));
    show("a hint over the old range", mremap(e, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, e + PAGE));
    show("an unaligned new address", mremap(e, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst + 1));
    show("an unaligned old address", mremap(e + 1, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    munmap(e + 2 * PAGE, 2 * PAGE);
    show("a range past its mapping", mremap(e, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    show("an unmapped range", mremap(e + 2 * PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    show("unknown flags", mremap(e, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP | 8, NULL));

    printf(failures ? "%d failed\n" : "all ok\n", failures);
    return failures != 0;
}

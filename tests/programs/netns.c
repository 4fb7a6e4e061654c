// Network namespaces: a child's new one (unshare or clone with CLONE_NEWNET) has
// loopback alone, brought up as `ip link set lo up` and `ifconfig lo up` do; its
// ports and abstract socket names are its own (the parent's listener is not
// there, the same port binds again, /proc/net/tcp lists its own); setns goes
// back to the parent's; EPERM without CAP_SYS_ADMIN (and for lo without
// CAP_NET_ADMIN). Only children change namespaces.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
}

static void wait_child(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    fflush(stdout);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return a;
}

static int listener(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4)) {
        close(s);
        return -1;
    }
    return s;
}

static int connect_to(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    if (r) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

static int abstract(const char *name, int bind_it) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path + 1, name);
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
    int r = bind_it ? (bind(s, (struct sockaddr *)&a, len) || listen(s, 4) ? -1 : 0) : connect(s, (struct sockaddr *)&a, len);
    return r < 0 ? -1 : s;
}

// How many listeners on `port` /proc/net/tcp lists.
static int listed(int port) {
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned p, st;
        if (sscanf(line, " %*d: %*8x:%4x %*8x:%*4x %2x", &p, &st) == 2 && p == (unsigned)port && st == 0x0A) n++;
    }
    if (f) fclose(f);
    return n;
}

static void interfaces(const char *who) {
    struct if_nameindex *list = if_nameindex(), *i;
    printf("%s's interfaces:", who);
    for (i = list; i && i->if_name; i++) printf(" %s", i->if_name);
    printf("\n");
    fflush(stdout);
    if (list) if_freenameindex(list);
}

// `ip link set lo up`: RTM_NEWLINK with IFF_UP in ifi_change; the answer's errno.
static int netlink_lo_up(void) {
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct {
        struct nlmsghdr h;
        struct ifinfomsg i;
    } req = {{sizeof req, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0}, {AF_UNSPEC, 0, 0, (int)if_nametoindex("lo"), IFF_UP, IFF_UP}};
    char buf[512];
    if (send(s, &req, sizeof req, 0) < 0) return -errno;
    ssize_t n = recv(s, buf, sizeof buf, 0);
    close(s);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (n < (ssize_t)sizeof *h || h->nlmsg_type != NLMSG_ERROR) return -1000;
    return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
}

static int ifconfig_lo(short flags) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq r = {0};
    strcpy(r.ifr_name, "lo");
    r.ifr_flags = flags;
    int ret = ioctl(s, SIOCSIFFLAGS, &r);
    int e = errno;
    close(s);
    errno = e;
    return ret;
}

int main(void) {
    int parent_listener = listener(0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(parent_listener, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    char name[64];
    snprintf(name, sizeof name, "rvt-netns-%d", getpid());
    int parent_abstract = abstract(name, 1);
    show("parent binds an abstract name", parent_abstract < 0 ? -1 : 0);
    char parent_net[64];
    snprintf(parent_net, sizeof parent_net, "/proc/%d/ns/net", getpid());

    pid_t pid = fork();
    if (pid == 0) {
        show("child connects before unshare", connect_to(port) < 0 ? -1 : 0);
        show("unshare(CLONE_NEWNET)", unshare(CLONE_NEWNET));
        interfaces("child");
        int nl = netlink_lo_up();
        printf("ip link set lo up: %d\n", nl);
        show("ifconfig lo up", ifconfig_lo(IFF_UP | IFF_LOOPBACK | IFF_RUNNING));
        show("connect to the parent's port", connect_to(port));
        show("connect to the parent's abstract name", abstract(name, 0));
        printf("listeners on the port before: %d\n", listed(port));
        int l = listener(port);
        show("listen on the same port", l < 0 ? -1 : 0);
        printf("listeners on the port after: %d\n", listed(port));
        int c = connect_to(port);
        show("connect to its own listener", c < 0 ? -1 : 0);
        int acc = accept(l, NULL, NULL);
        write(c, "ping", 4);
        char buf[8] = {0};
        read(acc, buf, sizeof buf - 1);
        printf("its own listener got: %s\n", buf);
        show("bind the parent's abstract name", abstract(name, 1) < 0 ? -1 : 0);
        int back = open(parent_net, O_RDONLY);
        show("setns back to the parent's", setns(back, CLONE_NEWNET));
        show("connect to the parent's port after", connect_to(port) < 0 ? -1 : 0);
        _exit(0);
    }
    wait_child(pid);
    printf("parent's listeners on the port: %d\n", listed(port));
    fflush(stdout);

    long cloned = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
    if (cloned == 0) {
        interfaces("cloned child");
        // Linux's new namespace has lo down (the sandbox's is always up).
        ifconfig_lo(IFF_UP);
        _exit(connect_to(port) < 0 && errno == ECONNREFUSED ? 0 : 3);
    }
    wait_child(cloned);

    pid = fork();
    if (pid == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        syscall(SYS_capset, &h, d);
        show("unshare(CLONE_NEWNET) without CAP_SYS_ADMIN", unshare(CLONE_NEWNET));
        show("ifconfig lo up without CAP_NET_ADMIN", ifconfig_lo(IFF_UP));
        printf("ip link set lo up without CAP_NET_ADMIN: %d\n", netlink_lo_up());
        fflush(stdout);
        _exit(0);
    }
    wait_child(pid);
    return 0;
}

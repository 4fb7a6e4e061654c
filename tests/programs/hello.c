// Hello world through stdio and through write(2); one line on stderr.
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("hello, world\n");
    fflush(stdout);
    static const char msg[] = "hello via write\n";
    ssize_t n = write(1, msg, sizeof msg - 1);
    printf("write returned %zd\n", n);
    fprintf(stderr, "hello on stderr\n");
    return 0;
}

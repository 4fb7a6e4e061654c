/* wait_read.c - waits for one byte (or EOF) on stdin: an idle container for
 * bench/containers --memory. */
#include <unistd.h>
int main(void) {
    char c;
    return read(0, &c, 1) < 0;
}

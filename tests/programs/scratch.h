// at("x"): the path of x in the program's scratch directory, `base`, which the
// program defines (and makes) before it includes this. Four results live at once.
#include <stdio.h>

static const char *at(const char *rel) {
    static char p[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", base, rel);
    return p[i];
}

// Prints argv and the environment exactly as received.
#include <stdio.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv, char **envp) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=[%s]\n", i, argv[i]);
    printf("argv[argc] is NULL: %s\n", argv[argc] == NULL ? "yes" : "no");
    printf("envp == environ: %s\n", envp == environ ? "yes" : "no");
    int n = 0;
    for (char **e = envp; *e; e++, n++) printf("env[%d]=[%s]\n", n, *e);
    printf("envc=%d\n", n);
    return 0;
}

/* fp4sim - command-line front end (placeholder until the CLI lands). */
#include "fp4ref.h"
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("fp4sim %s\n", FP4SIM_VERSION);
        return 0;
    }
    fprintf(stderr, "fp4sim: usage: fp4sim --version\n");
    return 2;
}

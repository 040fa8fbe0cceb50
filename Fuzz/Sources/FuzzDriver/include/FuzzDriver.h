#include <stddef.h>

/* The entry point of the fuzzing executable (see driver.c). */
int lookalike_fuzz_main(int argc, char **argv);

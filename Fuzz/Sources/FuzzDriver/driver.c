#include "FuzzDriver.h"

/* libFuzzer's driver, in the fuzzing runtime that -sanitize=fuzzer links. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const unsigned char *data, size_t size));
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* SwiftPM starts an executable at <module>_main; here that hands the process to libFuzzer. */
int lookalike_fuzz_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}

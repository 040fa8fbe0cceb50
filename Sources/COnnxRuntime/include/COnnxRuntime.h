// Minimal declarations of the ONNX Runtime C API, written for Lookalike.
//
// ONNX Runtime exports one symbol, OrtGetApiBase, which leads to `OrtApi`: a table of
// C function pointers that only ever grows at its end, so a function's slot number never
// changes between releases. We load the shared library with dlopen, look the table up
// once, and call the few functions we need by slot through the typed wrappers below.
// Slot numbers are checked against onnxruntime_c_api.h (see ort.c).
#ifndef LOOKALIKE_CONNXRUNTIME_H
#define LOOKALIKE_CONNXRUNTIME_H

#include <stddef.h>
#include <stdint.h>

typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSession OrtSession;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtValue OrtValue;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtTypeInfo OrtTypeInfo;
typedef struct OrtAllocator OrtAllocator;
typedef struct LKOrtApi LKOrtApi;

/// Element types, as numbered by ONNX's TensorProto.DataType.
enum {
    LK_ORT_FLOAT = 1,
    LK_ORT_UINT8 = 2,
    LK_ORT_INT8 = 3,
    LK_ORT_INT32 = 6,
    LK_ORT_INT64 = 7,
    LK_ORT_FLOAT16 = 10,
    LK_ORT_DOUBLE = 11,
};

/// Loads the library at `path` and returns its API table for `api_version`, or NULL with
/// a message in `error`. The library stays loaded for the life of the process.
const LKOrtApi *lk_ort_load(const char *path, uint32_t api_version, char *error, size_t error_len);

/// The version string of a loaded library, e.g. "1.23.2".
const char *lk_ort_version_string(const char *path);

const char *lk_ort_error_message(const LKOrtApi *api, const OrtStatus *status);
void lk_ort_release_status(const LKOrtApi *api, OrtStatus *status);

OrtStatus *lk_ort_create_env(const LKOrtApi *api, int log_level, const char *log_id, OrtEnv **out);
void lk_ort_release_env(const LKOrtApi *api, OrtEnv *env);

OrtStatus *lk_ort_create_session_options(const LKOrtApi *api, OrtSessionOptions **out);
OrtStatus *lk_ort_set_intra_op_threads(const LKOrtApi *api, OrtSessionOptions *options, int threads);
OrtStatus *lk_ort_set_inter_op_threads(const LKOrtApi *api, OrtSessionOptions *options, int threads);
OrtStatus *lk_ort_set_sequential_execution(const LKOrtApi *api, OrtSessionOptions *options);
OrtStatus *lk_ort_set_optimization_all(const LKOrtApi *api, OrtSessionOptions *options);
void lk_ort_release_session_options(const LKOrtApi *api, OrtSessionOptions *options);

OrtStatus *lk_ort_create_session(const LKOrtApi *api, const OrtEnv *env, const char *model_path,
                                 const OrtSessionOptions *options, OrtSession **out);
void lk_ort_release_session(const LKOrtApi *api, OrtSession *session);
OrtStatus *lk_ort_session_input_count(const LKOrtApi *api, const OrtSession *session, size_t *out);
OrtStatus *lk_ort_session_output_count(const LKOrtApi *api, const OrtSession *session, size_t *out);
/// Copies the name of input (or output) `index` into `buffer` (NUL-terminated, truncated to fit).
OrtStatus *lk_ort_session_input_name(const LKOrtApi *api, const OrtSession *session, size_t index,
                                     char *buffer, size_t buffer_len);
OrtStatus *lk_ort_session_output_name(const LKOrtApi *api, const OrtSession *session, size_t index,
                                      char *buffer, size_t buffer_len);
/// Element type and rank of input `index`; dimensions (-1 when symbolic) go to `dims` (up to `dims_len`).
OrtStatus *lk_ort_session_input_info(const LKOrtApi *api, const OrtSession *session, size_t index,
                                     int *element_type, size_t *rank, int64_t *dims, size_t dims_len);

OrtStatus *lk_ort_create_cpu_memory_info(const LKOrtApi *api, OrtMemoryInfo **out);
void lk_ort_release_memory_info(const LKOrtApi *api, OrtMemoryInfo *info);

/// Wraps caller-owned memory as a tensor; the memory must outlive the value.
OrtStatus *lk_ort_create_tensor(const LKOrtApi *api, const OrtMemoryInfo *info, void *data, size_t data_len,
                                const int64_t *shape, size_t rank, int element_type, OrtValue **out);
OrtStatus *lk_ort_tensor_data(const LKOrtApi *api, OrtValue *value, void **out);
/// Element type, rank and dimensions (up to `dims_len`) of a tensor value.
OrtStatus *lk_ort_tensor_info(const LKOrtApi *api, const OrtValue *value, int *element_type, size_t *rank,
                              int64_t *dims, size_t dims_len);
void lk_ort_release_value(const LKOrtApi *api, OrtValue *value);

OrtStatus *lk_ort_run(const LKOrtApi *api, OrtSession *session,
                      const char *const *input_names, const OrtValue *const *inputs, size_t input_count,
                      const char *const *output_names, size_t output_count, OrtValue **outputs);

#endif

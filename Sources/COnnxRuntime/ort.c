// Typed calls into the ONNX Runtime API table by slot number.
// Each slot below was read from the order of `struct OrtApi` in onnxruntime_c_api.h;
// the table is append-only, so these numbers hold for every release we load.
#include "COnnxRuntime.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

enum {
    SLOT_GET_ERROR_MESSAGE = 2,
    SLOT_CREATE_ENV = 3,
    SLOT_CREATE_SESSION = 7,
    SLOT_RUN = 9,
    SLOT_CREATE_SESSION_OPTIONS = 10,
    SLOT_SET_SESSION_EXECUTION_MODE = 13,
    SLOT_SET_GRAPH_OPTIMIZATION_LEVEL = 23,
    SLOT_SET_INTRA_OP_THREADS = 24,
    SLOT_SET_INTER_OP_THREADS = 25,
    SLOT_SESSION_GET_INPUT_COUNT = 30,
    SLOT_SESSION_GET_OUTPUT_COUNT = 31,
    SLOT_SESSION_GET_INPUT_TYPE_INFO = 33,
    SLOT_SESSION_GET_INPUT_NAME = 36,
    SLOT_SESSION_GET_OUTPUT_NAME = 37,
    SLOT_CREATE_TENSOR_WITH_DATA = 49,
    SLOT_GET_TENSOR_MUTABLE_DATA = 51,
    SLOT_CAST_TYPE_INFO_TO_TENSOR_INFO = 55,
    SLOT_GET_TENSOR_ELEMENT_TYPE = 60,
    SLOT_GET_DIMENSIONS_COUNT = 61,
    SLOT_GET_DIMENSIONS = 62,
    SLOT_GET_TENSOR_TYPE_AND_SHAPE = 65,
    SLOT_CREATE_CPU_MEMORY_INFO = 69,
    SLOT_ALLOCATOR_FREE = 76,
    SLOT_GET_ALLOCATOR_WITH_DEFAULT_OPTIONS = 78,
    SLOT_RELEASE_ENV = 92,
    SLOT_RELEASE_STATUS = 93,
    SLOT_RELEASE_MEMORY_INFO = 94,
    SLOT_RELEASE_SESSION = 95,
    SLOT_RELEASE_VALUE = 96,
    SLOT_RELEASE_TYPE_INFO = 98,
    SLOT_RELEASE_TENSOR_TYPE_AND_SHAPE_INFO = 99,
    SLOT_RELEASE_SESSION_OPTIONS = 100,
};

/// Values of the C API's enums that we pass.
enum { ORT_SEQUENTIAL = 0, ORT_ENABLE_ALL = 99, ORT_ARENA_ALLOCATOR = 1, ORT_MEM_TYPE_DEFAULT = 0 };

typedef struct {
    const void *(*get_api)(uint32_t version);
    const char *(*get_version_string)(void);
} ApiBase;

#define FN(api, slot, type) ((type)(((void *const *)(api))[slot]))

static const ApiBase *api_base(const char *path, char *error, size_t error_len) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(error, error_len, "cannot load ONNX Runtime from %s: %s", path, dlerror());
        return NULL;
    }
    const ApiBase *(*get_base)(void) = (const ApiBase *(*)(void))dlsym(handle, "OrtGetApiBase");
    if (get_base == NULL) {
        snprintf(error, error_len, "%s does not export OrtGetApiBase: it is not ONNX Runtime", path);
        return NULL;
    }
    return get_base();
}

const LKOrtApi *lk_ort_load(const char *path, uint32_t api_version, char *error, size_t error_len) {
    const ApiBase *base = api_base(path, error, error_len);
    if (base == NULL) return NULL;
    const void *api = base->get_api(api_version);
    if (api == NULL) {
        snprintf(error, error_len, "ONNX Runtime %s at %s does not offer API version %u (too old)",
                 base->get_version_string(), path, api_version);
        return NULL;
    }
    return (const LKOrtApi *)api;
}

const char *lk_ort_version_string(const char *path) {
    char error[256];
    const ApiBase *base = api_base(path, error, sizeof error);
    return base == NULL ? NULL : base->get_version_string();
}

const char *lk_ort_error_message(const LKOrtApi *api, const OrtStatus *status) {
    return FN(api, SLOT_GET_ERROR_MESSAGE, const char *(*)(const OrtStatus *))(status);
}

void lk_ort_release_status(const LKOrtApi *api, OrtStatus *status) {
    FN(api, SLOT_RELEASE_STATUS, void (*)(OrtStatus *))(status);
}

OrtStatus *lk_ort_create_env(const LKOrtApi *api, int log_level, const char *log_id, OrtEnv **out) {
    return FN(api, SLOT_CREATE_ENV, OrtStatus *(*)(int, const char *, OrtEnv **))(log_level, log_id, out);
}

void lk_ort_release_env(const LKOrtApi *api, OrtEnv *env) {
    FN(api, SLOT_RELEASE_ENV, void (*)(OrtEnv *))(env);
}

OrtStatus *lk_ort_create_session_options(const LKOrtApi *api, OrtSessionOptions **out) {
    return FN(api, SLOT_CREATE_SESSION_OPTIONS, OrtStatus *(*)(OrtSessionOptions **))(out);
}

OrtStatus *lk_ort_set_intra_op_threads(const LKOrtApi *api, OrtSessionOptions *options, int threads) {
    return FN(api, SLOT_SET_INTRA_OP_THREADS, OrtStatus *(*)(OrtSessionOptions *, int))(options, threads);
}

OrtStatus *lk_ort_set_inter_op_threads(const LKOrtApi *api, OrtSessionOptions *options, int threads) {
    return FN(api, SLOT_SET_INTER_OP_THREADS, OrtStatus *(*)(OrtSessionOptions *, int))(options, threads);
}

OrtStatus *lk_ort_set_sequential_execution(const LKOrtApi *api, OrtSessionOptions *options) {
    return FN(api, SLOT_SET_SESSION_EXECUTION_MODE, OrtStatus *(*)(OrtSessionOptions *, int))(options, ORT_SEQUENTIAL);
}

OrtStatus *lk_ort_set_optimization_all(const LKOrtApi *api, OrtSessionOptions *options) {
    return FN(api, SLOT_SET_GRAPH_OPTIMIZATION_LEVEL, OrtStatus *(*)(OrtSessionOptions *, int))(options, ORT_ENABLE_ALL);
}

void lk_ort_release_session_options(const LKOrtApi *api, OrtSessionOptions *options) {
    FN(api, SLOT_RELEASE_SESSION_OPTIONS, void (*)(OrtSessionOptions *))(options);
}

OrtStatus *lk_ort_create_session(const LKOrtApi *api, const OrtEnv *env, const char *model_path,
                                 const OrtSessionOptions *options, OrtSession **out) {
    typedef OrtStatus *(*Fn)(const OrtEnv *, const char *, const OrtSessionOptions *, OrtSession **);
    return FN(api, SLOT_CREATE_SESSION, Fn)(env, model_path, options, out);
}

void lk_ort_release_session(const LKOrtApi *api, OrtSession *session) {
    FN(api, SLOT_RELEASE_SESSION, void (*)(OrtSession *))(session);
}

OrtStatus *lk_ort_session_input_count(const LKOrtApi *api, const OrtSession *session, size_t *out) {
    return FN(api, SLOT_SESSION_GET_INPUT_COUNT, OrtStatus *(*)(const OrtSession *, size_t *))(session, out);
}

OrtStatus *lk_ort_session_output_count(const LKOrtApi *api, const OrtSession *session, size_t *out) {
    return FN(api, SLOT_SESSION_GET_OUTPUT_COUNT, OrtStatus *(*)(const OrtSession *, size_t *))(session, out);
}

static OrtStatus *session_name(const LKOrtApi *api, int slot, const OrtSession *session, size_t index,
                               char *buffer, size_t buffer_len) {
    OrtAllocator *allocator = NULL;
    OrtStatus *status = FN(api, SLOT_GET_ALLOCATOR_WITH_DEFAULT_OPTIONS, OrtStatus *(*)(OrtAllocator **))(&allocator);
    if (status != NULL) return status;
    char *name = NULL;
    typedef OrtStatus *(*Fn)(const OrtSession *, size_t, OrtAllocator *, char **);
    status = FN(api, slot, Fn)(session, index, allocator, &name);
    if (status != NULL) return status;
    snprintf(buffer, buffer_len, "%s", name);
    return FN(api, SLOT_ALLOCATOR_FREE, OrtStatus *(*)(OrtAllocator *, void *))(allocator, name);
}

OrtStatus *lk_ort_session_input_name(const LKOrtApi *api, const OrtSession *session, size_t index,
                                     char *buffer, size_t buffer_len) {
    return session_name(api, SLOT_SESSION_GET_INPUT_NAME, session, index, buffer, buffer_len);
}

OrtStatus *lk_ort_session_output_name(const LKOrtApi *api, const OrtSession *session, size_t index,
                                      char *buffer, size_t buffer_len) {
    return session_name(api, SLOT_SESSION_GET_OUTPUT_NAME, session, index, buffer, buffer_len);
}

static OrtStatus *shape_info(const LKOrtApi *api, const OrtTensorTypeAndShapeInfo *info, int *element_type,
                             size_t *rank, int64_t *dims, size_t dims_len) {
    typedef OrtStatus *(*TypeFn)(const OrtTensorTypeAndShapeInfo *, int *);
    OrtStatus *status = FN(api, SLOT_GET_TENSOR_ELEMENT_TYPE, TypeFn)(info, element_type);
    if (status != NULL) return status;
    typedef OrtStatus *(*CountFn)(const OrtTensorTypeAndShapeInfo *, size_t *);
    status = FN(api, SLOT_GET_DIMENSIONS_COUNT, CountFn)(info, rank);
    if (status != NULL) return status;
    size_t count = *rank < dims_len ? *rank : dims_len;
    typedef OrtStatus *(*DimsFn)(const OrtTensorTypeAndShapeInfo *, int64_t *, size_t);
    return FN(api, SLOT_GET_DIMENSIONS, DimsFn)(info, dims, count);
}

OrtStatus *lk_ort_session_input_info(const LKOrtApi *api, const OrtSession *session, size_t index,
                                     int *element_type, size_t *rank, int64_t *dims, size_t dims_len) {
    OrtTypeInfo *type_info = NULL;
    typedef OrtStatus *(*InfoFn)(const OrtSession *, size_t, OrtTypeInfo **);
    OrtStatus *status = FN(api, SLOT_SESSION_GET_INPUT_TYPE_INFO, InfoFn)(session, index, &type_info);
    if (status != NULL) return status;
    const OrtTensorTypeAndShapeInfo *tensor_info = NULL;
    typedef OrtStatus *(*CastFn)(const OrtTypeInfo *, const OrtTensorTypeAndShapeInfo **);
    status = FN(api, SLOT_CAST_TYPE_INFO_TO_TENSOR_INFO, CastFn)(type_info, &tensor_info);
    if (status == NULL && tensor_info != NULL) {
        status = shape_info(api, tensor_info, element_type, rank, dims, dims_len);
    } else if (status == NULL) {
        *element_type = 0;
        *rank = 0;
    }
    FN(api, SLOT_RELEASE_TYPE_INFO, void (*)(OrtTypeInfo *))(type_info);
    return status;
}

OrtStatus *lk_ort_create_cpu_memory_info(const LKOrtApi *api, OrtMemoryInfo **out) {
    typedef OrtStatus *(*Fn)(int, int, OrtMemoryInfo **);
    return FN(api, SLOT_CREATE_CPU_MEMORY_INFO, Fn)(ORT_ARENA_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, out);
}

void lk_ort_release_memory_info(const LKOrtApi *api, OrtMemoryInfo *info) {
    FN(api, SLOT_RELEASE_MEMORY_INFO, void (*)(OrtMemoryInfo *))(info);
}

OrtStatus *lk_ort_create_tensor(const LKOrtApi *api, const OrtMemoryInfo *info, void *data, size_t data_len,
                                const int64_t *shape, size_t rank, int element_type, OrtValue **out) {
    typedef OrtStatus *(*Fn)(const OrtMemoryInfo *, void *, size_t, const int64_t *, size_t, int, OrtValue **);
    return FN(api, SLOT_CREATE_TENSOR_WITH_DATA, Fn)(info, data, data_len, shape, rank, element_type, out);
}

OrtStatus *lk_ort_tensor_data(const LKOrtApi *api, OrtValue *value, void **out) {
    return FN(api, SLOT_GET_TENSOR_MUTABLE_DATA, OrtStatus *(*)(OrtValue *, void **))(value, out);
}

OrtStatus *lk_ort_tensor_info(const LKOrtApi *api, const OrtValue *value, int *element_type, size_t *rank,
                              int64_t *dims, size_t dims_len) {
    OrtTensorTypeAndShapeInfo *info = NULL;
    typedef OrtStatus *(*Fn)(const OrtValue *, OrtTensorTypeAndShapeInfo **);
    OrtStatus *status = FN(api, SLOT_GET_TENSOR_TYPE_AND_SHAPE, Fn)(value, &info);
    if (status != NULL) return status;
    status = shape_info(api, info, element_type, rank, dims, dims_len);
    FN(api, SLOT_RELEASE_TENSOR_TYPE_AND_SHAPE_INFO, void (*)(OrtTensorTypeAndShapeInfo *))(info);
    return status;
}

void lk_ort_release_value(const LKOrtApi *api, OrtValue *value) {
    FN(api, SLOT_RELEASE_VALUE, void (*)(OrtValue *))(value);
}

OrtStatus *lk_ort_run(const LKOrtApi *api, OrtSession *session,
                      const char *const *input_names, const OrtValue *const *inputs, size_t input_count,
                      const char *const *output_names, size_t output_count, OrtValue **outputs) {
    typedef OrtStatus *(*Fn)(OrtSession *, const void *, const char *const *, const OrtValue *const *, size_t,
                             const char *const *, size_t, OrtValue **);
    return FN(api, SLOT_RUN, Fn)(session, NULL, input_names, inputs, input_count, output_names, output_count,
                                 outputs);
}

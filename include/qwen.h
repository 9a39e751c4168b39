/*
 * libqwen: on-device inference for the Qwen model family. Plain C API.
 *
 * Conventions
 *  - Every int-returning function returns 0 (or a documented non-negative count) on success and a
 *    negative qwen_status on failure; qwen_last_error() then describes the failure.
 *  - Nothing aborts the host: invalid arguments (NULL pointers, unknown or freed handles, bad sizes)
 *    are reported as QWEN_ERR_INVALID_ARGUMENT.
 *  - Threading: a qwen_model is immutable after loading and may be shared by any number of contexts
 *    used from different threads at once. A qwen_context must be used by one thread at a time
 *    (qwen_context_cancel excepted).
 *  - Strings are UTF-8 and NUL-terminated unless a length is given. Returned strings are owned by
 *    the library.
 */
#ifndef QWEN_H
#define QWEN_H

#include <stdint.h>

/* Version of this header; qwen_version() returns the library's. The SONAME (libqwen.so.0) changes only
 * when the ABI breaks. */
#define QWEN_VERSION_MAJOR 0
#define QWEN_VERSION_MINOR 1
#define QWEN_VERSION_PATCH 0
#define QWEN_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qwen_model qwen_model;
typedef struct qwen_context qwen_context;

typedef enum {
    QWEN_OK = 0,
    QWEN_ERR_INVALID_ARGUMENT = -1,
    QWEN_ERR_IO = -2,
    QWEN_ERR_FORMAT = -3,
    QWEN_ERR_UNSUPPORTED = -4,
    QWEN_ERR_OUT_OF_MEMORY = -5,
    QWEN_ERR_CONTEXT_FULL = -6,
    QWEN_ERR_CANCELLED = -7,
    QWEN_ERR_BUFFER_TOO_SMALL = -8
} qwen_status;

/* ---- Library ---- */

/* Library version, e.g. "0.1.0". Static string. */
const char *qwen_version(void);

/* Message of the last failure on the calling thread ("" if none). Valid until the next failing call
 * on this thread. */
const char *qwen_last_error(void);

/* Short name of a status code, e.g. "QWEN_ERR_FORMAT". Static string. */
const char *qwen_status_string(int status);

/* ---- Models ---- */

typedef struct {
    int32_t n_threads; /* default threads for contexts that do not set any; 0 = cores this process may use */
    int32_t use_mmap;  /* 1 = memory-map weights (default), 0 = read them into memory */
} qwen_model_params;

qwen_model_params qwen_model_default_params(void);

/* Loads a GGUF file or a Hugging Face folder (config.json, *.safetensors, tokenizer.json).
 * params NULL = defaults. On success *out owns the model: release it with qwen_model_free.
 * Errors: IO (missing/unreadable), FORMAT (malformed or truncated file, missing tensor),
 * UNSUPPORTED (unknown architecture or weight type), OUT_OF_MEMORY. */
int qwen_model_load(const char *path, const qwen_model_params *params, qwen_model **out);

/* Releases a model. Contexts made from it keep it alive until they are freed. NULL is ignored. */
void qwen_model_free(qwen_model *model);

/* Logits per position (the output head's rows; may exceed the tokenizer's token count). -1 if invalid. */
int32_t qwen_model_n_vocab(const qwen_model *model);

/* Hidden size. -1 if the handle is invalid. */
int32_t qwen_model_n_embd(const qwen_model *model);

/* Context length the model was trained with. -1 if the handle is invalid. */
int32_t qwen_model_n_ctx_train(const qwen_model *model);

/* 1 if token ends a generation (end-of-text, <|im_end|>), 0 if not, negative on error. */
int qwen_token_is_eog(const qwen_model *model, int32_t token);

typedef struct {
    char architecture[32]; /* "qwen2", "qwen3", ... NUL-terminated */
    char weight_type[16];  /* the file's quantization mix ("Q4_K_M", "Q8_0", ...), else the main weight type */
    int64_t n_params;      /* elements of all tensors */
    int64_t n_bytes;       /* bytes of all tensors */
    int32_t n_ctx_train, n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim;
    int32_t token_bos, token_eos, token_eot, token_pad; /* -1 if the model has none; eot = <|im_end|> */
} qwen_model_details;

/* Describes a model. */
int qwen_model_info(const qwen_model *model, qwen_model_details *out);

/* ---- Tokenizer ---- */

/* Tokenizes text. parse_special != 0 turns special-token text such as "<|im_start|>" into those tokens.
 * Returns the token count; QWEN_ERR_BUFFER_TOO_SMALL if capacity is short (then *n_needed, if non-NULL,
 * gets the count). tokens may be NULL when capacity is 0. */
int qwen_tokenize(const qwen_model *model, const char *text, int32_t parse_special, int32_t *tokens,
                  int32_t capacity, int32_t *n_needed);

/* Turns tokens back into bytes (special tokens as their text). Returns the number of bytes written,
 * not counting the terminating NUL, which is added when there is room. QWEN_ERR_BUFFER_TOO_SMALL if
 * capacity is short (then *n_needed gets the byte count). Unknown token ids: INVALID_ARGUMENT. */
int qwen_detokenize(const qwen_model *model, const int32_t *tokens, int32_t n, char *buf, int32_t capacity,
                    int32_t *n_needed);

/* ---- Contexts ---- */

/* KV cache storage: F16 (default), F32, or Q8_0 (half of F16's memory; needs a head size that is a
 * multiple of 32, which every released Qwen model has) */
typedef enum { QWEN_KV_F16 = 0, QWEN_KV_F32 = 1, QWEN_KV_Q8_0 = 2 } qwen_kv_type;

typedef struct {
    int32_t n_ctx;     /* positions the KV cache holds; 0 = min(4096, training length) */
    int32_t n_threads; /* 0 = the model's n_threads, else the cores this process may use */
    int32_t n_batch;   /* tokens per forward pass while evaluating prompts (default 512) */
    int32_t kv_type;   /* qwen_kv_type of the KV cache (default QWEN_KV_F16) */
    int32_t sliding_window; /* 1: when a chat outgrows n_ctx, drop its oldest turns (the system prompt stays) and
                               move the kept keys instead of recomputing them; generation that fills the cache
                               drops the older half after the system prompt. 0 (default): QWEN_ERR_CONTEXT_FULL */
} qwen_context_params;

qwen_context_params qwen_context_default_params(void);

/* Creates a context (KV cache, scratch memory, thread pool). params NULL = defaults.
 * Errors: INVALID_ARGUMENT, OUT_OF_MEMORY (the KV cache does not fit; the model stays usable). */
int qwen_context_new(qwen_model *model, const qwen_context_params *params, qwen_context **out);

/* Releases a context and its threads. NULL is ignored. */
void qwen_context_free(qwen_context *ctx);

/* Empties the KV cache (and clears a pending cancellation). */
int qwen_context_reset(qwen_context *ctx);

/* Appends tokens at the next positions; writes the last position's logits (qwen_model_n_vocab floats)
 * if logits != NULL. QWEN_ERR_CONTEXT_FULL (nothing evaluated) if the tokens do not fit. */
int qwen_context_eval_tokens(qwen_context *ctx, const int32_t *tokens, int32_t n, float *logits);

/* Tokens in the KV cache. -1 if the handle is invalid. */
int32_t qwen_context_n_past(const qwen_context *ctx);

/* Capacity of the KV cache in tokens. -1 if the handle is invalid. */
int32_t qwen_context_n_ctx(const qwen_context *ctx);

/* Tokens run through the model since the context was created (reused prefixes are not counted again). */
int64_t qwen_context_n_evaluated(const qwen_context *ctx);

/* Copies the logits of the last evaluated position (qwen_model_n_vocab floats) to out. Returns the count;
 * BUFFER_TOO_SMALL if capacity is short; INVALID_ARGUMENT if nothing has been evaluated. */
int qwen_context_logits(qwen_context *ctx, float *out, int32_t capacity);

/* Copies the final hidden state (after the output norm; qwen_model_n_embd floats) of the last evaluated
 * position, e.g. to embed or score text. Same rules as qwen_context_logits. */
int qwen_context_embedding(qwen_context *ctx, float *out, int32_t capacity);

/* Saving and restoring a context (tokens, KV cache, last logits), to resume a conversation or reuse a
 * long system prompt. A state loads only into a context of a model with the same shape and KV cache type
 * (INVALID_ARGUMENT otherwise, the context unchanged; CONTEXT_FULL if it holds more tokens than n_ctx). */
int64_t qwen_context_state_size(const qwen_context *ctx); /* bytes qwen_context_state_save writes */
int64_t qwen_context_state_save(qwen_context *ctx, void *buf, int64_t capacity); /* bytes written */
int qwen_context_state_load(qwen_context *ctx, const void *buf, int64_t size);
int qwen_context_state_save_file(qwen_context *ctx, const char *path);
int qwen_context_state_load_file(qwen_context *ctx, const char *path);

/* Makes the call running on ctx (or, if none, the next one) return QWEN_ERR_CANCELLED soon.
 * The only context function that may be called from another thread while ctx is in use. */
int qwen_context_cancel(qwen_context *ctx);

/* ---- Generation ---- */

typedef struct {
    float temperature;     /* <= 0: greedy. Default 0.8 */
    int32_t top_k;         /* 0 = off. Default 40 */
    float top_p;           /* 1 = off. Default 0.95 */
    float min_p;           /* 0 = off. Default 0.05 */
    float repeat_penalty;  /* 1 = off (default) */
    int32_t penalty_last_n;/* tokens the penalties look back over. Default 64 */
    uint64_t seed;         /* UINT64_MAX (default) = random */
    float typical_p;       /* locally typical sampling, 1 = off (default) */
    float presence_penalty;  /* subtracted once from tokens seen in the window, 0 = off (default) */
    float frequency_penalty; /* subtracted per occurrence in the window, 0 = off (default) */
} qwen_sampling_params;

qwen_sampling_params qwen_sampling_default_params(void);

/* Called for each generated token. piece is UTF-8 and NUL-terminated; bytes of a character split
 * across tokens are held back until complete (piece may be ""). A final call with token -1 delivers
 * held-back bytes at the end. Return non-zero to stop. */
typedef int (*qwen_token_callback)(int32_t token, const char *piece, void *user_data);

/* Samples and evaluates up to max_tokens tokens after what ctx holds (a prompt must have been
 * evaluated). Stops at an end-of-generation token (not reported, not evaluated) or when cb returns
 * non-zero. sp NULL = defaults; cb may be NULL. Returns the number of tokens generated (>= 0).
 * QWEN_ERR_CONTEXT_FULL if the context fills up (tokens so far were delivered), QWEN_ERR_CANCELLED. */
int qwen_generate(qwen_context *ctx, const qwen_sampling_params *sp, int32_t max_tokens, qwen_token_callback cb,
                  void *user_data);

/* As qwen_generate, and stops when the generated text reaches one of the n_stop NUL-terminated stop
 * strings (which may span tokens): the stop string and what follows are not delivered. Text that could be
 * the beginning of a stop string is held back until it is known not to be. stop may be NULL if n_stop is 0. */
int qwen_generate_ex(qwen_context *ctx, const qwen_sampling_params *sp, int32_t max_tokens, const char *const *stop,
                     int32_t n_stop, qwen_token_callback cb, void *user_data);

/* ---- Chat ---- */

typedef struct {
    const char *role;    /* "system", "user", "assistant", ... */
    const char *content;
} qwen_chat_message;

/* Applies the model's chat template (ChatML for Qwen, with the model's default system message if it
 * has one) to the whole conversation and evaluates it. Only what is not already cached is computed:
 * pass the full history each turn. add_generation_prompt appends the assistant header. */
int qwen_chat_eval(qwen_context *ctx, const qwen_chat_message *messages, int32_t n, int32_t add_generation_prompt);

/* Renders messages with the model's chat template into buf (same size rules as qwen_detokenize). */
int qwen_chat_apply_template(const qwen_model *model, const qwen_chat_message *messages, int32_t n,
                             int32_t add_generation_prompt, char *buf, int32_t capacity, int32_t *n_needed);

/* Options of qwen_chat_eval_ex. Start from qwen_chat_default_options(). */
typedef struct {
    int32_t enable_thinking; /* Qwen3 chat template: 1 (default) lets the model reason in a <think> block before
                                answering; 0 appends an empty "<think>\n\n</think>\n\n" to the generation prompt
                                (the template's enable_thinking=False), so it answers directly. Other templates
                                ignore it. Either way the Qwen3 template renders earlier assistant turns
                                without their <think> blocks (even empty ones), so the next turn re-evaluates
                                from the previous reply on. */
} qwen_chat_options;

qwen_chat_options qwen_chat_default_options(void);

/* As qwen_chat_eval, with options (opts NULL = defaults). INVALID_ARGUMENT if enable_thinking is not 0 or 1. */
int qwen_chat_eval_ex(qwen_context *ctx, const qwen_chat_message *messages, int32_t n, int32_t add_generation_prompt,
                      const qwen_chat_options *opts);

/* ---- Converting and quantizing model files ---- */

typedef struct {
    const char *type;  /* llama.cpp's file type names: "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                          "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"
                          (case ignored). Default "Q8_0" */
    int32_t n_threads; /* 0 = the cores this process may use */
    int32_t pure;      /* 1: every quantizable tensor gets the type's default block type, without the per-tensor
                          choices llama-quantize makes for mixes such as Q4_K_M (0, default) */
} qwen_quantize_params;

qwen_quantize_params qwen_quantize_default_params(void);

/* Writes the GGUF file at input as a GGUF file of another weight type, as llama.cpp's llama-quantize does: the
 * same per-tensor types and the same blocks, metadata copied. Tensors of another quantized type are converted
 * through F32 (which loses precision). The output is written to a temporary file and renamed, so a failure
 * leaves no partial file. Errors: IO, FORMAT, UNSUPPORTED (an unknown type name), INVALID_ARGUMENT. */
int qwen_model_quantize(const char *input, const char *output, const qwen_quantize_params *params);

#ifdef __cplusplus
}
#endif

#endif /* QWEN_H */

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

/* Writes the encoder of a first-generation Qwen-VL or Qwen-Audio Hugging Face folder (input) as a projector GGUF
 * of libqwen's own projector types "qwenvl_resampler" / "qwenaudio" (general.architecture "clip"; llama.cpp has no
 * such projectors), to load with qwen_model_load_projector beside the text GGUF qwen_model_quantize writes from the
 * same folder. Matrices take params->type's block type where their rows are whole blocks, else F16; norms, biases,
 * position tables and a few small tensors stay F32 (docs/models.md). Errors: IO, FORMAT, UNSUPPORTED (another kind of
 * folder: the projectors of Qwen2-VL, Qwen2.5-VL and Qwen2-Audio come from llama.cpp's convert_hf_to_gguf.py
 * --mmproj), INVALID_ARGUMENT. */
int qwen_model_export_projector(const char *input, const char *output, const qwen_quantize_params *params);

/* ---- Audio (Qwen2-Audio) ---- */

/* This header declares the media API (images, audio, prompts with media); wrappers test these macros. */
#define QWEN_VISION_API 1
#define QWEN_AUDIO_API 1

/* A sound clip, decoded and converted to what the audio models take: mono (the mean of the channels), 16 kHz
 * (libsoxr, "HQ" recipe: librosa's default resampler, so the samples equal librosa.load(path, sr=16000)).
 * Immutable; may be used by any number of contexts and threads. */
typedef struct qwen_audio qwen_audio;

typedef struct {
    double max_seconds; /* longest clip accepted (default 600 s, at most 86400); a file is checked against the length
                           its header announces before it is decoded, and while decoding */
} qwen_audio_params;

qwen_audio_params qwen_audio_default_params(void);

/* Decodes an audio file with libsndfile: WAV (PCM 8/16/24/32 bit, float), FLAC, OGG/Vorbis, Opus, MP3 and what
 * else the installed libsndfile reads; any sample rate (1000 Hz ... 1.536 MHz) and channel count (1 ... 256).
 * Errors: IO (missing, unreadable), FORMAT (not audio, corrupt, no frames), INVALID_ARGUMENT (too long, samples
 * that are not finite). */
int qwen_audio_load(const char *path, qwen_audio **out);
int qwen_audio_load_ex(const char *path, const qwen_audio_params *params, qwen_audio **out); /* params NULL = defaults */

/* A clip from interleaved float samples (n_frames x channels, nominally in [-1, 1]) at sample_rate Hz. */
int qwen_audio_from_pcm_f32(const float *samples, int64_t n_frames, int32_t channels, int32_t sample_rate,
                            qwen_audio **out);
int qwen_audio_from_pcm_f32_ex(const float *samples, int64_t n_frames, int32_t channels, int32_t sample_rate,
                               const qwen_audio_params *params, qwen_audio **out);

/* Releases a clip. NULL is ignored. */
void qwen_audio_free(qwen_audio *audio);

/* Seconds of audio (after conversion to 16 kHz); negative on error. */
double qwen_audio_duration(const qwen_audio *audio);

/* The embedding rows (<|AUDIO|> tokens) the clip takes in a prompt of this model, without computing them:
 * ((F - 1) / 2 + 1 - 2) / 2 + 1 for F = ceil(samples / 160) mel frames per 30-second window, summed over the
 * windows. Clips longer than 30 s are encoded as consecutive 30-second windows whose rows are concatenated
 * (transformers' processor keeps only the first window). UNSUPPORTED if the model takes no audio. */
int32_t qwen_audio_n_tokens(const qwen_model *model, const qwen_audio *audio);

/* Embeddings the LLM receives for this clip: n_tokens x n_embd floats, row-major, computed on ctx's threads (once:
 * the context keeps them for prompts that use the clip). capacity counts floats; BUFFER_TOO_SMALL (with
 * *n_tokens set) if it is short; out may be NULL when capacity is 0. Returns n_tokens. INVALID_ARGUMENT if the
 * clip is too short to give a row (under 20 ms). */
int qwen_audio_embed(qwen_context *ctx, const qwen_audio *audio, float *out, int64_t capacity, int32_t *n_tokens);

/* ---- Images (Qwen2-VL, Qwen2.5-VL, Qwen-VL) ---- */

/* A decoded image: 8-bit RGB, as the reference pipeline sees the file (Pillow decoding, transformers' load_image
 * EXIF orientation, the image processor's convert_to_rgb compositing transparency onto white). Immutable apart
 * from qwen_image_set_pixel_bounds; may be shared by contexts and threads. */
typedef struct qwen_image qwen_image;

/* Attaches llama.cpp's projector GGUF ("mmproj", written by convert_hf_to_gguf.py --mmproj) to a model loaded from
 * its text GGUF: a vision encoder (Qwen2-VL, Qwen2.5-VL) or an audio encoder (Qwen2-Audio). Replaces an encoder of
 * the same kind. Call before creating contexts or sharing the model between threads. Errors: IO, FORMAT,
 * UNSUPPORTED (not a projector, an unknown projector type), INVALID_ARGUMENT (its output size is not the model's
 * hidden size). A Hugging Face folder of Qwen2-VL / Qwen2.5-VL needs none: its vision tower loads with it. */
int qwen_model_load_projector(qwen_model *model, const char *path);

/* 1 if the model takes images (a vision tower from its folder or a projector), 0 if not, negative on error. */
int qwen_model_has_vision(const qwen_model *model);
/* 1 if the model takes audio (an audio tower from its folder or a projector), 0 if not, negative on error. */
int qwen_model_has_audio(const qwen_model *model);

typedef struct {
    int64_t max_pixels;        /* a decoded image with more pixels is refused (UNSUPPORTED) before its pixel memory is
                                  allocated; 0 (default) = 89478485, Pillow's decompression-bomb limit */
    int32_t apply_orientation; /* 1 (default): apply the EXIF orientation as transformers' load_image does; 0: no */
} qwen_image_params;

qwen_image_params qwen_image_default_params(void);

/* Decodes a PNG (libpng: gray, gray+alpha, palette, RGB, RGBA; 1-16 bit; interlaced; tRNS) or JPEG (libjpeg-turbo:
 * baseline, progressive; gray, YCbCr, CMYK) file. 16-bit samples keep their high byte (Pillow does so for color;
 * for 16-bit gray, where Pillow clips values above 255 to white, libqwen keeps the high byte too). Errors: IO,
 * FORMAT (not PNG/JPEG, corrupt, truncated), UNSUPPORTED (over the pixel limit, 12-bit JPEG). */
int qwen_image_load(const char *path, qwen_image **out);
int qwen_image_load_ex(const char *path, const qwen_image_params *params, qwen_image **out); /* params NULL = defaults */

/* The same from PNG or JPEG bytes in memory. */
int qwen_image_decode(const void *data, int64_t size, const qwen_image_params *params, qwen_image **out);

/* An image from the host's own decoder: width x height pixels of 3 bytes (R, G, B), rows top to bottom. */
int qwen_image_from_rgb8(const uint8_t *rgb, int32_t width, int32_t height, qwen_image **out);

/* Releases an image. NULL is ignored. */
void qwen_image_free(qwen_image *img);

/* Size in pixels (after the EXIF orientation); -1 if the handle is invalid. */
int32_t qwen_image_width(const qwen_image *img);
int32_t qwen_image_height(const qwen_image *img);

/* Copies the image's width x height x 3 RGB bytes (rows top to bottom) into out, as decoded (to draw on it, say).
 * Returns the byte count; BUFFER_TOO_SMALL if capacity is short (out may be NULL when capacity is 0). */
int64_t qwen_image_copy_rgb8(const qwen_image *img, uint8_t *out, int64_t capacity);

/* Bounds on the pixel count this image is resized to (the image processor's min_pixels / max_pixels, which set its
 * token count: one token per 28 x 28 pixels); 0 = the model's (preprocessor_config.json, else 3136 / 1003520). */
int qwen_image_set_pixel_bounds(qwen_image *img, int64_t min_pixels, int64_t max_pixels);

/* The embedding rows (<|image_pad|> tokens) the image takes in a prompt of this model, without computing them.
 * UNSUPPORTED if the model takes no images. */
int32_t qwen_image_n_tokens(const qwen_model *model, const qwen_image *img);

/* Embeddings the LLM receives for this image (after the merger): n_tokens x n_embd floats, row-major, computed on
 * ctx's threads once (the context keeps them, by content, for the prompts that use the image). capacity counts
 * floats; BUFFER_TOO_SMALL (with *n_tokens set) if it is short; out may be NULL when capacity is 0. Returns
 * n_tokens. */
int qwen_image_embed(qwen_context *ctx, const qwen_image *img, float *out, int64_t capacity, int32_t *n_tokens);

/* ---- Grounding (Qwen-VL) ---- */

/* A box the first-generation Qwen-VL names in an answer, "<ref>the dog</ref><box>(x1,y1),(x2,y2)</box>". */
typedef struct {
    int32_t x1, y1, x2, y2; /* pixels of the image: v / 1000 * size truncated toward zero, not clamped (as the
                               reference); the 0-1000 values when the image size given is 0 x 0 */
    int32_t ref_offset;     /* the referring text right before the box, trimmed: its byte offset in text, or -1 */
    int32_t ref_length;     /* its length in bytes (0 when ref_offset is -1) */
} qwen_box;

/* Extracts the boxes of a Qwen-VL answer as the original tokenization_qwen.py does (_fetch_all_box_with_ref): each
 * <box> of four integers, with the <ref> that comes right before it. Boxes that are not four integers are skipped
 * and an unclosed tag ends the parse (the reference raises instead), so partial answers give their complete boxes.
 * Writes up to capacity boxes and returns how many the text has (call with capacity 0 to count). image_width and
 * image_height are both positive (map to pixels) or both 0. */
int32_t qwen_grounding_boxes(const char *text, int32_t image_width, int32_t image_height, qwen_box *boxes, int32_t capacity);

/* ---- Prompts and chats with media ---- */

/* Evaluates text in the model's own prompt syntax with media placeholders, appended after what ctx holds (as
 * qwen_context_eval_tokens): Qwen2-VL "<|vision_start|><|image_pad|><|vision_end|>" with one <|image_pad|> per
 * image, Qwen2-Audio "<|audio_bos|><|AUDIO|><|audio_eos|>" with one <|AUDIO|> per clip. Each placeholder is
 * replaced by its media's rows (an image's <|image_pad|> becomes as many positions as it has tokens, with the
 * reference's M-RoPE positions); media are consumed in order of appearance, images and clips each in their own
 * list. The counts must match the placeholders (INVALID_ARGUMENT otherwise); UNSUPPORTED if the model takes no
 * media of a kind given. Writes the last position's logits if logits != NULL. */
int qwen_context_eval_prompt(qwen_context *ctx, const char *text, const qwen_image *const *images, int32_t n_images,
                             const qwen_audio *const *audios, int32_t n_audios, float *logits);

/* Chat with images and clips: as qwen_chat_eval_ex, where message contents may hold "<image>" markers (replaced by
 * the model's image syntax, "<|vision_start|><|image_pad|><|vision_end|>") and "<audio>" markers (replaced as
 * Qwen2-Audio-Instruct's template does: "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n", N counting the clips of
 * the conversation), or that syntax itself; media are taken
 * in order of appearance over the whole conversation. Pass the full history with all its media each turn: the
 * cached prefix (media compared by content) and the context's cached embeddings are reused, so earlier images
 * are not encoded again. The sliding window does not apply to chats with media. opts NULL = defaults. */
int qwen_chat_eval_media(qwen_context *ctx, const qwen_chat_message *messages, int32_t n, const qwen_image *const *images,
                         int32_t n_images, const qwen_audio *const *audios, int32_t n_audios, int32_t add_generation_prompt,
                         const qwen_chat_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* QWEN_H */

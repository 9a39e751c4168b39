/*
 * common.h: what the samples share: timing, error messages, streaming the answer, the chat options, and the
 * model set-up and the media chat of qwen-vl and qwen-audio. Include it after the feature-test macro
 * (_POSIX_C_SOURCE / _GNU_SOURCE), which <time.h> needs for clock_gettime.
 */
#ifndef QWEN_SAMPLES_COMMON_H
#define QWEN_SAMPLES_COMMON_H

#include <qwen.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints "PROGRAM: WHAT: <the library's last error>"; returns 1, the exit status. */
static inline int fail(const char *program, const char *what) {
    fprintf(stderr, "%s: %s: %s\n", program, what, qwen_last_error());
    return 1;
}

/* The answer so far (for programs that look at it afterwards). */
typedef struct {
    char *text;
    size_t length, capacity;
} answer_text;

/* A qwen_token_callback that streams the answer to stdout, and keeps it in user_data (an answer_text) if not NULL. */
static inline int print_piece(int32_t token, const char *piece, void *user_data) {
    (void)token;
    fputs(piece, stdout);
    fflush(stdout);
    answer_text *answer = user_data;
    size_t n = strlen(piece);
    if (answer && answer->length + n + 1 > answer->capacity) {
        size_t capacity = (answer->length + n + 1) * 2;
        char *grown = realloc(answer->text, capacity);
        if (!grown) return 1; /* stop generating */
        answer->text = grown;
        answer->capacity = capacity;
    }
    if (answer) {
        memcpy(answer->text + answer->length, piece, n + 1);
        answer->length += n;
    }
    return 0;
}

/* ---- the options of qwen-chat, qwen-vl and qwen-audio ---- */

typedef struct {
    const char *model_path, *prompt, *system;
    int max_tokens;
    qwen_sampling_params sampling;
    qwen_context_params context; /* -t sets its n_threads (qwen-vl and qwen-audio: the model's too), -c its n_ctx */
    const char *mmproj;          /* qwen-vl and qwen-audio: --mmproj */
} chat_args;

static inline chat_args chat_args_defaults(void) {
    chat_args args = {.max_tokens = 256,
                      .sampling = qwen_sampling_default_params(),
                      .context = qwen_context_default_params()};
    return args;
}

/* Takes -m, -p, -s/--system, -n, --temp, --seed, -t and -c; returns 0 for any other option. */
static inline int chat_args_set(chat_args *args, const char *option, const char *value) {
    if (!strcmp(option, "-m")) args->model_path = value;
    else if (!strcmp(option, "-p")) args->prompt = value;
    else if (!strcmp(option, "-s") || !strcmp(option, "--system")) args->system = value;
    else if (!strcmp(option, "-n")) args->max_tokens = atoi(value);
    else if (!strcmp(option, "--temp")) args->sampling.temperature = (float)atof(value);
    else if (!strcmp(option, "--seed")) args->sampling.seed = strtoull(value, NULL, 10);
    else if (!strcmp(option, "-t")) args->context.n_threads = atoi(value);
    else if (!strcmp(option, "-c")) args->context.n_ctx = atoi(value);
    else return 0;
    return 1;
}

/* ---- qwen-vl and qwen-audio ---- */

/* A walk over the command line of qwen-vl or qwen-audio, where every option but -h/--help takes a value. */
typedef struct {
    int argc;
    char **argv;
    int next;                   /* index of the next word: start at 1 */
    void (*usage)(void);        /* printed before exiting for -h/--help (status 0) or an option without a value (2) */
    const char *option, *value; /* the program's own option that next_option stopped at */
} option_walk;

/* Takes the chat options and --mmproj into args until the next of the program's own options: returns 1 with it in
 * walk->option and walk->value, or 0 at the end of the command line. */
static inline int next_option(option_walk *walk, chat_args *args) {
    while (walk->next < walk->argc) {
        const char *option = walk->argv[walk->next];
        if (!strcmp(option, "-h") || !strcmp(option, "--help")) { walk->usage(); exit(0); }
        if (walk->next + 1 >= walk->argc) { walk->usage(); exit(2); }
        const char *value = walk->argv[walk->next + 1];
        walk->next += 2;
        if (!strcmp(option, "--mmproj")) args->mmproj = value;
        else if (!chat_args_set(args, option, value)) {
            walk->option = option;
            walk->value = value;
            return 1;
        }
    }
    return 0;
}

/* Loads the model of -m (with -t threads) and the projector of --mmproj, if any. Returns 0, or 1 after printing why
 * not; the caller frees *model either way. */
static inline int load_model(const char *program, const chat_args *args, qwen_model **model) {
    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = args->context.n_threads;
    if (qwen_model_load(args->model_path, &mp, model) != QWEN_OK) return fail(program, args->model_path);
    if (args->mmproj && qwen_model_load_projector(*model, args->mmproj) != QWEN_OK) return fail(program, args->mmproj);
    return 0;
}

/* Describes the model (loading began at load_start) in *info and on stderr, and creates its context. Returns 0, or
 * 1 after printing why not. */
static inline int open_context(const char *program, qwen_model *model, const chat_args *args, double load_start,
                               qwen_model_details *info, qwen_context **ctx) {
    memset(info, 0, sizeof *info);
    if (qwen_model_info(model, info) != QWEN_OK) return fail(program, "qwen_model_info");
    fprintf(stderr, "model: %s, %s, %.1fM parameters, loaded in %.2f s\n", info->architecture, info->weight_type,
            (double)info->n_params / 1e6, now_seconds() - load_start);
    if (qwen_context_new(model, &args->context, ctx) != QWEN_OK) return fail(program, "context");
    return 0;
}

/* Asks about the images and clips: the chat is the system prompt (if any) and one user message of one marker per
 * image or clip, then the prompt. Streams the answer to stdout (and keeps it in *answer if not NULL), then prints
 * prompt and generation speed to stderr. Returns 0, or 1 after printing why not. */
static inline int answer_with_media(const char *program, qwen_context *ctx, const chat_args *args, const char *marker,
                                    const qwen_image *const *images, int n_images, const qwen_audio *const *clips,
                                    int n_clips, answer_text *answer) {
    char *content = malloc(strlen(args->prompt) + 1 + (size_t)(n_images + n_clips) * strlen(marker));
    if (!content) { fprintf(stderr, "%s: out of memory\n", program); return 1; }
    content[0] = 0;
    for (int i = 0; i < n_images + n_clips; i++) strcat(content, marker);
    strcat(content, args->prompt);
    qwen_chat_message chat[2];
    int n = 0;
    if (args->system) chat[n++] = (qwen_chat_message){"system", args->system};
    chat[n++] = (qwen_chat_message){"user", content};

    int past0 = qwen_context_n_past(ctx);
    double t = now_seconds();
    int rc = qwen_chat_eval_media(ctx, chat, n, images, n_images, clips, n_clips, 1, NULL);
    double prompt_seconds = now_seconds() - t;
    free(content);
    if (rc != QWEN_OK) return fail(program, "prompt");
    int prompt_tokens = qwen_context_n_past(ctx) - past0;
    t = now_seconds();
    int generated = qwen_generate(ctx, &args->sampling, args->max_tokens, print_piece, answer);
    double gen_seconds = now_seconds() - t;
    printf("\n");
    fflush(stdout); /* before the statistics on stderr */
    if (generated < 0) return fail(program, "generate");
    fprintf(stderr, "prompt: %d tokens in %.2f s (%.1f tokens/s); generation: %d tokens in %.2f s (%.1f tokens/s)\n",
            prompt_tokens, prompt_seconds, prompt_tokens / (prompt_seconds > 0 ? prompt_seconds : 1e-9), generated,
            gen_seconds, generated / (gen_seconds > 0 ? gen_seconds : 1e-9));
    return 0;
}

#endif /* QWEN_SAMPLES_COMMON_H */

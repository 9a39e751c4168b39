/*
 * qwen-chat: a thin chat host over libqwen.
 *
 *   qwen-chat -m MODEL [-p PROMPT] [-s SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS] [-c N_CTX]
 *
 * With -p it answers once and exits; without it, it reads one user turn per line from stdin
 * (multi-turn: earlier turns stay in the KV cache and are not recomputed).
 */
#define _POSIX_C_SOURCE 200809L
#include <qwen.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    char *text; /* the reply so far, kept for the next turn's history */
    size_t length, capacity;
} reply_buffer;

static int on_token(int32_t token, const char *piece, void *user_data) {
    (void)token;
    reply_buffer *reply = user_data;
    size_t n = strlen(piece);
    if (reply->length + n + 1 > reply->capacity) {
        size_t capacity = (reply->capacity + n + 1) * 2;
        char *grown = realloc(reply->text, capacity);
        if (!grown) return 1;
        reply->text = grown;
        reply->capacity = capacity;
    }
    memcpy(reply->text + reply->length, piece, n + 1);
    reply->length += n;
    fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s -m MODEL [-p PROMPT] [-s SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS] [-c N_CTX]\n"
            "  MODEL is a GGUF file or a Hugging Face folder\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *system = NULL;
    int max_tokens = 256;
    qwen_sampling_params sampling = qwen_sampling_default_params();
    qwen_context_params cparams = qwen_context_default_params();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(argv[0]); return 0; }
        if (!v) { usage(argv[0]); return 2; }
        if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "-p")) prompt = v;
        else if (!strcmp(a, "-s")) system = v;
        else if (!strcmp(a, "-n")) max_tokens = atoi(v);
        else if (!strcmp(a, "--temp")) sampling.temperature = (float)atof(v);
        else if (!strcmp(a, "--seed")) sampling.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "-t")) cparams.n_threads = atoi(v);
        else if (!strcmp(a, "-c")) cparams.n_ctx = atoi(v);
        else { usage(argv[0]); return 2; }
        i++;
    }
    if (!model_path) { usage(argv[0]); return 2; }

    double t0 = now_seconds();
    qwen_model *model = NULL;
    if (qwen_model_load(model_path, NULL, &model) != QWEN_OK) {
        fprintf(stderr, "error: %s\n", qwen_last_error());
        return 1;
    }
    qwen_context *ctx = NULL;
    if (qwen_context_new(model, &cparams, &ctx) != QWEN_OK) {
        fprintf(stderr, "error: %s\n", qwen_last_error());
        qwen_model_free(model);
        return 1;
    }
    fprintf(stderr, "libqwen %s: loaded %s in %.2f s (n_ctx %d)\n", qwen_version(), model_path, now_seconds() - t0,
            qwen_context_n_ctx(ctx));

    /* the conversation: strings are owned here */
    int capacity = 16, count = 0;
    qwen_chat_message *messages = malloc(sizeof *messages * (size_t)capacity);
    char **owned = malloc(sizeof *owned * (size_t)capacity);
    if (!messages || !owned) return 1;
    if (system) { messages[count] = (qwen_chat_message){"system", system}; owned[count++] = NULL; }

    int status = 0, generated_total = 0;
    double generation_seconds = 0, prompt_seconds = 0;
    int prompt_tokens = 0;
    char line[8192];
    for (;;) {
        const char *user = prompt;
        if (!prompt) {
            fprintf(stderr, "> ");
            if (!fgets(line, sizeof line, stdin)) break;
            line[strcspn(line, "\n")] = 0;
            if (!line[0]) continue;
            user = line;
        }
        if (count + 2 > capacity) {
            capacity *= 2;
            qwen_chat_message *m = realloc(messages, sizeof *messages * (size_t)capacity);
            char **o = realloc(owned, sizeof *owned * (size_t)capacity);
            if (!m || !o) { status = 1; break; }
            messages = m;
            owned = o;
        }
        char *user_copy = strdup(user);
        messages[count] = (qwen_chat_message){"user", user_copy};
        owned[count++] = user_copy;

        int before = qwen_context_n_past(ctx);
        double t1 = now_seconds();
        int rc = qwen_chat_eval(ctx, messages, count, 1);
        if (rc != QWEN_OK) { fprintf(stderr, "error: %s\n", qwen_last_error()); status = 1; break; }
        prompt_seconds += now_seconds() - t1;
        prompt_tokens += qwen_context_n_past(ctx) - before; /* upper bound: reused prefix is not recomputed */

        reply_buffer reply = {0};
        double t2 = now_seconds();
        rc = qwen_generate(ctx, &sampling, max_tokens, on_token, &reply);
        generation_seconds += now_seconds() - t2;
        fputc('\n', stdout);
        if (rc < 0) {
            fprintf(stderr, "error: %s\n", qwen_last_error());
            free(reply.text);
            status = rc == QWEN_ERR_CONTEXT_FULL ? 0 : 1;
            break;
        }
        generated_total += rc;
        messages[count] = (qwen_chat_message){"assistant", reply.text ? reply.text : ""};
        owned[count++] = reply.text;
        if (prompt) break;
    }

    fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s); generation: %d tokens in %.3f s (%.1f tok/s)\n",
            prompt_tokens, prompt_seconds, prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0.0, generated_total,
            generation_seconds, generation_seconds > 0 ? generated_total / generation_seconds : 0.0);
    for (int i = 0; i < count; i++) free(owned[i]);
    free(owned);
    free(messages);
    qwen_context_free(ctx);
    qwen_model_free(model);
    return status;
}

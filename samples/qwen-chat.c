/*
 * qwen-chat: a thin chat host over libqwen.
 *
 *   qwen-chat -m MODEL [-p PROMPT] [-s|--system SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS]
 *             [-c N_CTX] [--window] [--no-think]
 *
 * With -p it answers once and exits; without it, it reads one user turn per line from stdin. Earlier turns
 * stay in the KV cache and are not recomputed. Commands in interactive mode:
 *   /reset       forget the conversation (the system prompt stays)
 *   /save FILE   save the conversation: the KV cache to FILE, the transcript to FILE.txt
 *   /load FILE   resume a saved conversation
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable text buffer and a conversation that owns its strings ---- */

typedef struct {
    char *text;
    size_t length, capacity;
} buffer;

static int buffer_append(buffer *b, const char *s, size_t n) {
    if (b->length + n + 1 > b->capacity) {
        size_t capacity = (b->capacity + n + 1) * 2;
        char *grown = realloc(b->text, capacity);
        if (!grown) return 0;
        b->text = grown;
        b->capacity = capacity;
    }
    memcpy(b->text + b->length, s, n);
    b->length += n;
    b->text[b->length] = 0;
    return 1;
}

typedef struct {
    qwen_chat_message *messages; /* role and content are malloc'd */
    int count, capacity;
} conversation;

static int conversation_add(conversation *c, const char *role, const char *content) {
    if (c->count == c->capacity) {
        int capacity = c->capacity ? c->capacity * 2 : 16;
        qwen_chat_message *grown = realloc(c->messages, sizeof *grown * (size_t)capacity);
        if (!grown) return 0;
        c->messages = grown;
        c->capacity = capacity;
    }
    char *r = strdup(role), *t = strdup(content);
    if (!r || !t) { free(r); free(t); return 0; }
    c->messages[c->count++] = (qwen_chat_message){r, t};
    return 1;
}

/* Drops messages from index `from` on. */
static void conversation_truncate(conversation *c, int from) {
    for (int i = from; i < c->count; i++) {
        free((char *)c->messages[i].role);
        free((char *)c->messages[i].content);
    }
    if (from < c->count) c->count = from;
}

/* Transcript format: one message per line, "role<TAB>content", with \\ and newlines escaped. */
static int conversation_save(const conversation *c, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    for (int i = 0; i < c->count; i++) {
        fprintf(f, "%s\t", c->messages[i].role);
        for (const char *p = c->messages[i].content; *p; p++) {
            if (*p == '\\') fputs("\\\\", f);
            else if (*p == '\n') fputs("\\n", f);
            else fputc(*p, f);
        }
        fputc('\n', f);
    }
    return fclose(f) == 0;
}

static int conversation_load(conversation *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    conversation_truncate(c, 0);
    char line[65536];
    int ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) { ok = 0; break; }
        *tab = 0;
        char *in = tab + 1, *out = tab + 1;
        for (; *in; in++) {
            if (*in == '\\' && in[1] == 'n') { *out++ = '\n'; in++; }
            else if (*in == '\\' && in[1] == '\\') { *out++ = '\\'; in++; }
            else *out++ = *in;
        }
        *out = 0;
        ok = conversation_add(c, line, tab + 1);
    }
    fclose(f);
    return ok;
}

/* Streams the answer and keeps it in the buffer user_data, for the conversation. */
static int on_token(int32_t token, const char *piece, void *user_data) {
    print_piece(token, piece, NULL);
    return !buffer_append(user_data, piece, strlen(piece));
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s -m MODEL [-p PROMPT] [-s|--system SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS]\n"
            "          [-c N_CTX] [--window] [--no-think]\n"
            "  MODEL is a GGUF file or a Hugging Face folder; --window drops old turns instead of failing when\n"
            "  the context is full; --no-think turns Qwen3's thinking off. Interactive commands: /reset,\n"
            "  /save FILE, /load FILE\n",
            argv0);
}

int main(int argc, char **argv) {
    chat_args args = chat_args_defaults();
    qwen_chat_options chat_options = qwen_chat_default_options();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(argv[0]); return 0; }
        if (!strcmp(a, "--window")) { args.context.sliding_window = 1; continue; }
        if (!strcmp(a, "--no-think")) { chat_options.enable_thinking = 0; continue; }
        if (i + 1 >= argc) { usage(argv[0]); return 2; }
        if (!chat_args_set(&args, a, argv[++i])) { usage(argv[0]); return 2; }
    }
    if (!args.model_path) { usage(argv[0]); return 2; }

    double t0 = now_seconds();
    qwen_model *model = NULL;
    if (qwen_model_load(args.model_path, NULL, &model) != QWEN_OK) {
        fprintf(stderr, "error: %s\n", qwen_last_error());
        return 1;
    }
    qwen_context *ctx = NULL;
    if (qwen_context_new(model, &args.context, &ctx) != QWEN_OK) {
        fprintf(stderr, "error: %s\n", qwen_last_error());
        qwen_model_free(model);
        return 1;
    }
    qwen_model_details info;
    qwen_model_info(model, &info);
    fprintf(stderr, "libqwen %s: loaded %s (%s, %s, %.1fM parameters) in %.2f s (n_ctx %d)\n", qwen_version(), args.model_path,
            info.architecture, info.weight_type, (double)info.n_params * 1e-6, now_seconds() - t0, qwen_context_n_ctx(ctx));

    conversation chat = {0};
    if (args.system && !conversation_add(&chat, "system", args.system)) return 1;
    int keep = chat.count; /* /reset keeps the system prompt */

    int status = 0, generated_total = 0, prompt_tokens = 0;
    double generation_seconds = 0, prompt_seconds = 0;
    char line[8192];
    for (;;) {
        const char *user = args.prompt;
        if (!args.prompt) {
            fprintf(stderr, "> ");
            if (!fgets(line, sizeof line, stdin)) break;
            line[strcspn(line, "\n")] = 0;
            if (!line[0]) continue;
            if (!strcmp(line, "/reset")) {
                conversation_truncate(&chat, keep);
                qwen_context_reset(ctx);
                fprintf(stderr, "(conversation cleared)\n");
                continue;
            }
            if (!strncmp(line, "/save ", 6) || !strncmp(line, "/load ", 6)) {
                const char *path = line + 6;
                char transcript[sizeof line + 8];
                snprintf(transcript, sizeof transcript, "%s.txt", path);
                int ok = line[1] == 's' ? qwen_context_state_save_file(ctx, path) == QWEN_OK && conversation_save(&chat, transcript)
                                        : qwen_context_state_load_file(ctx, path) == QWEN_OK && conversation_load(&chat, transcript);
                fprintf(stderr, ok ? "(%s %s)\n" : "error: cannot %s %s: %s\n", line[1] == 's' ? "saved" : "loaded", path,
                        qwen_last_error());
                continue;
            }
            user = line;
        }
        if (!conversation_add(&chat, "user", user)) { status = 1; break; }

        int before = qwen_context_n_past(ctx);
        double t1 = now_seconds();
        int rc = qwen_chat_eval_ex(ctx, chat.messages, chat.count, 1, &chat_options);
        if (rc != QWEN_OK) {
            fprintf(stderr, "error: %s\n", qwen_last_error());
            if (args.prompt) { status = 1; break; }
            conversation_truncate(&chat, chat.count - 1);
            continue;
        }
        prompt_seconds += now_seconds() - t1;
        int evaluated = qwen_context_n_past(ctx) - before;
        prompt_tokens += evaluated > 0 ? evaluated : 0;

        buffer reply = {0};
        double t2 = now_seconds();
        rc = qwen_generate(ctx, &args.sampling, args.max_tokens, on_token, &reply);
        generation_seconds += now_seconds() - t2;
        fputc('\n', stdout);
        if (rc < 0) fprintf(stderr, "error: %s\n", qwen_last_error());
        else generated_total += rc;
        int added = conversation_add(&chat, "assistant", reply.text ? reply.text : "");
        free(reply.text);
        if (!added || (rc < 0 && rc != QWEN_ERR_CONTEXT_FULL)) { status = 1; break; }
        if (args.prompt) break;
    }

    fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s); generation: %d tokens in %.3f s (%.1f tok/s)\n",
            prompt_tokens, prompt_seconds, prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0.0, generated_total,
            generation_seconds, generation_seconds > 0 ? generated_total / generation_seconds : 0.0);
    conversation_truncate(&chat, 0);
    free(chat.messages);
    qwen_context_free(ctx);
    qwen_model_free(model);
    return status;
}

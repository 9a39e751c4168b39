/*
 * qwen-vl: ask a Qwen2-VL / Qwen2.5-VL / Qwen-VL model about images, streaming the answer.
 *
 *   qwen-vl -m MODEL [--mmproj FILE] --image a.png [--image b.jpg ...] -p "Describe the picture"
 *           [-s SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS] [-c N_CTX]
 *           [--min-pixels N] [--max-pixels N] [--draw-boxes OUT.png]
 *   qwen-vl -m MODEL [--mmproj FILE] --bench WxH[,WxH...] [-r REPS] [-t THREADS]
 *
 * MODEL is a Hugging Face folder (its vision tower loads with it) or a text GGUF, whose projector is given with
 * --mmproj (llama.cpp's convert_hf_to_gguf.py --mmproj for Qwen2-VL / Qwen2.5-VL, qwen-quantize --mmproj for
 * Qwen-VL). The images go into one user message, before the prompt ("Picture N: " before each for Qwen-VL). It prints how long encoding the images took, then the answer, then prompt and generation speed.
 *
 * --draw-boxes (Qwen-VL grounding: "<ref>the dog</ref><box>(x1,y1),(x2,y2)</box>" in the answer) writes the last
 * image with the answer's boxes drawn on it as a PNG, as the reference's draw_bbox_on_latest_picture does.
 *
 * --bench encodes synthetic images of the given sizes REPS times (default 3, after one warm-up) and prints the
 * milliseconds per image (mean and standard deviation); nothing is generated.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMAGES 32

static const char program[] = "qwen-vl";

static void usage(void) {
    fprintf(stderr,
            "usage: qwen-vl -m MODEL [--mmproj FILE] --image FILE [--image FILE ...] -p PROMPT [-s SYSTEM] [-n MAX_TOKENS]\n"
            "               [--temp T] [--seed S] [-t THREADS] [-c N_CTX] [--min-pixels N] [--max-pixels N]\n"
            "               [--draw-boxes OUT.png]\n"
            "       qwen-vl -m MODEL [--mmproj FILE] --bench WxH[,WxH...] [-r REPS] [-t THREADS]\n");
}

/* A synthetic picture: gradients and a checker texture, different for each (width, height, variant). */
static qwen_image *synthetic_image(int w, int h, int variant) {
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    if (!rgb) return NULL;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            p[2] = (uint8_t)((((x / 16) ^ (y / 16)) & 1) ? 200 : 40);
        }
    }
    rgb[0] = (uint8_t)variant;  /* a different image each time: embeddings are cached by content */
    qwen_image *img = NULL;
    int rc = qwen_image_from_rgb8(rgb, w, h, &img);
    free(rgb);
    return rc == QWEN_OK ? img : NULL;
}

static int bench(qwen_model *model, qwen_context *ctx, const char *sizes, int reps) {
    int n_embd = qwen_model_n_embd(model);
    char *list = strdup(sizes);
    if (!list) return 1;
    int status = 0;
    for (char *item = strtok(list, ","); item && !status; item = strtok(NULL, ",")) {
        int w = 0, h = 0;
        if (sscanf(item, "%dx%d", &w, &h) != 2 || w <= 0 || h <= 0) {
            fprintf(stderr, "qwen-vl: --bench wants WxH sizes, not '%s'\n", item);
            status = 1;
            break;
        }
        double total = 0, total2 = 0;
        int tokens = 0;
        for (int r = -1; r < reps; r++) {  /* r = -1: warm-up */
            qwen_image *img = synthetic_image(w, h, r + 2);
            if (!img) { status = fail(program, "image"); break; }
            tokens = qwen_image_n_tokens(model, img);
            if (tokens < 0) { qwen_image_free(img); status = fail(program, "qwen_image_n_tokens"); break; }
            float *out = malloc(sizeof(float) * (size_t)tokens * (size_t)n_embd);
            double t0 = now_seconds();
            int32_t n = 0;
            int rc = out ? qwen_image_embed(ctx, img, out, (int64_t)tokens * n_embd, &n) : QWEN_ERR_OUT_OF_MEMORY;
            double ms = (now_seconds() - t0) * 1e3;
            free(out);
            qwen_image_free(img);
            if (rc < 0) { status = fail(program, "qwen_image_embed"); break; }
            if (r >= 0) { total += ms; total2 += ms * ms; }
        }
        if (status) break;
        double mean = total / reps, sd = reps > 1 ? sqrt(fmax(0, (total2 - reps * mean * mean) / (reps - 1))) : 0;
        printf("encode %dx%d: %d tokens, %.1f ms +- %.1f (%d reps)\n", w, h, tokens, mean, sd, reps);
        fflush(stdout);
    }
    free(list);
    return status;
}

/* Writes 8-bit RGB pixels as a PNG file. Returns 0, or 1 after printing why not. */
static int write_png(const char *path, const uint8_t *rgb, int w, int h) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 1; }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        fclose(f);
        fprintf(stderr, "qwen-vl: cannot write %s\n", path);
        return 1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0 ? 0 : 1;
}

/* A 3-pixel rectangle outline, clipped to the image. */
static void draw_rectangle(uint8_t *rgb, int w, int h, int x1, int y1, int x2, int y2, const uint8_t color[3]) {
    if (x1 > x2) { int t = x1; x1 = x2; x2 = t; }
    if (y1 > y2) { int t = y1; y1 = y2; y2 = t; }
    for (int y = y1 - 1; y <= y2 + 1; y++) {
        for (int x = x1 - 1; x <= x2 + 1; x++) {
            int edge = x <= x1 + 1 || x >= x2 - 1 || y <= y1 + 1 || y >= y2 - 1;
            if (!edge || x < 0 || y < 0 || x >= w || y >= h) continue;
            memcpy(rgb + ((size_t)y * (size_t)w + (size_t)x) * 3, color, 3);
        }
    }
}

/* The answer's grounding boxes drawn on the image, written to path. */
static int draw_boxes(const char *path, const qwen_image *img, const char *answer) {
    int w = qwen_image_width(img), h = qwen_image_height(img);
    int32_t n = qwen_grounding_boxes(answer, w, h, NULL, 0);
    if (n < 0) return fail(program, "qwen_grounding_boxes");
    qwen_box *boxes = calloc((size_t)n + 1, sizeof *boxes);
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    int status = !boxes || !rgb || qwen_grounding_boxes(answer, w, h, boxes, n) < 0 ||
                 qwen_image_copy_rgb8(img, rgb, (int64_t)w * h * 3) < 0;
    static const uint8_t palette[6][3] = {{230, 25, 75}, {60, 180, 75}, {0, 130, 200}, {245, 130, 48}, {145, 30, 180}, {70, 240, 240}};
    for (int i = 0; i < n && !status; i++) {
        qwen_box b = boxes[i];
        draw_rectangle(rgb, w, h, b.x1, b.y1, b.x2, b.y2, palette[i % 6]);
        fprintf(stderr, "box %d: (%d,%d)-(%d,%d)%s%.*s\n", i + 1, b.x1, b.y1, b.x2, b.y2, b.ref_offset >= 0 ? " " : "",
                b.ref_length, b.ref_offset >= 0 ? answer + b.ref_offset : "");
    }
    if (!status) status = write_png(path, rgb, w, h);
    if (!status) fprintf(stderr, "drew %d box%s on %s\n", n, n == 1 ? "" : "es", path);
    free(boxes);
    free(rgb);
    return status;
}

int main(int argc, char **argv) {
    chat_args args = chat_args_defaults();
    args.context.n_ctx = 4096;
    const char *bench_sizes = NULL, *boxes_path = NULL;
    const char *image_paths[MAX_IMAGES];
    int n_images = 0, reps = 3;
    int64_t min_pixels = 0, max_pixels = 0;
    option_walk options = {.argc = argc, .argv = argv, .next = 1, .usage = usage};
    while (next_option(&options, &args)) {
        const char *a = options.option, *v = options.value;
        if (!strcmp(a, "--image")) {
            if (n_images == MAX_IMAGES) { fprintf(stderr, "qwen-vl: at most %d images\n", MAX_IMAGES); return 2; }
            image_paths[n_images++] = v;
        }
        else if (!strcmp(a, "--min-pixels")) min_pixels = atoll(v);
        else if (!strcmp(a, "--max-pixels")) max_pixels = atoll(v);
        else if (!strcmp(a, "--bench")) bench_sizes = v;
        else if (!strcmp(a, "--draw-boxes")) boxes_path = v;
        else if (!strcmp(a, "-r")) reps = atoi(v);
        else { usage(); return 2; }
    }
    if (!args.model_path || (!bench_sizes && (!args.prompt || n_images == 0)) || reps < 1) { usage(); return 2; }

    qwen_model *model = NULL;
    double t0 = now_seconds();
    if (load_model(program, &args, &model)) { qwen_model_free(model); return 1; }
    if (qwen_model_has_vision(model) != 1) {
        fprintf(stderr, "qwen-vl: %s takes no images (a Qwen2-VL GGUF needs --mmproj)\n", args.model_path);
        qwen_model_free(model);
        return 1;
    }
    qwen_model_details info;
    qwen_context *ctx = NULL;
    if (open_context(program, model, &args, t0, &info, &ctx)) { qwen_model_free(model); return 1; }

    int status = 0;
    if (bench_sizes) {
        status = bench(model, ctx, bench_sizes, reps);
        qwen_context_free(ctx);
        qwen_model_free(model);
        return status;
    }

    qwen_image *images[MAX_IMAGES] = {0};
    for (int i = 0; i < n_images && !status; i++) {
        if (qwen_image_load(image_paths[i], &images[i]) != QWEN_OK) { status = fail(program, image_paths[i]); break; }
        if ((min_pixels || max_pixels) && qwen_image_set_pixel_bounds(images[i], min_pixels, max_pixels) != QWEN_OK) {
            status = fail(program, "pixel bounds");
            break;
        }
    }
    /* encode each image now, to report the time (the chat below takes them from the context's cache) */
    double encode_seconds = 0;
    int image_tokens = 0;
    for (int i = 0; i < n_images && !status; i++) {
        int32_t tokens = qwen_image_n_tokens(model, images[i]);
        if (tokens < 0) { status = fail(program, image_paths[i]); break; }
        float *rows = malloc(sizeof(float) * (size_t)tokens * (size_t)info.n_embd);
        double t = now_seconds();
        int32_t n = 0;
        if (!rows || qwen_image_embed(ctx, images[i], rows, (int64_t)tokens * info.n_embd, &n) < 0) {
            free(rows);
            status = fail(program, image_paths[i]);
            break;
        }
        encode_seconds += now_seconds() - t;
        image_tokens += n;
        fprintf(stderr, "image %s: %dx%d, %d tokens\n", image_paths[i], qwen_image_width(images[i]), qwen_image_height(images[i]), n);
        free(rows);
    }
    if (!status) {
        fprintf(stderr, "encoded %d image%s (%d tokens) in %.1f ms\n", n_images, n_images == 1 ? "" : "s", image_tokens,
                encode_seconds * 1e3);
        answer_text answer = {0};
        status = answer_with_media(program, ctx, &args, "<image>\n", (const qwen_image *const *)images, n_images, NULL, 0,
                                   boxes_path ? &answer : NULL);
        if (!status && boxes_path) status = draw_boxes(boxes_path, images[n_images - 1], answer.text ? answer.text : "");
        free(answer.text);
    }
    for (int i = 0; i < n_images; i++) qwen_image_free(images[i]);
    qwen_context_free(ctx);
    qwen_model_free(model);
    return status;
}

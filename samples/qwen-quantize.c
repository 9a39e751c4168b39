/*
 * qwen-quantize: writes a GGUF model file in another weight type, like llama.cpp's llama-quantize.
 *
 *   qwen-quantize INPUT.gguf OUTPUT.gguf [TYPE] [-t THREADS] [--pure]
 *   qwen-quantize HF_FOLDER OUTPUT.gguf [TYPE] [-t THREADS] [--mmproj PROJECTOR.gguf]
 *
 * A Hugging Face folder is converted as llama.cpp's convert_hf_to_gguf.py converts it (then quantized to TYPE).
 * --mmproj also writes the image encoder of a first-generation Qwen-VL folder as a projector GGUF of libqwen's own
 * type (qwen_model_export_projector); load it with qwen-vl --mmproj.
 *
 * TYPE is one of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K
 * (default Q8_0). --pure gives every quantizable tensor TYPE's block type instead of llama-quantize's mix.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static double file_mib(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0.0;
}

static int usage(const char *program) {
    fprintf(stderr, "usage: %s INPUT.gguf|HF_FOLDER OUTPUT.gguf [TYPE] [-t THREADS] [--pure] [--mmproj PROJECTOR.gguf]\n"
                    "TYPE: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K "
                    "(default Q8_0)\n", program);
    return 2;
}

int main(int argc, char **argv) {
    const char *paths[3] = {NULL, NULL, NULL}; /* input, output, type */
    int n_paths = 0;
    qwen_quantize_params params = qwen_quantize_default_params();
    const char *mmproj = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            params.n_threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--mmproj") == 0 && i + 1 < argc) {
            mmproj = argv[++i];
        } else if (strcmp(argv[i], "--pure") == 0) {
            params.pure = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return usage(argv[0]);
        } else if (n_paths < 3) {
            paths[n_paths++] = argv[i];
        } else {
            return usage(argv[0]);
        }
    }
    if (n_paths < 2) return usage(argv[0]);
    if (paths[2]) params.type = paths[2];

    double start = now_seconds();
    if (qwen_model_quantize(paths[0], paths[1], &params) != QWEN_OK) {
        fprintf(stderr, "qwen-quantize: %s\n", qwen_last_error());
        return 1;
    }
    printf("%s (%.1f MiB) -> %s %s (%.1f MiB) in %.1f s\n", paths[0], file_mib(paths[0]), params.type, paths[1],
           file_mib(paths[1]), now_seconds() - start);
    if (mmproj) {
        start = now_seconds();
        if (qwen_model_export_projector(paths[0], mmproj, &params) != QWEN_OK) {
            fprintf(stderr, "qwen-quantize: %s\n", qwen_last_error());
            return 1;
        }
        printf("%s -> projector %s %s (%.1f MiB) in %.1f s\n", paths[0], params.type, mmproj, file_mib(mmproj), now_seconds() - start);
    }
    return 0;
}

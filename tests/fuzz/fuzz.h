/* SPDX-License-Identifier: MIT */
/*
 * Fuzz targets: each defines LLVMFuzzerTestOneInput. Built two ways: with
 * libFuzzer (./configure CC=clang --enable-fuzzing, tests/fuzz/run.sh), and
 * as regression programs that feed every file of the target's corpus
 * (tests/fuzz/<target>/) to the same function (tests/fuzz/driver.c, in
 * make check, with any compiler).
 */
#ifndef WR_FUZZ_H
#define WR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* This process's scratch directory (tmpfs when there is one); removed at exit. */
const char *wr_fuzz_scratch(void);

/* Replace path with exactly len bytes; aborts on failure (the fuzzer reports it). */
void wr_fuzz_write(const char *path, const void *data, size_t len);

/* Remove every entry of dir (not dir itself). */
void wr_fuzz_clear(const char *dir);

/*
 * Every directory-level reader over dir: the scanner with full
 * verification, the public reader strict and tolerant (ids must increase).
 */
void wr_fuzz_read_dir(const char *dir);

/* Drop walrec's log lines: bad input is logged by design. */
void wr_fuzz_quiet(void);

/* A broken invariant: report and abort, so the fuzzer keeps the input. */
#define WR_FUZZ_ASSERT(cond)                                                         \
	do {                                                                         \
		if (!(cond))                                                         \
			wr_fuzz_fail(__FILE__, __LINE__, #cond);                     \
	} while (0)

_Noreturn void wr_fuzz_fail(const char *file, int line, const char *what);

#endif

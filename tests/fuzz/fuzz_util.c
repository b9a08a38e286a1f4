/* SPDX-License-Identifier: MIT */
/* Helpers shared by the fuzz targets (see fuzz.h). */
#include <config.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <walrec/common.h>
#include <walrec/reader.h>

#include "recorder/wal_dir.h"

#include "tests/fuzz/fuzz.h"

static char scratch[256];

void
wr_fuzz_clear(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	char path[512];
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			wr_fuzz_clear(path);
			rmdir(path);
		} else {
			unlink(path);
		}
	}
	closedir(d);
}

static void
fuzz_cleanup(void)
{
	if (scratch[0]) {
		wr_fuzz_clear(scratch);
		rmdir(scratch);
	}
}

const char *
wr_fuzz_scratch(void)
{
	if (scratch[0])
		return scratch;
	struct stat st;
	const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : NULL;
	if (!base)
		base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(scratch, sizeof scratch, "%s/walrec-fuzz-XXXXXX", base);
	if (mkdtemp(scratch) == NULL) {
		perror("mkdtemp");
		abort();
	}
	atexit(fuzz_cleanup);
	return scratch;
}

void
wr_fuzz_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		abort();
	}
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n <= 0) {
			perror(path);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

static void
fuzz_log_discard(void *arg, int level, const char *msg)
{
	(void)arg, (void)level, (void)msg;
}

void
wr_fuzz_quiet(void)
{
	static int done;
	if (!done) {
		walrec_log_set_handler(fuzz_log_discard, NULL, WALREC_LOG_DEBUG);
		done = 1;
	}
}

_Noreturn void
wr_fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

void
wr_fuzz_read_dir(const char *dir)
{
	struct wr_wal_dir d;
	memset(&d, 0, sizeof d);
	wr_wal_dir_scan(&d, dir, WR_WAL_DIR_VERIFY, NULL, NULL);
	wr_wal_dir_free(&d);
	for (int tolerant = 0; tolerant < 2; tolerant++) {
		walrec_reader_options_t o;
		walrec_reader_options_init(&o);
		o.tolerant = tolerant;
		walrec_reader_t *r = NULL;
		if (walrec_reader_open(&r, dir, &o) == 0) {
			walrec_event_t ev;
			uint64_t last = 0;
			while (walrec_reader_next(r, &ev) == 1) {
				WR_FUZZ_ASSERT(ev.event_id > last);
				last = ev.event_id;
			}
			walrec_reader_seek(r, 1);
			walrec_reader_close(r);
		}
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * The append hot path (DESIGN.md §4.1): walrec_recorder_append makes no
 * system call, takes no lock and allocates nothing.
 *
 * A child process opens a recorder, warms it up, then appends 255 events
 * into a fresh block (no seal, no rotation: the path every event but the
 * one that fills a block takes) between two markers. The parent traces the
 * child's appending thread (ptrace, syscall stops) and counts the system
 * calls it makes between the markers; the child counts malloc/calloc/
 * realloc/free and pthread mutex calls on that thread over the same window
 * (interposed here; not under a sanitizer, which owns those symbols).
 * Exit 0, 1 on a violation, 77 when ptrace is not permitted, 99 on error.
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <walrec.h>

#define WINDOW_EVENTS 255

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HOTPATH_INTERPOSE 0
#else
#define HOTPATH_INTERPOSE 1
#endif

/* Calls made by the appending thread while it is watched (shared with the parent). */
struct counts {
	int allocs;
	int locks;
};
static struct counts *shared;
static __thread int watching;

#if HOTPATH_INTERPOSE
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

void *
malloc(size_t n)
{
	if (watching)
		shared->allocs++;
	return __libc_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
	if (watching)
		shared->allocs++;
	return __libc_calloc(a, b);
}

void *
realloc(void *p, size_t n)
{
	if (watching)
		shared->allocs++;
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	if (watching)
		shared->allocs++;
	__libc_free(p);
}

static int (*real_lock)(pthread_mutex_t *);
static int (*real_trylock)(pthread_mutex_t *);

int
pthread_mutex_lock(pthread_mutex_t *m)
{
	if (watching)
		shared->locks++;
	if (!real_lock)
		real_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
	return real_lock(m);
}

int
pthread_mutex_trylock(pthread_mutex_t *m)
{
	if (watching)
		shared->locks++;
	if (!real_trylock)
		real_trylock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_trylock");
	return real_trylock(m);
}
#endif

static void
log_discard(void *arg, int level, const char *msg)
{
	(void)arg, (void)level, (void)msg;
}

/* The appender: its system calls between the two getppid() markers are counted. */
static _Noreturn void
child(const char *dir)
{
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
		_exit(77);
	raise(SIGSTOP); /* the parent sets its options */
	walrec_log_set_handler(log_discard, NULL, WALREC_LOG_ERROR);
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 64;
	cfg.sync_interval_us = 0; /* nobody asks the owner to seal */
	walrec_recorder_t *rec;
	if (walrec_recorder_open(&rec, dir, &cfg) != 0)
		_exit(99);
	walrec_event_t ev;
	memset(&ev, 0, sizeof ev);
	for (int i = 0; i < 3000; i++)
		if (walrec_recorder_append(rec, &ev, NULL) != 0)
			_exit(99);
	/* Seal the partial block: the window starts a fresh one. */
	if (walrec_recorder_sync(rec) != 0)
		_exit(99);
	raise(SIGSTOP); /* the parent starts counting */
	watching = 1;
	for (int i = 0; i < WINDOW_EVENTS; i++)
		if (walrec_recorder_append(rec, &ev, NULL) != 0)
			_exit(98);
	watching = 0;
	syscall(SYS_getppid); /* the end marker */
	walrec_recorder_destroy(rec);
	_exit(0);
}

int
main(void)
{
	char dir[] = "/tmp/walrec-hotpath-XXXXXX";
	if (!mkdtemp(dir))
		return 99;
	shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return 99;
	pid_t pid = fork();
	if (pid < 0)
		return 99;
	if (pid == 0)
		child(dir);
	int status, rc = 99;
	if (waitpid(pid, &status, 0) != pid)
		goto out;
	if (WIFEXITED(status)) {
		rc = WEXITSTATUS(status) == 77 ? 77 : 99;
		if (rc == 77)
			fprintf(stderr, "check_hotpath: ptrace is not permitted here; skipped\n");
		goto out;
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) != 0) {
		perror("PTRACE_SETOPTIONS");
		goto out;
	}
	/* Run freely to the second stop (the start of the window). */
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
		fprintf(stderr, "check_hotpath: the appender did not reach the window (status 0x%x)\n",
			status);
		goto out;
	}
	int calls = 0;
	long first = -1;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL) != 0 || waitpid(pid, &status, 0) != pid)
			goto out;
		if (!WIFSTOPPED(status)) {
			fprintf(stderr, "check_hotpath: the appender ended in the window (0x%x)\n", status);
			goto out;
		}
		if (WSTOPSIG(status) != (SIGTRAP | 0x80))
			continue; /* a signal; not ours to count */
		struct __ptrace_syscall_info si;
		if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof si, &si) <= 0)
			goto out;
		if (si.op != PTRACE_SYSCALL_INFO_ENTRY)
			continue;
		if (si.entry.nr == SYS_getppid)
			break;
		if (first < 0)
			first = (long)si.entry.nr;
		calls++;
	}
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "check_hotpath: the appender failed (0x%x)\n", status);
		goto out;
	}
	printf("check_hotpath: %d appends: %d system calls (first: %ld), %d allocator calls, "
	       "%d mutex calls%s\n",
	       WINDOW_EVENTS, calls, first, shared->allocs, shared->locks,
	       HOTPATH_INTERPOSE ? "" : " (not counted under a sanitizer)");
	rc = calls == 0 && shared->allocs == 0 && shared->locks == 0 ? 0 : 1;
out:
	if (rc == 99)
		kill(pid, SIGKILL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "check_hotpath: could not remove %s\n", dir);
	return rc;
}

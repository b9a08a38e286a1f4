/* SPDX-License-Identifier: MIT */
/*
 * 'walrec bench peers': an LSM key-value store through its C API, key = the
 * record's 8-byte big-endian number, value = the 64-byte record. LevelDB's
 * and RocksDB's C APIs are the same functions under two prefixes, so this
 * body is included by peer_leveldb.c and peer_rocksdb.c with KV() and
 * KV_NAME defined.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/peers.h"
#include "tools/cmd.h"

struct kv_peer {
	KV(t) *db;
	KV(options_t) *opts;
	KV(writeoptions_t) *wopts;
	KV(writebatch_t) *batch;
};

static int
kv_close(void *st)
{
	struct kv_peer *k = st;
	if (k->db)
		KV(close)(k->db);
	if (k->batch)
		KV(writebatch_destroy)(k->batch);
	if (k->wopts)
		KV(writeoptions_destroy)(k->wopts);
	if (k->opts)
		KV(options_destroy)(k->opts);
	free(k);
	return 0;
}

static int
kv_open(void **st, const char *dir, const struct wr_peer_case *c, char *msg, size_t n)
{
	struct kv_peer *k = calloc(1, sizeof *k);
	if (!k)
		return -ENOMEM;
	k->opts = KV(options_create)();
	KV(options_set_create_if_missing)(k->opts, 1);
	char *err = NULL;
	k->db = KV(open)(k->opts, dir, &err);
	if (err) {
		snprintf(msg, n, KV_NAME " open %s: %s", dir, err);
		KV(free)(err);
		k->db = NULL;
		kv_close(k);
		return -EIO;
	}
	k->wopts = KV(writeoptions_create)();
	KV(writeoptions_set_sync)(k->wopts, c->durable);
	k->batch = KV(writebatch_create)();
	*st = k;
	return 0;
}

static void
kv_key(char key[8], uint64_t seq)
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		key[i] = (char)(seq & 0xff);
}

static int
kv_write(void *st, const uint8_t *recs, unsigned n, uint64_t first_seq)
{
	struct kv_peer *k = st;
	char key[8], *err = NULL;
	if (n == 1) {
		kv_key(key, first_seq);
		KV(put)(k->db, k->wopts, key, sizeof key, (const char *)recs, WR_PEER_RECORD, &err);
	} else {
		KV(writebatch_clear)(k->batch);
		for (unsigned i = 0; i < n; i++) {
			kv_key(key, first_seq + i);
			KV(writebatch_put)(k->batch, key, sizeof key,
					   (const char *)recs + (size_t)i * WR_PEER_RECORD,
					   WR_PEER_RECORD);
		}
		KV(write)(k->db, k->wopts, k->batch, &err);
	}
	if (err) {
		wr_tool_error("bench peers", KV_NAME " write: %s", err);
		KV(free)(err);
		return -EIO;
	}
	return 0;
}

#define KV_CASES(name)                                                                      \
	{ name, "sync-false", "put, WriteOptions sync=false", false, 1, 0, kv_open, kv_write, \
	  kv_close },                                                                        \
	{ name, "sync-true", "put, WriteOptions sync=true", true, 1, 0, kv_open, kv_write,    \
	  kv_close },                                                                        \
	{ name, "sync-true-batch16", "WriteBatch of 16, sync=true", true, 16, 0, kv_open,     \
	  kv_write, kv_close },                                                              \
	{ name, "sync-true-batch256", "WriteBatch of 256, sync=true", true, 256, 0, kv_open,  \
	  kv_write, kv_close },                                                              \
	{ NULL, NULL, NULL, false, 0, 0, NULL, NULL, NULL }

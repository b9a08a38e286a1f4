/* SPDX-License-Identifier: MIT */
/* 'walrec bench peers': SQLite in WAL mode, one row per record. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "bench/peers.h"
#include "tools/cmd.h"

struct sqlite_peer {
	sqlite3 *db;
	sqlite3_stmt *insert, *begin, *commit;
};

static const char *const sync_level[] = { "OFF", "NORMAL", "FULL" };

static int
sqlite_fail(struct sqlite_peer *s, const char *what)
{
	wr_tool_error("bench peers", "sqlite %s: %s", what, sqlite3_errmsg(s->db));
	return -EIO;
}

static int
sqlite_close(void *st)
{
	struct sqlite_peer *s = st;
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	int rc = sqlite3_close(s->db) == SQLITE_OK ? 0 : -EIO;
	free(s);
	return rc;
}

static int
sqlite_open(void **st, const char *dir, const struct wr_peer_case *c, char *msg, size_t n)
{
	char path[4200], sql[128];
	snprintf(path, sizeof path, "%s/log.sqlite", dir);
	struct sqlite_peer *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	int rc = sqlite3_open_v2(path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	char *err = NULL;
	snprintf(sql, sizeof sql,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
		 " CREATE TABLE log(id INTEGER PRIMARY KEY, rec BLOB NOT NULL);",
		 sync_level[c->arg]);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, "INSERT INTO log(id, rec) VALUES(?1, ?2)", -1,
					&s->insert, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, "BEGIN", -1, &s->begin, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL);
	if (rc != SQLITE_OK) {
		snprintf(msg, n, "sqlite %s: %s", path, err ? err : sqlite3_errmsg(s->db));
		sqlite3_free(err);
		sqlite_close(s);
		return -EIO;
	}
	*st = s;
	return 0;
}

static int
sqlite_step(struct sqlite_peer *s, sqlite3_stmt *stmt, const char *what)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : sqlite_fail(s, what);
}

static int
sqlite_write(void *st, const uint8_t *recs, unsigned n, uint64_t first_seq)
{
	struct sqlite_peer *s = st;
	/* One record: an autocommit transaction of its own. */
	if (n > 1 && sqlite_step(s, s->begin, "BEGIN") != 0)
		return -EIO;
	for (unsigned i = 0; i < n; i++) {
		sqlite3_bind_int64(s->insert, 1, (sqlite3_int64)(first_seq + i));
		sqlite3_bind_blob(s->insert, 2, recs + (size_t)i * WR_PEER_RECORD, WR_PEER_RECORD,
				  SQLITE_STATIC);
		if (sqlite_step(s, s->insert, "INSERT") != 0)
			return -EIO;
	}
	if (n > 1 && sqlite_step(s, s->commit, "COMMIT") != 0)
		return -EIO;
	return 0;
}

/* In WAL mode only FULL syncs the WAL at every commit; NORMAL syncs at checkpoints. */
const struct wr_peer_case wr_peer_sqlite_cases[] = {
	{ "sqlite", "wal-off-txn1", "WAL, synchronous=OFF, one record per transaction", false, 1,
	  0, sqlite_open, sqlite_write, sqlite_close },
	{ "sqlite", "wal-off-txn256", "WAL, synchronous=OFF, 256 records per transaction", false,
	  256, 0, sqlite_open, sqlite_write, sqlite_close },
	{ "sqlite", "wal-normal-txn1",
	  "WAL, synchronous=NORMAL (commit not synced: WAL synced at checkpoints)", false, 1, 1,
	  sqlite_open, sqlite_write, sqlite_close },
	{ "sqlite", "wal-normal-txn256", "WAL, synchronous=NORMAL, 256 records per transaction",
	  false, 256, 1, sqlite_open, sqlite_write, sqlite_close },
	{ "sqlite", "wal-full-txn1", "WAL, synchronous=FULL (WAL synced at every commit)", true, 1,
	  2, sqlite_open, sqlite_write, sqlite_close },
	{ "sqlite", "wal-full-txn16", "WAL, synchronous=FULL, 16 records per transaction", true, 16,
	  2, sqlite_open, sqlite_write, sqlite_close },
	{ "sqlite", "wal-full-txn256", "WAL, synchronous=FULL, 256 records per transaction", true,
	  256, 2, sqlite_open, sqlite_write, sqlite_close },
	{ NULL, NULL, NULL, false, 0, 0, NULL, NULL, NULL },
};

/* SPDX-License-Identifier: MIT */
/*
 * mkseeds DIR: write the seed corpus of the fuzz targets into
 * DIR/segment_hot, DIR/segment_cold, DIR/meta and DIR/channel (existing
 * files of the same names are replaced; regression inputs stay).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <walrec/producer.h>

#include "recorder/channel.h"
#include "recorder/format.h"
#include "tests/segfile.h"

static char tmpdir[256];

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
put(const char *dir, const char *sub, const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(path);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc(*len ? *len : 1);
	if (!p || fread(p, 1, *len, f) != *len)
		die(path);
	fclose(f);
	return p;
}

/* A segment as the file (full size) and as a seed cut after its data. */
static void
segment_seed(const char *out, const char *name, const struct wr_segfile_spec *spec, size_t keep)
{
	char path[512], cold[600];
	snprintf(path, sizeof path, "%s/seg.wal", tmpdir);
	if (wr_segfile_write(path, spec, NULL) != 0)
		die("wr_segfile_write");
	size_t len;
	uint8_t *p = slurp(path, &len);
	put(out, "segment_hot", name, p, keep < len ? keep : len);
	snprintf(cold, sizeof cold, "%s/seg.wal.lz4", tmpdir);
	if (wr_segfile_compress(path, cold) != 0)
		die("wr_segfile_compress");
	free(p);
	p = slurp(cold, &len);
	put(out, "segment_cold", name, p, len);
	free(p);
	unlink(path);
	unlink(cold);
}

static void
meta_seed(const char *out, const char *name, uint32_t seg, uint64_t off, uint64_t last, size_t len)
{
	uint8_t b[32] = { 0 };
	struct wr_meta_state st = { .segment_index = seg, .offset = (uint32_t)off,
				    .last_event_id = last };
	wr_meta_encode(b, &st);
	put(out, "meta", name, b, len);
}

static int
take_any(void *arg, uint32_t producer, const walrec_event_t *slot, uint64_t event_id)
{
	(void)arg, (void)producer, (void)slot, (void)event_id;
	return 0;
}

/* The channel's metadata regions, then its rings and take logs (the fuzz target's input layout). */
static void
channel_seed(const char *out, const char *name, struct wr_channel *ch)
{
	const struct wr_chan_map *m = wr_channel_map(ch);
	const struct wr_chan_region *r = m->layout.regions;
	size_t meta = (size_t)(r[WR_CHAN_R_WAKE].off + WR_CHAN_WAKE_SIZE);
	size_t rings = (size_t)(m->layout.total_size - r[WR_CHAN_R_RINGS].off);
	uint8_t *b = malloc(meta + rings);
	if (!b)
		die("malloc");
	memcpy(b, m->base, meta);
	memcpy(b + meta, (const uint8_t *)m->base + r[WR_CHAN_R_RINGS].off, rings);
	put(out, "channel", name, b, meta + rings);
	free(b);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds DIR\n");
		return 2;
	}
	const char *out = argv[1];
	if (mkdir(out, 0755) != 0 && errno != EEXIST)
		die(out);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/walrec-seeds-XXXXXX");
	if (!mkdtemp(tmpdir))
		die("mkdtemp");

	static const uint16_t three[3] = { 256, 256, 100 };
	static const uint16_t four[4] = { 256, 256, 256, 3 };
	struct wr_segfile_spec s = { .segment_index = 1, .blocks = 3, .counts = three,
				     .header = WR_SEGFILE_ACTIVE };
	segment_seed(out, "active-3-blocks", &s, (size_t)wr_block_offset(3));
	s = (struct wr_segfile_spec){ .segment_index = 2, .blocks = 4, .counts = four,
				      .first_id = 1000, .header = WR_SEGFILE_CLOSED };
	segment_seed(out, "closed-4-blocks", &s, (size_t)wr_block_offset(4));
	s = (struct wr_segfile_spec){ .segment_index = 3, .blocks = 2, .events_per_block = 17,
				      .torn_events = 20, .header = WR_SEGFILE_ACTIVE };
	segment_seed(out, "torn-tail", &s, (size_t)wr_block_offset(2) + 64 + 20 * 64);
	s = (struct wr_segfile_spec){ .segment_index = 4, .blocks = 0, .header = WR_SEGFILE_ACTIVE };
	segment_seed(out, "empty", &s, WR_SEGMENT_HEADER_SIZE);
	s = (struct wr_segfile_spec){ .segment_index = 5, .blocks = 2, .events_per_block = 9,
				      .id_step = 3, .header = WR_SEGFILE_CLOSED };
	segment_seed(out, "closed-id-steps", &s, (size_t)wr_block_offset(2));

	/* wal.meta beside the fuzz target's fixture: one segment, blocks of 256, 256, 100. */
	meta_seed(out, "agrees-end", 1, wr_block_offset(3), 612, 16);
	meta_seed(out, "agrees-middle", 1, wr_block_offset(2), 512, 16);
	meta_seed(out, "wrong-id", 1, wr_block_offset(3), 611, 16);
	meta_seed(out, "not-a-boundary", 1, 100, 612, 16);
	meta_seed(out, "other-segment", 7, wr_block_offset(1), 256, 16);
	meta_seed(out, "past-the-data", 1, wr_block_offset(5), 1300, 16);
	meta_seed(out, "huge-id", 1, wr_block_offset(3), UINT64_MAX, 16);
	meta_seed(out, "short", 1, wr_block_offset(3), 612, 15);
	meta_seed(out, "long", 1, wr_block_offset(3), 612, 17);
	meta_seed(out, "empty", 1, 0, 0, 0);

	/* A channel: fresh; with a producer's events; with some taken and released. */
	char name[64];
	snprintf(name, sizeof name, "seeds.%d", (int)getpid());
	wr_channel_unlink(name);
	struct wr_channel_options o;
	wr_channel_options_default(&o);
	o.producers_max = 2;
	o.ring_capacity = 8;
	struct wr_channel *ch;
	if (wr_channel_create(&ch, name, &o) != 0)
		die("wr_channel_create");
	channel_seed(out, "fresh", ch);
	wr_channel_set_state(ch, WR_CHAN_RUNNING);
	walrec_producer_t *p;
	if (walrec_producer_attach(&p, name) != 0)
		die("walrec_producer_attach");
	uint8_t payload[WALREC_PAYLOAD_SIZE] = { 7 };
	for (int i = 0; i < 5; i++)
		walrec_producer_try_append(p, payload);
	channel_seed(out, "five-appended", ch);
	uint64_t last = 100;
	wr_channel_poll(ch, 3, &last, take_any, NULL);
	wr_channel_release_sealed(ch, 101);
	wr_channel_publish_durable(ch, 101);
	struct wr_channel_meta pm = { .segment_index = 1,
				      .offset = (uint32_t)wr_block_offset(1),
				      .last_sealed_id = 101,
				      .last_durable_id = 101,
				      .sealed_segment_index = 1,
				      .sealed_blocks = 1 };
	wr_channel_publish_meta(ch, &pm);
	channel_seed(out, "taken-released", ch);
	for (int i = 0; i < 8; i++)
		walrec_producer_try_append(p, payload);
	channel_seed(out, "ring-full", ch);
	wr_channel_set_state(ch, WR_CHAN_STOPPED);
	walrec_producer_detach(p);
	wr_channel_close(ch);
	wr_channel_unlink(name);
	rmdir(tmpdir);
	return 0;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slowfs: a FUSE file system with one file, "disk", that passes reads and
 * writes through to a backing file after a fixed delay. Tests put a file
 * bdev on it so that requests are reliably in flight inside nvlendd when the
 * test kills the daemon (crash-recovery tests); a tmpfs file completes in
 * microseconds and leaves nothing in flight to recover.
 *
 *   slowfs BACKING_FILE MOUNTPOINT DELAY_US     (foreground; unmount to stop)
 *
 * Multi-threaded, so delays of concurrent requests overlap like a device's.
 * Opened files use direct_io: no page cache between the bdev and the delay.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_fd = -1;
static useconds_t g_delay;

static int
sf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/disk") != 0)
		return -ENOENT;
	if (fstat(g_fd, st) < 0)
		return -errno;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	return 0;
}

static int
sf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
	   struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "disk", NULL, 0, 0);
	return 0;
}

static int
sf_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk") != 0)
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int
sf_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	(void)path;
	(void)fi;
	usleep(g_delay);
	n = pread(g_fd, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

static int
sf_write(const char *path, const char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	(void)path;
	(void)fi;
	usleep(g_delay);
	n = pwrite(g_fd, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

static int
sf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0;
}

static int
sf_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return fallocate(g_fd, mode, off, len) < 0 ? -errno : 0;
}

static int
sf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)path;
	(void)size;
	(void)fi;
	return -EPERM;
}

static const struct fuse_operations sf_ops = {
	.getattr = sf_getattr,
	.readdir = sf_readdir,
	.open = sf_open,
	.read = sf_read,
	.write = sf_write,
	.fsync = sf_fsync,
	.fallocate = sf_fallocate,
	.truncate = sf_truncate,
};

int
main(int argc, char **argv)
{
	char *fargv[8];
	int fargc = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: slowfs BACKING_FILE MOUNTPOINT DELAY_US\n");
		return 2;
	}
	g_fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (g_fd < 0) {
		perror(argv[1]);
		return 1;
	}
	g_delay = (useconds_t)strtoul(argv[3], NULL, 10);
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-f";
	fargv[fargc++] = "-o";
	fargv[fargc++] = "max_threads=64";
	fargv[fargc++] = argv[2];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &sf_ops, NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the keyring (src/nvmf/keyring.c): key files as SPDK's file
 * keyring accepts them (absolute path, regular file of ours, no group/other
 * access, one DHHC-1 secret), names, references held by host entries, the
 * file read again at each use (rotation, a file that went bad), listing and
 * save_config.
 */
#include "nvmf/keyring.c"
#include "common/ut.h"

static char g_dir[64];

static const char g_secret1[] = "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:\n";
static const char g_secret0[] = "DHHC-1:00:AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk/PUPo:";

static void
put_file(const char *name, const char *text, mode_t mode, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", g_dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/nvl-keyring-ut.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	return 0;
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int
teardown(void **state)
{
	(void)state;
	nvl_keyring_clear();
	nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void
test_add_rules(void **state)
{
	char p[128], err[256];
	struct {
		const char *what, *name, *text;
		mode_t mode;
		int want;
	} c[] = {
		{ "good", "k1", g_secret1, 0600, 0 },
		{ "read-only is fine", "k2", g_secret0, 0400, 0 },
		{ "group readable", "k3", g_secret1, 0640, -EPERM },
		{ "world readable", "k4", g_secret1, 0604, -EPERM },
		{ "group writable", "k5", g_secret1, 0620, -EPERM },
		{ "not a secret", "k6", "hello\n", 0600, -EINVAL },
		{ "bad CRC", "k7", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOD:", 0600,
		  -EINVAL },
		{ "empty", "k8", "", 0600, -EINVAL },
		{ "bad name", "a b", g_secret1, 0600, -EINVAL },
		{ "empty name", "", g_secret1, 0600, -EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < UT_N(c); i++) {
		int rc;

		put_file(c[i].name[0] && !strchr(c[i].name, ' ') ? c[i].name : "x", c[i].text,
			 c[i].mode, p, sizeof(p));
		err[0] = '\0';
		rc = nvl_keyring_add(c[i].name, p, err, sizeof(err));
		if (rc != c[i].want)
			fail_msg("%s: got %d (%s), want %d", c[i].what, rc, err, c[i].want);
		if (rc < 0)
			assert_true(err[0] != '\0');
	}
	/* relative path, missing file, a directory, a duplicate name */
	assert_int_equal(nvl_keyring_add("r", "keys/k1", err, sizeof(err)), -EINVAL);
	snprintf(p, sizeof(p), "%s/none", g_dir);
	assert_int_equal(nvl_keyring_add("m", p, err, sizeof(err)), -ENOENT);
	assert_int_equal(nvl_keyring_add("d", g_dir, err, sizeof(err)), -EPERM);
	snprintf(p, sizeof(p), "%s/k1", g_dir);
	assert_int_equal(nvl_keyring_add("k1", p, err, sizeof(err)), -EEXIST);
}

static void
test_load_reads_the_file_each_time(void **state)
{
	struct nvl_dhchap_key k;
	char p[128], err[256];

	(void)state;
	put_file("rot", g_secret1, 0600, p, sizeof(p));
	assert_int_equal(nvl_keyring_add("rot", p, err, sizeof(err)), 0);
	assert_int_equal(nvl_keyring_load("rot", &k), 0);
	assert_int_equal(k.hmac, 1);
	/* rotated: the new secret is used */
	put_file("rot", g_secret0, 0600, p, sizeof(p));
	assert_int_equal(nvl_keyring_load("rot", &k), 0);
	assert_int_equal(k.hmac, 0);
	assert_int_equal(k.key[1], 7);
	/* opened to others after it was added: refused at use */
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(nvl_keyring_load("rot", &k), -EPERM);
	for (size_t i = 0; i < sizeof(k.key); i++)
		assert_int_equal(k.key[i], 0);
	/* gone */
	unlink(p);
	assert_int_equal(nvl_keyring_load("rot", &k), -ENOENT);
	assert_int_equal(nvl_keyring_load("nosuchkey", &k), -ENOENT);
}

static void
test_references_list_config(void **state)
{
	char p[128], err[256];
	json_t *l, *calls;

	(void)state;
	put_file("a", g_secret1, 0600, p, sizeof(p));
	assert_int_equal(nvl_keyring_add("a", p, err, sizeof(err)), 0);
	assert_int_equal(nvl_keyring_get("a"), 0);
	assert_int_equal(nvl_keyring_get("a"), 0);
	assert_int_equal(nvl_keyring_get("b"), -ENOENT);
	assert_int_equal(nvl_keyring_remove("a"), -EBUSY);
	l = nvl_keyring_list();
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "path")), p);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "users")), 2);
	json_decref(l);
	/* a service's key: listed with its owner, never written to the config */
	put_file("o", g_secret0, 0600, p, sizeof(p));
	assert_int_equal(nvl_keyring_add_owned("lend-1-x-host", p, "lend", err, sizeof(err)), 0);
	l = nvl_keyring_list();
	assert_int_equal(json_array_size(l), 2);
	assert_null(json_object_get(json_array_get(l, 0), "owner"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "owner")),
			    "lend");
	json_decref(l);
	calls = json_array();
	nvl_keyring_write_config(calls);
	assert_int_equal(json_array_size(calls), 1);
	assert_int_equal(nvl_keyring_remove("lend-1-x-host"), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 0), "method")),
			    "keyring_file_add_key");
	/* names and paths only */
	{
		char *txt = json_dumps(calls, 0);

		assert_null(strstr(txt, "AQgPFh0k"));
		free(txt);
	}
	json_decref(calls);
	nvl_keyring_put("a");
	assert_int_equal(nvl_keyring_remove("a"), -EBUSY);
	nvl_keyring_put("a");
	assert_int_equal(nvl_keyring_remove("a"), 0);
	assert_int_equal(nvl_keyring_remove("a"), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_reads_the_file_each_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_references_list_config, setup, teardown),
	};

	return UT_RUN(tests);
}

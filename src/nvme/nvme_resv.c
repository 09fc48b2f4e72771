/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reservations (Base spec 8.19; NVM command set 3.2.4-3.2.7): Register,
 * Acquire (incl. preempt and preempt-and-abort), Release (incl. clear),
 * Report, the access check every read/write passes, notifications, and
 * Persist Through Power Loss (state in a JSON file, written atomically on
 * every change while PTPL is on).
 *
 * Registrations belong to hosts (128-bit host identifier), not controllers:
 * every controller of a host shares them, and they outlive controllers, so a
 * dead host stays registered (and holding) until another host preempts it.
 * Locking: ns->resv.lock around every read-modify-write; the I/O fast path
 * reads resv.active without the lock and takes it only when a reservation
 * exists.
 */
#include "nvme/nvme_internal.h"
#include "util/util.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The reservation state proper: everything after the lock. */
#define RESV_STATE_OFF offsetof(struct nvl_nvme_resv, rtype)

static const uint8_t zero_hostid[16];

static int
find_reg(const struct nvl_nvme_resv *r, const uint8_t hostid[16])
{
	for (unsigned i = 0; i < r->nreg; i++)
		if (memcmp(r->reg[i].hostid, hostid, 16) == 0)
			return (int)i;
	return -1;
}

static bool
type_all_regs(uint8_t t)
{
	return t == NVL_NVME_RESV_WRITE_EXCLUSIVE_ALL_REGS ||
	       t == NVL_NVME_RESV_EXCLUSIVE_ACCESS_ALL_REGS;
}

static bool
type_reg_only(uint8_t t)
{
	return t == NVL_NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY ||
	       t == NVL_NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY;
}

static bool
is_holder(const struct nvl_nvme_resv *r, int idx)
{
	if (r->rtype == 0 || idx < 0)
		return false;
	if (type_all_regs(r->rtype))
		return true;
	return r->holder == idx;
}

static void
resv_release(struct nvl_nvme_resv *r)
{
	r->rtype = 0;
	r->holder = -1;
	__atomic_store_n(&r->active, 0, __ATOMIC_RELEASE);
}

static void
resv_set(struct nvl_nvme_resv *r, uint8_t type, int holder)
{
	r->rtype = type;
	r->holder = type_all_regs(type) ? -1 : holder;
	__atomic_store_n(&r->active, 1, __ATOMIC_RELEASE);
}

/* Remove registrant idx, keeping holder index valid. */
static void
reg_remove(struct nvl_nvme_resv *r, int idx)
{
	if (r->holder == idx)
		r->holder = -1;
	else if (r->holder > idx)
		r->holder--;
	memmove(&r->reg[idx], &r->reg[idx + 1], sizeof(r->reg[0]) * (r->nreg - (unsigned)idx - 1));
	r->nreg--;
}

uint16_t
nvme_resv_check(struct nvl_nvme_ns *ns, struct nvl_nvme_ctrlr *c, bool write)
{
	struct nvl_nvme_resv *r = &ns->resv;
	uint16_t st = 0;
	int me;

	if (nvl_likely(!__atomic_load_n(&r->active, __ATOMIC_ACQUIRE)))
		return 0;
	pthread_mutex_lock(&r->lock);
	me = find_reg(r, c->hostid);
	switch (r->rtype) {
	case NVL_NVME_RESV_NONE:
		break;
	case NVL_NVME_RESV_WRITE_EXCLUSIVE:
		if (write && !is_holder(r, me))
			st = NVL_NVME_SC_RESERVATION_CONFLICT;
		break;
	case NVL_NVME_RESV_EXCLUSIVE_ACCESS:
		if (!is_holder(r, me))
			st = NVL_NVME_SC_RESERVATION_CONFLICT;
		break;
	case NVL_NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY:
	case NVL_NVME_RESV_WRITE_EXCLUSIVE_ALL_REGS:
		if (write && me < 0)
			st = NVL_NVME_SC_RESERVATION_CONFLICT;
		break;
	case NVL_NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY:
	case NVL_NVME_RESV_EXCLUSIVE_ACCESS_ALL_REGS:
		if (me < 0)
			st = NVL_NVME_SC_RESERVATION_CONFLICT;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return st ? NVL_NVME_DNR(st) : 0;
}

/* ---- persistence ---------------------------------------------------------- */

static void
hex16(const uint8_t in[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static int
unhex16(const char *s, uint8_t out[16])
{
	if (s == NULL || strlen(s) != 32)
		return -EINVAL;
	/* exactly 32 hex digits (sscanf("%2x") would take signs and blanks) */
	for (int i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
	for (int i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* An integer member of o within [min, max] into *out; false if absent or not. */
static bool
json_int_in(const json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return false;
	*out = json_integer_value(v);
	return true;
}

/* Called with resv.lock held. */
int
nvme_ptpl_save(struct nvl_nvme_ns *ns)
{
	struct nvl_nvme_resv *r = &ns->resv;
	char tmp[4096], hid[33];
	json_t *o, *regs;
	int fd, rc = 0;

	if (ns->ptpl_file == NULL)
		return 0;
	if (!r->ptpl) {
		/* persistence switched off: forget what was persisted */
		if (unlink(ns->ptpl_file) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	regs = json_array();
	for (unsigned i = 0; i < r->nreg; i++) {
		hex16(r->reg[i].hostid, hid);
		json_array_append_new(regs, json_pack("{s:s, s:I}", "hostid", hid, "rkey",
						      (json_int_t)r->reg[i].rkey));
	}
	o = json_pack("{s:b, s:i, s:i, s:I, s:o}", "ptpl", 1, "rtype", (int)r->rtype, "holder",
		      r->holder, "gen", (json_int_t)r->gen, "registrants", regs);
	snprintf(tmp, sizeof(tmp), "%s.tmp", ns->ptpl_file);
	errno = 0;
	if (json_dump_file(o, tmp, JSON_INDENT(1)) < 0) {
		rc = errno ? -errno : -EIO;   /* the real cause: ENOENT, EACCES, ENOSPC */
		unlink(tmp);
		goto out;
	}
	/* durable before it replaces the old state */
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	if (rename(tmp, ns->ptpl_file) < 0) {
		rc = -errno;
		unlink(tmp);
	}
out:
	json_decref(o);
	if (rc < 0)
		NVL_ERRLOG("nsid %u: cannot persist reservations to %s: %s", ns->nsid,
			   ns->ptpl_file, strerror(-rc));
	return rc;
}

int
nvl_nvme_ns_load_ptpl(struct nvl_nvme_ns *ns)
{
	struct nvl_nvme_resv *r = &ns->resv;
	json_error_t err;
	json_t *o, *regs, *e;
	json_int_t rtype, holder, gen;
	size_t i;

	if (ns->ptpl_file == NULL || access(ns->ptpl_file, F_OK) != 0)
		return 0;
	o = json_load_file(ns->ptpl_file, 0, &err);
	if (o == NULL) {
		NVL_ERRLOG("cannot read reservation state %s: %s", ns->ptpl_file, err.text);
		return -EINVAL;
	}
	regs = json_object_get(o, "registrants");
	/* integers in range (no silent truncation), a holder exactly when the
	 * type has a single holder (1..4), and an all-registrants type (5, 6) only
	 * with a registrant (the last one leaving releases it): anything else
	 * would fence wrongly */
	if (!json_is_array(regs) || json_array_size(regs) > NVL_NVME_MAX_REGISTRANTS ||
	    !json_int_in(o, "rtype", 0, 6, &rtype) ||
	    !json_int_in(o, "holder", -1, (json_int_t)json_array_size(regs) - 1, &holder) ||
	    !json_int_in(o, "gen", 0, UINT32_MAX, &gen) ||
	    (holder >= 0) != (rtype != 0 && !type_all_regs((uint8_t)rtype)) ||
	    (type_all_regs((uint8_t)rtype) && json_array_size(regs) == 0)) {
		json_decref(o);
		NVL_ERRLOG("reservation state %s is malformed", ns->ptpl_file);
		return -EINVAL;
	}
	pthread_mutex_lock(&r->lock);
	r->nreg = 0;
	json_array_foreach(regs, i, e) {
		json_t *k = json_object_get(e, "rkey");
		uint8_t hid[16];

		/* each host once, with an integer key */
		if (unhex16(json_string_value(json_object_get(e, "hostid")), hid) < 0 ||
		    !json_is_integer(k) || find_reg(r, hid) >= 0) {
			r->nreg = 0;
			pthread_mutex_unlock(&r->lock);
			json_decref(o);
			NVL_ERRLOG("reservation state %s: registrant %zu is malformed", ns->ptpl_file,
				   i);
			return -EINVAL;
		}
		memcpy(r->reg[i].hostid, hid, 16);
		r->reg[i].rkey = (uint64_t)json_integer_value(k);
		r->nreg++;
	}
	r->gen = (uint32_t)gen;
	r->ptpl = true;
	if (rtype)
		resv_set(r, (uint8_t)rtype, (int)holder);
	else
		resv_release(r);
	pthread_mutex_unlock(&r->lock);
	json_decref(o);
	NVL_NOTICELOG("nsid %u: restored %u registration(s), reservation type %d from %s", ns->nsid,
		      r->nreg, (int)rtype, ns->ptpl_file);
	return 0;
}

/* ---- commands ------------------------------------------------------------ */

struct notif {
	uint8_t hostid[16];
	uint8_t type;
};

static void
send_notifs(struct nvl_nvme_ns *ns, struct notif *n, unsigned cnt)
{
	for (unsigned i = 0; i < cnt; i++)
		if (ns->notify)
			ns->notify(ns, n[i].hostid, n[i].type);
}

static uint16_t
resv_register(struct nvl_nvme_ns *ns, struct nvl_nvme_ctrlr *c, uint32_t cdw10,
	      const struct nvl_nvme_resv_register_data *d, struct notif *nt, unsigned *nnt)
{
	struct nvl_nvme_resv *r = &ns->resv;
	uint8_t rrega = cdw10 & 7, cptpl = (uint8_t)(cdw10 >> 30);
	bool iekey = (cdw10 >> 3) & 1;
	int me = find_reg(r, c->hostid);

	if (cptpl == 1 || (cptpl == NVL_NVME_RESV_CPTPL_PERSIST && ns->ptpl_file == NULL))
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	switch (rrega) {
	case NVL_NVME_RESV_REGISTER_REGISTER:
		if (me >= 0) {
			if (r->reg[me].rkey != d->nrkey)
				return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
			break; /* same key again: success, nothing changes */
		}
		if (r->nreg == NVL_NVME_MAX_REGISTRANTS)
			return NVL_NVME_DNR(NVL_NVME_SC_CAPACITY_EXCEEDED);
		memcpy(r->reg[r->nreg].hostid, c->hostid, 16);
		r->reg[r->nreg].rkey = d->nrkey;
		r->nreg++;
		r->gen++;
		break;
	case NVL_NVME_RESV_REGISTER_UNREGISTER: {
		bool held;

		if (me < 0 || (!iekey && r->reg[me].rkey != d->crkey))
			return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
		held = is_holder(r, me);
		reg_remove(r, me);
		r->gen++;
		if (held && (!type_all_regs(r->rtype) || r->nreg == 0)) {
			bool tell = type_reg_only(r->rtype);

			resv_release(r);
			if (tell)
				for (unsigned i = 0; i < r->nreg && *nnt < NVL_NVME_MAX_REGISTRANTS; i++) {
					memcpy(nt[*nnt].hostid, r->reg[i].hostid, 16);
					nt[(*nnt)++].type = NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED;
				}
		}
		break;
	}
	case NVL_NVME_RESV_REGISTER_REPLACE:
		if (me < 0) {
			if (!iekey)
				return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
			if (r->nreg == NVL_NVME_MAX_REGISTRANTS)
				return NVL_NVME_DNR(NVL_NVME_SC_CAPACITY_EXCEEDED);
			memcpy(r->reg[r->nreg].hostid, c->hostid, 16);
			r->reg[r->nreg].rkey = d->nrkey;
			r->nreg++;
		} else {
			if (!iekey && r->reg[me].rkey != d->crkey)
				return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
			r->reg[me].rkey = d->nrkey;
		}
		r->gen++;
		break;
	default:
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	}
	if (cptpl == NVL_NVME_RESV_CPTPL_PERSIST)
		r->ptpl = true;
	else if (cptpl == NVL_NVME_RESV_CPTPL_CLEAR)
		r->ptpl = false;
	return 0;
}

/* Unregister every registrant (except `keep`) whose key is `key` (or all if
 * match_all); returns how many went. Adds "registration preempted" notices. */
static unsigned
preempt_regs(struct nvl_nvme_resv *r, int *keep, uint64_t key, bool match_all, struct notif *nt,
	     unsigned *nnt)
{
	unsigned gone = 0;

	for (int i = (int)r->nreg - 1; i >= 0; i--) {
		if (i == *keep || (!match_all && r->reg[i].rkey != key))
			continue;
		if (*nnt < NVL_NVME_MAX_REGISTRANTS) {
			memcpy(nt[*nnt].hostid, r->reg[i].hostid, 16);
			nt[(*nnt)++].type = NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED;
		}
		reg_remove(r, i);
		if (i < *keep)
			(*keep)--;
		gone++;
	}
	return gone;
}

static uint16_t
resv_acquire(struct nvl_nvme_ns *ns, struct nvl_nvme_ctrlr *c, uint32_t cdw10,
	     const struct nvl_nvme_resv_acquire_data *d, struct notif *nt, unsigned *nnt)
{
	struct nvl_nvme_resv *r = &ns->resv;
	uint8_t racqa = cdw10 & 7, rtype = (uint8_t)(cdw10 >> 8);
	bool iekey = (cdw10 >> 3) & 1;
	int me = find_reg(r, c->hostid);

	if (rtype < 1 || rtype > 6)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	if (me < 0 || (!iekey && r->reg[me].rkey != d->crkey))
		return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
	switch (racqa) {
	case NVL_NVME_RESV_ACQUIRE_ACQUIRE:
		if (r->rtype == 0) {
			resv_set(r, rtype, me);
			return 0;
		}
		if (is_holder(r, me) && r->rtype == rtype)
			return 0;
		return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
	case NVL_NVME_RESV_ACQUIRE_PREEMPT:
	case NVL_NVME_RESV_ACQUIRE_PREEMPT_ABORT:
		if (r->rtype == 0) {
			/* no reservation: preempt removes the registrations with PRKEY */
			if (preempt_regs(r, &me, d->prkey, false, nt, nnt) == 0)
				return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
			r->gen++;
			return 0;
		}
		if (type_all_regs(r->rtype)) {
			if (d->prkey == 0) {
				preempt_regs(r, &me, 0, true, nt, nnt);
				resv_set(r, rtype, me);
			} else if (preempt_regs(r, &me, d->prkey, false, nt, nnt) == 0) {
				return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
			}
			r->gen++;
			return 0;
		}
		if (r->holder >= 0 && r->reg[r->holder].rkey == d->prkey) {
			/* the holder is preempted: new reservation for us */
			preempt_regs(r, &me, d->prkey, false, nt, nnt);
			resv_set(r, rtype, me);
			r->gen++;
			return 0;
		}
		if (d->prkey == 0)
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
		if (preempt_regs(r, &me, d->prkey, false, nt, nnt) == 0)
			return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
		r->gen++;
		return 0;
	default:
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	}
}

static uint16_t
resv_release_cmd(struct nvl_nvme_ns *ns, struct nvl_nvme_ctrlr *c, uint32_t cdw10, uint64_t crkey,
		 struct notif *nt, unsigned *nnt)
{
	struct nvl_nvme_resv *r = &ns->resv;
	uint8_t rrela = cdw10 & 7, rtype = (uint8_t)(cdw10 >> 8);
	bool iekey = (cdw10 >> 3) & 1;
	int me = find_reg(r, c->hostid);

	if (me < 0 || (!iekey && r->reg[me].rkey != crkey))
		return NVL_NVME_DNR(NVL_NVME_SC_RESERVATION_CONFLICT);
	switch (rrela) {
	case NVL_NVME_RESV_RELEASE_RELEASE: {
		uint8_t old = r->rtype;

		if (old == 0 || !is_holder(r, me))
			return 0;
		if (rtype != old)
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
		resv_release(r);
		if (old != NVL_NVME_RESV_WRITE_EXCLUSIVE && old != NVL_NVME_RESV_EXCLUSIVE_ACCESS)
			for (unsigned i = 0; i < r->nreg && *nnt < NVL_NVME_MAX_REGISTRANTS; i++) {
				if ((int)i == me)
					continue;
				memcpy(nt[*nnt].hostid, r->reg[i].hostid, 16);
				nt[(*nnt)++].type = NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED;
			}
		return 0;
	}
	case NVL_NVME_RESV_RELEASE_CLEAR:
		for (unsigned i = 0; i < r->nreg && *nnt < NVL_NVME_MAX_REGISTRANTS; i++) {
			if ((int)i == me)
				continue;
			memcpy(nt[*nnt].hostid, r->reg[i].hostid, 16);
			nt[(*nnt)++].type = NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED;
		}
		resv_release(r);
		r->nreg = 0;
		r->gen++;
		return 0;
	default:
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	}
}

static void
resv_report(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ns *ns = req->ns;
	struct nvl_nvme_resv *r = &ns->resv;
	bool eds = req->cmd.cdw11 & 1;
	size_t hdr;

	if (!eds) {
		/* our host identifiers are 128-bit (CTRATT bit 0): the 64-bit data
		 * structure cannot carry them (NVM cmd set 3.2.5, as SPDK answers) */
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_HOSTID_INCONSISTENT));
		return;
	}
	hdr = eds ? 64 : sizeof(struct nvl_nvme_resv_status);
	size_t esz = eds ? sizeof(struct nvl_nvme_registered_ctrlr_ext)
			 : sizeof(struct nvl_nvme_registered_ctrlr);
	size_t size = hdr + esz * NVL_NVME_MAX_REGISTRANTS;
	uint8_t *buf = calloc(1, size);
	struct nvl_nvme_resv_status *h = (void *)buf;

	if (buf == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	pthread_mutex_lock(&r->lock);
	h->gen = r->gen;
	h->rtype = r->rtype;
	h->regctl = (uint16_t)r->nreg;
	h->ptpls = r->ptpl ? 1 : 0;
	for (unsigned i = 0; i < r->nreg; i++) {
		if (eds) {
			struct nvl_nvme_registered_ctrlr_ext *e = (void *)(buf + hdr + i * esz);

			e->cntlid = 0xffff; /* dynamic controller model */
			e->rcsts = is_holder(r, (int)i) ? 1 : 0;
			e->rkey = r->reg[i].rkey;
			memcpy(e->hostid, r->reg[i].hostid, 16);
		} else {
			struct nvl_nvme_registered_ctrlr *e = (void *)(buf + hdr + i * esz);

			e->cntlid = 0xffff;
			e->rcsts = is_holder(r, (int)i) ? 1 : 0;
			e->rkey = r->reg[i].rkey;
			/* 64-bit view of a 128-bit identifier: its first half */
			memcpy(&e->hostid, r->reg[i].hostid, 8);
		}
	}
	size = hdr + esz * r->nreg;
	pthread_mutex_unlock(&r->lock);
	nvl_nvme_req_copy_to(req, buf, (uint32_t)size);
	free(buf);
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

void
nvme_resv_execute(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ns *ns = req->ns;
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	struct nvl_nvme_resv *r = &ns->resv;
	uint8_t data[16] = { 0 };
	struct notif *nt;
	unsigned nnt = 0;
	uint32_t need = req->cmd.opc == NVL_NVME_IO_RESV_RELEASE ? 8 : 16;
	uint16_t st;
	struct nvl_nvme_resv *saved = NULL;
	bool was_ptpl;

	if (req->cmd.opc == NVL_NVME_IO_RESV_REPORT) {
		resv_report(req);
		return;
	}
	if (memcmp(c->hostid, zero_hostid, 16) == 0) {
		/* a host must identify itself before it can hold anything */
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR));
		return;
	}
	if (nvl_nvme_req_copy_from(req, data, need) != need) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
		return;
	}
	nt = calloc(NVL_NVME_MAX_REGISTRANTS, sizeof(*nt));
	if (nt == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	/* with a PTPL file the change and its persistence are one step: on a
	 * failed save the state goes back to what it was, and no host is told
	 * of a change that did not happen */
	if (ns->ptpl_file && (saved = malloc(sizeof(*saved))) == NULL) {
		free(nt);
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	pthread_mutex_lock(&r->lock);
	was_ptpl = r->ptpl;
	if (saved)
		memcpy((char *)saved + RESV_STATE_OFF, (char *)r + RESV_STATE_OFF,
		       sizeof(*r) - RESV_STATE_OFF);
	switch (req->cmd.opc) {
	case NVL_NVME_IO_RESV_REGISTER:
		st = resv_register(ns, c, req->cmd.cdw10, (const void *)data, nt, &nnt);
		break;
	case NVL_NVME_IO_RESV_ACQUIRE:
		st = resv_acquire(ns, c, req->cmd.cdw10, (const void *)data, nt, &nnt);
		break;
	default: {
		uint64_t crkey;

		memcpy(&crkey, data, 8);
		st = resv_release_cmd(ns, c, req->cmd.cdw10, crkey, nt, &nnt);
		break;
	}
	}
	if (st == 0 && saved && (r->ptpl || was_ptpl) && nvme_ptpl_save(ns) < 0) {
		memcpy((char *)r + RESV_STATE_OFF, (char *)saved + RESV_STATE_OFF,
		       sizeof(*r) - RESV_STATE_OFF);
		nnt = 0;
		st = NVL_NVME_SC_INTERNAL;
	}
	pthread_mutex_unlock(&r->lock);
	send_notifs(ns, nt, nnt);
	free(saved);
	free(nt);
	nvl_nvme_req_complete(req, st);
}

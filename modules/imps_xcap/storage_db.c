/* imps_xcap: the documents through Kamailio's DB API (db_sqlite by default, db_postgres).
 * Every change is conditional on the ETag the core read: an UPDATE or DELETE ... WHERE
 * path = ? AND etag = ?, whose row count says whether another process changed the document
 * first (the core then reads it again). One connection per process, opened on first use. */
#include <string.h>
#include <strings.h>

#include "core/dprint.h"
#include "core/mem/mem.h"

#include "imps_xcap.h"

str db_url = str_init("sqlite:///var/lib/kamailio/imps_xcap.sqlite");
str xcap_table = str_init("imps_xcap");
static db_func_t dbf;
static db1_con_t *dbh = NULL;
static int is_sqlite = 0;

static str col_path = str_init("path");
static str col_auid = str_init("auid");
static str col_xui = str_init("xui");
static str col_doc = str_init("doc");
static str col_etag = str_init("etag");
static str col_size = str_init("size");
static str col_modified = str_init("modified");

static void set_str(db_val_t *v, imps_str_t s)
{
	VAL_TYPE(v) = DB1_STR;
	VAL_NULL(v) = 0;
	VAL_STR(v).s = (char *)(s.s ? s.s : "");
	VAL_STR(v).len = (int)s.len;
}

static void set_bigint(db_val_t *v, long long n)
{
	VAL_TYPE(v) = DB1_BIGINT;
	VAL_NULL(v) = 0;
	VAL_BIGINT(v) = n;
}

static void set_int(db_val_t *v, int n)
{
	VAL_TYPE(v) = DB1_INT;
	VAL_NULL(v) = 0;
	VAL_INT(v) = n;
}

static int val_str(db_val_t *v, imps_str_t *out)
{
	out->s = "";
	out->len = 0;
	if(VAL_NULL(v))
		return 0;
	switch(VAL_TYPE(v)) {
		case DB1_STRING:
			out->s = VAL_STRING(v);
			out->len = out->s ? strlen(out->s) : 0;
			return 0;
		case DB1_STR:
			out->s = VAL_STR(v).s;
			out->len = (size_t)VAL_STR(v).len;
			return 0;
		case DB1_BLOB:
			out->s = VAL_BLOB(v).s;
			out->len = (size_t)VAL_BLOB(v).len;
			return 0;
		default:
			return -1;
	}
}

static long long val_num(db_val_t *v)
{
	if(VAL_NULL(v))
		return 0;
	switch(VAL_TYPE(v)) {
		case DB1_INT:
			return VAL_INT(v);
		case DB1_BIGINT:
			return VAL_BIGINT(v);
		case DB1_UINT:
			return VAL_UINT(v);
		case DB1_UBIGINT:
			return (long long)VAL_UBIGINT(v);
		case DB1_DOUBLE:
			return (long long)VAL_DOUBLE(v);
		case DB1_STRING:
			return VAL_STRING(v) ? atoll(VAL_STRING(v)) : 0;
		default:
			return 0;
	}
}

/* the process's connection (SQLite: waits up to 5 s for another process's write lock) */
static db1_con_t *conn(void)
{
	if(dbh)
		return dbh;
	dbh = dbf.init(&db_url);
	if(dbh == NULL) {
		LM_ERR("cannot connect to %.*s\n", db_url.len, db_url.s);
		return NULL;
	}
	if(is_sqlite) {
		str q = str_init("PRAGMA busy_timeout = 5000");
		db1_res_t *res = NULL;
		if(dbf.raw_query(dbh, &q, &res) < 0)
			LM_WARN("cannot set the SQLite busy timeout\n");
		if(res)
			dbf.free_result(dbh, res);
	}
	return dbh;
}

/* rows the last UPDATE/DELETE of this connection changed; -1 unknown */
static int changed_rows(db1_con_t *h)
{
	if(dbf.affected_rows)
		return dbf.affected_rows(h);
	if(is_sqlite) {
		str q = str_init("SELECT changes()");
		db1_res_t *res = NULL;
		int n = -1;
		if(dbf.raw_query(h, &q, &res) == 0 && res && RES_ROW_N(res) == 1)
			n = (int)val_num(&ROW_VALUES(&RES_ROWS(res)[0])[0]);
		if(res)
			dbf.free_result(h, res);
		return n;
	}
	return -1;
}

static int st_fetch(imps_str_t path, imps_xcap_doc_sink_f sink, void *ctx)
{
	db_key_t keys[1] = {&col_path};
	db_val_t vals[1];
	db_key_t cols[3] = {&col_doc, &col_etag, &col_modified};
	db1_res_t *res = NULL;
	db1_con_t *h = conn();
	int rc = IMPS_XCAP_ST_NOT_FOUND;

	if(h == NULL)
		return IMPS_XCAP_ST_ERROR;
	memset(vals, 0, sizeof(vals));
	set_str(&vals[0], path);
	if(dbf.use_table(h, &xcap_table) < 0 || dbf.query(h, keys, 0, vals, cols, 1, 3, 0, &res) < 0) {
		LM_ERR("query of %.*s failed\n", (int)path.len, path.s);
		if(res)
			dbf.free_result(h, res);
		return IMPS_XCAP_ST_ERROR;
	}
	if(res && RES_ROW_N(res) > 0) {
		db_val_t *rv = ROW_VALUES(&RES_ROWS(res)[0]);
		imps_str_t doc, etag;
		if(val_str(&rv[0], &doc) < 0 || val_str(&rv[1], &etag) < 0) {
			rc = IMPS_XCAP_ST_ERROR;
		} else {
			sink(ctx, doc, etag, val_num(&rv[2]));
			rc = IMPS_XCAP_ST_OK;
		}
	}
	if(res)
		dbf.free_result(h, res);
	return rc;
}

static void exists_sink(void *ctx, imps_str_t b, imps_str_t e, long long m)
{
	*(int *)ctx = 1;
}

static int exists(imps_str_t path)
{
	int found = 0;
	int rc = st_fetch(path, exists_sink, &found);
	if(rc == IMPS_XCAP_ST_ERROR)
		return -1;
	return found;
}

static int st_create(imps_str_t path, imps_str_t auid, imps_str_t xui, imps_str_t body,
		imps_str_t etag, long long modified)
{
	db_key_t keys[7] = {&col_path, &col_auid, &col_xui, &col_doc, &col_etag, &col_size,
			&col_modified};
	db_val_t vals[7];
	db1_con_t *h = conn();

	if(h == NULL)
		return IMPS_XCAP_ST_ERROR;
	memset(vals, 0, sizeof(vals));
	set_str(&vals[0], path);
	set_str(&vals[1], auid);
	set_str(&vals[2], xui);
	set_str(&vals[3], body);
	set_str(&vals[4], etag);
	set_int(&vals[5], (int)body.len);
	set_bigint(&vals[6], modified);
	if(dbf.use_table(h, &xcap_table) < 0)
		return IMPS_XCAP_ST_ERROR;
	if(dbf.insert(h, keys, vals, 7) < 0) {
		/* the unique path: another process created it first */
		if(exists(path) == 1)
			return IMPS_XCAP_ST_CONFLICT;
		LM_ERR("insert of %.*s failed\n", (int)path.len, path.s);
		return IMPS_XCAP_ST_ERROR;
	}
	return IMPS_XCAP_ST_OK;
}

/* after a conditional change that touched n rows */
static int outcome(imps_str_t path, int n)
{
	int e;
	if(n > 0)
		return IMPS_XCAP_ST_OK;
	if(n < 0) {
		LM_ERR("the database module cannot say how many rows changed\n");
		return IMPS_XCAP_ST_ERROR;
	}
	e = exists(path);
	if(e < 0)
		return IMPS_XCAP_ST_ERROR;
	return e ? IMPS_XCAP_ST_CONFLICT : IMPS_XCAP_ST_NOT_FOUND;
}

static int st_replace(imps_str_t path, imps_str_t old_etag, imps_str_t body, imps_str_t etag,
		long long modified)
{
	db_key_t keys[2] = {&col_path, &col_etag};
	db_val_t vals[2];
	db_key_t ucols[4] = {&col_doc, &col_etag, &col_size, &col_modified};
	db_val_t uvals[4];
	db1_con_t *h = conn();

	if(h == NULL)
		return IMPS_XCAP_ST_ERROR;
	memset(vals, 0, sizeof(vals));
	memset(uvals, 0, sizeof(uvals));
	set_str(&vals[0], path);
	set_str(&vals[1], old_etag);
	set_str(&uvals[0], body);
	set_str(&uvals[1], etag);
	set_int(&uvals[2], (int)body.len);
	set_bigint(&uvals[3], modified);
	if(dbf.use_table(h, &xcap_table) < 0 || dbf.update(h, keys, 0, vals, ucols, uvals, 2, 4) < 0) {
		LM_ERR("update of %.*s failed\n", (int)path.len, path.s);
		return IMPS_XCAP_ST_ERROR;
	}
	return outcome(path, changed_rows(h));
}

static int st_remove(imps_str_t path, imps_str_t old_etag)
{
	db_key_t keys[2] = {&col_path, &col_etag};
	db_val_t vals[2];
	db1_con_t *h = conn();

	if(h == NULL)
		return IMPS_XCAP_ST_ERROR;
	memset(vals, 0, sizeof(vals));
	set_str(&vals[0], path);
	set_str(&vals[1], old_etag);
	if(dbf.use_table(h, &xcap_table) < 0 || dbf.delete(h, keys, 0, vals, 2) < 0) {
		LM_ERR("delete of %.*s failed\n", (int)path.len, path.s);
		return IMPS_XCAP_ST_ERROR;
	}
	return outcome(path, changed_rows(h));
}

static int st_list(imps_str_t auid, imps_str_t xui, imps_xcap_info_sink_f sink, void *ctx)
{
	db_key_t keys[2];
	db_val_t vals[2];
	db_key_t cols[4] = {&col_path, &col_etag, &col_modified, &col_size};
	db1_res_t *res = NULL;
	db1_con_t *h = conn();
	int n = 0, i;

	if(h == NULL)
		return IMPS_XCAP_ST_ERROR;
	memset(vals, 0, sizeof(vals));
	if(auid.len) {
		keys[n] = &col_auid;
		set_str(&vals[n++], auid);
	}
	if(xui.len) {
		keys[n] = &col_xui;
		set_str(&vals[n++], xui);
	}
	if(dbf.use_table(h, &xcap_table) < 0
			|| dbf.query(h, n ? keys : 0, 0, n ? vals : 0, cols, n, 4, 0, &res) < 0) {
		LM_ERR("listing of %.*s failed\n", xcap_table.len, xcap_table.s);
		if(res)
			dbf.free_result(h, res);
		return IMPS_XCAP_ST_ERROR;
	}
	for(i = 0; res && i < RES_ROW_N(res); i++) {
		db_val_t *rv = ROW_VALUES(&RES_ROWS(res)[i]);
		imps_str_t p, e;
		if(val_str(&rv[0], &p) < 0 || val_str(&rv[1], &e) < 0)
			continue;
		sink(ctx, p, e, val_num(&rv[2]), val_num(&rv[3]));
	}
	if(res)
		dbf.free_result(h, res);
	return IMPS_XCAP_ST_OK;
}

imps_xcap_storage_ops_t storage_ops = {st_fetch, st_create, st_replace, st_remove, st_list};

/* mod_init: the DB module of db_url and the table of the right version */
int storage_init(void)
{
	db1_con_t *h;
	is_sqlite = db_url.len >= 7 && strncasecmp(db_url.s, "sqlite:", 7) == 0;
	if(db_bind_mod(&db_url, &dbf) < 0) {
		LM_ERR("cannot bind a database module for %.*s (load db_sqlite or db_postgres)\n",
				db_url.len, db_url.s);
		return -1;
	}
	if(!DB_CAPABILITY(dbf, DB_CAP_QUERY | DB_CAP_INSERT | DB_CAP_DELETE | DB_CAP_UPDATE)) {
		LM_ERR("the database module cannot query, insert, update and delete\n");
		return -1;
	}
	if(!dbf.affected_rows && !(is_sqlite && dbf.raw_query)) {
		LM_ERR("the database module cannot count changed rows (needed for ETags)\n");
		return -1;
	}
	h = dbf.init(&db_url);
	if(h == NULL) {
		LM_ERR("cannot connect to %.*s\n", db_url.len, db_url.s);
		return -1;
	}
	if(db_check_table_version(&dbf, h, &xcap_table, 1) < 0) {
		LM_ERR("table %.*s missing or of the wrong version: create it with "
			   "sql/imps_xcap-create.sql\n",
				xcap_table.len, xcap_table.s);
		dbf.close(h);
		return -1;
	}
	dbf.close(h);
	return 0;
}

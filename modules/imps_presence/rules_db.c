/* imps_presence: the operator's presence rules in SQL (the DB API: db_sqlite by default,
 * PostgreSQL tested): lookup for a watcher, storing a rule (RPC), and the poll that applies
 * rules changed with SQL to existing watchers. */
#include <string.h>
#include <strings.h>

#include "core/dprint.h"
#include "core/mem/mem.h"

#include "imps_presence.h"


str db_url = str_init("sqlite:///var/lib/kamailio/imps_presence.sqlite");
str rules_table = str_init("imps_presence_rules");
char *default_action = "confirm";
int default_action_code = IMPS_ACTION_CONFIRM;
db_func_t dbf;
db1_con_t *dbh = NULL;

static str col_presentity = str_init("presentity");
static str col_watcher = str_init("watcher");
static str col_action = str_init("action");

/* ---- rules (DB API) ---------------------------------------------------------------------- */

int action_code(str *a)
{
	if(a->len == 5 && strncasecmp(a->s, "allow", 5) == 0)
		return IMPS_ACTION_ALLOW;
	if(a->len == 5 && strncasecmp(a->s, "block", 5) == 0)
		return IMPS_ACTION_BLOCK;
	if(a->len == 12 && strncasecmp(a->s, "polite-block", 12) == 0)
		return IMPS_ACTION_POLITE_BLOCK;
	if(a->len == 7 && strncasecmp(a->s, "confirm", 7) == 0)
		return IMPS_ACTION_CONFIRM;
	return -1;
}

const char *action_str(int a)
{
	switch(a) {
		case IMPS_ACTION_ALLOW:
			return "allow";
		case IMPS_ACTION_BLOCK:
			return "block";
		case IMPS_ACTION_POLITE_BLOCK:
			return "polite-block";
		default:
			return "confirm";
	}
}

static int db_value_str(db_val_t *v, str *out)
{
	if(VAL_NULL(v))
		return -1;
	switch(VAL_TYPE(v)) {
		case DB1_STRING:
			out->s = (char *)VAL_STRING(v);
			out->len = out->s ? strlen(out->s) : 0;
			return 0;
		case DB1_STR:
			*out = VAL_STR(v);
			return 0;
		case DB1_BLOB:
			*out = VAL_BLOB(v);
			return 0;
		default:
			return -1;
	}
}

/* The rows of the rules table for a presentity or a domain (key), to sink; the core picks
 * the one that applies (match_rules in core/rules.cpp). 0, -1 when the table cannot be read. */
int rule_rows(imps_str_t key, void (*sink)(void *ctx, imps_str_t watcher, imps_str_t action),
		void *ctx)
{
	db_key_t keys[1] = {&col_presentity};
	db_val_t vals[1];
	db_key_t cols[2] = {&col_watcher, &col_action};
	db1_res_t *res = NULL;
	str w, act;
	int i;

	if(dbh == NULL)
		return -1;
	memset(vals, 0, sizeof(vals));
	VAL_TYPE(&vals[0]) = DB1_STR;
	VAL_STR(&vals[0]) = imps_kstr(key);
	if(dbf.use_table(dbh, &rules_table) < 0
			|| dbf.query(dbh, keys, 0, vals, cols, 1, 2, 0, &res) < 0) {
		LM_ERR("rules query failed for %.*s\n", (int)key.len, key.s);
		return -1;
	}
	for(i = 0; res && i < RES_ROW_N(res); i++) {
		db_val_t *rv = ROW_VALUES(&RES_ROWS(res)[i]);
		if(db_value_str(&rv[0], &w) < 0 || db_value_str(&rv[1], &act) < 0)
			continue;
		sink(ctx, imps_str_of(w), imps_str_of(act));
	}
	if(res)
		dbf.free_result(dbh, res);
	return 0;
}

int rule_store(str *p, str *w, const char *action)
{
	db_key_t keys[3] = {&col_presentity, &col_watcher, &col_action};
	db_val_t vals[3];
	memset(vals, 0, sizeof(vals));
	VAL_TYPE(&vals[0]) = VAL_TYPE(&vals[1]) = VAL_TYPE(&vals[2]) = DB1_STR;
	VAL_STR(&vals[0]) = *p;
	VAL_STR(&vals[1]) = *w;
	VAL_STR(&vals[2]).s = (char *)action;
	VAL_STR(&vals[2]).len = strlen(action);
	if(dbh == NULL || dbf.use_table(dbh, &rules_table) < 0)
		return -1;
	if(dbf.delete(dbh, keys, 0, vals, 2) < 0)
		return -1;
	return dbf.insert(dbh, keys, vals, 3);
}

/* Reads the whole rules table and hands it to the core, which applies changed rules to the
 * existing watchers at once (rules edited with SQL, not through imps_presence.authorize). */
#define MAX_POLLED_RULES 100000
void poll_rules(void)
{
	db_key_t cols[3] = {&col_presentity, &col_watcher, &col_action};
	db1_res_t *res = NULL;
	imps_presence_rule_row_t *rows;
	int i, n = 0;
	str v[3];

	if(dbh == NULL && (dbh = dbf.init(&db_url)) == NULL) {
		LM_ERR("rules poll: cannot connect to %.*s\n", db_url.len, db_url.s);
		return;
	}
	if(dbf.use_table(dbh, &rules_table) < 0
			|| dbf.query(dbh, 0, 0, 0, cols, 0, 3, 0, &res) < 0 || res == NULL) {
		LM_ERR("rules poll: query of %.*s failed\n", rules_table.len, rules_table.s);
		return;
	}
	if(RES_ROW_N(res) > MAX_POLLED_RULES) {
		LM_WARN("rules poll: more than %d rules: changes in SQL apply at the next refresh only\n",
				MAX_POLLED_RULES);
		dbf.free_result(dbh, res);
		return;
	}
	rows = (imps_presence_rule_row_t *)pkg_malloc(
			sizeof(imps_presence_rule_row_t) * (RES_ROW_N(res) + 1));
	if(rows == NULL) {
		PKG_MEM_ERROR;
		dbf.free_result(dbh, res);
		return;
	}
	for(i = 0; i < RES_ROW_N(res); i++) {
		db_val_t *rv = ROW_VALUES(&RES_ROWS(res)[i]);
		if(db_value_str(&rv[0], &v[0]) < 0 || db_value_str(&rv[1], &v[1]) < 0
				|| db_value_str(&rv[2], &v[2]) < 0)
			continue;
		rows[n].presentity = imps_str_of(v[0]);
		rows[n].watcher = imps_str_of(v[1]);
		rows[n].action = imps_str_of(v[2]);
		n++;
	}
	imps_presence_rules_snapshot(rows, (size_t)n);
	pkg_free(rows);
	dbf.free_result(dbh, res);
}


/* mod_init: the DB module for db_url and the rules table of the right version */
int rules_db_init(void)
{
	db1_con_t *h;
	if(db_bind_mod(&db_url, &dbf) < 0) {
		LM_ERR("cannot bind a database module for %.*s (load db_sqlite or db_postgres)\n",
				db_url.len, db_url.s);
		return -1;
	}
	if(!DB_CAPABILITY(dbf, DB_CAP_QUERY | DB_CAP_INSERT | DB_CAP_DELETE)) {
		LM_ERR("the database module cannot query, insert and delete\n");
		return -1;
	}
	h = dbf.init(&db_url);
	if(h == NULL) {
		LM_ERR("cannot connect to %.*s\n", db_url.len, db_url.s);
		return -1;
	}
	if(db_check_table_version(&dbf, h, &rules_table, 1) < 0) {
		LM_ERR("table %.*s missing or of the wrong version: create it with sql/\n",
				rules_table.len, rules_table.s);
		dbf.close(h);
		return -1;
	}
	dbf.close(h);
	return 0;
}

/* imps_presence: bind_imps_presence(), the API other modules use in process
 * (imps_presence_api.h): watches whose NOTIFYs are calls of the consumer's callback. */
#include <string.h>

#include "core/dprint.h"

#include "imps_presence.h"
#include "imps_presence_api.h"


#define MAX_CONSUMERS 8

static struct
{
	char name[32];
	imps_presence_local_cb cb;
	void *param;
} consumers[MAX_CONSUMERS];
static int n_consumers = 0;

static int register_consumer(const char *name, imps_presence_local_cb cb, void *param)
{
	if(name == NULL || cb == NULL || strlen(name) >= sizeof(consumers[0].name)
			|| strchr(name, ':') != NULL) {
		LM_ERR("a consumer needs a name (under 32 characters, no ':') and a callback\n");
		return -1;
	}
	if(n_consumers == MAX_CONSUMERS) {
		LM_ERR("more than %d in-process consumers of imps_presence\n", MAX_CONSUMERS);
		return -1;
	}
	strcpy(consumers[n_consumers].name, name);
	consumers[n_consumers].cb = cb;
	consumers[n_consumers].param = param;
	n_consumers++;
	return 0;
}

/* the core's host callback: a NOTIFY of a watch, to its consumer */
int deliver_local(const imps_presence_local_t *l)
{
	imps_presence_local_notify_t n;
	int i;
	for(i = 0; i < n_consumers; i++) {
		if(l->consumer.len != strlen(consumers[i].name)
				|| memcmp(l->consumer.s, consumers[i].name, l->consumer.len) != 0)
			continue;
		n.presentity = imps_kstr(l->presentity);
		n.id = imps_kstr(l->sid);
		n.key = imps_kstr(l->key);
		n.state = imps_kstr(l->state);
		n.content_type = imps_kstr(l->content_type);
		n.body = imps_kstr(l->body);
		n.version = l->version;
		return consumers[i].cb(&n, consumers[i].param);
	}
	LM_WARN("NOTIFY for consumer '%.*s', which is not loaded: the watch ends\n",
			(int)l->consumer.len, l->consumer.s);
	return 481;
}

static int api_watch(str *presentity, str *watcher, const char *consumer, str *key, int expires,
		char *id, int id_size)
{
	imps_presence_reply_t rep;
	str c;
	c.s = (char *)consumer;
	c.len = consumer ? strlen(consumer) : 0;
	if(imps_presence_watch(imps_str_of(*presentity), imps_str_of(*watcher), imps_str_of(c), imps_str_of(*key), expires, &rep, id,
			   id_size > 0 ? (size_t)id_size : 0)
			< 0
			&& rep.code != 503)
		return -1;
	return rep.code;
}

static int api_unwatch(str *presentity, str *id)
{
	return imps_presence_unwatch(imps_str_of(*presentity), imps_str_of(*id));
}

struct doc_sink_ctx
{
	void (*sink)(void *ctx, str *doc);
	void *ctx;
};

static void doc_sink(void *c, imps_str_t doc)
{
	struct doc_sink_ctx *d = (struct doc_sink_ctx *)c;
	str s = imps_kstr(doc);
	d->sink(d->ctx, &s);
}

static int api_document(str *presentity, void (*sink)(void *ctx, str *doc), void *ctx)
{
	struct doc_sink_ctx d = {sink, ctx};
	return imps_presence_document(imps_str_of(*presentity), doc_sink, &d);
}

int bind_imps_presence(void *p)
{
	imps_presence_api_t *api = (imps_presence_api_t *)p;
	if(api == NULL)
		return -1;
	api->register_consumer = register_consumer;
	api->watch = api_watch;
	api->unwatch = api_unwatch;
	api->document = api_document;
	return 0;
}

/* imps_xcap: bind_imps_xcap(), the API of the List and Policy Server for modules in the same
 * Kamailio (imps_xcap_api.h): reads as a trusted reader, listings, and the stored changes,
 * reported to the callbacks registered in mod_init and counted in shared memory. */
#include "core/dprint.h"
#include "core/atomic_ops.h"
#include "core/mem/shm_mem.h"

#include "imps_xcap.h"
#include "imps_xcap/imps_xcap_api.h"

#define MAX_CHANGE_CALLBACKS 8

static struct
{
	imps_xcap_change_f f;
	void *param;
} callbacks[MAX_CHANGE_CALLBACKS];
static int n_callbacks = 0;
static int forked = 0;
static atomic_t *generation = NULL;

/* every stored change, in the process that made it: the count first (a reader that looks
 * now sees a new generation), then the callbacks */
static void changed(imps_str_t path, imps_str_t old_etag, imps_str_t new_etag)
{
	int i;
	if(generation)
		atomic_inc(generation);
	for(i = 0; i < n_callbacks; i++)
		callbacks[i].f(path, old_etag, new_etag, callbacks[i].param);
}

static int api_register_change(imps_xcap_change_f f, void *param)
{
	if(forked || f == NULL || n_callbacks >= MAX_CHANGE_CALLBACKS) {
		LM_ERR("imps_xcap: a change callback can be registered only in mod_init (at most %d)\n",
				MAX_CHANGE_CALLBACKS);
		return -1;
	}
	callbacks[n_callbacks].f = f;
	callbacks[n_callbacks].param = param;
	n_callbacks++;
	return 0;
}

static unsigned long api_generation(void)
{
	return generation ? (unsigned long)atomic_get(generation) : 0;
}

static int api_get(imps_str_t path, imps_xcap_get_sink_f sink, void *ctx)
{
	return imps_xcap_read(path, sink, ctx);
}

static int api_list(imps_str_t auid, imps_str_t xui, imps_xcap_info_sink_f sink, void *ctx)
{
	return imps_xcap_list_usage(auid, xui, sink, ctx);
}

int bind_imps_xcap(void *p)
{
	imps_xcap_api_t *api = (imps_xcap_api_t *)p;
	if(api == NULL)
		return -1;
	api->get = api_get;
	api->list = api_list;
	api->register_change = api_register_change;
	api->generation = api_generation;
	api->root = xcap_root;
	return 0;
}

/* mod_init, after the core is up */
int api_init(void)
{
	generation = (atomic_t *)shm_malloc(sizeof(atomic_t));
	if(generation == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	atomic_set(generation, 0);
	imps_xcap_set_change(changed);
	return 0;
}

/* child_init: no more callbacks */
void api_forked(void)
{
	forked = 1;
}

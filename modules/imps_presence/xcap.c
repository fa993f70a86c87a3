/* imps_presence: the List and Policy Server (imps_xcap) in the same Kamailio, through
 * bind_imps_xcap(): users' pres-rules read in process and the xcap-diff package's documents;
 * every stored change is handed to the core in the process that made it (the HTTP worker), so
 * it reaches the watchers at once. */
#include "core/dprint.h"

#include "imps_presence.h"
#include "imps_xcap/imps_xcap_api.h"

imps_xcap_api_t xcap_api;
int xcap_bound = 0;

static void changed(imps_str_t path, imps_str_t old_etag, imps_str_t new_etag, void *param)
{
	if(open_core() < 0)
		return;
	imps_presence_document_changed(path, old_etag, new_etag);
}

/* mod_init: 1 bound (imps_xcap loaded), 0 not loaded, -1 error */
int xcap_bind(void)
{
	bind_imps_xcap_f bind = (bind_imps_xcap_f)find_export("bind_imps_xcap", 0, 0);
	if(bind == NULL)
		return 0;
	if(bind(&xcap_api) < 0 || xcap_api.register_change(changed, NULL) < 0) {
		LM_ERR("cannot bind imps_xcap\n");
		return -1;
	}
	xcap_bound = 1;
	return 1;
}

const char *xcap_bound_root(void)
{
	return xcap_bound && xcap_api.root ? xcap_api.root : "";
}

/* imps_reginfo: SUBSCRIBE for Event: reg, and the NOTIFYs through tm. */
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_to.h"
#include "core/parser/parse_uri.h"

#include "imps_reginfo.h"


imps_completion_queue_t *completions = NULL;

int send_request(const imps_request_t *r)
{
	return imps_send_request(&tmb, r, completions);
}

static void completed(const imps_response_t *r, size_t n)
{
	imps_reginfo_complete_many(r, n, imps_now_ms());
}

/* timer process: the final responses of our NOTIFYs, oldest first, a batch per round trip */
void handle_completions(void)
{
	imps_cq_drain(completions, completed);
}

static int reply(struct sip_msg *msg, int code, const char *reason, const char *hdrs)
{
	return imps_sl_reply(&slb, msg, code, reason, hdrs);
}

/* an error reply from the checks of the shim: the script sees -2 (replied, not accepted) */
static int reject(struct sip_msg *msg, int code, const char *reason)
{
	return reply(msg, code, reason, NULL) < 0 ? -1 : -2;
}

int ki_handle_subscribe(struct sip_msg *msg)
{
	imps_reginfo_subscribe_t req;
	imps_reginfo_reply_t rep;
	imps_subscribe_buf_t buf;
	char aor[256], watcher[256];
	const char *why = NULL;
	int n, ret;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_SUBSCRIBE) {
		LM_ERR("imps_reginfo_handle_subscribe() called for a request that is not SUBSCRIBE\n");
		return -1;
	}
	memset(&req, 0, sizeof(req));
	n = imps_read_subscribe(msg, &slb, contact_uri, &req.sub, &buf, &why);
	if(n == -1)
		return reject(msg, 400, why);
	if(n < 0)
		return reject(msg, 500, "Server Internal Error");

	if(!req.sub.dialog.in_dialog) {
		struct sip_uri *ru, to_uri;
		struct to_body *to = get_to(msg);
		/* the subscription's target is the AoR of the Request-URI */
		ret = -2;
		if(parse_sip_msg_uri(msg) < 0) {
			why = "Bad Request (malformed Request-URI)";
			goto refused;
		}
		ru = &msg->parsed_uri;
		if(ru->user.len <= 0 || ru->host.len <= 0) {
			why = "Bad Request (Request-URI has no AoR)";
			goto refused;
		}
		if(parse_uri(to->uri.s, to->uri.len, &to_uri) < 0 || to_uri.host.len <= 0) {
			why = "Bad Request (malformed To URI)";
			goto refused;
		}
		if((n = aor_of(*GET_RURI(msg), ru, aor, sizeof(aor))) < 0) {
			why = "Bad Request (Request-URI is no AoR of this registrar)";
			goto refused;
		}
		req.aor.s = aor;
		req.aor.len = n;
	}
	/* the watcher: P-Asserted-Identity from a trusted peer (trusted_peers), else From */
	{
		struct sip_uri who_uri;
		str who;
		int rc = imps_requester_uri(msg, &trusted, &who, &who_uri);
		if(rc == -2) {
			why = "Bad Request (malformed P-Asserted-Identity)";
			goto refused;
		}
		if(rc < 0) {
			why = "Bad Request (malformed From)";
			goto refused;
		}
		n = aor_of(who, &who_uri, watcher, sizeof(watcher));
	}
	if(n < 0) {
		why = "Bad Request (watcher URI too long)";
		goto refused;
	}
	req.watcher.s = watcher;
	req.watcher.len = n;
	req.now = (long long)time(NULL);

	/* no lock is held here: a REGISTER changing the AoR meanwhile finds the first NOTIFY
	 * outstanding and its own NOTIFY (the newest state) follows that one's response */
	n = imps_reginfo_subscribe(&req, &rep);
	imps_subscribe_buf_free(&buf);
	if(n < 0 && rep.code == 503)
		LM_ERR("reg SUBSCRIBE from %s answered 503: Redis: %s\n", watcher,
				imps_reginfo_last_error());
	ret = reply(msg, rep.code, rep.reason, rep.headers) < 0 ? -1 : (rep.code < 300 ? 1 : -2);
	if(ret > 0 && rep.notify)
		imps_reginfo_flush();
	return ret;

refused:
	imps_subscribe_buf_free(&buf);
	return reject(msg, 400, why);
}

int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_subscribe(msg);
}

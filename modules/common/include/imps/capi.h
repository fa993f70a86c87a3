/* Types every module's extern "C" boundary shares: one string type, the in-dialog request a
 * core asks its shim to send through tm, and the dialog the shim extracts from a SUBSCRIBE.
 * Strings handed to a core are copied before the call returns; strings handed to callbacks
 * live only for the call. No C++ exception crosses (every entry point is noexcept). */
#ifndef IMPS_CAPI_H
#define IMPS_CAPI_H

#include <stddef.h>

#ifdef __cplusplus
#define IMPS_NOEXCEPT noexcept
extern "C" {
#else
#define IMPS_NOEXCEPT
#endif

typedef struct imps_str {
	const char *s;
	size_t len;
} imps_str_t;

/* The dialog of a SUBSCRIBE as the notifier keeps it (imps_subscribe_dialog() fills it). */
typedef struct imps_dialog {
	imps_str_t callid;
	imps_str_t remote_tag;    /* From tag */
	imps_str_t local_tag;     /* To tag (ours: sl's for an initial SUBSCRIBE) */
	imps_str_t remote_uri;    /* From URI */
	imps_str_t local_uri;     /* To URI */
	imps_str_t remote_target; /* Contact URI (empty: none in an in-dialog request) */
	imps_str_t route_set;     /* Record-Route of an initial SUBSCRIBE, in order */
	imps_str_t socket;        /* "udp:127.0.0.1:5080" it arrived on */
	imps_str_t local_contact; /* our Contact */
	imps_str_t display_name;  /* From display name, unquoted */
	long long remote_cseq;
	int in_dialog;            /* To tag present */
} imps_dialog_t;

/* What every event package reads from a SUBSCRIBE (imps_read_subscribe() fills it). */
typedef struct imps_subscribe_common {
	int has_event;
	imps_str_t event;  /* Event header value */
	int has_accept;
	imps_str_t accept; /* every Accept header body, joined with ',' */
	int expires;       /* -1: no Expires header */
	imps_dialog_t dialog;
} imps_subscribe_common_t;

/* An in-dialog request (NOTIFY) to send through tm. headers: whole header lines, each
 * ending in CRLF (Event, Subscription-State, Contact, Content-Type, and whatever the event
 * package adds: Require: eventlist, a multipart Content-Type with its parameters). The final
 * response is reported with resource, sid and cseq (imps_completion). */
typedef struct imps_request {
	imps_str_t method;
	imps_dialog_t dialog;
	unsigned long long cseq;
	imps_str_t headers;
	imps_str_t body;
	imps_str_t resource;
	imps_str_t sid;
} imps_request_t;

/* What a core reads from the List and Policy Server in the same Kamailio, as bind_imps_xcap
 * hands it over (imps_xcap_api.h, imps_xcap_reader_of): a GET as a trusted reader (the HTTP
 * status, -1 when it cannot be made; sink on 200), the documents of a usage (auid "" every
 * one) and owner (xui "" every one): 0, -1; the shared count of stored changes. All NULL
 * when imps_xcap is not loaded. */
typedef struct imps_xcap_reader {
	int (*get)(imps_str_t path,
			void (*sink)(void *ctx, imps_str_t body, imps_str_t etag, imps_str_t content_type),
			void *ctx);
	int (*list)(imps_str_t auid, imps_str_t xui,
			void (*sink)(void *ctx, imps_str_t path, imps_str_t etag, long long modified,
					long long size),
			void *ctx);
	unsigned long (*generation)(void);
} imps_xcap_reader_t;

/* The final response of an in-dialog request the module sent (what tm reported). */
typedef struct imps_response {
	imps_str_t resource;
	imps_str_t sid;
	unsigned long long cseq;
	int code;        /* 408 for a timeout */
	int retry_after; /* the response carried Retry-After */
} imps_response_t;

#ifdef __cplusplus
}
#include <cstring>
#include <string>
#include <string_view>
namespace imps {
inline std::string to_string(imps_str_t s) { return s.s ? std::string(s.s, s.len) : std::string(); }
inline imps_str_t to_imps_str(const std::string &s) { return imps_str_t{s.data(), s.size()}; }
// Copies src into a C buffer of cap bytes the shim owns: cut to fit, always terminated
// (nothing at all without room). Allocates nothing: safe with e.what() in a catch handler.
inline void copy_out(char *dst, size_t cap, std::string_view src) noexcept
{
	if (!dst || cap == 0) return;
	size_t n = src.size() < cap - 1 ? src.size() : cap - 1;
	std::memcpy(dst, src.data(), n);
	dst[n] = '\0';
}
}  // namespace imps
#endif

#endif

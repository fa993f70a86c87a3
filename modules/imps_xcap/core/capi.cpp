// The extern "C" entry points of imps_xcap's core: a Storage over the shim's DB operations,
// and one Server per process (made in mod_init, before Kamailio forks).
#include "imps_xcap/imps_xcap_capi.h"

#include "imps_xcap/core/server.hpp"

#include <cstdio>
#include <memory>
#include <string>

namespace {

using namespace imps::xcap;

imps_str_t s_of(const std::string &s) { return imps_str_t{s.data(), s.size()}; }
std::string str(imps_str_t s) { return s.s ? std::string(s.s, s.len) : std::string(); }

StoreResult result(int rc)
{
	switch (rc) {
		case IMPS_XCAP_ST_OK:
			return StoreResult::Ok;
		case IMPS_XCAP_ST_NOT_FOUND:
			return StoreResult::NotFound;
		case IMPS_XCAP_ST_CONFLICT:
			return StoreResult::Conflict;
		default:
			return StoreResult::Error;
	}
}

class ShimStorage : public Storage {
public:
	explicit ShimStorage(const imps_xcap_storage_ops_t &ops) : ops_(ops) {}
	StoreResult fetch(const std::string &path, StoredDoc &out) override
	{
		struct Sink {
			static void doc(void *ctx, imps_str_t body, imps_str_t etag, long long modified)
			{
				auto *d = static_cast<StoredDoc *>(ctx);
				d->body = str(body);
				d->etag = str(etag);
				d->modified = modified;
			}
		};
		return result(ops_.fetch(s_of(path), Sink::doc, &out));
	}
	StoreResult create(const std::string &path, const std::string &auid, const std::string &xui,
			const StoredDoc &doc) override
	{
		return result(ops_.create(s_of(path), s_of(auid), s_of(xui), s_of(doc.body), s_of(doc.etag),
				doc.modified));
	}
	StoreResult replace(const std::string &path, const std::string &old_etag,
			const StoredDoc &doc) override
	{
		return result(ops_.replace(s_of(path), s_of(old_etag), s_of(doc.body), s_of(doc.etag),
				doc.modified));
	}
	StoreResult remove(const std::string &path, const std::string &old_etag) override
	{
		return result(ops_.remove(s_of(path), s_of(old_etag)));
	}
	StoreResult list(const std::string &auid, const std::string &xui,
			std::vector<DocInfo> &out) override
	{
		struct Sink {
			static void info(void *ctx, imps_str_t path, imps_str_t etag, long long modified,
					long long size)
			{
				static_cast<std::vector<DocInfo> *>(ctx)->push_back(
						{str(path), str(etag), modified, static_cast<size_t>(size)});
			}
		};
		return result(ops_.list(s_of(auid), s_of(xui), Sink::info, &out));
	}

private:
	imps_xcap_storage_ops_t ops_;
};

struct Core {
	std::unique_ptr<AppUsages> usages;
	std::unique_ptr<ShimStorage> store;
	std::unique_ptr<Server> server;
	Response last;  // the strings of the last response handed out
	std::string headers, caps;
};
Core *g_core = nullptr;

}  // namespace

extern "C" {

int imps_xcap_init(const char *root, size_t max_doc_size, const imps_xcap_storage_ops_t *ops,
		char *err, size_t errlen) noexcept
{
	try {
		auto c = std::make_unique<Core>();
		c->usages = std::make_unique<AppUsages>();
		c->store = std::make_unique<ShimStorage>(*ops);
		c->server = std::make_unique<Server>(Config{root ? root : "", max_doc_size}, *c->usages, *c->store);
		delete g_core;
		g_core = c.release();
		return 0;
	} catch (const std::exception &e) {
		if (err && errlen) std::snprintf(err, errlen, "%s", e.what());
	} catch (...) {
		if (err && errlen) std::snprintf(err, errlen, "unknown error");
	}
	return -1;
}

int imps_xcap_handle(const imps_xcap_request_t *rq, imps_xcap_response_t *rs) noexcept
{
	if (!g_core || !rq || !rs) return -1;
	try {
		Request r;
		r.method = str(rq->method);
		r.path = str(rq->path);
		r.query = str(rq->query);
		r.content_type = str(rq->content_type);
		r.body = str(rq->body);
		r.identity = str(rq->identity);
		r.has_if_match = rq->has_if_match != 0;
		r.has_if_none_match = rq->has_if_none_match != 0;
		r.if_match = str(rq->if_match);
		r.if_none_match = str(rq->if_none_match);
		switch (rq->role) {
			case IMPS_XCAP_USER:
				r.role = Role::User;
				break;
			case IMPS_XCAP_ADMIN:
				r.role = Role::Admin;
				break;
			case IMPS_XCAP_READER:
				r.role = Role::Reader;
				break;
			default:
				r.role = Role::Anonymous;
		}
		g_core->last = g_core->server->handle(r);
	} catch (...) {
		g_core->last = Response{};
		g_core->last.status = 500;
		g_core->last.reason = "Internal Server Error";
		g_core->last.refused = "internal";
	}
	const Response &l = g_core->last;
	g_core->headers.clear();
	try {
		for (const auto &[n, v] : l.headers) g_core->headers += n + ": " + v + "\r\n";
	} catch (...) {
		g_core->headers.clear();
	}
	rs->status = l.status;
	rs->reason = s_of(l.reason);
	rs->content_type = s_of(l.content_type);
	rs->etag = s_of(l.etag);
	rs->body = s_of(l.body);
	rs->headers = s_of(g_core->headers);
	rs->refused = s_of(l.refused);
	return 0;
}

int imps_xcap_list(imps_str_t xui, imps_xcap_info_sink_f sink, void *ctx) noexcept
{
	if (!g_core) return -1;
	try {
		std::vector<DocInfo> docs;
		if (g_core->store->list("", str(xui), docs) != StoreResult::Ok) return -1;
		for (const auto &d : docs)
			sink(ctx, s_of(d.path), s_of(d.etag), d.modified, static_cast<long long>(d.size));
		return 0;
	} catch (...) {
		return -1;
	}
}

int imps_xcap_show(imps_str_t path, imps_xcap_doc_sink_f sink, void *ctx) noexcept
{
	if (!g_core) return -1;
	try {
		StoredDoc d;
		StoreResult r = g_core->store->fetch(str(path), d);
		if (r == StoreResult::NotFound) return 1;
		if (r != StoreResult::Ok) return -1;
		sink(ctx, s_of(d.body), s_of(d.etag), d.modified);
		return 0;
	} catch (...) {
		return -1;
	}
}

int imps_xcap_delete(imps_str_t path) noexcept
{
	if (!g_core) return -1;
	try {
		// through the server, as an admin, so every change goes the same way (hooks)
		Request r;
		r.method = "DELETE";
		r.path = str(path);
		r.role = Role::Admin;
		r.identity = "rpc";
		Response resp = g_core->server->handle(r);
		if (resp.status == 404) return 1;
		return resp.status == 200 ? 0 : -1;
	} catch (...) {
		return -1;
	}
}

int imps_xcap_read(imps_str_t path,
		void (*sink)(void *ctx, imps_str_t body, imps_str_t etag, imps_str_t content_type),
		void *ctx) noexcept
{
	if (!g_core) return -1;
	try {
		Request r;
		r.method = "GET";
		std::string full = str(path);
		size_t q = full.find('?');
		r.path = full.substr(0, q);
		if (q != std::string::npos) r.query = full.substr(q + 1);
		r.role = Role::Reader;
		Response resp = g_core->server->handle(r);
		if (resp.status == 200) sink(ctx, s_of(resp.body), s_of(resp.etag), s_of(resp.content_type));
		return resp.status;
	} catch (...) {
		return -1;
	}
}

int imps_xcap_list_usage(imps_str_t auid, imps_str_t xui, imps_xcap_info_sink_f sink, void *ctx) noexcept
{
	if (!g_core) return -1;
	try {
		std::vector<DocInfo> docs;
		if (g_core->store->list(str(auid), str(xui), docs) != StoreResult::Ok) return -1;
		for (const auto &d : docs)
			sink(ctx, s_of(d.path), s_of(d.etag), d.modified, static_cast<long long>(d.size));
		return 0;
	} catch (...) {
		return -1;
	}
}

void imps_xcap_set_change(void (*changed)(imps_str_t, imps_str_t, imps_str_t)) noexcept
{
	if (!g_core) return;
	try {
		if (!changed) {
			g_core->server->on_change(nullptr);
			return;
		}
		g_core->server->on_change([changed](const std::string &path, const std::string &old_etag,
				const std::string &new_etag) { changed(s_of(path), s_of(old_etag), s_of(new_etag)); });
	} catch (...) {
	}
}

imps_str_t imps_xcap_caps(void) noexcept
{
	if (!g_core) return imps_str_t{"", 0};
	try {
		g_core->caps = g_core->server->caps_document();
		return s_of(g_core->caps);
	} catch (...) {
		return imps_str_t{"", 0};
	}
}

}  // extern "C"

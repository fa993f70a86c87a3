#include "policy.hpp"

#include "imps/log.hpp"
#include "imps/sip_text.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>

namespace imps::presence {

std::string xui_of(const std::string &presentity) { return "sip:" + presentity; }

std::string presentity_of_xui(const std::string &xui)
{
	std::string x = xui;
	if (x.size() > 4 && lower(x.substr(0, 4)) == "sip:") x = x.substr(4);
	return x;
}

Policy::Policy(PolicyConfig cfg, Get local_get, Generation generation, Shared shared)
	: cfg_(std::move(cfg)), get_(std::move(local_get)), generation_(std::move(generation)),
	  shared_(std::move(shared))
{
	while (!cfg_.root.empty() && cfg_.root.back() == '/') cfg_.root.pop_back();
}

Policy::~Policy()
{
	if (curl_) curl_easy_cleanup(static_cast<CURL *>(curl_));
}

std::vector<std::string> Policy::paths(const std::string &presentity) const
{
	std::vector<std::string> out;
	for (std::string p : cfg_.documents) {
		for (size_t pos; (pos = p.find("%XUI%")) != std::string::npos;) p.replace(pos, 5, xui_of(presentity));
		out.push_back(p);
	}
	return out;
}

std::string Policy::owner_of_rules(const std::string &path) const
{
	// "<auid>/users/<xui>/<document>" against each configured pattern
	for (const auto &pattern : cfg_.documents) {
		size_t x = pattern.find("%XUI%");
		if (x == std::string::npos) continue;
		std::string head = pattern.substr(0, x), tail = pattern.substr(x + 5);
		if (path.size() <= head.size() + tail.size() || path.compare(0, head.size(), head) != 0
				|| path.compare(path.size() - tail.size(), tail.size(), tail) != 0)
			continue;
		std::string xui = path.substr(head.size(), path.size() - head.size() - tail.size());
		if (xui.find('/') != std::string::npos) continue;
		return presentity_of_xui(xui);
	}
	return {};
}

bool Policy::fresh(const Entry &e, long long now_ms) const
{
	if (e.rules.state == UserRules::State::Error) return false;  // ask again at every use
	if (cfg_.mode == PolicyConfig::Mode::Local) return generation_ && e.generation == generation_();
	return now_ms - e.checked_ms < cfg_.ttl_ms;
}

// "<checked ms>\n" then per document "<status> <etag> <length>\n<body>"
std::string Policy::encode(const Entry &e)
{
	std::string b = std::to_string(e.checked_ms) + "\n";
	for (const auto &d : e.docs)
		b += std::to_string(d.status) + " " + (d.etag.empty() ? "-" : d.etag) + " " + std::to_string(d.body.size()) + "\n" + d.body;
	return b;
}

bool Policy::decode(const std::string &blob, size_t ndocs, Entry &e)
{
	size_t pos = blob.find('\n');
	if (pos == std::string::npos) return false;
	e.checked_ms = std::strtoll(blob.c_str(), nullptr, 10);
	++pos;
	std::vector<Doc> docs;
	while (pos < blob.size()) {
		size_t nl = blob.find('\n', pos);
		if (nl == std::string::npos) return false;
		std::string head = blob.substr(pos, nl - pos);
		size_t s1 = head.find(' '), s2 = head.rfind(' ');
		if (s1 == std::string::npos || s2 == s1) return false;
		Doc d;
		d.status = std::atoi(head.c_str());
		d.etag = head.substr(s1 + 1, s2 - s1 - 1);
		if (d.etag == "-") d.etag.clear();
		size_t len = std::strtoull(head.c_str() + s2 + 1, nullptr, 10);
		pos = nl + 1;
		if (pos + len > blob.size()) return false;
		d.body = blob.substr(pos, len);
		pos += len;
		docs.push_back(std::move(d));
	}
	if (docs.size() != ndocs) return false;
	e.docs = std::move(docs);
	return true;
}

namespace {

struct Fetch {
	std::string body, etag;
	size_t max;
	bool too_big = false;
};

size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	auto *f = static_cast<Fetch *>(ud);
	size_t len = size * n;
	if (f->body.size() + len > f->max) {
		f->too_big = true;
		return 0;  // ends the transfer
	}
	f->body.append(p, len);
	return len;
}

size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	auto *f = static_cast<Fetch *>(ud);
	std::string line(p, size * n);
	if (line.size() > 5 && lower(line.substr(0, 5)) == "etag:") {
		std::string v = trim(line.substr(5));
		if (v.rfind("W/", 0) == 0) v.clear();  // a weak tag is no validator here
		if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
		f->etag = v;
	}
	return size * n;
}

}  // namespace

// GET root/path, conditional on the copy's ETag: 200 (new copy), 304 (the copy is
// current), 404, or -1 when the server could not be asked (timeout, refused, too big).
int Policy::http_get(const std::string &path, Doc &doc)
{
	if (!curl_) curl_ = curl_easy_init();
	CURL *c = static_cast<CURL *>(curl_);
	if (!c) return -1;
	curl_easy_reset(c);
	Fetch f;
	f.max = cfg_.max_size;
	std::string url = cfg_.root + "/" + path;
	curl_easy_setopt(c, CURLOPT_URL, url.c_str());
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg_.timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cfg_.timeout_ms);
	if (!cfg_.interface.empty()) curl_easy_setopt(c, CURLOPT_INTERFACE, cfg_.interface.c_str());
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
	struct curl_slist *h = nullptr;
	std::string inm;
	if (doc.status == 200 && !doc.etag.empty()) {
		inm = "If-None-Match: \"" + doc.etag + "\"";
		h = curl_slist_append(h, inm.c_str());
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	++http_requests_;
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
	if (h) curl_slist_free_all(h);
	if (rc != CURLE_OK) {
		IMPS_WARN("pres-rules: GET %s failed: %s", url.c_str(), f.too_big ? "document too large" : curl_easy_strerror(rc));
		return -1;
	}
	if (status == 304 && doc.status == 200) return 304;
	if (status == 404) {
		doc = Doc{404, "", ""};
		return 404;
	}
	if (status != 200) {
		IMPS_WARN("pres-rules: GET %s answered %ld", url.c_str(), status);
		return -1;
	}
	doc = Doc{200, std::move(f.body), std::move(f.etag)};
	return 200;
}

void Policy::rebuild(const std::string &presentity, Entry &e)
{
	UserRules r;
	bool error = false;
	for (const auto &d : e.docs) {
		if (d.status == -1) error = true;
		if (d.status != 200) continue;
		PresRules one;
		std::string why;
		r.etags += d.etag + ";";
		if (!parse_pres_rules(d.body, one, &why)) {
			// imps_xcap validated it; a server that did not: its rules are not guessed at
			IMPS_WARN("pres-rules of %s unreadable (%s): ignored", presentity.c_str(), why.c_str());
			continue;
		}
		r.state = UserRules::State::Found;
		for (auto &rule : one.rules) r.rules.rules.push_back(std::move(rule));
	}
	if (error && r.state != UserRules::State::Found) r.state = UserRules::State::Error;
	e.rules = std::move(r);
}

const UserRules &Policy::of(const std::string &presentity, long long now_ms)
{
	static const UserRules none;
	if (!enabled()) return none;
	auto it = cache_.find(presentity);
	if (it != cache_.end() && fresh(it->second, now_ms)) return it->second.rules;
	if (cache_.size() >= 10000 && it == cache_.end()) cache_.clear();
	Entry &e = cache_[presentity];
	auto ps = paths(presentity);
	e.docs.resize(ps.size());
	bool changed = false;
	if (cfg_.mode == PolicyConfig::Mode::Local) {
		// the counter before the reads: a change while they run makes the copy stale
		e.generation = generation_ ? generation_() : 0;
		for (size_t i = 0; i < ps.size(); ++i) {
			Doc d;
			int st = get_ ? get_(ps[i], d.body, d.etag) : -1;
			d.status = st == 200 ? 200 : st == 404 ? 404 : -1;
			if (d.status == -1) e.generation = 0;  // ask again next time
			changed |= d.status != e.docs[i].status || d.etag != e.docs[i].etag;
			e.docs[i] = std::move(d);
		}
		e.checked_ms = now_ms;
	} else {
		// the copy every process shares, when another process checked it lately
		std::string blob;
		Entry shared;
		if (shared_.load && shared_.load(presentity, blob) && decode(blob, ps.size(), shared)) {
			for (size_t i = 0; i < ps.size(); ++i)
				changed |= shared.docs[i].status != e.docs[i].status || shared.docs[i].etag != e.docs[i].etag;
			e.docs = shared.docs;
			e.checked_ms = shared.checked_ms;
		}
		if (!fresh(e, now_ms)) {
			bool asked = false;
			for (size_t i = 0; i < ps.size(); ++i) {
				int st = http_get(ps[i], e.docs[i]);
				if (st == 200 || st == 404) changed = true;
				if (st != -1) asked = true;
				if (st == -1 && e.docs[i].status == 0) e.docs[i].status = -1;
				// -1 with a copy: the stale copy stays in use (stale-if-error)
			}
			e.checked_ms = now_ms;
			if (asked && shared_.save) shared_.save(presentity, encode(e));
		}
	}
	if (changed || e.rules.etags.empty()) rebuild(presentity, e);
	return e.rules;
}

}  // namespace imps::presence

#include "pidf.hpp"

#include "imps/xml_parse.hpp"
#include "imps/xml_writer.hpp"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace imps::presence {
namespace {

constexpr const char *kXmlNs = "http://www.w3.org/XML/1998/namespace";

using imps::xml::DocPtr;
using imps::xml::Parsed;

Parsed parse(std::string_view body) { return imps::xml::parse_safe(body); }

bool in_ns(xmlNodePtr n, const char *ns)
{
	return n && n->ns && n->ns->href && std::strcmp(reinterpret_cast<const char *>(n->ns->href), ns) == 0;
}

bool is_elem(xmlNodePtr n, const char *ns, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && in_ns(n, ns)
			&& std::strcmp(reinterpret_cast<const char *>(n->name), name) == 0;
}

std::string ns_of(xmlNodePtr n)
{
	return n && n->ns && n->ns->href ? reinterpret_cast<const char *>(n->ns->href) : "";
}

std::string str_of(const xmlChar *s) { return s ? reinterpret_cast<const char *>(s) : ""; }

std::string take(xmlChar *s)
{
	std::string out = str_of(s);
	if (s) xmlFree(s);
	return out;
}

std::string attr_of(xmlNodePtr n, const char *name) { return take(xmlGetNoNsProp(n, BAD_CAST name)); }
bool has_attr(xmlNodePtr n, const char *name) { return xmlHasNsProp(n, BAD_CAST name, nullptr) != nullptr; }
std::string content_of(xmlNodePtr n) { return take(xmlNodeGetContent(n)); }
std::string lang_of(xmlNodePtr n) { return take(xmlNodeGetLang(n)); }

std::string trim(std::string_view s)
{
	size_t b = 0, e = s.size();
	while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
	while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
	return std::string(s.substr(b, e - b));
}

std::string lower(std::string_view s)
{
	std::string out(s);
	for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return out;
}

xmlNodePtr first_child(xmlNodePtr n, const char *ns, const char *name)
{
	for (xmlNodePtr c = n ? n->children : nullptr; c; c = c->next)
		if (is_elem(c, ns, name)) return c;
	return nullptr;
}

// Element count and depth, depth-first; false with the reason when a bound is passed.
bool within_bounds(xmlNodePtr n, int depth, int &count, std::string &why)
{
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE) continue;
		if (depth > kMaxDepth) {
			why = "elements nested too deeply";
			return false;
		}
		if (++count > kMaxElements) {
			why = "too many elements";
			return false;
		}
		if (!within_bounds(n->children, depth + 1, count, why)) return false;
	}
	return true;
}

bool only_text_children(xmlNodePtr n)
{
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (c->type != XML_TEXT_NODE) return false;
	return true;
}

// ---- composition helpers -----------------------------------------------------------------

// A qvalue ("0.8", "1", "0.125") in thousandths; 0 when absent or unreadable.
int qvalue_of(const std::string &raw)
{
	std::string s = trim(raw);
	if (s.empty() || (s[0] != '0' && s[0] != '1')) return 0;
	int whole = s[0] - '0';
	int frac = 0, digits = 0;
	size_t i = 1;
	if (i < s.size()) {
		if (s[i] != '.') return 0;
		for (++i; i < s.size(); ++i) {
			if (!std::isdigit(static_cast<unsigned char>(s[i])) || digits == 3) return 0;
			frac = frac * 10 + (s[i] - '0');
			++digits;
		}
	}
	while (digits++ < 3) frac *= 10;
	int q = whole * 1000 + frac;
	return q > 1000 ? 0 : q;
}

bool ncname_start(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool ncname_char(unsigned char c)
{
	return ncname_start(c) || std::isdigit(c) || c == '-' || c == '.';
}

// An xs:ID (NCName) from whatever the publisher wrote.
std::string ncname(const std::string &raw)
{
	std::string out;
	for (char c : raw) out += ncname_char(static_cast<unsigned char>(c)) ? c : '_';
	if (out.empty() || !ncname_start(static_cast<unsigned char>(out[0]))) out.insert(0, "_");
	return out;
}

// Hands out document-unique xs:ID values. reserved: ids that keep their value when first met,
// so that a generated "-N" never takes an id a later element carries itself.
class IdSet {
public:
	void reserve(const std::string &id) { reserved_.insert(id); }
	std::string claim(const std::string &raw)
	{
		std::string base = ncname(raw);
		std::string id = base;
		for (int n = 2; used_.count(id) || (id != base && reserved_.count(id)); ++n)
			id = base + "-" + std::to_string(n);
		used_.insert(id);
		return id;
	}

private:
	std::set<std::string> reserved_, used_;
};

std::string format_utc(long long unix_s)
{
	std::time_t t = static_cast<std::time_t>(unix_s);
	std::tm tm{};
	if (!gmtime_r(&t, &tm)) return "1970-01-01T00:00:00Z";
	char buf[32];
	std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

// Howard Hinnant's days_from_civil.
long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const long long era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = static_cast<unsigned>(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + static_cast<long long>(doe) - 719468;
}

// One parsed publication, with its place in the source order.
struct Pub {
	const Source *src = nullptr;
	DocPtr doc;
	xmlNodePtr root = nullptr;
	int rank = 0;
};

// "Newer first" key: larger time, then earlier source, then earlier in the document.
struct Key {
	long long time_ms;
	int rank;
	int order;
	bool newer_than(const Key &o) const
	{
		return std::make_tuple(-time_ms, rank, order) < std::make_tuple(-o.time_ms, o.rank, o.order);
	}
};

long long time_or(xmlNodePtr ts, long long published_at, bool *explicit_ts = nullptr)
{
	long long ms = 0;
	if (ts && parse_datetime(trim(content_of(ts)), ms)) {
		if (explicit_ts) *explicit_ts = true;
		return ms;
	}
	if (explicit_ts) *explicit_ts = false;
	return published_at * 1000;
}

struct Item {
	xmlNodePtr node = nullptr;
	std::string id;  // replaces the node's id attribute when not empty
};

struct PersonOut {
	std::string id;
	std::vector<xmlNodePtr> children;  // any##other, kinds in (namespace, name) order
	std::vector<xmlNodePtr> notes;     // dm:note, in language order
	std::string timestamp;             // empty: none
	xmlNodePtr first = nullptr;        // a person element, for its namespace prefix
};

// Namespaces used by the output and the prefixes they get.
class Namespaces {
public:
	void element(xmlNodePtr n)
	{
		if (n->ns && n->ns->href) note(str_of(n->ns->href), str_of(n->ns->prefix), false);
		for (xmlAttrPtr a = n->properties; a; a = a->next)
			if (a->ns && a->ns->href) note(str_of(a->ns->href), str_of(a->ns->prefix), true);
	}
	void subtree(xmlNodePtr n)
	{
		if (n->type != XML_ELEMENT_NODE) return;
		element(n);
		for (xmlNodePtr c = n->children; c; c = c->next) subtree(c);
	}
	void assign()
	{
		std::set<std::string> taken{"xml", "xmlns"};
		for (const auto &[uri, prefixes] : used_) {
			std::string want;
			for (const auto &p : prefixes)
				if (!p.empty() && lower(p.substr(0, 3)) != "xml") {
					want = p;
					break;
				}
			if (want.empty()) want = well_known(uri);
			std::string p = want;
			for (int n = 2; taken.count(p); ++n) p = want + std::to_string(n);
			taken.insert(p);
			prefix_[uri] = p;
		}
	}
	const std::map<std::string, std::string> &prefixes() const { return prefix_; }
	std::string prefix(const std::string &uri) const
	{
		if (uri == kXmlNs) return "xml";
		auto it = prefix_.find(uri);
		return it == prefix_.end() ? std::string() : it->second;
	}

private:
	void note(const std::string &uri, const std::string &prefix, bool attribute)
	{
		if (uri == kXmlNs) return;
		if (uri == kPidfNs && !attribute) return;  // the default namespace of the output
		used_[uri].insert(prefix);
	}
	static std::string well_known(const std::string &uri)
	{
		if (uri == kDataModelNs) return "dm";
		if (uri == kRpidNs) return "rpid";
		if (uri == "urn:ietf:params:xml:ns:pidf:cipid") return "c";
		if (uri == "urn:ietf:params:xml:ns:pidf:caps") return "caps";
		if (uri == kPidfNs) return "pidf";
		return "ns";
	}

	std::map<std::string, std::set<std::string>> used_;
	std::map<std::string, std::string> prefix_;
};

bool blank(xmlNodePtr t)
{
	for (const xmlChar *p = t->content; p && *p; ++p)
		if (!std::isspace(*p)) return false;
	return true;
}

bool has_element_child(xmlNodePtr n)
{
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE) return true;
	return false;
}

class Emitter {
public:
	Emitter(XmlWriter &w, const Namespaces &ns) : w_(w), ns_(ns) {}

	// Starts an element of namespace uri (kPidfNs: unprefixed); cur_default tracks the default
	// namespace in scope so elements of no namespace stay in no namespace.
	void start(const std::string &uri, const std::string &name, std::string &cur_default)
	{
		if (uri == kPidfNs || uri.empty()) {
			w_.start(name);
			if (cur_default != uri) {
				w_.attr("xmlns", uri);
				cur_default = uri;
			}
		} else {
			w_.start(ns_.prefix(uri) + ":" + name);
		}
	}

	void copy(xmlNodePtr n, const std::string &id_override, std::string cur_default)
	{
		start(ns_of(n), str_of(n->name), cur_default);
		bool has_lang = false, has_id = false;
		for (xmlAttrPtr a = n->properties; a; a = a->next) {
			std::string name = str_of(a->name);
			std::string value = take(xmlNodeListGetString(n->doc, a->children, 1));
			if (a->ns && a->ns->href) {
				std::string uri = str_of(a->ns->href);
				if (uri == kXmlNs && name == "lang") has_lang = true;
				w_.attr(ns_.prefix(uri) + ":" + name, value);
			} else if (!id_override.empty() && name == "id") {
				w_.attr(name, id_override);
				has_id = true;
			} else {
				w_.attr(name, value);
			}
		}
		if (!id_override.empty() && !has_id) w_.attr("id", id_override);
		// A note keeps the language it had from an ancestor that is not copied.
		if (!has_lang && std::strcmp(reinterpret_cast<const char *>(n->name), "note") == 0) {
			std::string lang = lang_of(n);
			if (!lang.empty()) w_.attr("xml:lang", lang);
		}
		const bool element_content = has_element_child(n);
		for (xmlNodePtr c = n->children; c; c = c->next) {
			if (c->type == XML_ELEMENT_NODE)
				copy(c, std::string(), cur_default);
			else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
					&& !(element_content && blank(c)))
				w_.text(str_of(c->content));
		}
		w_.end();
	}

private:
	XmlWriter &w_;
	const Namespaces &ns_;
};

}  // namespace

// ---- public ------------------------------------------------------------------------------

bool parse_datetime(std::string_view s, long long &unix_ms)
{
	auto num = [&](size_t pos, size_t len, int &out) {
		if (pos + len > s.size()) return false;
		out = 0;
		for (size_t i = pos; i < pos + len; ++i) {
			if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
			out = out * 10 + (s[i] - '0');
		}
		return true;
	};
	int y, mo, d, h, mi, sec;
	if (!num(0, 4, y) || s.size() < 19 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-'
			|| !num(8, 2, d) || s[10] != 'T' || !num(11, 2, h) || s[13] != ':' || !num(14, 2, mi)
			|| s[16] != ':' || !num(17, 2, sec))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || sec > 60) return false;
	size_t i = 19;
	int ms = 0;
	if (i < s.size() && s[i] == '.') {
		size_t digits = 0;
		for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, ++digits)
			if (digits < 3) ms = ms * 10 + (s[i] - '0');
		if (digits == 0) return false;
		for (; digits < 3; ++digits) ms *= 10;
	}
	long long offset_min = 0;
	if (i < s.size()) {
		if (s[i] == 'Z') {
			++i;
		} else if (s[i] == '+' || s[i] == '-') {
			int oh, om;
			if (!num(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !num(i + 4, 2, om)
					|| oh > 14 || om > 59)
				return false;
			offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
			i += 6;
		} else {
			return false;
		}
	}
	if (i != s.size()) return false;
	long long days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
	long long secs = days * 86400 + h * 3600LL + mi * 60LL + sec - offset_min * 60;
	unix_ms = secs * 1000 + ms;
	return true;
}

std::string uri_identity(std::string_view uri)
{
	std::string u = trim(uri);
	size_t colon = u.find(':');
	if (colon == std::string::npos) return {};
	std::string scheme = lower(std::string_view(u).substr(0, colon));
	if (scheme != "sip" && scheme != "sips" && scheme != "pres") return {};
	std::string_view rest = std::string_view(u).substr(colon + 1);
	size_t at = rest.find('@');
	if (at == std::string_view::npos || at == 0) return {};
	std::string_view user = rest.substr(0, at);
	if (size_t pw = user.find(':'); pw != std::string_view::npos) user = user.substr(0, pw);
	if (user.empty()) return {};
	for (char c : user) {
		auto uc = static_cast<unsigned char>(c);
		if (uc <= 0x20 || uc == 0x7f || c == '<' || c == '>' || c == '"') return {};
	}
	std::string_view hostport = rest.substr(at + 1);
	hostport = hostport.substr(0, hostport.find_first_of(";?"));
	std::string_view host, port;
	if (!hostport.empty() && hostport[0] == '[') {
		size_t close = hostport.find(']');
		if (close == std::string_view::npos || close < 3) return {};
		host = hostport.substr(0, close + 1);
		for (char c : host.substr(1, host.size() - 2))
			if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return {};
		std::string_view after = hostport.substr(close + 1);
		if (!after.empty()) {
			if (after[0] != ':') return {};
			port = after.substr(1);
			if (port.empty()) return {};
		}
	} else {
		size_t pc = hostport.find(':');
		host = hostport.substr(0, pc);
		if (pc != std::string_view::npos) {
			port = hostport.substr(pc + 1);
			if (port.empty()) return {};
		}
		if (host.empty() || host.front() == '.' || host.front() == '-') return {};
		for (char c : host)
			if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return {};
	}
	for (char c : port)
		if (!std::isdigit(static_cast<unsigned char>(c))) return {};
	return std::string(user) + "@" + lower(host);
}

std::string validate_pidf(std::string_view body, std::string_view presentity, size_t max_size)
{
	if (body.size() > max_size) return "body larger than " + std::to_string(max_size) + " bytes";
	if (body.find("<!DOCTYPE") != std::string_view::npos) return "DOCTYPE not allowed";
	Parsed p = parse(body);
	if (p.doctype) return "DOCTYPE not allowed";
	if (!p.ok) return "not well-formed XML at line " + std::to_string(p.error_line);
	xmlNodePtr root = xmlDocGetRootElement(p.doc.get());
	if (!root || std::strcmp(reinterpret_cast<const char *>(root->name), "presence") != 0)
		return "root element is not presence";
	if (!in_ns(root, kPidfNs)) return "wrong namespace";
	if (!has_attr(root, "entity")) return "presence without entity";
	std::string want(presentity);
	if (std::string canon = uri_identity("sip:" + want); !canon.empty()) want = canon;
	std::string got = uri_identity(attr_of(root, "entity"));
	if (got.empty() || got != want) return "entity does not name the presentity";
	int count = 0;
	std::string why;
	if (!within_bounds(root, 1, count, why)) return why;
	std::set<std::string> ids;
	for (xmlNodePtr t = root->children; t; t = t->next) {
		if (!is_elem(t, kPidfNs, "tuple")) continue;
		std::string id = attr_of(t, "id");
		if (id.empty()) return "tuple without id";
		if (!ids.insert(id).second) return "duplicate tuple id";
		xmlNodePtr status = first_child(t, kPidfNs, "status");
		if (!status) return "tuple without status";
		if (xmlNodePtr basic = first_child(status, kPidfNs, "basic")) {
			std::string v = content_of(basic);
			if (!only_text_children(basic) || (v != "open" && v != "closed"))
				return "basic must be open or closed";
		}
	}
	return {};
}

std::string offline_document(std::string_view entity_uri)
{
	XmlWriter w;
	w.start("presence");
	w.attr("xmlns", kPidfNs);
	w.attr("entity", entity_uri);
	w.start("tuple");
	w.attr("id", "offline");
	w.start("status");
	w.start("basic");
	w.text("closed");
	w.end();
	w.end();
	w.end();
	w.end();
	return w.finish();
}

std::string compose(std::string_view entity_uri, const std::vector<Source> &sources)
{
	// Source order: newest publication first, then etag, then body.
	std::vector<const Source *> order;
	for (const auto &s : sources) order.push_back(&s);
	std::sort(order.begin(), order.end(), [](const Source *a, const Source *b) {
		const long long na = -a->published_at, nb = -b->published_at;
		return std::tie(na, a->etag, a->body) < std::tie(nb, b->etag, b->body);
	});
	std::vector<Pub> pubs;
	for (const Source *s : order) {
		Parsed p = parse(s->body);
		if (!p.ok) continue;
		xmlNodePtr root = xmlDocGetRootElement(p.doc.get());
		if (!is_elem(root, kPidfNs, "presence")) continue;
		Pub pub;
		pub.src = s;
		pub.root = root;
		pub.doc = std::move(p.doc);
		pub.rank = static_cast<int>(pubs.size());
		pubs.push_back(std::move(pub));
	}

	std::string entity(entity_uri);
	if (entity.empty() && !pubs.empty()) {
		std::string raw = attr_of(pubs.front().root, "entity");
		std::string id = uri_identity(raw);
		entity = id.empty() ? raw : "sip:" + id;
	}
	if (pubs.empty()) return offline_document(entity);

	// Tuples.
	struct TupleCand {
		int prio;
		int rank;
		int order;
		xmlNodePtr node;
	};
	std::vector<TupleCand> tuples;
	IdSet ids;
	for (const Pub &p : pubs) {
		int i = 0;
		for (xmlNodePtr c = p.root->children; c; c = c->next, ++i) {
			if (!is_elem(c, kPidfNs, "tuple")) continue;
			xmlNodePtr contact = first_child(c, kPidfNs, "contact");
			int prio = contact ? qvalue_of(attr_of(contact, "priority")) : 0;
			tuples.push_back({prio, p.rank, i, c});
			ids.reserve(ncname(attr_of(c, "id")));
		}
	}
	std::sort(tuples.begin(), tuples.end(), [](const TupleCand &a, const TupleCand &b) {
		return std::make_tuple(-a.prio, a.rank, a.order) < std::make_tuple(-b.prio, b.rank, b.order);
	});
	std::vector<Item> tuple_items;
	for (const auto &t : tuples) tuple_items.push_back({t.node, ids.claim(attr_of(t.node, "id"))});

	// Top-level notes, one per language from the newest source.
	std::map<std::string, xmlNodePtr> notes;
	for (const Pub &p : pubs)
		for (xmlNodePtr c = p.root->children; c; c = c->next)
			if (is_elem(c, kPidfNs, "note")) notes.emplace(lang_of(c), c);  // first (newest) wins

	// Person.
	std::optional<PersonOut> person;
	{
		struct Best {
			Key key;
			xmlNodePtr node;
		};
		std::optional<Best> newest;
		bool any_ts = false;
		std::map<std::pair<std::string, std::string>, Best> kinds;  // (ns, name) -> person
		std::map<std::string, Best> person_notes;                   // lang -> note
		int order = 0;
		for (const Pub &p : pubs) {
			for (xmlNodePtr per = p.root->children; per; per = per->next) {
				if (!is_elem(per, kDataModelNs, "person")) continue;
				bool explicit_ts = false;
				Key key{time_or(first_child(per, kDataModelNs, "timestamp"), p.src->published_at,
								&explicit_ts),
						p.rank, order++};
				any_ts = any_ts || explicit_ts;
				if (!newest || key.newer_than(newest->key)) newest = Best{key, per};
				for (xmlNodePtr c = per->children; c; c = c->next) {
					if (c->type != XML_ELEMENT_NODE) continue;
					if (in_ns(c, kDataModelNs)) {
						if (is_elem(c, kDataModelNs, "note")) {
							Key nk{key.time_ms, key.rank, order++};
							auto [it, fresh] = person_notes.try_emplace(lang_of(c), Best{nk, c});
							if (!fresh && nk.newer_than(it->second.key)) it->second = Best{nk, c};
						}
						continue;  // dm:timestamp is rebuilt; other dm children are not allowed
					}
					auto kind = std::make_pair(ns_of(c), str_of(c->name));
					auto [it, fresh] = kinds.try_emplace(kind, Best{key, per});
					if (!fresh && key.newer_than(it->second.key)) it->second = Best{key, per};
				}
			}
		}
		if (newest) {
			PersonOut out;
			out.first = newest->node;
			std::string pid = attr_of(newest->node, "id");
			out.id = pid.empty() ? "person" : pid;
			for (const auto &[kind, best] : kinds)
				for (xmlNodePtr c = best.node->children; c; c = c->next)
					if (c->type == XML_ELEMENT_NODE && ns_of(c) == kind.first
							&& str_of(c->name) == kind.second)
						out.children.push_back(c);
			for (const auto &[lang, best] : person_notes) out.notes.push_back(best.node);
			if (any_ts) {
				xmlNodePtr ts = first_child(newest->node, kDataModelNs, "timestamp");
				long long ms = 0;
				if (ts && parse_datetime(trim(content_of(ts)), ms))
					out.timestamp = trim(content_of(ts));
				else
					out.timestamp = format_utc(newest->key.time_ms / 1000);
			}
			person = std::move(out);
		}
	}
	if (person) person->id = ids.claim(person->id);

	// Devices, one per deviceID.
	std::map<std::string, std::pair<Key, xmlNodePtr>> devices;
	{
		int order = 0;
		for (const Pub &p : pubs)
			for (xmlNodePtr d = p.root->children; d; d = d->next) {
				if (!is_elem(d, kDataModelNs, "device")) continue;
				xmlNodePtr did = first_child(d, kDataModelNs, "deviceID");
				if (!did) continue;
				Key key{time_or(first_child(d, kDataModelNs, "timestamp"), p.src->published_at),
						p.rank, order++};
				auto [it, fresh] = devices.try_emplace(trim(content_of(did)), key, d);
				if (!fresh && key.newer_than(it->second.first)) it->second = {key, d};
			}
	}
	std::vector<Item> device_items;
	for (const auto &[device_id, best] : devices)
		device_items.push_back({best.second, ids.claim(attr_of(best.second, "id"))});

	// Extensions under presence.
	std::vector<xmlNodePtr> extensions;
	for (const Pub &p : pubs)
		for (xmlNodePtr c = p.root->children; c; c = c->next)
			if (c->type == XML_ELEMENT_NODE && !in_ns(c, kPidfNs)
					&& !is_elem(c, kDataModelNs, "person") && !is_elem(c, kDataModelNs, "device"))
				extensions.push_back(c);

	// Namespaces of everything written.
	Namespaces ns;
	for (const auto &t : tuple_items) ns.subtree(t.node);
	for (const auto &[lang, n] : notes) ns.subtree(n);
	if (person) {
		ns.element(person->first);
		for (xmlNodePtr c : person->children) ns.subtree(c);
		for (xmlNodePtr c : person->notes) ns.subtree(c);
	}
	for (const auto &d : device_items) ns.subtree(d.node);
	for (xmlNodePtr e : extensions) ns.subtree(e);
	ns.assign();

	XmlWriter w;
	w.start("presence");
	w.attr("xmlns", kPidfNs);
	std::vector<std::pair<std::string, std::string>> decls;  // prefix, uri
	for (const auto &[uri, prefix] : ns.prefixes()) decls.emplace_back(prefix, uri);
	std::sort(decls.begin(), decls.end());
	for (const auto &[prefix, uri] : decls) w.attr("xmlns:" + prefix, uri);
	w.attr("entity", entity);
	Emitter em(w, ns);
	const std::string pidf = kPidfNs;
	for (const auto &t : tuple_items) em.copy(t.node, t.id, pidf);
	for (const auto &[lang, n] : notes) em.copy(n, std::string(), pidf);
	if (person) {
		const std::string dm = ns.prefix(kDataModelNs);
		w.start(dm + ":person");
		w.attr("id", person->id);
		for (xmlNodePtr c : person->children) em.copy(c, std::string(), pidf);
		for (xmlNodePtr c : person->notes) em.copy(c, std::string(), pidf);
		if (!person->timestamp.empty()) {
			w.start(dm + ":timestamp");
			w.text(person->timestamp);
			w.end();
		}
		w.end();
	}
	for (const auto &d : device_items) em.copy(d.node, d.id, pidf);
	for (xmlNodePtr e : extensions) em.copy(e, std::string(), pidf);
	w.end();
	return w.finish();
}

}  // namespace imps::presence
